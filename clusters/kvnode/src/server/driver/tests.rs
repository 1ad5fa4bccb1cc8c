//! The node loop's handling of a ready: votes are logged once persisted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::consensus::{Core, Role};
use crate::events::tests::{lines, votes_logged};
use crate::raft::{Config, CoreBugs, HardState, Raft};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-kv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A single-node Raft loop on a fresh data directory, with no peers.
fn single_node(dir: &Path, bugs: CoreBugs, runtime: &tokio::runtime::Runtime) -> Driver<Raft> {
    let (storage, _) = Storage::open(dir, false).unwrap();
    let mut cfg = Config::new(1, vec![1]);
    cfg.bugs = bugs;
    let core = Raft::new(cfg, HardState::default(), None, vec![]).unwrap();
    let transport = Transport::start(&BTreeMap::new(), runtime.handle());
    let cfg = DriverConfig {
        tick: Duration::from_millis(10),
        request_timeout: Duration::from_secs(1),
        snapshot_entries: 1_000,
        client_addrs: BTreeMap::new(),
        shard: 0,
        router: crate::server::router::Router::new(1, vec![]),
        commit: None,
    };
    Driver::new(core, storage, Store::new(), transport, cfg)
}

#[test]
fn the_vote_is_logged_after_persisting_even_when_forgotten() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for forget in [false, true] {
        let dir = temp_dir(&format!("driver-vote-{forget}"));
        let bugs = CoreBugs {
            forget_vote: forget,
            ..CoreBugs::default()
        };
        let mut driver = single_node(&dir, bugs, &runtime);
        // The lone node campaigns, votes for itself and leads; nothing is logged yet.
        let decided = lines(|| {
            for _ in 0..40 {
                if driver.core.status().role == Role::Leader {
                    break;
                }
                driver.core.tick();
            }
        });
        assert_eq!(driver.core.status().role, Role::Leader);
        assert!(votes_logged(&decided).is_empty(), "{decided:?}");
        let mut result = Ok(());
        let handled = lines(|| result = driver.process_ready());
        result.unwrap();
        assert_eq!(
            votes_logged(&handled),
            [" protocol: vote node=1 term=1 for=1"],
            "forget-vote {forget}: {handled:?}"
        );
        // What was persisted: the term, and the vote unless the bug forgot it.
        drop(driver);
        let (_, restored) = Storage::open(&dir, false).unwrap();
        assert_eq!(restored.hard.term, 1);
        assert_eq!(restored.hard.vote, if forget { None } else { Some(1) });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
