//! Sharded logs: each shard of every node is one consensus group, checked apart from
//! the others; anomalies name their shard.

use serde_json::json;

use super::{check, ev, log, types};
use crate::nodelog::anomaly::Found;
use crate::nodelog::events::{Parsed, parse};
use crate::nodelog::invariants::Invariants;
use crate::nodelog::{Loc, NodeLogCheck};
use crate::results::Validity;

/// A protocol event line of shard `shard`, as a sharded faultline-kv logs it.
fn sev(shard: u32, event: &str) -> String {
    format!("2026-12-05T12:00:00.000000Z  INFO shard{{shard={shard}}}: protocol: {event}")
}

#[test]
fn shards_with_the_same_terms_indices_and_nodes_are_independent() {
    // Both shards elect a leader in term 5 (node 1 in shard 1, node 2 in shard 2), the
    // nodes vote differently in term 5 of each, and apply different entries at index 1.
    let n1 = [
        sev(1, "start node=1 term=0 voted-for=none commit=0 last=0"),
        sev(2, "start node=1 term=0 voted-for=none commit=0 last=0"),
        sev(1, "vote node=1 term=5 for=1"),
        sev(1, "role node=1 term=5 role=leader"),
        sev(2, "vote node=1 term=5 for=2"),
        sev(2, "role node=1 term=5 role=follower"),
        sev(1, "commit node=1 index=2 term=5"),
        sev(1, "apply node=1 from=1 hashes=0000000a,0000000b"),
        sev(2, "apply node=1 from=1 hashes=0000000c"),
        // Shard 2 never committed index 2: its truncation there is legal.
        sev(2, "truncate node=1 from=2 commit=1"),
    ];
    let n2 = [
        sev(2, "vote node=2 term=5 for=2"),
        sev(2, "role node=2 term=5 role=leader"),
        sev(1, "vote node=2 term=5 for=1"),
        sev(1, "role node=2 term=5 role=follower"),
        sev(2, "apply node=2 from=1 hashes=0000000c,0000000d"),
        sev(1, "apply node=2 from=1 hashes=0000000a"),
        // Shard 1 restarts with its log short of shard 2's applied index 2, not its own.
        sev(1, "start node=2 term=5 voted-for=1 commit=0 last=1"),
    ];
    let (valid, json) = check(&[log("n1", &n1), log("n2", &n2)]);
    assert_eq!(valid, Validity::Valid, "{json:#}");
    assert_eq!(json["shards"], json!([1, 2]));
    assert_eq!(json["terms_with_leader"], 2, "term 5 of each shard");
    assert_eq!(json["applied_indices"], 4);
}

#[test]
fn two_leaders_in_one_term_of_one_shard_name_the_shard() {
    let n1 = [
        sev(1, "role node=1 term=5 role=leader"),
        sev(2, "role node=1 term=5 role=leader"),
    ];
    let n3 = [
        sev(1, "role node=3 term=4 role=leader"),
        sev(2, "role node=3 term=5 role=leader"),
    ];
    let (valid, json) = check(&[log("n1", &n1), log("n3", &n3)]);
    assert_eq!(valid, Validity::Invalid, "{json:#}");
    assert_eq!(types(&json), ["election-safety"]);
    assert_eq!(json["anomaly_totals"]["election-safety"], 1);
    let anomaly = &json["anomalies"]["election-safety"][0];
    assert_eq!(
        anomaly["message"],
        "shard 2: n1 and n3 were both leader in term 5"
    );
    assert_eq!(anomaly["shard"], 2);
    assert_eq!(anomaly["evidence"][0]["line"], 2);
    assert_eq!(anomaly["evidence"][1]["line"], 2);
    assert_eq!(anomaly["evidence"][1]["text"], n3[1].as_str());
    let checked = NodeLogCheck::default().check(&[log("n1", &n1), log("n3", &n3)]);
    assert_eq!(
        checked.verdict.explanation[0],
        "election-safety: shard 2: n1 and n3 were both leader in term 5"
    );
}

#[test]
fn unsharded_anomalies_carry_no_shard() {
    let n1 = [ev("role node=1 term=3 role=leader")];
    let n2 = [ev("role node=2 term=3 role=leader")];
    let (_, json) = check(&[log("n1", &n1), log("n2", &n2)]);
    let anomaly = &json["anomalies"]["election-safety"][0];
    assert_eq!(anomaly["message"], "n1 and n2 were both leader in term 3");
    assert!(anomaly.get("shard").is_none(), "{anomaly}");
    assert!(json.get("shards").is_none(), "{json:#}");
    // The structured anomaly knows its group all the same: shard 0.
    let mut found = Found::default();
    let mut invariants = Invariants::default();
    let names = ["n1".to_string(), "n2".to_string()];
    for (node, line) in [(0, &n1[0]), (1, &n2[0])] {
        let Parsed::Event(event) = parse(line) else {
            panic!("{line}");
        };
        let at = Loc { log: node, line: 1 };
        invariants.feed(node, None, &event, at, &names, &mut found);
    }
    assert_eq!(found.kept()[0].shard, Some(0));
}

#[test]
fn a_changed_entry_is_found_within_a_shard_not_across_shards() {
    let n1 = [sev(3, "apply node=1 from=7 hashes=0000000a")];
    let across = [sev(4, "apply node=2 from=7 hashes=0000000b")];
    let (valid, json) = check(&[log("n1", &n1), log("n2", &across)]);
    assert_eq!(valid, Validity::Valid, "{json:#}");
    let within = [sev(3, "apply node=2 from=6 hashes=00000001,0000000b")];
    let (valid, json) = check(&[log("n1", &n1), log("n2", &within)]);
    assert_eq!(valid, Validity::Invalid, "{json:#}");
    assert_eq!(types(&json), ["state-machine-safety"]);
    let anomaly = &json["anomalies"]["state-machine-safety"][0];
    assert_eq!(
        anomaly["message"],
        "shard 3: n2 applied entry 0000000b at index 7, where entry 0000000a had been \
         applied before"
    );
    assert_eq!(anomaly["shard"], 3);
    // An unsharded line is shard 0's: it meets shard 0, not shard 3.
    let plain = [ev("apply node=2 from=7 hashes=0000000b")];
    assert_eq!(
        check(&[log("n1", &n1), log("n2", &plain)]).0,
        Validity::Valid
    );
    let zero = [sev(0, "apply node=1 from=7 hashes=0000000a")];
    let (_, json) = check(&[log("n1", &zero), log("n2", &plain)]);
    assert_eq!(json["anomalies"]["state-machine-safety"][0]["shard"], 0);
}

#[test]
fn votes_and_restarts_are_held_per_shard() {
    let n1 = [
        sev(1, "vote node=1 term=4 for=2"),
        sev(2, "vote node=1 term=4 for=3"),
        sev(1, "apply node=1 from=1 hashes=0000000a,0000000b,0000000c"),
        sev(2, "start node=1 term=4 voted-for=3 commit=0 last=0"),
        sev(1, "start node=1 term=4 voted-for=2 commit=0 last=3"),
    ];
    let (valid, json) = check(&[log("n1", &n1)]);
    assert_eq!(valid, Validity::Valid, "{json:#}");
    let mut lost = n1.to_vec();
    lost.push(sev(1, "start node=1 term=4 voted-for=3 commit=0 last=1"));
    let (_, json) = check(&[log("n1", &lost)]);
    assert_eq!(types(&json), ["double-vote", "lost-log-entries"]);
    assert_eq!(json["anomalies"]["double-vote"][0]["shard"], 1);
    assert_eq!(
        json["anomalies"]["lost-log-entries"][0]["message"]
            .as_str()
            .unwrap_or("")
            .get(..9),
        Some("shard 1: ")
    );
}

#[test]
fn a_damaged_log_without_a_shard_excuses_every_shard_of_the_node() {
    let damaged = "2026-12-05T12:00:01Z  WARN protocol: log-damaged fault=truncate-log";
    let before = [
        sev(1, "apply node=1 from=1 hashes=0000000a,0000000b"),
        sev(2, "apply node=1 from=1 hashes=0000000c,0000000d"),
    ];
    let restart = [
        sev(1, "start node=1 term=1 voted-for=none commit=0 last=0"),
        sev(2, "start node=1 term=1 voted-for=none commit=0 last=0"),
    ];
    let whole: Vec<String> = before
        .iter()
        .cloned()
        .chain([damaged.to_string()])
        .chain(restart.iter().cloned())
        .collect();
    let (valid, json) = check(&[log("n1", &whole)]);
    assert_eq!(valid, Validity::Valid, "{json:#}");
    // A damage line in shard 1's span excuses shard 1 only.
    let one: Vec<String> = before
        .iter()
        .cloned()
        .chain([sev(1, "log-damaged fault=truncate-log")])
        .chain(restart.iter().cloned())
        .collect();
    let (_, json) = check(&[log("n1", &one)]);
    assert_eq!(types(&json), ["lost-log-entries"]);
    assert_eq!(json["anomalies"]["lost-log-entries"][0]["shard"], 2);
}

#[test]
fn a_malformed_shard_is_a_malformed_event() {
    let lines = [
        "2026-12-05T12:00:00Z  INFO a{x=1}:shard{shard=two}: protocol: role node=1 term=5 \
         role=leader"
            .to_string(),
        sev(1, "role node=1 term=5 role=leader"),
        ev("role node=2 term=5 role=leader"),
    ];
    let (valid, json) = check(&[log("n1", &lines)]);
    assert_eq!(valid, Validity::Valid, "{json:#}");
    assert_eq!(json["malformed_events"]["count"], 1);
    assert_eq!(json["malformed_events"]["first"]["line"], 1);
    assert_eq!(
        json["malformed_events"]["reason"],
        "`role` event: span `shard{shard=two}`: `shard=two` is not a non-negative integer"
    );
    assert_eq!(json["events"]["role"], 2);
    assert_eq!(json["shards"], json!([1]));
}
