//! Helpers shared by the `Store` tests against real databases.
#![allow(dead_code)] // each test file uses a different subset

use std::time::{Duration, Instant};

use faultline_workloads::store::{Micro, Store, StoreError, TxnOk};
use serde_json::json;

/// A read of `k`.
pub fn r(k: &str) -> Micro {
    Micro::Read(k.into())
}

/// An append of `v` to `k`.
pub fn append(k: &str, v: i64) -> Micro {
    Micro::Append(k.into(), json!(v))
}

/// Runs `ops`, retrying definite failures (leadership changes) for up to `limit` until
/// `ok`; an `info` fails the test.
pub async fn ok_within(store: &mut impl Store, ops: &[Micro], limit: Duration) -> TxnOk {
    let deadline = Instant::now() + limit;
    loop {
        match store.txn(ops).await {
            Ok(ok) => return ok,
            Err(StoreError::Fail { error, .. }) if Instant::now() < deadline => {
                eprintln!("retrying {ops:?} after fail {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{ops:?}: {e:?}"),
        }
    }
}
