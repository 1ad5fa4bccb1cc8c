//! The log faults of [`DiskNemesis`]: `truncate-log` (a torn tail) and `corrupt-log`
//! (flipped bytes in a middle record), on a killed node's log read record by record
//! with [`faultline_kv_proto::wal`]'s framing; and the file work they share.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::Cmd;
use faultline_kv_proto::wal::HEADER;
use rand::RngExt;
use serde_json::{Value, json};

use super::{CORRUPT_LOG, Damaged, DiskNemesis, FILE_TIMEOUT, TRUNCATE_LOG, wal_records};
use crate::error::NemesisError;
use crate::process::crash;

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
        let bytes = match value.get("bytes") {
            None | Some(Value::Null) => None,
            Some(v) => {
                Some(
                    v.as_u64()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| NemesisError::BadValue {
                            f: TRUNCATE_LOG.into(),
                            value: value.to_string(),
                            expected: "`bytes`: a positive integer".into(),
                        })?,
                )
            }
        };
        let buf = self.crash_and_read(i)?;
        let size = buf.len() as u64;
        let cut = match bytes {
            Some(n) => n.min(size),
            None => match wal_records(&buf).last() {
                Some((_, len)) => self.rng.random_range(1..=*len as u64),
                None => 0,
            },
        };
        let node = &self.nodes[i];
        let wal = Self::wal(node);
        let new_size = size - cut;
        let cmd = Cmd::new("truncate")
            .args(["-s", &new_size.to_string(), &wal.to_string_lossy()])
            .timeout(FILE_TIMEOUT);
        let out = node.remote.run(&cmd)?;
        if !out.success() {
            self.damaged.push(Damaged {
                node: i,
                original: None,
                full: false,
            });
            return Err(Self::cmd_error(
                node,
                cmd.to_string(),
                out.stderr.trim().to_string(),
            ));
        }
        if cut > 0 {
            if let Err(e) = self.mark_damaged(i, &format!("fault={TRUNCATE_LOG} bytes={cut}")) {
                self.damaged.push(Damaged {
                    node: i,
                    original: None,
                    full: false,
                });
                return Err(e);
            }
        }
        let node = &self.nodes[i];
        let mut result = json!({
            "node": node.name,
            "file": wal.display().to_string(),
            "size": size,
            "truncated_bytes": cut,
        });
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
