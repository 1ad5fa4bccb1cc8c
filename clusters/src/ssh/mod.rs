//! The SSH backend: real machines, listed in a hosts file ([`SshConfig`]), reached with
//! `ssh2` (libssh2). Host keys are checked against a known_hosts file; connections have
//! timeouts and retries; [`connect_all`] and [`on_all`] drive every host in parallel.
//!
//! ```no_run
//! use std::path::Path;
//! use faultline_clusters::Cmd;
//! use faultline_clusters::Remote;
//! use faultline_clusters::ssh::{SshConfig, connect_all, on_all};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SshConfig::load(Path::new("hosts.toml"))?;
//! let hosts = connect_all(&config)?;
//! let outputs = on_all(&hosts, |h| h.run(&Cmd::new("uname").arg("-r")));
//! # Ok(()) }
//! ```

mod config;
mod host;
mod known_hosts;
mod run_dir;

use std::path::PathBuf;
use std::thread;

pub use config::{HostSpec, SshConfig};
pub use host::SshHost;
pub use run_dir::{check_run_dir, remove_run_dir, run_dir};

/// Something went wrong reading the hosts file or connecting to a host. Every message
/// is one line naming the file or the host, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The hosts file is missing or wrong.
    #[error("{}: {reason}", file.display())]
    HostsFile {
        /// The file.
        file: PathBuf,
        /// What is wrong, with the line or host.
        reason: String,
    },
    /// No TCP connection or SSH handshake, after every retry.
    #[error(
        "{host} ({address}): cannot connect after {attempts} attempt(s): {reason}; is the host up and sshd listening there?"
    )]
    Connect {
        /// The host.
        host: String,
        /// `address:port`.
        address: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        reason: String,
    },
    /// The host's key is not in the known_hosts file.
    #[error(
        "{host} ({address}): host key not in {}; add it (ssh-keyscan -p {port} {addr} >> {}) or set accept_unknown_host_keys = true",
        known_hosts.display(), known_hosts.display()
    )]
    UnknownHostKey {
        /// The host.
        host: String,
        /// `address:port`.
        address: String,
        /// Its address alone.
        addr: String,
        /// Its port.
        port: u16,
        /// The known_hosts file.
        known_hosts: PathBuf,
    },
    /// The host's key differs from the one in the known_hosts file.
    #[error(
        "{host} ({address}): host key does not match the one in {} (was the host reinstalled, or is someone in the middle?); fix that line if the new key is right",
        known_hosts.display()
    )]
    HostKeyMismatch {
        /// The host.
        host: String,
        /// `address:port`.
        address: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
    },
    /// A `@revoked` line of the known_hosts file names the host's key.
    #[error(
        "{host} ({address}): host key is marked @revoked in {}, line {line}; it must not be accepted: check the host (was it compromised?) and give it a new host key",
        known_hosts.display()
    )]
    RevokedHostKey {
        /// The host.
        host: String,
        /// `address:port`.
        address: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
        /// The `@revoked` line.
        line: usize,
    },
    /// The known_hosts file could not be read, or a line of it is malformed.
    #[error("{host}: known_hosts file {}: {reason}", known_hosts.display())]
    KnownHosts {
        /// The host.
        host: String,
        /// The file.
        known_hosts: PathBuf,
        /// Why.
        reason: String,
    },
    /// The server refused the key.
    #[error(
        "{host} ({address}): authentication as `{user}` with key {} failed ({reason}); is its public key in ~{user}/.ssh/authorized_keys there?",
        key.display()
    )]
    Auth {
        /// The host.
        host: String,
        /// `address:port`.
        address: String,
        /// The user.
        user: String,
        /// The private key file.
        key: PathBuf,
        /// libssh2's reason.
        reason: String,
    },
}

impl SshError {
    /// The host the error is about, if it is about one.
    pub fn host(&self) -> Option<&str> {
        match self {
            SshError::HostsFile { .. } => None,
            SshError::Connect { host, .. }
            | SshError::UnknownHostKey { host, .. }
            | SshError::HostKeyMismatch { host, .. }
            | SshError::RevokedHostKey { host, .. }
            | SshError::KnownHosts { host, .. }
            | SshError::Auth { host, .. } => Some(host),
        }
    }
}

/// Connects to every host of `config` in parallel; the first error (in file order) if
/// any host cannot be reached.
pub fn connect_all(config: &SshConfig) -> Result<Vec<SshHost>, SshError> {
    on_all(&config.hosts, |spec| SshHost::connect(spec, config))
        .into_iter()
        .collect()
}

/// Runs `f` on every item of `hosts`, each on its own thread, and returns the results in
/// the same order. A panicking `f` panics here too.
pub fn on_all<H, R, F>(hosts: &[H], f: F) -> Vec<R>
where
    H: Sync,
    R: Send,
    F: Fn(&H) -> R + Sync,
{
    let f = &f;
    thread::scope(|s| {
        let handles: Vec<_> = hosts.iter().map(|h| s.spawn(move || f(h))).collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}
