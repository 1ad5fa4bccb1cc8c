//! Generators are deterministic from the seed: a whole test's generator, driven twice by
//! the simulated driver with the same seed, produces the same history, and a different
//! seed produces a different one.

use std::time::Duration;

use faultline_checker::history::{Key, Op, OpType};
use faultline_generator::sim::Simulation;
use faultline_generator::{self as g, BoxGen, Generator, OpSpec};
use serde_json::json;

/// A register test as issue 6 describes it: independent keys with random
/// reads/writes/cas, rate-limited and time-limited, with a nemesis that partitions and
/// heals; then a heal and per-thread final reads.
fn register_test() -> BoxGen {
    let per_key = |_key: &Key| {
        g::mix(vec![
            g::repeat(OpSpec::new("read", json!(null))).boxed(),
            g::from_fn(|ctx| Some(OpSpec::new("write", json!(ctx.random_below(5))))).boxed(),
            g::from_fn(|ctx| {
                Some(OpSpec::new(
                    "cas",
                    json!([ctx.random_below(5), ctx.random_below(5)]),
                ))
            })
            .boxed(),
        ])
    };
    let clients = g::stagger(
        Duration::from_millis(2),
        g::independent(2, (0..).map(Key::Int), 20, per_key),
    );
    let nemesis = g::cycle(|| {
        g::seq(vec![
            g::sleep(Duration::from_secs(1)).boxed(),
            g::once(OpSpec::new("start-partition", json!("random-halves"))).boxed(),
            g::sleep(Duration::from_secs(1)).boxed(),
            g::once(OpSpec::new("stop-partition", json!(null))).boxed(),
        ])
    });
    g::phases(vec![
        g::time_limit(
            Duration::from_secs(5),
            g::clients_and_nemesis(clients, nemesis),
        )
        .boxed(),
        g::nemesis(g::once(OpSpec::new("stop-partition", json!(null)))).boxed(),
        g::clients(g::each_thread(|_| {
            g::until_ok(g::repeat(OpSpec::new("read", json!(null))))
        }))
        .boxed(),
    ])
    .boxed()
}

fn run(seed: u64) -> Vec<Op> {
    Simulation::new(seed)
        .concurrency(6)
        .nemesis(true)
        .fail_rate(0.05)
        .info_rate(0.02)
        .run(&mut register_test())
        .expect("the simulation completes")
}

#[test]
fn same_seed_same_history_other_seed_other_history() {
    let a = run(42);
    let b = run(42);
    assert!(a.len() > 2000, "{} events", a.len());
    assert_eq!(a, b);
    let c = run(43);
    assert_ne!(a, c);
}

#[test]
fn the_whole_test_has_the_expected_shape() {
    let history = run(7);
    let nemesis: Vec<&Op> = history
        .iter()
        .filter(|op| !op.is_client() && op.op_type == OpType::Invoke)
        .collect();
    // Two start/stop cycles in 5 s (1 s sleeps, ms latencies), then the final heal.
    let fs: Vec<&str> = nemesis.iter().map(|op| op.f.as_str()).collect();
    assert_eq!(
        &fs[..4],
        [
            "start-partition",
            "stop-partition",
            "start-partition",
            "stop-partition"
        ]
    );
    assert_eq!(fs.last(), Some(&"stop-partition"));
    // Every main-phase client operation has a key; each final read has none and comes
    // after the final heal.
    let heal = history
        .iter()
        .rposition(|op| op.f == "stop-partition")
        .unwrap_or(0);
    for op in &history[..heal] {
        if op.is_client() {
            assert!(op.key.is_some(), "{op:?}");
        }
    }
    let finals: Vec<&Op> = history[heal..].iter().filter(|op| op.is_client()).collect();
    assert!(!finals.is_empty());
    assert!(finals.iter().all(|op| op.key.is_none() && op.f == "read"));
    assert_eq!(
        finals.iter().filter(|op| op.op_type == OpType::Ok).count(),
        6
    );
}
