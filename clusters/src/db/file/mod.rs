//! A database described in a TOML file (`--db-file mydb.toml`): what to upload, how to
//! start and stop it, where its logs are, how to tell it is ready and who leads. The
//! format is specified in `docs/db-file.md`; `examples/etcd/etcd.toml` is a full
//! example.
//!
//! [`DbFile::load`] reads and checks the file (every placeholder is known, every path
//! exists) before anything is deployed; errors are `FILE:LINE: message`. [`FileDb`] runs
//! it on the nodes through the same [`Db`] lifecycle as the built-in databases, so every
//! nemesis applies: kill through the stop signal or command, pause through signals on the
//! recorded pid, isolate-leader and `primaries` targets only when a leader command is
//! given.

mod db;
mod spec;

pub use db::FileDb;
pub use spec::{DbFile, PLACEHOLDERS, Ready, Stop};
