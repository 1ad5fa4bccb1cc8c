//! The log faults of [`DiskNemesis`]: `truncate-log` (a torn tail) and `corrupt-log`
//! (flipped bytes in a middle record), on a killed node's log read record by record
//! with [`faultline_kv_proto::wal`]'s framing; and the file work they share.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::Cmd;
use faultline_kv_proto::wal::HEADER;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::{CORRUPT_LOG, Damaged, DiskNemesis, FILE_TIMEOUT, TRUNCATE_LOG, wal_records};
use crate::error::NemesisError;
use crate::process::crash;

/// The bytes of a torn write after the log image `buf`: the first `len` bytes (by
/// default a random number, at least one, short of a whole record) of a copy of its last
/// record, or of a record header where it has none. A crash in the middle of writing a
/// record leaves such a prefix; the node never acknowledged it, so a correct node drops
/// it on recovery and loses nothing it had made durable.
fn torn_write(buf: &[u8], len: Option<u64>, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let last = wal_records(buf)
        .last()
        .map_or(&[0u8; HEADER][..], |&(start, len)| &buf[start..start + len]);
    // A record is at least a header (8 bytes), so `most` is at least 7.
    let most = last.len() - 1;
    let len = match len {
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(most),
        None => rng.random_range(1..=most),
    };
    last[..len].to_vec()
}

/// How long a node started on a corrupted log has to exit.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

impl DiskNemesis {
    /// Kills node `i` and reads its log.
    fn crash_and_read(&self, i: usize) -> Result<Vec<u8>, NemesisError> {
        let node = &self.nodes[i];
        crash(&*self.db, node)?;
        let wal = Self::wal(node);
        let local = std::env::temp_dir().join(format!(
            "faultline-wal-{}-{}-{}",
            node.name,
            std::process::id(),
            self.rng.get_word_pos()
        ));
        let read = node
            .remote
            .download(&wal, &local)
            .map_err(NemesisError::from)
            .and_then(|()| {
                fs::read(&local).map_err(|e| {
                    Self::cmd_error(node, format!("read {}", local.display()), e.to_string())
                })
            });
        let _ = fs::remove_file(&local);
        read
    }

    /// Writes `bytes` at `offset` of node `i`'s log, in place.
    pub(super) fn write_at(&self, i: usize, offset: u64, bytes: &[u8]) -> Result<(), NemesisError> {
        let node = &self.nodes[i];
        let wal = Self::wal(node);
        let octal: String = bytes.iter().map(|b| format!("\\{b:03o}")).collect();
        let cmd = Cmd::new("sh")
            .args([
                "-c",
                "printf \"$3\" | dd of=\"$1\" bs=1 seek=\"$2\" conv=notrunc status=none",
                "sh",
                &wal.to_string_lossy(),
                &offset.to_string(),
                &octal,
            ])
            .timeout(FILE_TIMEOUT);
        let out = node.remote.run(&cmd)?;
        if !out.success() {
            return Err(Self::cmd_error(
                node,
                format!(
                    "write {} bytes at {offset} of {}",
                    bytes.len(),
                    wal.display()
                ),
                out.stderr.trim().to_string(),
            ));
        }
        Ok(())
    }

    /// Appends a `log-damaged` protocol event (`docs/checkers.md`, "Node logs") to the
    /// stopped node `i`'s log: the node-log check then does not hold its next start to
    /// what it had made durable, since this fault took some of it away on purpose.
    fn mark_damaged(&self, i: usize, detail: &str) -> Result<(), NemesisError> {
        let node = &self.nodes[i];
        let log = node.log_file();
        let cmd = Cmd::new("sh")
            .args([
                "-c",
                "printf '%s  WARN protocol: log-damaged %s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" \"$2\" >> \"$1\"",
                "sh",
                &log.to_string_lossy(),
                detail,
            ])
            .timeout(FILE_TIMEOUT);
        let out = node.remote.run(&cmd)?;
        if !out.success() {
            return Err(Self::cmd_error(
                node,
                format!("append to {}", log.display()),
                out.stderr.trim().to_string(),
            ));
        }
        Ok(())
    }

    /// The last line of node `i`'s log that mentions corruption, else its last line.
    pub(super) fn log_line(&self, i: usize) -> String {
        let node = &self.nodes[i];
        let log = node.log_file();
        let cmd = Cmd::new("tail")
            .args(["-n", "50", &log.to_string_lossy()])
            .timeout(FILE_TIMEOUT);
        let text = node.remote.run(&cmd).map(|o| o.stdout).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines
            .iter()
            .rev()
            .find(|l| l.contains("corrupt"))
            .or(lines.last())
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    }

    pub(super) fn truncate(&mut self, value: &Value) -> Result<Value, NemesisError> {
        let i = self.target(TRUNCATE_LOG, value)?;
        let positive =
            |key: &str| -> Result<Option<u64>, NemesisError> {
                match value.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                        NemesisError::BadValue {
                            f: TRUNCATE_LOG.into(),
                            value: value.to_string(),
                            expected: format!("`{key}`: a positive integer"),
                        }
                    }),
                }
            };
        let (cut, torn) = (positive("bytes")?, positive("torn_bytes")?);
        if cut.is_some() && torn.is_some() {
            return Err(NemesisError::BadValue {
                f: TRUNCATE_LOG.into(),
                value: value.to_string(),
                expected: "`bytes` (cut the log) or `torn_bytes` (a torn write), not both".into(),
            });
        }
        let buf = self.crash_and_read(i)?;
        let size = buf.len() as u64;
        let node = &self.nodes[i];
        let wal = Self::wal(node);
        let mut result = json!({
            "node": node.name,
            "file": wal.display().to_string(),
            "size": size,
        });
        let damage = match cut {
            Some(n) => {
                let n = n.min(size);
                self.cut_tail(i, size, n).map(|()| {
                    result["truncated_bytes"] = json!(n);
                })
            }
            None => {
                let tail = torn_write(&buf, torn, &mut self.rng);
                self.write_at(i, size, &tail).map(|()| {
                    result["torn_bytes"] = json!(tail.len());
                })
            }
        };
        if let Err(e) = damage {
            self.damaged.push(Damaged {
                node: i,
                original: None,
                full: false,
            });
            return Err(e);
        }
        match self.restart(i) {
            Ok(()) => result["restarted"] = json!(true),
            Err(e) => {
                result["restarted"] = json!(false);
                result["error"] = json!(e.to_string());
                result["log"] = json!(self.log_line(i));
                self.damaged.push(Damaged {
                    node: i,
                    original: None,
                    full: false,
                });
            }
        }
        Ok(result)
    }

    /// Cuts the last `cut` bytes off the stopped node `i`'s log of `size` bytes, and says
    /// so in its log (`log-damaged`): bytes it had made durable are gone.
    fn cut_tail(&self, i: usize, size: u64, cut: u64) -> Result<(), NemesisError> {
        let node = &self.nodes[i];
        let wal = Self::wal(node);
        let cmd = Cmd::new("truncate")
            .args(["-s", &(size - cut).to_string(), &wal.to_string_lossy()])
            .timeout(FILE_TIMEOUT);
        let out = node.remote.run(&cmd)?;
        if !out.success() {
            return Err(Self::cmd_error(
                node,
                cmd.to_string(),
                out.stderr.trim().to_string(),
            ));
        }
        if cut > 0 {
            self.mark_damaged(i, &format!("fault={TRUNCATE_LOG} bytes={cut}"))?;
        }
        Ok(())
    }

    pub(super) fn corrupt(&mut self, value: &Value) -> Result<Value, NemesisError> {
        let i = self.target(CORRUPT_LOG, value)?;
        let n = match value.get("bytes") {
            None | Some(Value::Null) => 4,
            Some(v) => v.as_u64().filter(|n| (1..=64).contains(n)).ok_or_else(|| {
                NemesisError::BadValue {
                    f: CORRUPT_LOG.into(),
                    value: value.to_string(),
                    expected: "`bytes`: an integer from 1 to 64".into(),
                }
            })? as usize,
        };
        let buf = self.crash_and_read(i)?;
        let records = wal_records(&buf);
        // A record in the middle with a payload, followed by valid records.
        let candidates: Vec<(usize, usize)> = records[..records.len().saturating_sub(2)]
            .iter()
            .copied()
            .filter(|(_, len)| *len > HEADER)
            .collect();
        let Some(&(start, len)) = candidates.get(candidates.len() / 2) else {
            // Put the node back before reporting.
            let back = self.restart(i);
            let node = &self.nodes[i];
            let mut err = NemesisError::BadNode {
                node: node.name.clone(),
                reason: format!(
                    "its log {} has only {} records; nothing to corrupt in the middle",
                    Self::wal(node).display(),
                    records.len()
                ),
            };
            if let Err(e) = back {
                err = NemesisError::Heal(vec![
                    err.to_string(),
                    format!("{}: not back: {e}", node.name),
                ]);
            }
            return Err(err);
        };
        let payload = len - HEADER;
        let k = n.min(payload);
        let at = start + HEADER + (payload - k) / 2;
        let original = buf[at..at + k].to_vec();
        let flipped: Vec<u8> = original.iter().map(|b| !b).collect();
        self.damaged.push(Damaged {
            node: i,
            original: Some((at as u64, original)),
            full: false,
        });
        self.write_at(i, at as u64, &flipped)?;
        let node = &self.nodes[i];
        self.db.start(node).map_err(|e| NemesisError::Node {
            node: node.name.clone(),
            action: "start",
            source: Box::new(e),
        })?;
        // Wait until it exits (expected) or serves (a finding).
        let deadline = Instant::now() + REFUSAL_TIMEOUT;
        let refused = loop {
            if !node.remote.is_running(&node.pid_file())? {
                break true;
            }
            if self
                .db
                .await_ready(node, Duration::from_millis(200))
                .is_ok()
            {
                break false;
            }
            if Instant::now() >= deadline {
                break false;
            }
            thread::sleep(Duration::from_millis(50));
        };
        Ok(json!({
            "node": node.name,
            "file": Self::wal(node).display().to_string(),
            "offset": start,
            "flipped_at": at,
            "bytes": k,
            "refused": refused,
            "log": self.log_line(i),
        }))
    }
}

#[cfg(test)]
mod tests {
    use faultline_kv_proto::wal::put_record;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_torn_write_is_a_prefix_of_the_last_record_short_of_whole() {
        let mut buf = Vec::new();
        put_record(&mut buf, b"first");
        put_record(&mut buf, b"the last one");
        let (start, len) = *wal_records(&buf).last().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let tail = torn_write(&buf, None, &mut rng);
            assert!(!tail.is_empty() && tail.len() < len, "{}", tail.len());
            assert_eq!(tail, buf[start..start + tail.len()]);
            // Appended, it is not a record: the log's records are the same.
            let mut torn = buf.clone();
            torn.extend_from_slice(&tail);
            assert_eq!(wal_records(&torn), wal_records(&buf));
        }
        assert_eq!(torn_write(&buf, Some(3), &mut rng), buf[start..start + 3]);
        assert_eq!(torn_write(&buf, Some(10_000), &mut rng).len(), len - 1);
        // An empty log gets part of a header.
        let tail = torn_write(&[], None, &mut rng);
        assert!(!tail.is_empty() && tail.len() < HEADER);
        assert!(wal_records(&tail).is_empty());
    }
}
