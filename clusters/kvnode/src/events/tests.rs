//! The events' line shapes, formatted as `main.rs` formats them (tracing-subscriber's
//! fmt layer, no ANSI), so the contract with the node-log checker cannot drift.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::*;

/// A `MakeWriter` that appends to a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines `emit` logs, as the node's formatter writes them (on this thread only).
pub(crate) fn lines(emit: impl FnOnce()) -> Vec<String> {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, emit);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_string).collect()
}

/// The `vote` events among `lines`, from ` protocol: ` on.
pub(crate) fn votes_logged(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.contains(" protocol: vote "))
        .map(|l| event_part(l))
        .collect()
}

/// The part of a line from ` protocol: ` on, checking the prefix is a timestamp and INFO.
pub(crate) fn event_part(line: &str) -> &str {
    let at = line.find(" protocol: ").expect(line);
    let prefix = &line[..at];
    assert!(prefix.ends_with(" INFO"), "{line}");
    assert!(prefix.starts_with("20") && prefix.contains('T'), "{line}");
    &line[at..]
}

fn entry(index: u64, data: &[u8]) -> Entry {
    Entry {
        index,
        term: 1,
        data: data.to_vec(),
    }
}

#[test]
fn fnv1a_matches_published_vectors() {
    assert_eq!(fnv1a32(b""), 0x811c_9dc5);
    assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
    assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
}

#[test]
fn every_event_has_the_contract_shape() {
    let got = lines(|| {
        start(3, Term::Number(5), Some(2), 17, Some(20));
        start(1, Term::Ballot { round: 4, node: 2 }, None, 0, None);
        role(3, Term::Number(5), Role::Leader);
        role(3, Term::Number(6), Role::PreCandidate);
        vote(3, Term::Number(5), 1);
        vote(2, Term::Ballot { round: 7, node: 3 }, 3);
        commit(3, 42, Term::Number(5));
        commit(2, 9, Term::Unknown);
        apply(3, &[entry(7, b""), entry(8, b"a")]);
        snapshot(3, 100);
        truncate(3, 12, 11);
    });
    let got: Vec<&str> = got.iter().map(|l| event_part(l)).collect();
    assert_eq!(
        got,
        [
            " protocol: start node=3 term=5 voted-for=2 commit=17 last=20",
            " protocol: start node=1 term=4.2 voted-for=none commit=0",
            " protocol: role node=3 term=5 role=leader",
            " protocol: role node=3 term=6 role=pre-candidate",
            " protocol: vote node=3 term=5 for=1",
            " protocol: vote node=2 term=7.3 for=3",
            " protocol: commit node=3 index=42 term=5",
            " protocol: commit node=2 index=9 term=-",
            " protocol: apply node=3 from=7 hashes=811c9dc5,e40c292c",
            " protocol: snapshot node=3 index=100",
            " protocol: truncate node=3 from=12 commit=11",
        ]
    );
}

#[test]
fn long_apply_batches_are_split() {
    let entries: Vec<Entry> = (1..=MAX_HASHES_PER_LINE as u64 * 2 + 1)
        .map(|i| entry(i, b"x"))
        .collect();
    let got = lines(|| apply(4, &entries));
    assert_eq!(got.len(), 3, "{got:?}");
    let froms: Vec<&str> = got
        .iter()
        .map(|l| event_part(l).split(' ').nth(4).unwrap())
        .collect();
    assert_eq!(froms, ["from=1", "from=257", "from=513"]);
    let counts: Vec<usize> = got
        .iter()
        .map(|l| l.rsplit("hashes=").next().unwrap().split(',').count())
        .collect();
    assert_eq!(counts, [256, 256, 1]);
    assert!(lines(|| apply(4, &[])).is_empty());
}
