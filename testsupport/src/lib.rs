//! Helpers shared by the integration tests of Faultline's crates (a dev-dependency,
//! never published): the release `faultline-kv` binary ([`kv_binary`]), the rule for
//! tests that need a tool the machine may lack ([`require`]: a visible skip, or a
//! failure under `CI=true`), real `sshd` test hosts ([`sshd`]) and small process and
//! network probes ([`process`]).
//!
//! Test code: it panics with a message where a library would return an error.
#![deny(missing_docs)]

pub mod kv_binary;
pub mod process;
pub mod require;
pub mod sshd;

pub use kv_binary::kv_binary;
pub use process::{assert_netns_run_gone, free_port, run, sh};
pub use require::{Need, available, under_ci};
