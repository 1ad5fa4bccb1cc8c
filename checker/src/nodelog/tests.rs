//! Fixture logs written from the event contract: each invariant violated by a minimal
//! log, and valid logs with restarts, snapshots and truncations of uncommitted entries.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::results::Validity;

mod shards;

/// A protocol event line as faultline-kv logs it.
fn ev(event: &str) -> String {
    format!("2026-12-05T12:00:00.000000Z  INFO protocol: {event}")
}

fn log(node: &str, lines: &[String]) -> NodeLog {
    NodeLog::lines(node, &format!("nodes/{node}/node.log"), lines.to_vec())
}

fn check(logs: &[NodeLog]) -> (Validity, Value) {
    let checked = NodeLogCheck::default().check(logs);
    (checked.verdict.valid, checked.verdict.to_json())
}

fn types(json: &Value) -> Vec<String> {
    json["anomaly_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_valid_cluster_with_restarts_snapshots_and_uncommitted_truncations() {
    let n1 = [
        ev("start node=1 term=0 voted-for=none commit=0"),
        "2026-12-05T12:00:00Z  INFO kv: serving on 10.0.0.1:7000".to_string(),
        ev("role node=1 term=1 role=candidate"),
        ev("vote node=1 term=1 for=1"),
        ev("role node=1 term=1 role=leader"),
        ev("commit node=1 index=2 term=1"),
        ev("apply node=1 from=1 hashes=811c9dc5,0000000a"),
        // Restart: the vote and the applied entries are the same again.
        ev("start node=1 term=1 voted-for=1 commit=2"),
        ev("apply node=1 from=1 hashes=811c9dc5,0000000a"),
        ev("role node=1 term=2 role=follower"),
        ev("vote node=1 term=2 for=3"),
    ];
    let n2 = [
        ev("start node=2 term=0 voted-for=none commit=0"),
        ev("vote node=2 term=1 for=1"),
        ev("vote node=2 term=1 for=1"),
        ev("role node=2 term=1 role=follower"),
        ev("commit node=2 index=2 term=1"),
        ev("apply node=2 from=1 hashes=811c9dc5,0000000a"),
        // An uncommitted entry 3 is replaced: legal.
        ev("truncate node=2 from=3 commit=2"),
        ev("start node=2 term=1 voted-for=1 commit=0"),
        ev("snapshot node=2 index=2"),
        ev("commit node=2 index=3 term=2"),
        ev("apply node=2 from=3 hashes=0000000c"),
    ];
    let n3 = [
        ev("start node=3 term=0 voted-for=none commit=0"),
        ev("vote node=3 term=2 for=3"),
        ev("role node=3 term=2 role=leader"),
        ev("role node=3 term=2 role=leader"),
        ev("apply node=3 from=1 hashes=811c9dc5,0000000a,0000000c"),
        // Once restarted, commit starts over from what was recovered.
        ev("start node=3 term=2 voted-for=3 commit=1"),
        ev("truncate node=3 from=4 commit=1"),
    ];
    let (valid, json) = check(&[log("n1", &n1), log("n2", &n2), log("n3", &n3)]);
    assert_eq!(valid, Validity::Valid, "{json:#}");
    assert_eq!(json["events"]["apply"], 5);
    assert_eq!(json["events"]["start"], 6);
    assert_eq!(json["lines"], 29);
    assert_eq!(json["checked"].as_array().unwrap().len(), 7);
    assert_eq!(json["terms_with_leader"], 2);
    assert_eq!(json["applied_indices"], 3);
    assert!(types(&json).is_empty());
}

#[test]
fn two_leaders_in_one_term_break_election_safety() {
    let n1 = [ev("role node=1 term=3 role=leader")];
    let n2 = [
        ev("role node=2 term=2 role=leader"),
        ev("role node=2 term=3 role=leader"),
    ];
    let (valid, json) = check(&[log("n1", &n1), log("n2", &n2)]);
    assert_eq!(valid, Validity::Invalid);
    assert_eq!(types(&json), ["election-safety"]);
    let anomaly = &json["anomalies"]["election-safety"][0];
    assert_eq!(anomaly["message"], "n1 and n2 were both leader in term 3");
    let evidence = anomaly["evidence"].as_array().unwrap();
    assert_eq!(evidence[0]["node"], "n1");
    assert_eq!(evidence[0]["line"], 1);
    assert_eq!(evidence[1]["file"], "nodes/n2/node.log");
    assert_eq!(evidence[1]["line"], 2);
    assert_eq!(evidence[1]["text"], n2[1].as_str());
}

#[test]
fn a_vote_forgotten_across_a_restart_is_a_forgotten_vote_then_a_double_vote() {
    let n1 = [
        ev("vote node=1 term=4 for=2"),
        ev("start node=1 term=4 voted-for=none commit=0"),
        ev("vote node=1 term=4 for=3"),
    ];
    let (valid, json) = check(&[log("n1", &n1)]);
    assert_eq!(valid, Validity::Invalid);
    assert_eq!(types(&json), ["double-vote", "forgotten-vote"]);
    assert_eq!(
        json["anomalies"]["forgotten-vote"][0]["message"],
        "n1 voted for 2 in term 4, then restarted in that term without a vote"
    );
    let evidence = json["anomalies"]["double-vote"][0]["evidence"]
        .as_array()
        .unwrap();
    assert_eq!(
        (evidence[0]["line"].clone(), evidence[1]["line"].clone()),
        (1.into(), 3.into())
    );
}

#[test]
fn a_restart_in_an_earlier_term_than_a_durable_vote_is_a_forgotten_vote() {
    let n1 = [
        ev("vote node=1 term=7 for=2"),
        ev("start node=1 term=5 voted-for=3 commit=0"),
    ];
    let (valid, json) = check(&[log("n1", &n1)]);
    assert_eq!(valid, Validity::Invalid);
    assert_eq!(types(&json), ["forgotten-vote"]);
    let anomaly = &json["anomalies"]["forgotten-vote"][0];
    assert_eq!(
        anomaly["message"],
        "n1 voted for 2 in term 7, then restarted in term 5: it lost its vote"
    );
    assert_eq!(anomaly["evidence"][0]["line"], 1);
    assert_eq!(anomaly["evidence"][1]["line"], 2);
    // Reported once: the next restart is held to what this one recovered.
    let again = [
        n1[0].clone(),
        n1[1].clone(),
        ev("start node=1 term=5 voted-for=3 commit=0"),
    ];
    let (_, json) = check(&[log("n1", &again)]);
    assert_eq!(json["anomaly_totals"]["forgotten-vote"], 1, "{json:#}");
}

#[test]
fn paxos_promises_compare_as_ballots() {
    // Ballot 3.2 is below 3.4 (same round, lower node) and above 2.9.
    let lost = [
        ev("vote node=1 term=3.4 for=4"),
        ev("start node=1 term=3.2 voted-for=2 commit=0"),
    ];
    assert_eq!(types(&check(&[log("n1", &lost)]).1), ["forgotten-vote"]);
    let kept = [
        ev("vote node=1 term=2.9 for=9"),
        ev("start node=1 term=3.2 voted-for=2 commit=0"),
        ev("vote node=1 term=10.1 for=1"),
        ev("start node=1 term=10.1 voted-for=1 commit=0"),
    ];
    let (valid, json) = check(&[log("n1", &kept)]);
    assert_eq!(valid, Validity::Valid, "{json:#}");
}

#[test]
fn a_restart_with_a_log_short_of_what_was_applied_loses_log_entries() {
    let n1 = [
        ev("start node=1 term=0 voted-for=none commit=0 last=0"),
        ev("apply node=1 from=1 hashes=0000000a,0000000b,0000000c"),
        ev("start node=1 term=1 voted-for=none commit=0 last=3"),
        ev("snapshot node=1 index=9"),
        ev("start node=1 term=1 voted-for=none commit=0 last=4"),
    ];
    let (valid, json) = check(&[log("n1", &n1)]);
    assert_eq!(valid, Validity::Invalid);
    assert_eq!(types(&json), ["lost-log-entries"]);
    let anomaly = &json["anomalies"]["lost-log-entries"][0];
    assert_eq!(
        anomaly["message"],
        "n1 had applied entries up to index 9, then restarted with its log ending at \
         index 4: entries it had made durable were lost"
    );
    assert_eq!(anomaly["evidence"][0]["line"], 4);
    assert_eq!(anomaly["evidence"][1]["line"], 5);
    // A start that does not say `last` is not held to it.
    let silent = [
        n1[1].clone(),
        ev("start node=1 term=1 voted-for=none commit=0"),
    ];
    assert_eq!(check(&[log("n1", &silent)]).0, Validity::Valid);
}

#[test]
fn a_damaged_log_excuses_the_next_start_only() {
    let damaged = "2026-12-05T12:00:01Z  WARN protocol: log-damaged fault=truncate-log";
    let n1 = [
        ev("vote node=1 term=7 for=2"),
        ev("apply node=1 from=1 hashes=0000000a,0000000b,0000000c"),
        damaged.to_string(),
        ev("start node=1 term=6 voted-for=none commit=0 last=2"),
        ev("vote node=1 term=8 for=3"),
        ev("apply node=1 from=3 hashes=0000000c"),
    ];
    let (valid, json) = check(&[log("n1", &n1)]);
    assert_eq!(valid, Validity::Valid, "{json:#}");
    assert_eq!(json["events"]["log-damaged"], 1);
    let mut next = n1.to_vec();
    next.push(ev("start node=1 term=8 voted-for=none commit=0 last=2"));
    let (_, json) = check(&[log("n1", &next)]);
    assert_eq!(types(&json), ["forgotten-vote", "lost-log-entries"]);
}

#[test]
fn a_recovered_vote_that_differs_is_a_double_vote() {
    let n1 = [
        ev("vote node=1 term=4 for=2"),
        ev("start node=1 term=4 voted-for=3 commit=0"),
    ];
    let (_, json) = check(&[log("n1", &n1)]);
    assert_eq!(types(&json), ["double-vote"]);
}

#[test]
fn different_entries_at_one_index_break_state_machine_safety() {
    let n1 = [ev("apply node=1 from=5 hashes=0000000a,0000000b")];
    let n2 = [ev("apply node=2 from=6 hashes=0000000c")];
    let (valid, json) = check(&[log("n1", &n1), log("n2", &n2)]);
    assert_eq!(valid, Validity::Invalid);
    assert_eq!(types(&json), ["state-machine-safety"]);
    let anomaly = &json["anomalies"]["state-machine-safety"][0];
    assert!(
        anomaly["message"].as_str().unwrap().contains("index 6"),
        "{anomaly}"
    );
    assert_eq!(anomaly["evidence"][0]["node"], "n1");
    assert_eq!(anomaly["evidence"][1]["node"], "n2");
}

#[test]
fn one_node_applying_differently_after_a_restart_breaks_state_machine_safety() {
    let n1 = [
        ev("apply node=1 from=1 hashes=0000000a"),
        ev("start node=1 term=1 voted-for=none commit=0"),
        ev("apply node=1 from=1 hashes=0000000b"),
    ];
    let (_, json) = check(&[log("n1", &n1)]);
    assert_eq!(types(&json), ["state-machine-safety"]);
}

#[test]
fn truncating_committed_entries_is_found_from_the_line_or_the_commit_events() {
    let direct = [ev("truncate node=1 from=3 commit=3")];
    let (valid, json) = check(&[log("n1", &direct)]);
    assert_eq!(valid, Validity::Invalid);
    assert_eq!(types(&json), ["committed-entry-truncated"]);
    let from_events = [
        ev("commit node=1 index=5 term=2"),
        ev("truncate node=1 from=4 commit=0"),
    ];
    let (_, json) = check(&[log("n1", &from_events)]);
    let evidence = json["anomalies"]["committed-entry-truncated"][0]["evidence"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(evidence.len(), 2, "the commit line and the truncate line");
    assert_eq!(evidence[0]["line"], 1);
}

#[test]
fn an_entry_logged_committed_in_an_earlier_life_stays_committed() {
    // Raft's figure 8 with `old-term-commit`: the leader logs index 7 committed and is
    // killed before it applies it; it restarts with a lower commit hint and truncates.
    let lives = [
        ev("start node=2 term=0 voted-for=none commit=0 last=0"),
        ev("commit node=2 index=7 term=1"),
        ev("start node=2 term=3 voted-for=2 commit=5 last=9"),
        ev("truncate node=2 from=6 commit=5"),
    ];
    let (valid, json) = check(&[log("n2", &lives)]);
    assert_eq!(valid, Validity::Invalid);
    assert_eq!(types(&json), ["committed-entry-truncated"]);
    let evidence = &json["anomalies"]["committed-entry-truncated"][0]["evidence"];
    assert_eq!(evidence[0]["line"], 2, "the commit of the earlier life");
    // A restart whose log a fault damaged is held only to what it recovered.
    let damaged = [
        lives[0].clone(),
        lives[1].clone(),
        "2026-12-05T12:00:01Z  WARN protocol: log-damaged fault=truncate-log".to_string(),
        lives[2].clone(),
        lives[3].clone(),
    ];
    let (valid, _) = check(&[log("n2", &damaged)]);
    assert_eq!(valid, Validity::Valid);
}

#[test]
fn a_log_without_events_is_checked_for_crashes_only() {
    let lines = [
        "{\"level\":\"info\",\"msg\":\"serving\"}".to_string(),
        "thread 'main' panicked at src/main.rs:3:5:".to_string(),
    ];
    let (valid, json) = check(&[log("n1", &lines)]);
    assert_eq!(valid, Validity::Invalid);
    assert_eq!(types(&json), ["node-log-crash"]);
    assert_eq!(json["checked"], serde_json::json!(["node-log-crash"]));
    assert_eq!(json["note"], "no protocol events: crash patterns only");
    assert_eq!(
        json["anomalies"]["node-log-crash"][0]["evidence"][0]["line"],
        2
    );
    let (valid, _) = check(&[log("n1", &lines[..1])]);
    assert_eq!(valid, Validity::Valid);
}

#[test]
fn no_logs_at_all_is_valid_and_says_so() {
    let (valid, json) = check(&[]);
    assert_eq!(valid, Validity::Valid);
    assert_eq!(json["note"], "no node logs");
    assert_eq!(json["checked"], serde_json::json!([]));
}

#[test]
fn malformed_events_are_counted_not_anomalies() {
    let lines = [ev("commit node=1 index=two term=1")];
    let (valid, json) = check(&[log("n1", &lines)]);
    assert_eq!(valid, Validity::Valid);
    assert_eq!(json["malformed_events"]["count"], 1);
    assert_eq!(json["malformed_events"]["first"]["text"], lines[0].as_str());
}

#[test]
fn files_are_read_and_their_evidence_quoted_and_unreadable_ones_said() {
    let dir = std::env::temp_dir().join(format!("nodelog-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.log");
    let b = dir.join("b.log");
    std::fs::write(
        &a,
        format!("noise\n{}\n", ev("role node=1 term=7 role=leader")),
    )
    .unwrap();
    std::fs::write(&b, format!("{}\n", ev("role node=2 term=7 role=leader"))).unwrap();
    let logs = [
        NodeLog::file("n1", "nodes/n1/node.log", &a),
        NodeLog::file("n2", "nodes/n2/node.log", &b),
        NodeLog::file("n3", "nodes/n3/node.log", dir.join("missing.log")),
    ];
    let checked = NodeLogCheck::default().check(&logs);
    let json = checked.verdict.to_json();
    assert_eq!(checked.verdict.valid, Validity::Invalid);
    let evidence = &json["anomalies"]["election-safety"][0]["evidence"];
    assert_eq!(evidence[0]["line"], 2);
    assert_eq!(
        evidence[0]["text"].as_str(),
        Some(ev("role node=1 term=7 role=leader").as_str())
    );
    assert!(
        json["unread"][0]
            .as_str()
            .unwrap()
            .contains("nodes/n3/node.log")
    );
    assert!(
        checked
            .verdict
            .explanation
            .iter()
            .any(|l| l.starts_with("  nodes/n2/node.log:1: ")),
        "{:?}",
        checked.verdict.explanation
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One node's log of a correct cluster, and the highest index it applied: the cluster's
/// entries are `entries`; the node applies a prefix of them in batches, restarts
/// (re-applying from a snapshot or from the start), votes once per term, and truncates
/// only above every commit index it logged (in any life: what was committed stays).
fn correct_node(node: usize, entries: &[u32], plan: &[(u8, u8)]) -> (Vec<String>, usize) {
    let mut lines = vec![ev(&format!(
        "start node={node} term=0 voted-for=none commit=0 last=0"
    ))];
    let (mut applied, mut highest, mut commit, mut term) = (0usize, 0usize, 0usize, 0u64);
    let mut committed_ever = 0usize;
    let mut voted: Option<u64> = None;
    for &(step, size) in plan {
        match step % 5 {
            0 => {
                let n = (size as usize % 4 + 1).min(entries.len() - applied);
                if n > 0 {
                    let hashes: Vec<String> = entries[applied..applied + n]
                        .iter()
                        .map(|h| format!("{h:08x}"))
                        .collect();
                    commit = commit.max(applied + n);
                    committed_ever = committed_ever.max(commit);
                    lines.push(ev(&format!(
                        "commit node={node} index={commit} term={term}"
                    )));
                    lines.push(ev(&format!(
                        "apply node={node} from={} hashes={}",
                        applied + 1,
                        hashes.join(",")
                    )));
                    applied += n;
                    highest = highest.max(applied);
                }
            }
            1 => {
                term += 1;
                // Term t's leader is node t % 3 + 1 everywhere; votes go to it.
                let leader = term % 3 + 1;
                lines.push(ev(&format!("vote node={node} term={term} for={leader}")));
                voted = Some(leader);
                let role = if leader == node as u64 {
                    "leader"
                } else {
                    "follower"
                };
                lines.push(ev(&format!("role node={node} term={term} role={role}")));
            }
            2 => {
                // The recovered log reaches everything applied (and maybe more).
                let snapshot = size as usize % (applied + 1);
                let last = highest + size as usize % 2;
                let vote = voted.map_or("none".to_string(), |v| v.to_string());
                lines.push(ev(&format!(
                    "start node={node} term={term} voted-for={vote} commit={snapshot} last={last}"
                )));
                if snapshot > 0 {
                    lines.push(ev(&format!("snapshot node={node} index={snapshot}")));
                }
                applied = snapshot;
                commit = snapshot;
            }
            3 => lines.push(ev(&format!(
                "truncate node={node} from={} commit={commit}",
                committed_ever.max(commit) + 1 + size as usize % 3
            ))),
            _ => lines.push(format!("2026-12-05T12:00:00Z DEBUG raft: tick {size}")),
        }
    }
    (lines, highest)
}

proptest! {
    #[test]
    fn correct_clusters_are_valid_and_one_changed_entry_is_found(
        entries in prop::collection::vec(any::<u32>(), 1..40),
        plans in prop::collection::vec(
            prop::collection::vec((any::<u8>(), any::<u8>()), 0..60), 3),
        flip in any::<u32>(),
    ) {
        let mut logs = Vec::new();
        let mut highest = 0;
        for (i, plan) in plans.iter().enumerate() {
            let (lines, applied) = correct_node(i + 1, &entries, plan);
            logs.push(log(&format!("n{}", i + 1), &lines));
            highest = highest.max(applied);
        }
        let (valid, json) = check(&logs);
        prop_assert_eq!(valid, Validity::Valid, "{:#}", json);

        // A fourth node applies every entry, one of them changed: found exactly when
        // another node applied that index.
        let mut changed = entries.clone();
        let i = flip as usize % changed.len();
        changed[i] ^= 1;
        let (lines, _) = correct_node(4, &changed, &vec![(0, 3); changed.len()]);
        logs.push(log("n4", &lines));
        let (valid, json) = check(&logs);
        if i < highest {
            prop_assert_eq!(valid, Validity::Invalid);
            prop_assert_eq!(types(&json), vec!["state-machine-safety".to_string()]);
        } else {
            prop_assert_eq!(valid, Validity::Valid, "{:#}", json);
        }
    }

    /// A correct node that then restarts with its log cut below what it applied is
    /// found (`lost-log-entries`) unless the cut is announced by `log-damaged`.
    #[test]
    fn a_restart_short_of_the_applied_entries_is_found_unless_damaged(
        entries in prop::collection::vec(any::<u32>(), 1..40),
        plan in prop::collection::vec((any::<u8>(), any::<u8>()), 0..60),
        cut in any::<u32>(),
        damaged in any::<bool>(),
    ) {
        let (mut lines, _) = correct_node(1, &entries, &plan);
        let (valid, json) = check(&[log("n1", &lines)]);
        prop_assert_eq!(valid, Validity::Valid, "{:#}", json);
        let highest = lines
            .iter()
            .filter_map(|l| {
                let rest = l.split("apply node=1 from=").nth(1)?;
                let (from, hashes) = rest.split_once(" hashes=")?;
                Some(from.parse::<usize>().ok()? + hashes.split(',').count() - 1)
            })
            .chain(lines.iter().filter_map(|l| {
                l.split("snapshot node=1 index=").nth(1)?.parse::<usize>().ok()
            }))
            .max()
            .unwrap_or(0);
        prop_assume!(highest > 0);
        let last = cut as usize % highest;
        if damaged {
            lines.push("x WARN protocol: log-damaged fault=truncate-log".to_string());
        }
        lines.push(ev(&format!("start node=1 term=1000 voted-for=none commit=0 last={last}")));
        let (valid, json) = check(&[log("n1", &lines)]);
        if damaged {
            prop_assert_eq!(valid, Validity::Valid, "{:#}", json);
        } else {
            prop_assert_eq!(types(&json), vec!["lost-log-entries".to_string()]);
        }
    }
}
