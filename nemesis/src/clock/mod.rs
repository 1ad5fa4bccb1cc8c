//! [`ClockNemesis`]: per-node clock skew through libfaketime (a database whose nodes
//! run under it, see [`FakeClock`]). The VM has one `CLOCK_REALTIME` for every node, so
//! the real clock is never touched.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::db::FakeClock;
use faultline_clusters::{Db, Node};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

mod file;

use file::write_clock_file;
pub(crate) use file::{restore_clock_file, shift_clock_file};

use crate::error::{NemesisError, collect};
use crate::nemesis::{Nemesis, unknown_f};

/// The `f` that moves nodes' clocks.
pub const BUMP_CLOCK: &str = "bump-clock";
/// The `f` that flips one node's clock back and forth for a while.
pub const STROBE_CLOCK: &str = "strobe-clock";
/// The `f` that puts every clock back.
pub const RESET_CLOCK: &str = "reset-clock";

/// The largest random bump, in seconds (the smallest is 1 s).
pub const MAX_RANDOM_BUMP_SECS: i64 = 60;
/// The longest strobe, so that an invocation stays bounded.
const MAX_STROBE: Duration = Duration::from_secs(30);

/// Moves nodes' clocks (Jepsen's `clock` nemesis, per process): `bump-clock` shifts
/// nodes' clocks by deltas, `strobe-clock` flips one node's clock between its offset and
/// offset + delta every period for a duration (blocking for that long), `reset-clock`
/// puts every clock back to the real time.
///
/// Values: `bump-clock` takes `{"node":"n2","delta_ms":30000}` (a missing node or delta
/// random), `{"nodes":[{"node":"n1","delta_ms":-3000},…]}`, or null: as Jepsen's clock
/// nemesis, a random non-empty subset of the nodes, each with its own random delta of
/// ±1 to ±60 s. It returns `{"node","delta_ms","offset_ms"}` for one node, else
/// `{"nodes":[{"node","delta_ms","offset_ms"},…]}`. Deltas are applied in whole seconds (rounded),
/// as libfaketime's offset file reads them. `strobe-clock` takes
/// `{"node":"n2","delta_ms":5000,"period_ms":100,"duration_ms":2000}` (each optional;
/// these are the defaults, the node random) or null. A bump adds to the node's current
/// offset. Both shift the wall clock of the node's process (not its monotonic clock,
/// which a stepped system clock leaves alone too).
pub struct ClockNemesis {
    db: Arc<dyn Db>,
    nodes: Vec<Node>,
    rng: ChaCha8Rng,
    /// Each node's offset, in seconds, as last written.
    offsets: Vec<i64>,
}

/// Why `db` has no fake clock, for the refusal.
fn why_not(db: &dyn Db) -> String {
    if let Err(reason) = db.capabilities().fake_clock {
        reason.into()
    } else {
        format!(
            "its nodes do not run under libfaketime (for faultline-kv, build the database with \
             KvDb::faketime(true) before setup); {} cannot be given per-node clocks otherwise",
            db.name()
        )
    }
}

impl ClockNemesis {
    /// Clock faults among `nodes` of `db`, random choices drawn from a ChaCha8 RNG seeded
    /// with `seed`. Refused when `db` has no [`FakeClock`] (e.g. etcd), with the reason.
    pub fn new(db: Arc<dyn Db>, nodes: Vec<Node>, seed: u64) -> Result<ClockNemesis, NemesisError> {
        if db.fake_clock().is_none() {
            return Err(NemesisError::Refused {
                db: db.name().to_string(),
                nemesis: "clock nemesis",
                reason: why_not(&*db),
            });
        }
        Ok(ClockNemesis {
            db,
            offsets: vec![0; nodes.len()],
            nodes,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// Each node's clock offset in seconds (name, offset), in node order.
    pub fn offsets(&self) -> Vec<(String, i64)> {
        self.nodes
            .iter()
            .zip(&self.offsets)
            .map(|(n, o)| (n.name.clone(), *o))
            .collect()
    }

    fn clock(&self) -> Result<&dyn FakeClock, NemesisError> {
        self.db.fake_clock().ok_or_else(|| NemesisError::Refused {
            db: self.db.name().to_string(),
            nemesis: "clock nemesis",
            reason: why_not(&*self.db),
        })
    }

    /// Writes `offset` seconds into node `i`'s clock file (atomically: a temp file
    /// renamed over it).
    fn write(&self, i: usize, offset: i64) -> Result<(), NemesisError> {
        write_clock_file(self.clock()?, &self.nodes[i], offset)
    }

    /// The node named by `value["node"]`, or a random one when absent or null.
    fn node(&mut self, f: &str, value: &Value, expected: &str) -> Result<usize, NemesisError> {
        match value.get("node") {
            None | Some(Value::Null) if self.nodes.is_empty() => Err(NemesisError::BadNode {
                node: "*".into(),
                reason: "the clock nemesis has no nodes".into(),
            }),
            None | Some(Value::Null) => Ok(self.rng.random_range(0..self.nodes.len())),
            Some(name) => name
                .as_str()
                .and_then(|name| self.nodes.iter().position(|n| n.name == name))
                .ok_or_else(|| bad(f, value, expected)),
        }
    }

    /// A random delta of ±1 to ±[`MAX_RANDOM_BUMP_SECS`] seconds.
    fn random_delta(&mut self) -> i64 {
        let s = self.rng.random_range(1..=MAX_RANDOM_BUMP_SECS);
        if self.rng.random_range(0..2) == 0 {
            s
        } else {
            -s
        }
    }

    /// Whole seconds of `ms` (a JSON integer; rounded), as libfaketime reads them.
    fn secs(ms: &Value) -> Option<i64> {
        ms.as_i64().map(whole_secs)
    }

    fn bump(&mut self, value: &Value) -> Result<Value, NemesisError> {
        const EXPECTED: &str = "null, {\"node\": NAME, \"delta_ms\": MS} (each optional), or \
                                {\"nodes\": [{\"node\": NAME, \"delta_ms\": MS}, …]}";
        check_keys(BUMP_CLOCK, value, &["node", "delta_ms", "nodes"], EXPECTED)?;
        // (node, delta in seconds) for each node bumped.
        let mut bumps: Vec<(usize, i64)> = Vec::new();
        match value.get("nodes") {
            Some(Value::Array(items)) if value.get("node").is_none() && !items.is_empty() => {
                for item in items {
                    if !item.get("node").is_some_and(Value::is_string) {
                        return Err(bad(BUMP_CLOCK, value, EXPECTED));
                    }
                    let i = self.node(BUMP_CLOCK, item, EXPECTED)?;
                    let secs = item
                        .get("delta_ms")
                        .and_then(Self::secs)
                        .ok_or_else(|| bad(BUMP_CLOCK, value, EXPECTED))?;
                    if bumps.iter().any(|(j, _)| *j == i) {
                        return Err(bad(BUMP_CLOCK, value, EXPECTED));
                    }
                    bumps.push((i, secs));
                }
            }
            Some(_) => return Err(bad(BUMP_CLOCK, value, EXPECTED)),
            None if value.is_null() && !self.nodes.is_empty() => {
                // Jepsen's clock nemesis: a random non-empty subset of the nodes, each
                // with its own delta.
                let mut chosen: Vec<usize> = (0..self.nodes.len())
                    .filter(|_| self.rng.random_range(0..2) == 0)
                    .collect();
                if chosen.is_empty() {
                    chosen.push(self.rng.random_range(0..self.nodes.len()));
                }
                for i in chosen {
                    let secs = self.random_delta();
                    bumps.push((i, secs));
                }
            }
            None => {
                let i = self.node(BUMP_CLOCK, value, EXPECTED)?;
                let secs = match value.get("delta_ms") {
                    None | Some(Value::Null) => self.random_delta(),
                    Some(v) => Self::secs(v).ok_or_else(|| bad(BUMP_CLOCK, value, EXPECTED))?,
                };
                bumps.push((i, secs));
            }
        }
        let mut done = Vec::new();
        for (i, secs) in bumps {
            // On top of what the file holds: a scenario may have moved it meanwhile.
            let offset = shift_clock_file(self.clock()?, &self.nodes[i], secs)?;
            self.offsets[i] = offset;
            done.push(json!({
                "node": self.nodes[i].name,
                "delta_ms": secs * 1000,
                "offset_ms": offset * 1000,
            }));
        }
        Ok(match <[Value; 1]>::try_from(done) {
            Ok([one]) => one,
            Err(several) => json!({ "nodes": several }),
        })
    }

    fn strobe(&mut self, value: &Value) -> Result<Value, NemesisError> {
        const EXPECTED: &str = "null or {\"node\": NAME, \"delta_ms\": MS, \"period_ms\": MS, \
                                \"duration_ms\": MS} (each optional; duration at most 30 s)";
        check_keys(
            STROBE_CLOCK,
            value,
            &["node", "delta_ms", "period_ms", "duration_ms"],
            EXPECTED,
        )?;
        let i = self.node(STROBE_CLOCK, value, EXPECTED)?;
        let ms = |key: &str, default: i64| match value.get(key) {
            None | Some(Value::Null) => Some(default),
            Some(v) => v.as_i64(),
        };
        let (Some(delta), Some(period), Some(duration)) = (
            ms("delta_ms", 5000),
            ms("period_ms", 100),
            ms("duration_ms", 2000),
        ) else {
            return Err(bad(STROBE_CLOCK, value, EXPECTED));
        };
        let duration = Duration::from_millis(duration.max(0) as u64);
        if period <= 0 || duration > MAX_STROBE {
            return Err(bad(STROBE_CLOCK, value, EXPECTED));
        }
        let secs = whole_secs(delta);
        let base = self.offsets[i];
        let start = Instant::now();
        let mut flips = 0u64;
        let mut result = Ok(());
        while start.elapsed() < duration {
            let offset = if flips % 2 == 0 {
                base.saturating_add(secs)
            } else {
                base
            };
            if let Err(e) = self.write(i, offset) {
                result = Err(e);
                break;
            }
            flips += 1;
            thread::sleep(Duration::from_millis(period as u64));
        }
        // Always leave the node where it was.
        collect(vec![result, self.write(i, base)])?;
        Ok(json!({
            "node": self.nodes[i].name,
            "delta_ms": secs * 1000,
            "period_ms": period,
            "flips": flips,
        }))
    }

    fn reset(&mut self) -> Result<Vec<String>, NemesisError> {
        let results: Vec<Result<(), NemesisError>> =
            (0..self.nodes.len()).map(|i| self.write(i, 0)).collect();
        let mut reset = Vec::new();
        for (i, r) in results.iter().enumerate() {
            if r.is_ok() {
                if self.offsets[i] != 0 {
                    reset.push(self.nodes[i].name.clone());
                }
                self.offsets[i] = 0;
            }
        }
        collect(results).map(|()| reset)
    }
}

/// Whole seconds of `ms` milliseconds, rounded, as libfaketime's offset file reads them.
fn whole_secs(ms: i64) -> i64 {
    (ms as f64 / 1000.0).round() as i64
}

fn bad(f: &str, value: &Value, expected: &str) -> NemesisError {
    NemesisError::BadValue {
        f: f.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// Null, or an object with only `keys`.
fn check_keys(f: &str, value: &Value, keys: &[&str], expected: &str) -> Result<(), NemesisError> {
    match value {
        Value::Null => Ok(()),
        Value::Object(o) if o.keys().all(|k| keys.contains(&k.as_str())) => Ok(()),
        _ => Err(bad(f, value, expected)),
    }
}

impl Nemesis for ClockNemesis {
    fn fs(&self) -> &[&'static str] {
        &[BUMP_CLOCK, STROBE_CLOCK, RESET_CLOCK]
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        match f {
            BUMP_CLOCK => self.bump(value),
            STROBE_CLOCK => self.strobe(value),
            RESET_CLOCK => Ok(json!({ "reset": self.reset()? })),
            _ => Err(unknown_f(f, self.fs())),
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.reset().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_clusters::{EtcdDb, KvDb, Localhost};
    use std::path::PathBuf;

    fn nodes(n: usize, dir: &std::path::Path) -> Vec<Node> {
        (1..=n)
            .map(|i| Node {
                id: i as u32,
                name: format!("n{i}"),
                addr: format!("10.0.0.{i}"),
                dir: dir.join(format!("n{i}")),
                remote: Arc::new(Localhost::new()),
            })
            .collect()
    }

    #[test]
    fn databases_without_a_fake_clock_are_refused_with_the_reason() {
        let nodes = nodes(3, &PathBuf::from("/tmp/none"));
        let err = ClockNemesis::new(Arc::new(EtcdDb::new(&nodes)), nodes.clone(), 1)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("etcd") && err.contains("libc"), "{err}");
        let err = ClockNemesis::new(Arc::new(KvDb::new("kv", &nodes)), nodes.clone(), 1)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("faketime(true)"), "{err}");
    }

    #[test]
    fn shifts_compose_with_bumps_and_a_restore_leaves_a_clock_moved_since() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = nodes(2, dir.path());
        for n in &nodes {
            std::fs::create_dir_all(&n.dir).unwrap();
        }
        let db = Arc::new(KvDb::new("kv", &nodes).faketime(true));
        let fake = db.fake_clock().unwrap();
        let mut clock = ClockNemesis::new(db.clone(), nodes.clone(), 7).unwrap();
        let file = |i: usize| std::fs::read_to_string(nodes[i].dir.join("faketime")).unwrap();
        // A scenario's shift on top of the clock nemesis's bump, and back.
        clock
            .invoke(BUMP_CLOCK, &json!({"node": "n1", "delta_ms": 20_000}))
            .unwrap();
        assert_eq!(shift_clock_file(fake, &nodes[0], -7).unwrap(), 13);
        assert_eq!(file(0), "+13\n");
        assert!(restore_clock_file(fake, &nodes[0], 13, 20).unwrap());
        assert_eq!(file(0), "+20\n");
        // A bump during the shift adds to it (the file is read), and the restore then
        // leaves the clock where the bump put it.
        shift_clock_file(fake, &nodes[0], -5).unwrap();
        let v = clock
            .invoke(BUMP_CLOCK, &json!({"node": "n1", "delta_ms": 2_000}))
            .unwrap();
        assert_eq!(v["offset_ms"], 17_000);
        assert!(!restore_clock_file(fake, &nodes[0], 15, 20).unwrap());
        assert_eq!(file(0), "+17\n");
        // A node whose file was never written starts from 0.
        assert_eq!(shift_clock_file(fake, &nodes[1], -3).unwrap(), -3);
        clock.invoke(RESET_CLOCK, &Value::Null).unwrap();
        assert_eq!((file(0), file(1)), ("+0\n".into(), "+0\n".into()));
    }

    #[test]
    fn clock_files_moved_from_several_threads_at_once_lose_no_shift() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = nodes(1, dir.path());
        std::fs::create_dir_all(&nodes[0].dir).unwrap();
        let db = Arc::new(KvDb::new("kv", &nodes).faketime(true));
        let clock = ClockNemesis::new(db.clone(), nodes.clone(), 7).unwrap();
        // A scenario's shifts beside the clock nemesis's writes, as under `all`: with
        // one shared temp file, a rename took the other's away and its `mv` failed.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10 {
                        shift_clock_file(db.fake_clock().unwrap(), &nodes[0], 1).unwrap();
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..10 {
                    clock.write(0, 0).unwrap();
                }
            });
        });
        // And concurrent read-modify-writes lose none: 40 shifts of a second.
        clock.write(0, 0).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10 {
                        shift_clock_file(db.fake_clock().unwrap(), &nodes[0], 1).unwrap();
                    }
                });
            }
        });
        let left = std::fs::read_to_string(nodes[0].dir.join("faketime")).unwrap();
        assert_eq!(left.trim(), "+40");
    }

    #[test]
    fn bumps_write_offsets_and_reset_puts_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = nodes(3, dir.path());
        for n in &nodes {
            std::fs::create_dir_all(&n.dir).unwrap();
        }
        let db = Arc::new(KvDb::new("kv", &nodes).faketime(true));
        let mut clock = ClockNemesis::new(db, nodes.clone(), 7).unwrap();
        let file = |i: usize| std::fs::read_to_string(nodes[i].dir.join("faketime")).unwrap();
        let v = clock
            .invoke(BUMP_CLOCK, &json!({"node": "n2", "delta_ms": 30_400}))
            .unwrap();
        assert_eq!(
            v,
            json!({"node": "n2", "delta_ms": 30000, "offset_ms": 30000})
        );
        assert_eq!(file(1), "+30\n");
        clock
            .invoke(BUMP_CLOCK, &json!({"node": "n2", "delta_ms": -45_000}))
            .unwrap();
        assert_eq!(file(1), "-15\n");
        clock.invoke(RESET_CLOCK, &Value::Null).unwrap();
        // Null: a random non-empty subset, each node its own delta (Jepsen's); over
        // seeds every size turns up, and the offsets written are those returned.
        let mut sizes = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let v = clock.invoke(BUMP_CLOCK, &Value::Null).unwrap();
            let bumps = match v.get("nodes") {
                Some(list) => list.as_array().unwrap().clone(),
                None => vec![v.clone()],
            };
            sizes.insert(bumps.len());
            for b in &bumps {
                let d = b["delta_ms"].as_i64().unwrap();
                assert!((1000..=60_000).contains(&d.abs()), "{v}");
                let i = nodes.iter().position(|n| n.name == b["node"]).unwrap();
                let offset = b["offset_ms"].as_i64().unwrap() / 1000;
                assert_eq!(file(i), format!("{offset:+}\n"));
            }
            clock.invoke(RESET_CLOCK, &Value::Null).unwrap();
        }
        assert_eq!(sizes, [1, 2, 3].into(), "subset sizes");
        // Several nodes explicitly.
        let v = clock
            .invoke(
                BUMP_CLOCK,
                &json!({"nodes": [{"node": "n1", "delta_ms": -2000}, {"node": "n3", "delta_ms": 4000}]}),
            )
            .unwrap();
        assert_eq!(
            v,
            json!({"nodes": [
                {"node": "n1", "delta_ms": -2000, "offset_ms": -2000},
                {"node": "n3", "delta_ms": 4000, "offset_ms": 4000},
            ]})
        );
        assert_eq!((file(0), file(2)), ("-2\n".into(), "+4\n".into()));
        for bad in [
            json!({"nodes": []}),
            json!({"nodes": [{"delta_ms": 1000}]}),
            json!({"nodes": [{"node": "n1"}]}),
            json!({"nodes": [{"node": "n1", "delta_ms": 1}, {"node": "n1", "delta_ms": 2}]}),
            json!({"node": "n1", "nodes": [{"node": "n2", "delta_ms": 1}]}),
        ] {
            assert!(clock.invoke(BUMP_CLOCK, &bad).is_err(), "{bad}");
        }
        let v = clock
            .invoke(
                STROBE_CLOCK,
                &json!({"node": "n1", "period_ms": 10, "duration_ms": 1000}),
            )
            .unwrap();
        assert!(v["flips"].as_u64().unwrap() >= 2, "{v}");
        assert_eq!(file(0).trim(), format!("{:+}", clock.offsets()[0].1));
        assert!(clock.invoke(BUMP_CLOCK, &json!({"node": "n9"})).is_err());
        assert!(clock.invoke(BUMP_CLOCK, &json!({"delta": 1})).is_err());
        clock.invoke(RESET_CLOCK, &Value::Null).unwrap();
        for i in 0..3 {
            assert_eq!(file(i), "+0\n");
        }
        assert!(clock.offsets().iter().all(|(_, o)| *o == 0));
    }
}
