//! Unit tests of the registry and of `clean`.
use super::*;
use std::sync::Arc;

fn cmd_resource(marker: &Path) -> Resource {
    Resource::Command {
        description: format!("marker {}", marker.display()),
        argv: vec!["rm".into(), "-f".into(), marker.display().to_string()],
    }
}

#[test]
fn records_are_written_before_creation_and_removed_in_reverse() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create(dir.path(), "abc123").unwrap();
    let log = dir.path().join("log");
    for i in 0..3 {
        registry
            .record(Resource::Command {
                description: format!("step {i}"),
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    format!("echo {i} >> {}", log.display()),
                ],
            })
            .unwrap();
        let state = read_state(registry.path()).unwrap();
        assert_eq!(state.resources.len(), i + 1);
        assert_eq!(state.run, "abc123");
        assert_eq!(state.owner, Owner::current());
    }
    registry.teardown().unwrap();
    assert_eq!(fs::read_to_string(&log).unwrap(), "2\n1\n0\n");
    assert!(!registry.path().exists());
    // Again: nothing left, still fine.
    registry.teardown().unwrap();
}

#[test]
fn failures_stay_in_the_file_and_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create(dir.path(), "r").unwrap();
    let marker = dir.path().join("m");
    fs::write(&marker, "").unwrap();
    registry.record(cmd_resource(&marker)).unwrap();
    let bad = Resource::Command {
        description: "always fails".into(),
        argv: vec!["false".into()],
    };
    registry.record(bad.clone()).unwrap();
    let err = registry.teardown().unwrap_err().to_string();
    assert!(err.contains("always fails"), "{err}");
    assert!(!marker.exists());
    assert_eq!(read_state(registry.path()).unwrap().resources, vec![bad]);
}

#[test]
fn clean_finds_files_of_dead_owners_and_skips_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("run1");
    let dead = dir.path().join("a/run2");
    let live = dir.path().join("run3");
    let markers: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("m{i}"))).collect();
    for (i, run) in [&mine, &dead, &live].into_iter().enumerate() {
        let registry = Registry::create(run, "x").unwrap();
        fs::write(&markers[i], "").unwrap();
        registry.record(cmd_resource(&markers[i])).unwrap();
    }
    let edit = |path: &Path, owner: Owner| {
        let file = path.join(STATE_FILE);
        let mut state = read_state(&file).unwrap();
        state.owner = owner;
        write_state(&file, &state).unwrap();
    };
    // pid 1 is alive but started at another time: a dead owner.
    edit(
        &dead,
        Owner {
            pid: 1,
            start_time: u64::MAX,
        },
    );
    // pid 1 as it is: a live owner other than us.
    edit(
        &live,
        Owner {
            pid: 1,
            start_time: start_time(1).unwrap(),
        },
    );
    let report = clean(dir.path()).unwrap();
    assert_eq!(report.removed, 2);
    assert_eq!(report.cleaned.len(), 2);
    assert_eq!(report.skipped, vec![live.join(STATE_FILE)]);
    assert!(!markers[0].exists() && !markers[1].exists() && markers[2].exists());
    assert!(!mine.join(STATE_FILE).exists());
}

#[test]
fn a_corrupt_state_file_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("bad")).unwrap();
    fs::write(dir.path().join("bad").join(STATE_FILE), "{").unwrap();
    let marker = dir.path().join("m");
    fs::write(&marker, "").unwrap();
    let registry = Registry::create(&dir.path().join("good"), "g").unwrap();
    registry.record(cmd_resource(&marker)).unwrap();
    let err = clean(dir.path()).unwrap_err().to_string();
    assert!(err.contains("is corrupt"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    assert!(!marker.exists());
}

#[test]
fn absent_resources_count_as_removed() {
    for resource in [
        Resource::Namespace {
            name: "fl-none-n1".into(),
        },
        Resource::Link {
            name: "flnone0".into(),
        },
        Resource::NftTable {
            family: "inet".into(),
            name: "fl_none".into(),
            netns: Some("fl-none-n1".into()),
        },
        Resource::Process {
            pid: u32::MAX - 1,
            start_time: 5,
        },
    ] {
        remove(&resource).unwrap();
    }
}

#[test]
fn resources_round_trip_as_tagged_json() {
    let r = Resource::NftTable {
        family: "inet".into(),
        name: "t".into(),
        netns: None,
    };
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"nft-table","family":"inet","name":"t","netns":null}"#
    );
    assert_eq!(serde_json::from_str::<Resource>(&json).unwrap(), r);
    assert!(Resource::process(std::process::id()).is_some());
}

#[test]
fn several_registries_register_for_interrupts_until_their_guard_drops() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ra = Arc::new(Registry::create(a.path(), "a").unwrap());
    let rb = Arc::new(Registry::create(b.path(), "b").unwrap());
    let ga = teardown_on_interrupt(Arc::clone(&ra)).unwrap();
    let gb = teardown_on_interrupt(Arc::clone(&rb)).unwrap();
    let mine = |paths: Vec<PathBuf>| -> Vec<PathBuf> {
        paths
            .into_iter()
            .filter(|p| *p == ra.path() || *p == rb.path())
            .collect()
    };
    assert_eq!(
        mine(interrupt::registered_paths()),
        [ra.path().to_path_buf(), rb.path().to_path_buf()]
    );
    drop(ga);
    assert_eq!(
        mine(interrupt::registered_paths()),
        [rb.path().to_path_buf()]
    );
    drop(gb);
    assert!(mine(interrupt::registered_paths()).is_empty());
}

#[test]
fn nothing_can_be_recorded_once_teardown_began() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create(dir.path(), "closed").unwrap();
    registry.teardown().unwrap();
    let refused = registry
        .record(Resource::Namespace {
            name: "fl-never".into(),
        })
        .unwrap_err();
    assert!(matches!(refused, CleanupError::Closed { .. }), "{refused}");
    assert!(refused.to_string().contains("being torn down"), "{refused}");
    assert!(registry.resources().is_empty());
}

fn ssh_dir(name: &str, dir: &str) -> Resource {
    Resource::SshDir {
        host: crate::ssh::HostSpec {
            name: name.into(),
            // Nothing listens there: a removal that got as far as connecting would fail
            // with "cannot connect", not with the refusal the tests expect.
            address: "127.0.0.1".into(),
            port: 1,
            user: "root".into(),
            key: "/nonexistent/key".into(),
            sudo: false,
        },
        known_hosts: "/nonexistent/known_hosts".into(),
        accept_unknown_host_keys: false,
        dir: dir.into(),
    }
}

#[test]
fn ssh_dirs_round_trip_and_say_where_they_are() {
    let r = ssh_dir("n1", "/tmp/faultline-3fa9c1");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["kind"], "ssh-dir");
    assert_eq!(json["dir"], "/tmp/faultline-3fa9c1");
    assert_eq!(json["host"]["address"], "127.0.0.1");
    assert_eq!(serde_json::from_value::<Resource>(json).unwrap(), r);
    assert_eq!(
        r.to_string(),
        "directory /tmp/faultline-3fa9c1 on SSH host n1 (127.0.0.1:1)"
    );
}

#[test]
fn a_tampered_ssh_dir_is_refused_before_connecting() {
    for dir in ["/", "/tmp", "/tmp/faultline-x/../../etc", "/home/user"] {
        let err = remove(&ssh_dir("n1", dir)).unwrap_err();
        assert!(err.contains("refusing to remove it"), "{dir}: {err}");
    }
    let err = remove(&ssh_dir("../..", "/tmp/faultline-3fa9c1")).unwrap_err();
    assert!(err.starts_with("bad host name `../..`"), "{err}");
    // A good record does try the host, and says it cannot reach it.
    let err = remove(&ssh_dir("n1", "/tmp/faultline-3fa9c1")).unwrap_err();
    assert!(err.contains("n1 (127.0.0.1:1): cannot connect"), "{err}");
}
