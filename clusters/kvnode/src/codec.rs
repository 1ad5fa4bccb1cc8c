//! A small binary encoding for Raft values, used on the peer wire and in the
//! write-ahead log: little-endian integers, length-prefixed byte strings.

use crate::consensus::{Entry, Snapshot, SnapshotMeta};
use crate::raft::{HardState, Message, MessageBody};

/// Bytes that do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {what}: {reason}")]
pub struct DecodeError {
    /// What was being decoded.
    pub what: &'static str,
    /// Why it failed.
    pub reason: String,
}

/// Appends encoded values to a buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Encoder {
    /// Writes one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Writes a u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// Writes an entry.
    pub fn entry(&mut self, e: &Entry) {
        self.u64(e.index);
        self.u64(e.term);
        self.bytes(&e.data);
    }

    /// Writes a hard state.
    pub fn hard_state(&mut self, h: &HardState) {
        self.u64(h.term);
        self.u64(h.vote.unwrap_or(0));
        self.u64(h.commit);
    }

    /// Writes a snapshot's metadata.
    pub fn snapshot_meta(&mut self, m: &SnapshotMeta) {
        self.u64(m.index);
        self.u64(m.term);
        self.u64(m.voters.len() as u64);
        for v in &m.voters {
            self.u64(*v);
        }
    }

    /// Writes a message.
    pub fn message(&mut self, m: &Message) {
        self.u64(m.from);
        self.u64(m.to);
        self.u64(m.term);
        match &m.body {
            MessageBody::PreVote {
                last_index,
                last_term,
            } => {
                self.u8(1);
                self.u64(*last_index);
                self.u64(*last_term);
            }
            MessageBody::PreVoteResponse { granted } => {
                self.u8(2);
                self.u8(u8::from(*granted));
            }
            MessageBody::Vote {
                last_index,
                last_term,
            } => {
                self.u8(3);
                self.u64(*last_index);
                self.u64(*last_term);
            }
            MessageBody::VoteResponse { granted } => {
                self.u8(4);
                self.u8(u8::from(*granted));
            }
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                read_seq,
            } => {
                self.u8(5);
                self.u64(*prev_index);
                self.u64(*prev_term);
                self.u64(*commit);
                self.u64(*read_seq);
                self.u64(entries.len() as u64);
                for e in entries {
                    self.entry(e);
                }
            }
            MessageBody::AppendResponse {
                reject,
                index,
                hint_index,
                hint_term,
                read_seq,
            } => {
                self.u8(6);
                self.u8(u8::from(*reject));
                self.u64(*index);
                self.u64(*hint_index);
                self.u64(*hint_term);
                self.u64(*read_seq);
            }
            MessageBody::Heartbeat { commit, read_seq } => {
                self.u8(7);
                self.u64(*commit);
                self.u64(*read_seq);
            }
            MessageBody::HeartbeatResponse { read_seq } => {
                self.u8(8);
                self.u64(*read_seq);
            }
            MessageBody::InstallSnapshot { snapshot, read_seq } => {
                self.u8(9);
                self.u64(*read_seq);
                self.snapshot_meta(&snapshot.meta);
                self.bytes(&snapshot.data);
            }
        }
    }
}

/// Reads encoded values from a byte slice.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`; `what` names the value in errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Decoder<'a> {
        Decoder { buf, what }
    }

    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, DecodeError> {
        Err(DecodeError {
            what: self.what,
            reason: reason.into(),
        })
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return self.fail(format!("needs {n} more bytes, has {}", self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.u64()?;
        if n > self.buf.len() as u64 {
            return self.fail(format!(
                "length {n} exceeds the {} bytes left",
                self.buf.len()
            ));
        }
        Ok(n as usize)
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }

    /// Reads an entry.
    pub fn entry(&mut self) -> Result<Entry, DecodeError> {
        Ok(Entry {
            index: self.u64()?,
            term: self.u64()?,
            data: self.bytes()?,
        })
    }

    /// Reads a hard state.
    pub fn hard_state(&mut self) -> Result<HardState, DecodeError> {
        let term = self.u64()?;
        let vote = Some(self.u64()?).filter(|v| *v != 0);
        Ok(HardState {
            term,
            vote,
            commit: self.u64()?,
        })
    }

    /// Reads a snapshot's metadata.
    pub fn snapshot_meta(&mut self) -> Result<SnapshotMeta, DecodeError> {
        let index = self.u64()?;
        let term = self.u64()?;
        let n = self.u64()?;
        if n > 1024 {
            return self.fail(format!("{n} voters"));
        }
        let voters = (0..n).map(|_| self.u64()).collect::<Result<_, _>>()?;
        Ok(SnapshotMeta {
            index,
            term,
            voters,
        })
    }

    /// Reads a message.
    pub fn message(&mut self) -> Result<Message, DecodeError> {
        let (from, to, term) = (self.u64()?, self.u64()?, self.u64()?);
        let body = match self.u8()? {
            1 => MessageBody::PreVote {
                last_index: self.u64()?,
                last_term: self.u64()?,
            },
            2 => MessageBody::PreVoteResponse {
                granted: self.bool()?,
            },
            3 => MessageBody::Vote {
                last_index: self.u64()?,
                last_term: self.u64()?,
            },
            4 => MessageBody::VoteResponse {
                granted: self.bool()?,
            },
            5 => {
                let (prev_index, prev_term, commit, read_seq) =
                    (self.u64()?, self.u64()?, self.u64()?, self.u64()?);
                let n = self.len()?;
                let entries = (0..n).map(|_| self.entry()).collect::<Result<_, _>>()?;
                MessageBody::Append {
                    prev_index,
                    prev_term,
                    entries,
                    commit,
                    read_seq,
                }
            }
            6 => MessageBody::AppendResponse {
                reject: self.bool()?,
                index: self.u64()?,
                hint_index: self.u64()?,
                hint_term: self.u64()?,
                read_seq: self.u64()?,
            },
            7 => MessageBody::Heartbeat {
                commit: self.u64()?,
                read_seq: self.u64()?,
            },
            8 => MessageBody::HeartbeatResponse {
                read_seq: self.u64()?,
            },
            9 => {
                let read_seq = self.u64()?;
                let meta = self.snapshot_meta()?;
                let data = self.bytes()?;
                MessageBody::InstallSnapshot {
                    snapshot: Snapshot { meta, data },
                    read_seq,
                }
            }
            tag => return self.fail(format!("unknown message tag {tag}")),
        };
        Ok(Message {
            from,
            to,
            term,
            body,
        })
    }
}

/// Encodes a message.
pub fn encode_message(m: &Message) -> Vec<u8> {
    let mut e = Encoder::default();
    e.message(m);
    e.buf
}

/// Decodes a whole buffer as one message.
pub fn decode_message(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut d = Decoder::new(buf, "message");
    let m = d.message()?;
    if !d.is_empty() {
        return d.fail("trailing bytes");
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let entries = vec![Entry {
            index: 5,
            term: 2,
            data: b"hello".to_vec(),
        }];
        let bodies = vec![
            MessageBody::PreVote {
                last_index: 1,
                last_term: 2,
            },
            MessageBody::VoteResponse { granted: true },
            MessageBody::Append {
                prev_index: 4,
                prev_term: 1,
                entries,
                commit: 3,
                read_seq: 9,
            },
            MessageBody::AppendResponse {
                reject: true,
                index: 4,
                hint_index: 2,
                hint_term: 1,
                read_seq: 9,
            },
            MessageBody::InstallSnapshot {
                snapshot: Snapshot {
                    meta: SnapshotMeta {
                        index: 10,
                        term: 3,
                        voters: vec![1, 2, 3],
                    },
                    data: vec![1, 2, 3],
                },
                read_seq: 1,
            },
        ];
        for body in bodies {
            let m = Message {
                from: 1,
                to: 2,
                term: 7,
                body,
            };
            let bytes = encode_message(&m);
            assert_eq!(decode_message(&bytes).unwrap(), m);
            assert!(decode_message(&bytes[..bytes.len() - 1]).is_err());
        }
    }
}
