//! The hosts file: which machines to reach over SSH, and how.
//!
//! ```toml
//! known_hosts = "/root/.ssh/known_hosts"   # the default
//! accept_unknown_host_keys = false         # the default: unknown keys are an error
//! connect_timeout_secs = 5
//! retries = 3
//!
//! [[host]]
//! name = "n1"                  # defaults to the address; the host's directory is
//!                              # /tmp/faultline-RUN/NAME, so the name follows the rule of
//!                              # `--name` (crate::check_name)
//! address = "10.0.0.1"
//! port = 22                    # the default
//! user = "root"                # the default
//! key = "/root/.ssh/id_ed25519"  # relative paths are relative to the hosts file
//! sudo = false                 # run commands with `sudo -n`
//! ```

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::SshError;
use crate::check_name;

/// The hosts file, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    /// The known_hosts file host keys are checked against.
    pub known_hosts: PathBuf,
    /// Accept a host whose key is not in `known_hosts` (a mismatched key is still an
    /// error).
    pub accept_unknown_host_keys: bool,
    /// How long to wait for a TCP connection and for the handshake.
    pub connect_timeout: Duration,
    /// How many times to try connecting before giving up (at least one).
    pub retries: u32,
    /// The hosts, in file order.
    pub hosts: Vec<HostSpec>,
}

/// One host of the hosts file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    /// Its name in the run (`n1`), checked by [`check_name`]: it names the host's
    /// directory.
    pub name: String,
    /// Its address or DNS name.
    pub address: String,
    /// Its SSH port.
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// The private key file.
    pub key: PathBuf,
    /// Whether commands run under `sudo -n`.
    pub sudo: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    known_hosts: Option<PathBuf>,
    #[serde(default)]
    accept_unknown_host_keys: bool,
    connect_timeout_secs: Option<f64>,
    retries: Option<u32>,
    #[serde(default)]
    host: Vec<RawHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Option<Spanned<String>>,
    address: Spanned<String>,
    port: Option<u16>,
    user: Option<String>,
    key: PathBuf,
    #[serde(default)]
    sudo: bool,
}

impl SshConfig {
    /// Reads and checks the hosts file `path`. Errors name the file, and the line or the
    /// host.
    pub fn load(path: &Path) -> Result<SshConfig, SshError> {
        let text = fs::read_to_string(path).map_err(|e| SshError::HostsFile {
            file: path.to_path_buf(),
            reason: format!("cannot read it: {e}"),
        })?;
        SshConfig::parse(&text, path)
    }

    /// Parses hosts-file `text`, read from `path` (for messages and relative key paths).
    pub fn parse(text: &str, path: &Path) -> Result<SshConfig, SshError> {
        let error = |reason: String| SshError::HostsFile {
            file: path.to_path_buf(),
            reason,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    error(format!("line {line}: {message}"))
                }
                None => error(message),
            }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if raw.host.is_empty() {
            return Err(error("no hosts: add [[host]] sections".to_string()));
        }
        let connect_timeout = raw.connect_timeout_secs.unwrap_or(5.0);
        if !(connect_timeout.is_finite() && connect_timeout > 0.0 && connect_timeout < 3600.0) {
            return Err(error(format!(
                "connect_timeout_secs = {connect_timeout}: must be between 0 and 3600"
            )));
        }
        let mut names = HashSet::new();
        let mut hosts = Vec::new();
        let line_of = |span: std::ops::Range<usize>| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        };
        for (i, h) in raw.host.into_iter().enumerate() {
            let address_line = line_of(h.address.span());
            let address = h.address.into_inner();
            if address.trim().is_empty() {
                return Err(error(format!(
                    "line {address_line}: host #{}: empty address",
                    i + 1
                )));
            }
            if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(error(format!(
                    "line {address_line}: host #{}: address `{}` has spaces or control characters; give an IP address or a DNS name",
                    i + 1,
                    address.escape_debug()
                )));
            }
            let (name, name_line, defaulted) = match h.name {
                Some(name) => (name.get_ref().clone(), line_of(name.span()), false),
                None => (address.clone(), address_line, true),
            };
            if let Err(reason) = check_name(&name) {
                let hint = if defaulted {
                    " (the name defaults to the address: give the host a `name`)"
                } else {
                    ""
                };
                return Err(error(format!(
                    "line {name_line}: host #{}: bad name {reason}; it names the host's directory /tmp/faultline-RUN/NAME{hint}",
                    i + 1
                )));
            }
            if !names.insert(name.clone()) {
                return Err(error(format!("host `{name}`: name given twice")));
            }
            hosts.push(HostSpec {
                name,
                address,
                port: h.port.unwrap_or(22),
                user: h.user.unwrap_or_else(|| "root".to_string()),
                key: base.join(h.key),
                sudo: h.sudo,
            });
        }
        let known_hosts = match raw.known_hosts {
            Some(file) => base.join(file),
            None => {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                Path::new(&home).join(".ssh/known_hosts")
            }
        };
        Ok(SshConfig {
            known_hosts,
            accept_unknown_host_keys: raw.accept_unknown_host_keys,
            connect_timeout: Duration::from_secs_f64(connect_timeout),
            retries: raw.retries.unwrap_or(3).max(1),
            hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_with_defaults() {
        let text = "known_hosts = \"kh\"\n[[host]]\nname = \"n1\"\naddress = \"10.0.0.1\"\nkey = \"id\"\n\
                    [[host]]\naddress = \"10.0.0.2\"\nport = 2222\nuser = \"u\"\nkey = \"/k\"\nsudo = true\n";
        let config = SshConfig::parse(text, Path::new("/etc/fl/hosts.toml")).unwrap();
        assert_eq!(config.known_hosts, Path::new("/etc/fl/kh"));
        assert!(!config.accept_unknown_host_keys);
        assert_eq!(config.retries, 3);
        assert_eq!(config.hosts[0].key, Path::new("/etc/fl/id"));
        assert_eq!(config.hosts[0].port, 22);
        assert_eq!(config.hosts[0].user, "root");
        assert_eq!(config.hosts[1].name, "10.0.0.2");
        assert_eq!(config.hosts[1].port, 2222);
        assert!(config.hosts[1].sudo);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let text = "[[host]]\naddress = \"a\"\nkey = \"k\"\nprot = 22\n";
        let err = SshConfig::parse(text, Path::new("hosts.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("hosts.toml: line 4: unknown field `prot`"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
        let err = SshConfig::parse("[[host]]\naddress = \"a\"\n", Path::new("h.toml")).unwrap_err();
        assert!(err.to_string().contains("missing field `key`"), "{err}");
        let dup =
            "[[host]]\naddress = \"a\"\nkey = \"k\"\n[[host]]\naddress = \"a\"\nkey = \"k\"\n";
        let err = SshConfig::parse(dup, Path::new("h.toml")).unwrap_err();
        assert_eq!(err.to_string(), "h.toml: host `a`: name given twice");
    }

    #[test]
    fn host_names_follow_the_run_name_rule() {
        let bad = [
            ("\"../../../tmp/x\"", "`../../../tmp/x`"),
            ("\"a/b\"", "`a/b`"),
            ("\"..\"", "`..`"),
            ("\"\"", "empty name"),
            ("\"-rf\"", "`-rf`"),
            ("\"a\\u0000b\"", "`a\\0b`"),
        ];
        for (name, expected) in bad {
            let text = format!("[[host]]\nname = {name}\naddress = \"10.0.0.1\"\nkey = \"k\"\n");
            let err = SshConfig::parse(&text, Path::new("h.toml")).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("h.toml: line 2: host #1: bad name {expected}")),
                "{name}: {msg}"
            );
            assert!(msg.contains("/tmp/faultline-RUN/NAME"), "{msg}");
        }
        let long = format!(
            "[[host]]\nname = \"{}\"\naddress = \"a\"\nkey = \"k\"\n",
            "n".repeat(crate::MAX_NAME_LEN + 1)
        );
        let err = SshConfig::parse(&long, Path::new("h.toml")).unwrap_err();
        assert!(err.to_string().contains("use at most 128"), "{err}");
        // Without a name, the address is the name: an IPv6 address needs one.
        let text = "[[host]]\naddress = \"fe80::1\"\nkey = \"k\"\n";
        let err = SshConfig::parse(text, Path::new("h.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("h.toml: line 2: host #1: bad name `fe80::1`"),
            "{msg}"
        );
        assert!(msg.contains("give the host a `name`"), "{msg}");
        let text = "[[host]]\nname = \"n1\"\naddress = \"fe80::1\"\nkey = \"k\"\n";
        assert!(SshConfig::parse(text, Path::new("h.toml")).is_ok());
        let text = "[[host]]\nname = \"n1\"\naddress = \"a b\"\nkey = \"k\"\n";
        let err = SshConfig::parse(text, Path::new("h.toml")).unwrap_err();
        assert!(
            err.to_string().contains("line 3: host #1: address `a b`"),
            "{err}"
        );
    }
}
