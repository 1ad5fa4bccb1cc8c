//! The databases a run can test, by name: [`Database`], with what each can do before it
//! is built (its capabilities: which faults it may have). How each is built and reached
//! is the run's side (`harness/src/run/database.rs`).

use std::fmt;

use clap::ValueEnum;
use faultline_clusters::db::Capabilities;
use faultline_clusters::{EtcdDb, FileDb, KvDb, PostgresDb, ZookeeperDb};
use serde::Serialize;

use super::choice;
use crate::error::UsageError;

/// The database under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The bundled faultline-kv (`--db kv`).
    Kv,
    /// etcd, from this machine's `PATH` (`--db etcd`).
    Etcd,
    /// PostgreSQL, a single primary (`--db postgres`).
    Postgres,
    /// Apache ZooKeeper, an ensemble of one server per node (`--db zookeeper`).
    Zookeeper,
    /// Any other, described in a `--db-file`: its name there.
    File(String),
}

/// The values of `--db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BuiltIn {
    /// faultline-kv, the bundled node.
    Kv,
    /// etcd, from Debian's etcd-server.
    Etcd,
    /// PostgreSQL, a single primary, from Debian's postgresql.
    Postgres,
    /// Apache ZooKeeper, an ensemble, from Debian's zookeeperd.
    Zookeeper,
}

impl Database {
    /// The built-in database named `value` (`--db`).
    pub fn built_in(origin: &str, value: &str) -> Result<Database, UsageError> {
        Ok(match choice::<BuiltIn>(origin, value)? {
            BuiltIn::Kv => Database::Kv,
            BuiltIn::Etcd => Database::Etcd,
            BuiltIn::Postgres => Database::Postgres,
            BuiltIn::Zookeeper => Database::Zookeeper,
        })
    }

    /// Its name: `kv`, `etcd`, `postgres`, `zookeeper`, or the one in its file.
    pub fn name(&self) -> &str {
        match self {
            Database::Kv => "kv",
            Database::Etcd => "etcd",
            Database::Postgres => "postgres",
            Database::Zookeeper => "zookeeper",
            Database::File(name) => name,
        }
    }

    /// What it can do, before it is built: which faults it may have.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            Database::Kv => KvDb::CAPABILITIES,
            Database::Etcd => EtcdDb::CAPABILITIES,
            Database::Postgres => PostgresDb::CAPABILITIES,
            Database::Zookeeper => ZookeeperDb::CAPABILITIES,
            Database::File(_) => FileDb::CAPABILITIES,
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Database {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}
