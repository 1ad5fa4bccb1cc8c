//! The binary encoding of Multi-Paxos messages and accepted values, on top of
//! [`crate::codec`] (peer wire and write-ahead log).

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::consensus::Snapshot;

use super::types::{Accepted, Ballot, Message, MessageBody};

/// Writes a ballot.
pub fn put_ballot(e: &mut Encoder, b: Ballot) {
    e.u64(b.round);
    e.u64(b.node);
}

/// Reads a ballot.
pub fn get_ballot(d: &mut Decoder<'_>) -> Result<Ballot, DecodeError> {
    Ok(Ballot {
        round: d.u64()?,
        node: d.u64()?,
    })
}

/// Writes an accepted value.
pub fn put_accepted(e: &mut Encoder, a: &Accepted) {
    put_ballot(e, a.ballot);
    e.entry(&a.entry);
}

/// Reads an accepted value.
pub fn get_accepted(d: &mut Decoder<'_>) -> Result<Accepted, DecodeError> {
    Ok(Accepted {
        ballot: get_ballot(d)?,
        entry: d.entry()?,
    })
}

fn put_snapshot(e: &mut Encoder, s: &Snapshot) {
    e.snapshot_meta(&s.meta);
    e.bytes(&s.data);
}

fn get_snapshot(d: &mut Decoder<'_>) -> Result<Snapshot, DecodeError> {
    Ok(Snapshot {
        meta: d.snapshot_meta()?,
        data: d.bytes()?,
    })
}

/// Reads a count of items that take at least `min_size` bytes each.
fn get_count(d: &mut Decoder<'_>, left: usize, min_size: usize) -> Result<usize, DecodeError> {
    let n = d.u64()?;
    if n.saturating_mul(min_size as u64) > left as u64 {
        return Err(DecodeError {
            what: "paxos message",
            reason: format!("{n} items cannot fit in {left} bytes"),
        });
    }
    Ok(n as usize)
}

/// Encodes a message.
pub fn encode(m: &Message) -> Vec<u8> {
    let mut e = Encoder::default();
    e.u64(m.from);
    e.u64(m.to);
    put_ballot(&mut e, m.ballot);
    match &m.body {
        MessageBody::Prepare { from_slot } => {
            e.u8(1);
            e.u64(*from_slot);
        }
        MessageBody::Promise { accepted, snapshot } => {
            e.u8(2);
            e.u64(accepted.len() as u64);
            for a in accepted {
                put_accepted(&mut e, a);
            }
            match snapshot {
                Some(s) => {
                    e.u8(1);
                    put_snapshot(&mut e, s);
                }
                None => e.u8(0),
            }
        }
        MessageBody::Nack { promised } => {
            e.u8(3);
            put_ballot(&mut e, *promised);
        }
        MessageBody::Accept {
            first,
            values,
            commit,
            read_seq,
        } => {
            e.u8(4);
            e.u64(*first);
            e.u64(*commit);
            e.u64(*read_seq);
            e.u64(values.len() as u64);
            for v in values {
                e.entry(v);
            }
        }
        MessageBody::Accepted {
            first,
            upto,
            read_seq,
        } => {
            e.u8(5);
            e.u64(*first);
            e.u64(*upto);
            e.u64(*read_seq);
        }
        MessageBody::InstallSnapshot { snapshot, read_seq } => {
            e.u8(6);
            e.u64(*read_seq);
            put_snapshot(&mut e, snapshot);
        }
    }
    e.buf
}

/// Decodes a whole buffer as one message.
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut d = Decoder::new(buf, "paxos message");
    let (from, to) = (d.u64()?, d.u64()?);
    let ballot = get_ballot(&mut d)?;
    let body = match d.u8()? {
        1 => MessageBody::Prepare {
            from_slot: d.u64()?,
        },
        2 => {
            let n = get_count(&mut d, buf.len(), 40)?;
            let accepted = (0..n)
                .map(|_| get_accepted(&mut d))
                .collect::<Result<_, _>>()?;
            let snapshot = match d.u8()? {
                0 => None,
                _ => Some(get_snapshot(&mut d)?),
            };
            MessageBody::Promise { accepted, snapshot }
        }
        3 => MessageBody::Nack {
            promised: get_ballot(&mut d)?,
        },
        4 => {
            let (first, commit, read_seq) = (d.u64()?, d.u64()?, d.u64()?);
            let n = get_count(&mut d, buf.len(), 24)?;
            let values = (0..n).map(|_| d.entry()).collect::<Result<_, _>>()?;
            MessageBody::Accept {
                first,
                values,
                commit,
                read_seq,
            }
        }
        5 => MessageBody::Accepted {
            first: d.u64()?,
            upto: d.u64()?,
            read_seq: d.u64()?,
        },
        6 => {
            let read_seq = d.u64()?;
            MessageBody::InstallSnapshot {
                snapshot: get_snapshot(&mut d)?,
                read_seq,
            }
        }
        tag => {
            return Err(DecodeError {
                what: "paxos message",
                reason: format!("unknown tag {tag}"),
            });
        }
    };
    if !d.is_empty() {
        return Err(DecodeError {
            what: "paxos message",
            reason: "trailing bytes".into(),
        });
    }
    Ok(Message {
        from,
        to,
        ballot,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{Entry, SnapshotMeta};

    #[test]
    fn messages_round_trip() {
        let entry = Entry {
            index: 5,
            term: 9,
            data: b"v".to_vec(),
        };
        let b = Ballot { round: 3, node: 2 };
        let bodies = vec![
            MessageBody::Prepare { from_slot: 4 },
            MessageBody::Promise {
                accepted: vec![Accepted {
                    ballot: b,
                    entry: entry.clone(),
                }],
                snapshot: Some(Snapshot {
                    meta: SnapshotMeta {
                        index: 3,
                        term: 0,
                        voters: vec![1, 2, 3],
                    },
                    data: vec![7],
                }),
            },
            MessageBody::Nack { promised: b },
            MessageBody::Accept {
                first: 5,
                values: vec![entry],
                commit: 4,
                read_seq: 2,
            },
            MessageBody::Accepted {
                first: 5,
                upto: 5,
                read_seq: 2,
            },
        ];
        for body in bodies {
            let m = Message {
                from: 1,
                to: 2,
                ballot: b,
                body,
            };
            let bytes = encode(&m);
            assert_eq!(decode(&bytes).unwrap(), m);
            assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }
}
