//! The one rule for tests that need something the machine may lack (Docker, sshd, FUSE,
//! libfaketime, PostgreSQL, ZooKeeper, root): under `CI=true` its absence fails the test, naming what is missing
//! and the package that brings it (`.ci/run` installs them all and sets `CI=true`);
//! elsewhere the test is skipped, visibly:
//!
//! ```text
//! SKIPPED docker_net_applies_grudges_and_heals: docker not found (install docker.io); under CI=true this fails
//! ```
//!
//! The notice goes straight to the process's standard error, which libtest does not
//! capture (it captures `eprintln!`), so it shows in every `cargo test` output.
//!
//! ```no_run
//! use faultline_testsupport::{Need, available};
//! if !available(Need::Sshd) {
//!     return;
//! }
//! ```

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use faultline_clusters::db::FAKETIME_LIBS;
use faultline_clusters::docker::{DockerError, check_prerequisites};
use faultline_clusters::{PostgresDb, ZookeeperDb};

/// Something a test needs from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The `docker` command (Debian `docker.io`). A command whose engine cannot be
    /// reached is not a reason to skip: the test fails with the engine's answer.
    Docker,
    /// `/usr/sbin/sshd` (Debian `openssh-server`).
    Sshd,
    /// `/dev/fuse` (the kernel's fuse module; Debian `fuse3` brings its tools).
    Fuse,
    /// libfaketime at one of [`FAKETIME_LIBS`] (Debian `libfaketime`).
    Libfaketime,
    /// PostgreSQL's server programs (`postgres`, `initdb`) under
    /// `/usr/lib/postgresql/VERSION/bin` (Debian `postgresql`).
    Postgres,
    /// ZooKeeper's jars under `/usr/share/java` and a Java runtime at `/usr/bin/java`
    /// (Debian `zookeeperd`).
    Zookeeper,
    /// An effective user id of 0.
    Root,
}

impl Need {
    /// What is missing, `None` when the machine has it. Panics when Docker's command is
    /// there but its engine does not answer.
    fn missing(self) -> Option<&'static str> {
        let present = match self {
            Need::Docker => match check_prerequisites() {
                Err(DockerError::NoCli) => false,
                Err(e) => panic!("docker is installed but unusable: {e}"),
                Ok(()) => true,
            },
            Need::Sshd => Path::new("/usr/sbin/sshd").exists(),
            Need::Fuse => Path::new("/dev/fuse").exists(),
            Need::Libfaketime => FAKETIME_LIBS.iter().any(|p| Path::new(p).is_file()),
            Need::Postgres => PostgresDb::find_bin_dir().is_ok(),
            Need::Zookeeper => ZookeeperDb::find_java().is_ok(),
            // The owner of /proc/self is the process's effective user.
            Need::Root => std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0),
        };
        (!present).then_some(match self {
            Need::Docker => "docker not found",
            Need::Sshd => "/usr/sbin/sshd not found",
            Need::Fuse => "/dev/fuse not found",
            Need::Libfaketime => "libfaketime not found",
            Need::Postgres => "PostgreSQL (/usr/lib/postgresql/VERSION/bin/postgres) not found",
            Need::Zookeeper => "ZooKeeper (/usr/share/java/zookeeper.jar and java) not found",
            Need::Root => "not running as root",
        })
    }

    /// How to get it.
    fn remedy(self) -> &'static str {
        match self {
            Need::Docker => "install docker.io",
            Need::Sshd => "install openssh-server",
            Need::Fuse => "install fuse3 and load the fuse module",
            Need::Libfaketime => "install libfaketime",
            Need::Postgres => "install postgresql",
            Need::Zookeeper => "install zookeeperd",
            Need::Root => "run the tests as root",
        }
    }
}

/// Whether the tests run under CI: `CI` set to anything but empty, `false` or `0` (as CI
/// services and `.ci/run` set it).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    })
}

/// Whether the machine has `need`. When it does not: under [`under_ci`] the calling test
/// fails here, naming what is missing and the package that brings it; otherwise a
/// `SKIPPED` line goes to standard error (uncaptured) and the caller returns early.
#[track_caller]
pub fn available(need: Need) -> bool {
    let Some(missing) = need.missing() else {
        return true;
    };
    let test = test_name();
    if under_ci() {
        panic!(
            "{test}: {missing} ({}); under CI=true a missing requirement fails the test \
             (.ci/run installs everything)",
            need.remedy()
        );
    }
    let line = format!(
        "SKIPPED {test}: {missing} ({}); under CI=true this fails\n",
        need.remedy()
    );
    // Not `eprintln!`: libtest captures it, and the skip must be seen.
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

/// The running test's name: libtest names each test's thread after it, except with a
/// single test thread, where the test binary's name has to do.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .map(|exe| format!("a test of {exe}"))
            .unwrap_or_else(|| "a test".to_string()),
    }
}
