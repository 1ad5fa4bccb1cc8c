use std::path::PathBuf;

use super::*;
use crate::consensus::SnapshotMeta;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-kv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("cmd-{index}-{term}").into_bytes(),
    }
}

fn ready(entries: Vec<Entry>, hard: Option<HardState>) -> Ready {
    Ready {
        entries,
        hard_state: hard,
        ..Ready::default()
    }
}

fn hard(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote: Some(2),
        commit,
    }
}

#[test]
fn persists_and_replays_with_truncation() {
    let dir = temp_dir("replay");
    let (mut s, restored) = Storage::open(&dir, true).unwrap();
    assert!(restored.entries.is_empty());
    s.persist(&ready(
        (1..=5).map(|i| entry(i, 1)).collect(),
        Some(hard(1, 2)),
    ))
    .unwrap();
    // A new leader overwrites entries 4.. with its own.
    s.persist(&ready(vec![entry(4, 2)], Some(hard(2, 3))))
        .unwrap();
    drop(s);
    let (_, restored) = Storage::open(&dir, true).unwrap();
    assert_eq!(restored.hard, hard(2, 3));
    let terms: Vec<(u64, u64)> = restored.entries.iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(terms, vec![(1, 1), (2, 1), (3, 1), (4, 2)]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn torn_tail_is_truncated() {
    let dir = temp_dir("torn");
    let (mut s, _) = Storage::open(&dir, true).unwrap();
    s.persist(&ready(
        (1..=3).map(|i| entry(i, 1)).collect(),
        Some(hard(1, 1)),
    ))
    .unwrap();
    drop(s);
    let wal = dir.join("wal");
    let good = std::fs::metadata(&wal).unwrap().len();
    // Half of a further record: a write that never finished.
    let partial = wal::frame(&[wal::Record::Entry(entry(4, 1))]);
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes.extend_from_slice(&partial[..partial.len() / 2]);
    std::fs::write(&wal, &bytes).unwrap();
    let (mut s, restored) = Storage::open(&dir, true).unwrap();
    assert_eq!(restored.entries.len(), 3);
    assert!(restored.torn_bytes > 0);
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len(),
        good,
        "the tail is cut off"
    );
    // Appending after recovery works and replays.
    s.persist(&ready(vec![entry(4, 1)], None)).unwrap();
    drop(s);
    let (_, restored) = Storage::open(&dir, true).unwrap();
    assert_eq!(restored.entries.len(), 4);

    // A last record whose bytes are all there but damaged is also a torn tail.
    let mut bytes = std::fs::read(&wal).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    let (_, restored) = Storage::open(&dir, true).unwrap();
    assert_eq!(restored.entries.len(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corruption_in_the_middle_stops_with_a_clear_message() {
    let dir = temp_dir("corrupt");
    let (mut s, _) = Storage::open(&dir, true).unwrap();
    for i in 1..=10 {
        s.persist(&ready(vec![entry(i, 1)], None)).unwrap();
    }
    drop(s);
    let wal = dir.join("wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&wal, &bytes).unwrap();
    let err = Storage::open(&dir, true).unwrap_err().to_string();
    assert!(err.contains("wal is corrupt at byte"), "{err}");
    assert!(err.contains("valid records follow"), "{err}");
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        bytes,
        "a corrupt log is left untouched"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn snapshot_and_compaction_survive_restart() {
    let dir = temp_dir("snap");
    let (mut s, _) = Storage::open(&dir, true).unwrap();
    s.persist(&ready(
        (1..=6).map(|i| entry(i, 1)).collect(),
        Some(hard(1, 6)),
    ))
    .unwrap();
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            index: 4,
            term: 1,
            voters: vec![1, 2, 3],
        },
        data: b"state".to_vec(),
    };
    s.compact(&snapshot, vec![entry(5, 1), entry(6, 1)])
        .unwrap();
    s.persist(&ready(vec![entry(7, 1)], None)).unwrap();
    drop(s);
    let (mut s, restored) = Storage::open(&dir, true).unwrap();
    assert_eq!(restored.snapshot.as_ref(), Some(&snapshot));
    assert_eq!(
        restored.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    assert_eq!(restored.hard, hard(1, 6));

    // A snapshot installed from a leader that disagrees with the log replaces it.
    let installed = Snapshot {
        meta: SnapshotMeta {
            index: 9,
            term: 3,
            voters: vec![1, 2, 3],
        },
        data: b"leader".to_vec(),
    };
    s.persist(&Ready {
        snapshot: Some(installed.clone()),
        ..Ready::default()
    })
    .unwrap();
    s.persist(&ready(vec![entry(10, 3)], None)).unwrap();
    drop(s);
    let (_, restored) = Storage::open(&dir, true).unwrap();
    assert_eq!(restored.snapshot, Some(installed));
    assert_eq!(
        restored
            .entries
            .iter()
            .map(|e| (e.index, e.term))
            .collect::<Vec<_>>(),
        vec![(10, 3)]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
