//! A run's directory on an SSH host, `/tmp/faultline-RUN`: the nodes' binaries, data,
//! logs and pid files, under `NAME/` per host name. It is recorded in the run's registry
//! ([`Resource::SshDir`]) before anything is put there, so teardown, and `faultline
//! clean` after a crash, remove it with `rm -rf` over SSH. The path is only ever built
//! from a checked run id, and checked again before removal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{HostSpec, SshConfig, SshHost};
use crate::cleanup::Resource;
use crate::remote::{Cmd, Remote};

/// Where run directories go on SSH hosts.
const PREFIX: &str = "/tmp/faultline-";

/// The longest run id accepted.
const MAX_RUN_LEN: usize = 32;

/// How long `rm -rf` may take on the host.
const REMOVE_LIMIT: Duration = Duration::from_secs(120);

/// The directory of run `run` on an SSH host, `/tmp/faultline-RUN`; an error if `run`
/// is not 1 to 32 lowercase ASCII letters and digits (a run id, as
/// [`crate::netns::new_run_id`] makes).
pub fn run_dir(run: &str) -> Result<PathBuf, String> {
    let ok = !run.is_empty()
        && run.len() <= MAX_RUN_LEN
        && run
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase());
    if !ok {
        return Err(format!(
            "`{}` is not a run id (1 to {MAX_RUN_LEN} lowercase letters and digits)",
            run.escape_debug()
        ));
    }
    Ok(PathBuf::from(format!("{PREFIX}{run}")))
}

/// Checks that `dir` is exactly a run directory as [`run_dir`] makes it, and nothing
/// else (no other path is ever removed).
pub fn check_run_dir(dir: &Path) -> Result<(), String> {
    let refuse = || {
        format!(
            "{}: not a run directory (/tmp/faultline-RUN); refusing to remove it",
            dir.display()
        )
    };
    let text = dir.to_str().ok_or_else(refuse)?;
    let run = text.strip_prefix(PREFIX).ok_or_else(refuse)?;
    match run_dir(run) {
        Ok(built) if built == dir => Ok(()),
        _ => Err(refuse()),
    }
}

impl SshHost {
    /// The registry record of run `run`'s directory on this host: record it before
    /// anything is put there.
    pub fn run_dir_resource(&self, run: &str) -> Result<Resource, String> {
        Ok(Resource::SshDir {
            host: self.spec().clone(),
            known_hosts: self.config().known_hosts.clone(),
            accept_unknown_host_keys: self.config().accept_unknown_host_keys,
            dir: run_dir(run)?,
        })
    }
}

/// Removes `dir` (checked by [`check_run_dir`], and the host's name by
/// [`crate::check_name`]) on the host `spec` over a new SSH session, checking its key
/// against `known_hosts`. Succeeds if the directory is already gone.
pub fn remove_run_dir(
    spec: &HostSpec,
    known_hosts: &Path,
    accept_unknown_host_keys: bool,
    dir: &Path,
) -> Result<(), String> {
    crate::check_name(&spec.name).map_err(|e| format!("bad host name {e}"))?;
    check_run_dir(dir)?;
    let config = SshConfig {
        known_hosts: known_hosts.to_path_buf(),
        accept_unknown_host_keys,
        connect_timeout: Duration::from_secs(5),
        retries: 2,
        hosts: vec![spec.clone()],
    };
    let host = SshHost::connect(spec, &config).map_err(|e| e.to_string())?;
    let rm = Cmd::new("rm")
        .args(["-rf", "--", &dir.to_string_lossy()])
        .timeout(REMOVE_LIMIT);
    host.run_ok(&rm).map(drop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_are_built_from_run_ids_only() {
        assert_eq!(
            run_dir("3fa9c1").unwrap(),
            Path::new("/tmp/faultline-3fa9c1")
        );
        for bad in ["", "../x", "a/b", "ABC", "a b", "-rf", &"a".repeat(33)] {
            let err = run_dir(bad).unwrap_err();
            assert!(err.contains("is not a run id"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_run_dirs_pass_the_check() {
        assert_eq!(check_run_dir(Path::new("/tmp/faultline-3fa9c1")), Ok(()));
        for bad in [
            "/",
            "/tmp",
            "/tmp/faultline-",
            "/tmp/faultline-3fa9c1/",
            "/tmp/faultline-3fa9c1/n1",
            "/tmp/faultline-../etc",
            "/tmp/faultline-3fa9c1/../..",
            "tmp/faultline-3fa9c1",
            "/tmp/x/faultline-3fa9c1",
        ] {
            let err = check_run_dir(Path::new(bad)).unwrap_err();
            assert!(err.contains("refusing to remove it"), "{bad}: {err}");
        }
    }
}
