use super::recipes::*;
use super::*;
use serde_json::json;

fn fresh() -> KeyState<Option<i32>> {
    KeyState {
        version: None,
        value: None,
        written: false,
    }
}

#[test]
fn keys_become_root_znodes_escaped() {
    assert_eq!(path("x"), "/faultline-x");
    assert_eq!(path("k-1_2"), "/faultline-k-1_2");
    assert_eq!(path("a/b.c"), "/faultline-a%2Fb%2Ec");
    assert_eq!(path("é"), "/faultline-%C3%A9");
}

#[test]
fn set_elements_round_trip_through_child_names() {
    for element in [json!(12), json!(-3), json!("a/b c"), json!([1, "é"])] {
        let name = element_name(&element);
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_%".contains(&b)),
            "{name}"
        );
        assert_eq!(element_of(&name), Some(element));
    }
    assert_eq!(element_name(&json!(7)), "e-7");
    assert_eq!(element_of("lock-0000000001"), None, "not an element");
    assert_eq!(element_of("e-%4"), None, "a cut escape");
    assert_eq!(element_of("e-%ZZ"), None, "not hex");
    assert_eq!(element_of("e-nope"), None, "not JSON");
    assert_eq!(unescape("a%2Fb"), Some("a/b".into()));
}

#[test]
fn lock_children_are_ordered_by_sequence() {
    assert_eq!(lock_sequence("lock-0000000007"), Some(7));
    assert_eq!(lock_sequence("lock-2147483648000"), Some(2_147_483_648_000));
    assert_eq!(lock_sequence("lock-"), None);
    assert_eq!(lock_sequence("lock-12a"), None);
    assert_eq!(lock_sequence("e-12"), None);
    let children: Vec<String> = [
        "lock-0000000010",
        "lock-0000000003",
        "e-1",
        "lock-0000000007",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    assert_eq!(predecessor(&children, 3), Ok(None), "the lowest holds it");
    assert_eq!(
        predecessor(&children, 7),
        Ok(Some("lock-0000000003".into()))
    );
    assert_eq!(
        predecessor(&children, 10),
        Ok(Some("lock-0000000007".into())),
        "the one just before, not the lowest"
    );
    assert_eq!(predecessor(&children, 5), Err(()), "ours is gone");
    assert_eq!(predecessor(&[], 1), Err(()));
}

#[test]
fn a_dropped_session_loses_its_locks() {
    let mut store = ZookeeperStore::new(
        &[("n1".into(), "127.0.0.1:1".into())],
        0,
        Duration::from_secs(1),
        ReadMode::Linearizable,
    );
    let held = Held {
        owner: json!(4),
        node: "/faultline-lock0/lock-0000000001".into(),
    };
    store.held.insert("lock0".into(), held);
    store.drop_session();
    assert!(store.held.is_empty());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let release = |owner| Recipe::Release {
        key: "lock0".into(),
        owner,
    };
    let err = |e: &str| StoreError::Fail {
        error: e.into(),
        node: Some("n1".into()),
    };
    // Another process's release is not the holder's; the holder hears once.
    let other = runtime.block_on(store.recipe(&release(json!(5))));
    assert_eq!(other.unwrap_err(), err("not-held"));
    let holder = runtime.block_on(store.recipe(&release(json!(4))));
    assert_eq!(holder.unwrap_err(), err("lock-lost"));
    let again = runtime.block_on(store.recipe(&release(json!(4))));
    assert_eq!(again.unwrap_err(), err("not-held"));
    // An acquire by the holder hears it too, before any request is sent (the
    // server here refuses connections, which would be `unavailable`).
    store.lost.insert("lock0".into(), json!(4));
    let acquire = Recipe::Acquire {
        key: "lock0".into(),
        owner: json!(4),
    };
    let heard = runtime.block_on(store.recipe(&acquire));
    assert_eq!(heard.unwrap_err(), err("lock-lost"));
    assert!(store.lost.is_empty());
}

#[test]
fn snapshots_read_versions_and_absent_keys() {
    let stat = |version| zk::Stat {
        czxid: 1,
        mzxid: 1,
        pzxid: 1,
        ctime: 0,
        mtime: 0,
        version,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 0,
        num_children: 0,
    };
    let state = snapshot(
        &["a", "b"],
        vec![
            zk::MultiReadResult::Error {
                err: zk::Error::NoNode,
            },
            zk::MultiReadResult::Data {
                data: b"[1,2]".to_vec(),
                stat: stat(4),
            },
        ],
    )
    .unwrap();
    assert_eq!(state["a"], fresh());
    assert_eq!(state["b"].version, Some(4));
    assert_eq!(state["b"].value, Some(json!([1, 2])));
    assert!(snapshot(&["a"], Vec::new()).is_err(), "wrong shape");
    let bad = snapshot(
        &["a"],
        vec![zk::MultiReadResult::Data {
            data: b"not json".to_vec(),
            stat: stat(1),
        }],
    );
    assert_eq!(bad.unwrap_err(), "bad-value");
}

#[test]
fn reasons_are_short_and_stable() {
    assert_eq!(reason(&StepError::Timeout), "timeout");
    assert_eq!(
        reason(&StepError::Zk(zk::Error::ConnectionLoss)),
        "connection-lost"
    );
    assert_eq!(reason(&StepError::Zk(zk::Error::BadVersion)), "bad-version");
    assert_eq!(kebab("NoNode"), "no-node");
    assert_eq!(kebab("UnexpectedErrorCode(3)"), "unexpected-error-code");
}

#[test]
fn an_unreachable_server_fails_the_call_unavailable() {
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.to_string())
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let nodes = vec![("n1".to_string(), refused)];
    let mut store = ZookeeperStore::new(&nodes, 0, Duration::from_secs(2), ReadMode::Linearizable);
    let started = std::time::Instant::now();
    let err = runtime
        .block_on(store.txn(&[Micro::Write("x".into(), json!(1))]))
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Fail {
            error: "unavailable".into(),
            node: Some("n1".into())
        }
    );
    assert!(started.elapsed() >= CONNECT_BACKOFF);
}
