//! Faultline's hosts and databases: where the nodes of a cluster run, how the controller
//! reaches them, and the lifecycle of the database on them.
//!
//! A [`Remote`] runs commands (argv, no shell, with a timeout), copies files to and from
//! the host, starts daemons with a pid file and a log file, and signals them. Backends:
//! [`Localhost`] (this machine), [`NetnsHost`] (a network namespace per node on a private
//! bridge: the default), [`docker::DockerHost`] (a container per node on an internal
//! network) and [`ssh::SshHost`] (real machines). Databases ([`Db`]: the bundled
//! [`KvDb`] and [`EtcdDb`]) and the nemesis are written once against the trait. A run
//! chooses its [`Backend`] once ([`Planned`]); network faults of every backend go
//! through one nft engine ([`nft`]). Every
//! resource a run creates is recorded first in its state file ([`Registry`]), so teardown,
//! and [`clean`] after a crash, remove exactly what was made. A controller calls
//! [`cleanup::teardown_on_interrupt`] to tear its runs down on Ctrl-C (SIGINT) or SIGTERM.
//!
//! ```
//! use std::time::Duration;
//! use faultline_clusters::{Cmd, Localhost, Remote};
//!
//! let host = Localhost::new();
//! let out = host.run(&Cmd::new("echo").arg("hi").timeout(Duration::from_secs(5))).unwrap();
//! assert!(out.success());
//! assert_eq!(out.stdout, "hi\n");
//! ```
#![deny(missing_docs)]

pub mod backend;
pub mod cleanup;
pub mod db;
pub mod docker;
mod error;
mod localhost;
mod name;
pub mod netns;
pub mod nft;
mod posix;
mod remote;
pub mod reserve;
pub mod ssh;
mod status;

pub use backend::{Backend, ClusterKind, Planned, Program, SshCluster};
pub use cleanup::{Registry, Resource, clean};
pub use db::{
    Db, DbFile, EtcdDb, FileDb, KvDb, Lazyfs, Node, Pause, PostgresDb, PowerLoss, Primaries,
    ZookeeperDb,
};
pub use error::{CleanupError, ClusterError, RemoteError};
pub use localhost::Localhost;
pub use name::{MAX_NAME_LEN, check_name};
pub use netns::{NetnsCluster, NetnsHost};
pub use remote::{Cmd, DaemonSpec, ExitStatus, Output, Remote, Signal};
