//! `EtcdStore` against real etcd processes on 127.0.0.1 (Debian's `etcd-server`):
//! micro-op semantics, atomic multi-key transactions, concurrent appends, serializable
//! reads, and fail-over in a 3-node cluster when a node is killed.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_testsupport::free_port;
use faultline_workloads::store::etcd::{EtcdStore, ReadMode};
use faultline_workloads::store::{Micro, Store, StoreError, TxnOk};
use serde_json::{Value, json};

mod common;
use common::{append, ok_within, r};

/// `n` etcd members `n1`..; all killed on drop.
struct Etcd {
    clients: Vec<String>,
    children: Vec<Option<Child>>,
    base: PathBuf,
}

impl Etcd {
    fn start(name: &str, n: usize) -> Etcd {
        let base = std::env::temp_dir().join(format!(
            "faultline-store-etcd-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let peers: Vec<String> = (0..n)
            .map(|_| format!("http://127.0.0.1:{}", free_port()))
            .collect();
        let clients: Vec<String> = (0..n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let cluster: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("n{}={p}", i + 1))
            .collect();
        let mut etcd = Etcd {
            clients: clients.clone(),
            children: Vec::new(),
            base: base.clone(),
        };
        for i in 0..n {
            let log = std::fs::File::create(base.join(format!("n{}.log", i + 1))).unwrap();
            let client_url = format!("http://{}", clients[i]);
            let spawned = Command::new("etcd")
                .args(["--name", &format!("n{}", i + 1)])
                .arg("--data-dir")
                .arg(base.join(format!("n{}", i + 1)))
                .args(["--listen-peer-urls", &peers[i]])
                .args(["--initial-advertise-peer-urls", &peers[i]])
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--initial-cluster", &cluster.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", &format!("faultline-{name}")])
                .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn();
            match spawned {
                Ok(child) => etcd.children.push(Some(child)),
                Err(e) => panic!(
                    "cannot run `etcd` ({e}): install etcd-server \
                     (`apt-get install etcd-server`; CI installs it)"
                ),
            }
        }
        etcd
    }

    fn nodes(&self) -> Vec<(String, String)> {
        self.clients
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("n{}", i + 1), a.clone()))
            .collect()
    }

    fn store(&self, preferred: usize, mode: ReadMode) -> EtcdStore {
        EtcdStore::new(self.nodes(), preferred, Duration::from_secs(3), mode)
    }

    /// Waits until a linearizable read answers (the cluster has a leader).
    async fn ready(&self) {
        let mut store = self.store(0, ReadMode::Linearizable);
        let deadline = Instant::now() + Duration::from_secs(15);
        while store.txn(&[r("ready")]).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "etcd not ready; logs in {}",
                self.base.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for mut child in self.children.iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

/// Retries definite failures until `ok`; an `info` fails the test.
async fn ok(store: &mut EtcdStore, ops: &[Micro]) -> TxnOk {
    ok_within(store, ops, Duration::from_secs(15)).await
}

fn fail_code(result: Result<TxnOk, StoreError>) -> String {
    match result {
        Err(StoreError::Fail { error, .. }) => error,
        other => panic!("expected a fail, got {other:?}"),
    }
}

#[tokio::test]
async fn single_node_micro_ops() {
    let etcd = Etcd::start("one", 1);
    etcd.ready().await;
    let mut store = etcd.store(0, ReadMode::Linearizable);

    let got = ok(&mut store, &[r("x")]).await;
    assert_eq!(got.values, vec![Value::Null], "a missing key reads null");
    assert_eq!(got.node, "n1");
    let got = ok(&mut store, &[Micro::Write("x".into(), json!(3)), r("x")]).await;
    assert_eq!(got.values, vec![Value::Null, json!(3)]);
    assert_eq!(ok(&mut store, &[r("x")]).await.values, vec![json!(3)]);
    ok(&mut store, &[Micro::Cas("x".into(), json!(3), json!(4))]).await;
    let code = fail_code(
        store
            .txn(&[Micro::Cas("x".into(), json!(3), json!(5))])
            .await,
    );
    assert_eq!(code, "cas-mismatch");
    assert_eq!(ok(&mut store, &[r("x")]).await.values, vec![json!(4)]);
    ok(
        &mut store,
        &[Micro::Cas("fresh".into(), Value::Null, json!("a"))],
    )
    .await;

    ok(&mut store, &[append("l", 1)]).await;
    ok(&mut store, &[append("l", 2)]).await;
    assert_eq!(ok(&mut store, &[r("l")]).await.values, vec![json!([1, 2])]);

    ok(&mut store, &[Micro::Add("c".into(), 5)]).await;
    let got = ok(&mut store, &[Micro::Add("c".into(), -7), r("c")]).await;
    assert_eq!(got.values, vec![Value::Null, json!(-2)]);
    let code = fail_code(store.txn(&[Micro::Add("l".into(), 1)]).await);
    assert_eq!(code, "not-an-integer");

    // A multi-key transaction is all or nothing.
    ok(
        &mut store,
        &[
            Micro::Write("a".into(), json!(1)),
            Micro::Write("b".into(), json!(1)),
        ],
    )
    .await;
    let code = fail_code(
        store
            .txn(&[
                Micro::Write("a".into(), json!(2)),
                append("l", 3),
                Micro::Cas("b".into(), json!(9), json!(2)),
            ])
            .await,
    );
    assert_eq!(code, "cas-mismatch");
    let got = ok(&mut store, &[r("a"), r("b"), r("l")]).await;
    assert_eq!(got.values, vec![json!(1), json!(1), json!([1, 2])]);
    let got = ok(
        &mut store,
        &[
            Micro::Add("a".into(), -1),
            Micro::Add("b".into(), 1),
            r("a"),
            r("b"),
        ],
    )
    .await;
    assert_eq!(got.values[2..], [json!(0), json!(2)]);

    // Serializable reads (one node: never stale here) and writes.
    let mut ser = etcd.store(0, ReadMode::Serializable);
    assert_eq!(
        ok(&mut ser, &[r("a"), r("b")]).await.values,
        [json!(0), json!(2)]
    );
    let got = ok(&mut ser, &[append("s", 1), r("s")]).await;
    assert_eq!(got.values, vec![Value::Null, json!([1])]);
    assert_eq!(ok(&mut store, &[r("s")]).await.values, vec![json!([1])]);
}

#[tokio::test]
async fn concurrent_appends_lose_nothing_acknowledged() {
    let etcd = Etcd::start("race", 1);
    etcd.ready().await;
    let mut tasks = Vec::new();
    for client in 0..4i64 {
        let mut store = etcd.store(0, ReadMode::Linearizable);
        tasks.push(tokio::spawn(async move {
            let (mut acked, mut unknown, mut conflicts) = (Vec::new(), Vec::new(), 0);
            for i in 0..15 {
                let v = client * 100 + i;
                match store.txn(&[append("k", v), r("k")]).await {
                    Ok(got) => {
                        let list = got.values[1].as_array().unwrap();
                        assert_eq!(list.last(), Some(&json!(v)), "reads its own append");
                        acked.push(v);
                    }
                    Err(StoreError::Fail { error, .. }) => {
                        assert_eq!(error, "conflict");
                        conflicts += 1;
                    }
                    Err(StoreError::Info { .. }) => unknown.push(v),
                }
            }
            (acked, unknown, conflicts)
        }));
    }
    let (mut acked, mut unknown, mut conflicts) = (HashSet::new(), HashSet::new(), 0);
    for task in tasks {
        let (a, u, c) = task.await.unwrap();
        acked.extend(a);
        unknown.extend(u);
        conflicts += c;
    }
    let mut store = etcd.store(0, ReadMode::Linearizable);
    let list: Vec<i64> = ok(&mut store, &[r("k")]).await.values[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let present: BTreeSet<i64> = list.iter().copied().collect();
    assert_eq!(present.len(), list.len(), "duplicates in {list:?}");
    for v in &acked {
        assert!(
            present.contains(v),
            "acknowledged append {v} lost: {list:?}"
        );
    }
    for v in &present {
        assert!(
            acked.contains(v) || unknown.contains(v),
            "{v} appeared but was failed"
        );
    }
    eprintln!(
        "{} acked, {conflicts} conflicts, {} unknown",
        acked.len(),
        unknown.len()
    );
    assert!(!acked.is_empty());
}

#[tokio::test]
async fn three_nodes_fail_over_when_a_node_dies() {
    let mut etcd = Etcd::start("three", 3);
    etcd.ready().await;
    let mut store = etcd.store(0, ReadMode::Linearizable);
    let got = ok(&mut store, &[append("k", 1)]).await;
    assert_eq!(got.node, "n1", "starts at its preferred node");
    let mut ser = etcd.store(2, ReadMode::Serializable);
    // A serializable read may be stale, but n3 catches up.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = ok(&mut ser, &[r("k")]).await;
        assert_eq!(got.node, "n3");
        if got.values == vec![json!([1])] {
            break;
        }
        assert_eq!(got.values, vec![Value::Null], "stale, not invented");
        assert!(Instant::now() < deadline, "n3 never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    etcd.kill(0);
    let got = ok(&mut store, &[append("k", 2), r("k")]).await;
    assert_ne!(got.node, "n1", "failed over");
    assert_eq!(got.values[1], json!([1, 2]));
    let got = ok(&mut ser, &[append("k", 3), r("k")]).await;
    assert_eq!(got.values[1], json!([1, 2, 3]));
}
