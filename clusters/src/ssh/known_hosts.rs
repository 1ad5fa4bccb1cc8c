//! Host key verification against an OpenSSH known_hosts file, with OpenSSH's rules
//! (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"):
//!
//! - a host on port 22 is looked up as `ADDRESS`, on any other port as `[ADDRESS]:PORT`
//!   (so a plain `ADDRESS KEY` line is for port 22 only);
//! - host patterns are comma-separated, may use `*` and `?`, and `!pattern` excludes;
//!   names are compared without regard to case;
//! - hashed names (`|1|SALT|HASH`, `HashKnownHosts yes`) are HMAC-SHA1 of that lookup name;
//! - a `@revoked` line's key is refused for the hosts it names, whatever other lines say;
//! - `@cert-authority` lines sign host certificates: they are not host keys, and are
//!   neither accepted nor counted as a different key here.
//!
//! A line that cannot be parsed is an error naming its line number, not skipped.

use std::fs;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ssh2::Session;

use super::{HostSpec, SshConfig, SshError};
use hmac::{Hmac, KeyInit, Mac};

/// What a known_hosts file says about a host's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A line for the host has this key.
    Match,
    /// Lines for the host have other keys only.
    Mismatch,
    /// No line is for the host.
    NotFound,
    /// A `@revoked` line for the host has this key (its line number).
    Revoked(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Names {
    /// Comma-separated patterns, lowercased.
    Patterns(Vec<String>),
    /// `|1|SALT|HASH`, decoded.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    line: usize,
    marker: Marker,
    names: Names,
    key: Vec<u8>,
}

/// A parsed known_hosts file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KnownHosts {
    entries: Vec<Entry>,
}

/// The name a host is looked up by: `address` on port 22, `[address]:port` otherwise;
/// lowercased.
pub(crate) fn lookup_name(address: &str, port: u16) -> String {
    let address = address.to_ascii_lowercase();
    if port == 22 {
        address
    } else {
        format!("[{address}]:{port}")
    }
}

impl KnownHosts {
    /// Parses the text of a known_hosts file; an error is `line N: what is wrong`.
    pub(crate) fn parse(text: &str) -> Result<KnownHosts, String> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut fields = trimmed.split_whitespace();
            let mut first = fields.next().unwrap_or_default();
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                m if m.starts_with('@') => {
                    return Err(format!(
                        "line {line}: unknown marker `{m}` (OpenSSH knows @revoked and @cert-authority)"
                    ));
                }
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = fields.next().unwrap_or_default();
            }
            let (Some(_key_type), Some(key)) = (fields.next(), fields.next()) else {
                return Err(format!(
                    "line {line}: expected `[MARKER] HOSTS KEY-TYPE BASE64-KEY [COMMENT]`"
                ));
            };
            let key = STANDARD
                .decode(key)
                .map_err(|e| format!("line {line}: the key is not base64 ({e})"))?;
            let names = parse_names(first).map_err(|e| format!("line {line}: {e}"))?;
            entries.push(Entry {
                line,
                marker,
                names,
                key,
            });
        }
        Ok(KnownHosts { entries })
    }

    /// What the file says about `key` (the SSH wire-format public key blob) for the
    /// host at `address` and `port`.
    pub(crate) fn check(&self, address: &str, port: u16, key: &[u8]) -> Verdict {
        let name = lookup_name(address, port);
        let (mut matched, mut other) = (false, false);
        for entry in self.entries.iter().filter(|e| e.names.matches(&name)) {
            match entry.marker {
                Marker::CertAuthority => {}
                Marker::Revoked if entry.key == key => return Verdict::Revoked(entry.line),
                Marker::Revoked => {}
                Marker::None if entry.key == key => matched = true,
                Marker::None => other = true,
            }
        }
        match (matched, other) {
            (true, _) => Verdict::Match,
            (false, true) => Verdict::Mismatch,
            (false, false) => Verdict::NotFound,
        }
    }
}

fn parse_names(field: &str) -> Result<Names, String> {
    if let Some(rest) = field.strip_prefix('|') {
        let parts: Vec<&str> = rest.split('|').collect();
        let [kind, salt, hash] = parts.as_slice() else {
            return Err(format!("hashed host `{field}` is not |1|SALT|HASH"));
        };
        if *kind != "1" {
            return Err(format!(
                "hashed host `{field}`: unknown hash type {kind} (OpenSSH writes |1|)"
            ));
        }
        let decode = |s: &str, what: &str| {
            STANDARD
                .decode(s)
                .map_err(|e| format!("hashed host `{field}`: the {what} is not base64 ({e})"))
        };
        return Ok(Names::Hashed {
            salt: decode(salt, "salt")?,
            hash: decode(hash, "hash")?,
        });
    }
    let patterns: Vec<String> = field.split(',').map(str::to_ascii_lowercase).collect();
    if patterns.iter().any(|p| p.is_empty() || p == "!") {
        return Err(format!("empty host pattern in `{field}`"));
    }
    Ok(Names::Patterns(patterns))
}

impl Names {
    /// Whether `name` (a lookup name, lowercased) is one of these names: a positive
    /// pattern matches and no negated one does; or the hash matches.
    fn matches(&self, name: &str) -> bool {
        match self {
            Names::Hashed { salt, hash } => hashed_name_matches(salt, hash, name),
            Names::Patterns(patterns) => {
                let mut positive = false;
                for pattern in patterns {
                    match pattern.strip_prefix('!') {
                        Some(negated) if wildcard(negated.as_bytes(), name.as_bytes()) => {
                            return false;
                        }
                        Some(_) => {}
                        None => positive |= wildcard(pattern.as_bytes(), name.as_bytes()),
                    }
                }
                positive
            }
        }
    }
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` one.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Checks the key `session`'s server sent against `config.known_hosts` for `spec`.
pub(crate) fn check_host_key(
    session: &Session,
    spec: &HostSpec,
    config: &SshConfig,
    address: &str,
) -> Result<(), SshError> {
    let known_hosts = config.known_hosts.clone();
    let kh_error = |reason: String| SshError::KnownHosts {
        host: spec.name.clone(),
        known_hosts: known_hosts.clone(),
        reason,
    };
    let (key, _) = session
        .host_key()
        .ok_or_else(|| kh_error("the server sent no host key".to_string()))?;
    let file = if known_hosts.exists() || !config.accept_unknown_host_keys {
        let text = fs::read_to_string(&known_hosts)
            .map_err(|e| kh_error(format!("cannot read it: {e}")))?;
        KnownHosts::parse(&text).map_err(kh_error)?
    } else {
        KnownHosts::default()
    };
    match file.check(&spec.address, spec.port, key) {
        Verdict::Match => Ok(()),
        Verdict::NotFound if config.accept_unknown_host_keys => Ok(()),
        Verdict::NotFound => Err(SshError::UnknownHostKey {
            host: spec.name.clone(),
            address: address.to_string(),
            addr: spec.address.clone(),
            port: spec.port,
            known_hosts,
        }),
        Verdict::Mismatch => Err(SshError::HostKeyMismatch {
            host: spec.name.clone(),
            address: address.to_string(),
            known_hosts,
        }),
        Verdict::Revoked(line) => Err(SshError::RevokedHostKey {
            host: spec.name.clone(),
            address: address.to_string(),
            known_hosts,
            line,
        }),
    }
}

#[cfg(test)]
mod tests;

/// Whether `hash` is OpenSSH's hashed form of `name` with `salt` (`|1|SALT|HASH`,
/// `HashKnownHosts`): HMAC-SHA1 of the name keyed by the salt.
fn hashed_name_matches(salt: &[u8], hash: &[u8], name: &str) -> bool {
    let Ok(mut mac) = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(hash).is_ok()
}
