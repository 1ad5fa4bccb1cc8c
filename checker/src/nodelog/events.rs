//! The protocol events of a node's log line (the contract in `docs/checkers.md`, "Node
//! logs"): a line holding ` protocol: ` followed by an event name and `key=value` tokens,
//! e.g. `2026-12-05T12:00:00.123456Z  INFO protocol: role node=3 term=5 role=leader`.
//! Unknown event names and unknown keys are ignored; ANSI colour codes are stripped.
//! A sharded node logs each consensus group's events in a span `shard{shard=K}`
//! (`… INFO shard{shard=2}: protocol: role …`): [`parse_in_shard`] says which.

use std::borrow::Cow;

use super::span;

/// The marker that makes a line a protocol event.
const MARKER: &str = " protocol: ";

/// The most hashes one `apply` line may carry.
pub const MAX_HASHES: usize = 256;

/// One protocol event, borrowed from its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The node started (after recovery from disk): a restart.
    Start {
        /// The term it recovered.
        term: &'a str,
        /// The candidate it had voted for in `term`, if any.
        voted_for: Option<&'a str>,
        /// Its commit index after recovery.
        commit: u64,
        /// The last index of the log it recovered (its snapshot's when no entries
        /// follow it), where the node says it (optional: Raft's faultline-kv does).
        last: Option<u64>,
    },
    /// A role (or term) change.
    Role {
        /// The term.
        term: &'a str,
        /// `leader`, `follower`, `candidate`, `pre-candidate`.
        role: &'a str,
    },
    /// The node granted its vote in `term` to `candidate`.
    Vote {
        /// The term.
        term: &'a str,
        /// The candidate voted for.
        candidate: &'a str,
    },
    /// The commit index advanced to `index`.
    Commit {
        /// The new commit index.
        index: u64,
    },
    /// Entries `from`, `from + 1`, … were applied with these payload hashes.
    Apply {
        /// The index of the first entry.
        from: u64,
        /// FNV-1a hashes of the entries' payloads, in order.
        hashes: Vec<u32>,
    },
    /// A snapshot up to `index` was installed (entries up to it are not applied).
    Snapshot {
        /// The snapshot's last index.
        index: u64,
    },
    /// Log entries from `from` on were deleted while the commit index was `commit`.
    Truncate {
        /// The first deleted index.
        from: u64,
        /// The node's commit index at that moment.
        commit: u64,
    },
    /// A fault damaged the (stopped) node's durable log on purpose (e.g. the disk
    /// nemesis's `truncate-log`, which writes this line): its next `start` may recover
    /// less than it had made durable, so that start is not held to its earlier votes
    /// and applied entries.
    LogDamaged,
}

impl Event<'_> {
    /// The event's name as logged.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Start { .. } => "start",
            Event::Role { .. } => "role",
            Event::Vote { .. } => "vote",
            Event::Commit { .. } => "commit",
            Event::Apply { .. } => "apply",
            Event::Snapshot { .. } => "snapshot",
            Event::Truncate { .. } => "truncate",
            Event::LogDamaged => "log-damaged",
        }
    }
}

/// What a line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// No protocol event (or one of a name this checker does not know).
    None,
    /// A known event.
    Event(Event<'a>),
    /// A known event with a missing or malformed field: the reason.
    Malformed(String),
}

/// `line` without ANSI escape sequences (`ESC [ … letter`); borrowed when it has none.
pub fn strip_ansi(line: &str) -> Cow<'_, str> {
    if !line.contains('\x1b') {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.clone().next() == Some('[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    Cow::Owned(out)
}

/// The protocol event of `line` (already without ANSI codes), whatever its shard.
pub fn parse(line: &str) -> Parsed<'_> {
    parse_in_shard(line).1
}

/// The protocol event of `line` (already without ANSI codes) and its shard: `Some(K)`
/// when a span `shard{shard=K}` precedes ` protocol: ` (group K of a sharded node),
/// `None` without one (an unsharded node's one group). A known event whose `shard=` is
/// not a non-negative integer is [`Parsed::Malformed`].
pub fn parse_in_shard(line: &str) -> (Option<u32>, Parsed<'_>) {
    let Some(at) = line.find(MARKER) else {
        return (None, Parsed::None);
    };
    let mut words = line[at + MARKER.len()..].split_ascii_whitespace();
    let Some(name) = words.next() else {
        return (None, Parsed::None);
    };
    if !matches!(
        name,
        "start" | "role" | "vote" | "commit" | "apply" | "snapshot" | "truncate" | "log-damaged"
    ) {
        return (None, Parsed::None);
    }
    let shard = match span::shard(&line[..at]) {
        Ok(shard) => shard,
        Err(reason) => return (None, Parsed::Malformed(format!("`{name}` event: {reason}"))),
    };
    let fields = Fields(
        words
            .filter_map(|w| w.split_once('='))
            .collect::<Vec<(&str, &str)>>(),
    );
    let parsed = match event(name, &fields) {
        Ok(event) => Parsed::Event(event),
        Err(reason) => Parsed::Malformed(format!("`{name}` event: {reason}")),
    };
    (shard, parsed)
}

/// An event's `key=value` tokens; the first of a repeated key wins.
struct Fields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Fields<'a> {
    fn text(&self, key: &str) -> Result<&'a str, String> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("no `{key}=`"))
    }

    fn number(&self, key: &str) -> Result<u64, String> {
        let text = self.text(key)?;
        text.parse()
            .map_err(|_| format!("`{key}={text}` is not a non-negative integer"))
    }

    /// A number that may be absent (but not malformed).
    fn optional_number(&self, key: &str) -> Result<Option<u64>, String> {
        match self.0.iter().any(|(k, _)| *k == key) {
            true => self.number(key).map(Some),
            false => Ok(None),
        }
    }
}

fn event<'a>(name: &str, fields: &Fields<'a>) -> Result<Event<'a>, String> {
    if name == "log-damaged" {
        // Written by the fault, not the node: no fields needed.
        return Ok(Event::LogDamaged);
    }
    fields.text("node")?;
    Ok(match name {
        "start" => Event::Start {
            term: fields.text("term")?,
            voted_for: Some(fields.text("voted-for")?).filter(|v| *v != "none"),
            commit: fields.number("commit")?,
            last: fields.optional_number("last")?,
        },
        "role" => Event::Role {
            term: fields.text("term")?,
            role: fields.text("role")?,
        },
        "vote" => Event::Vote {
            term: fields.text("term")?,
            candidate: fields.text("for")?,
        },
        "commit" => Event::Commit {
            index: fields.number("index")?,
        },
        "apply" => Event::Apply {
            from: fields.number("from")?,
            hashes: hashes(fields.text("hashes")?)?,
        },
        "snapshot" => Event::Snapshot {
            index: fields.number("index")?,
        },
        _ => Event::Truncate {
            from: fields.number("from")?,
            commit: fields.number("commit")?,
        },
    })
}

/// `h1,h2,…`: at most [`MAX_HASHES`] hashes of 8 hex digits.
fn hashes(text: &str) -> Result<Vec<u32>, String> {
    let mut hashes = Vec::new();
    for hash in text.split(',') {
        if hashes.len() == MAX_HASHES {
            return Err(format!("more than {MAX_HASHES} hashes"));
        }
        if hash.len() != 8 {
            return Err(format!("hash `{hash}` is not 8 hex digits"));
        }
        let value = u32::from_str_radix(hash, 16)
            .map_err(|_| format!("hash `{hash}` is not 8 hex digits"))?;
        hashes.push(value);
    }
    Ok(hashes)
}

/// The 32-bit FNV-1a hash of `bytes`, as `apply` events log it (for fixtures and for
/// nodes that want the same function).
pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> Event<'_> {
        match parse(line) {
            Parsed::Event(e) => e,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn parses_each_event_of_the_contract() {
        let p = "2026-12-05T12:00:00.123456Z  INFO protocol:";
        assert_eq!(
            event(&format!("{p} role node=3 term=5 role=leader")),
            Event::Role {
                term: "5",
                role: "leader"
            }
        );
        assert_eq!(
            event(&format!(
                "{p} start node=1 term=2.3 voted-for=none commit=0"
            )),
            Event::Start {
                term: "2.3",
                voted_for: None,
                commit: 0,
                last: None
            }
        );
        assert_eq!(
            event(&format!(
                "{p} start node=1 term=2 voted-for=3 commit=4 last=9"
            )),
            Event::Start {
                term: "2",
                voted_for: Some("3"),
                commit: 4,
                last: Some(9)
            }
        );
        assert_eq!(
            event(&format!("{p} log-damaged fault=truncate-log")),
            Event::LogDamaged
        );
        assert_eq!(
            event(&format!("{p} vote node=1 term=4 for=2 extra=ignored")),
            Event::Vote {
                term: "4",
                candidate: "2"
            }
        );
        assert_eq!(
            event(&format!("{p} commit node=1 index=9 term=-")),
            Event::Commit { index: 9 }
        );
        assert_eq!(
            event(&format!("{p} apply node=1 from=7 hashes=811c9dc5,0000000a")),
            Event::Apply {
                from: 7,
                hashes: vec![0x811c9dc5, 10]
            }
        );
        assert_eq!(
            event(&format!("{p} snapshot node=1 index=70")),
            Event::Snapshot { index: 70 }
        );
        assert_eq!(
            event(&format!("{p} truncate node=1 from=5 commit=4")),
            Event::Truncate { from: 5, commit: 4 }
        );
    }

    #[test]
    fn other_lines_and_unknown_events_are_not_events() {
        assert_eq!(parse("INFO kv: serving on 10.0.0.1:7000"), Parsed::None);
        assert_eq!(parse("x protocol: heartbeat node=1"), Parsed::None);
        assert_eq!(parse("x protocol: "), Parsed::None);
    }

    #[test]
    fn malformed_events_say_why() {
        let Parsed::Malformed(why) = parse("x protocol: commit node=1 index=x") else {
            panic!("not malformed");
        };
        assert!(why.contains("index=x"), "{why}");
        let Parsed::Malformed(why) = parse("x protocol: vote term=1 for=2") else {
            panic!("not malformed");
        };
        assert!(why.contains("node"), "{why}");
        assert!(matches!(
            parse("x protocol: apply node=1 from=1 hashes=abc"),
            Parsed::Malformed(_)
        ));
        assert!(matches!(
            parse("x protocol: start node=1 term=1 voted-for=none commit=0 last=-1"),
            Parsed::Malformed(_)
        ));
    }

    #[test]
    fn a_shard_span_before_the_target_names_the_shard() {
        let p = "2026-12-05T12:00:00.123456Z  INFO";
        let role = Event::Role {
            term: "5",
            role: "leader",
        };
        let sharded = format!("{p} shard{{shard=2}}: protocol: role node=3 term=5 role=leader");
        assert_eq!(
            parse_in_shard(&sharded),
            (Some(2), Parsed::Event(role.clone()))
        );
        assert_eq!(parse(&sharded), Parsed::Event(role.clone()));
        let nested =
            format!("{p} a{{x=1}}:shard{{shard=7}}: protocol: role node=3 term=5 role=leader");
        assert_eq!(
            parse_in_shard(&nested),
            (Some(7), Parsed::Event(role.clone()))
        );
        let plain = format!("{p} protocol: role node=3 term=5 role=leader");
        assert_eq!(parse_in_shard(&plain), (None, Parsed::Event(role)));
        let (shard, parsed) =
            parse_in_shard("x a{x=1}:shard{shard=two}: protocol: vote node=1 term=1 for=2");
        assert_eq!(shard, None);
        let Parsed::Malformed(why) = parsed else {
            panic!("not malformed: {parsed:?}");
        };
        assert_eq!(
            why,
            "`vote` event: span `shard{shard=two}`: `shard=two` is not a non-negative integer"
        );
        // Not an event of the contract: not malformed either.
        assert_eq!(
            parse_in_shard("x shard{shard=two}: protocol: heartbeat node=1"),
            (None, Parsed::None)
        );
    }

    #[test]
    fn ansi_codes_are_stripped() {
        let line =
            "\x1b[32m INFO\x1b[0m \x1b[2mprotocol\x1b[0m: vote \x1b[3mnode\x1b[0m=1 term=1 for=2";
        let clean = strip_ansi(line);
        assert_eq!(clean, " INFO protocol: vote node=1 term=1 for=2");
        assert!(matches!(parse(&clean), Parsed::Event(Event::Vote { .. })));
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0x811c9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9cf968);
    }
}
