//! The programs a run needs on this machine: faultline-kv, faultline-lazyfs and the
//! packet delayer (built beside `faultline`, or named by an environment variable), and
//! etcd (on the `PATH`). A missing one is a usage error saying how to get it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::error::UsageError;

/// The faultline-kv binary: `$FAULTLINE_KV` if set, else beside this executable (both
/// are built by `cargo build --release`).
pub fn kv_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("FAULTLINE_KV") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(UsageError(format!(
            "FAULTLINE_KV={}: no such file; unset it to use the faultline-kv beside faultline",
            path.display()
        ))
        .into());
    }
    let exe = std::env::current_exe().context("cannot find the faultline executable")?;
    let beside = exe.with_file_name("faultline-kv");
    if beside.is_file() {
        return Ok(beside);
    }
    Err(UsageError(format!(
        "{}: faultline-kv is missing; build it with `cargo build --release` (it is built beside faultline)",
        beside.display()
    ))
    .into())
}

/// faultline-lazyfs: `$FAULTLINE_LAZYFS` if set, else beside this executable.
pub fn lazyfs_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("FAULTLINE_LAZYFS") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()
            .context("cannot find the faultline executable")?
            .with_file_name("faultline-lazyfs"),
    };
    if path.is_file() {
        return Ok(path);
    }
    Err(UsageError(format!(
        "{}: faultline-lazyfs is missing (the power fault needs it); build it with \
         `cargo build --release`, or point FAULTLINE_LAZYFS at it",
        path.display()
    ))
    .into())
}

/// The packet delayer (`faultline-delayer`, built by `cargo build --release` beside
/// faultline), `$FAULTLINE_DELAYER` if set; `None` when it is missing, in which case
/// packet faults are loss and bandwidth only.
pub fn delayer_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FAULTLINE_DELAYER") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.with_file_name("faultline-delayer")).filter(|p| p.is_file())
}

/// The etcd binary on this machine's PATH.
pub fn etcd_binary() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            UsageError(
                "etcd is not installed: `apt-get install etcd-server` (Debian), or use --db kv"
                    .into(),
            )
            .into()
        })
}

/// A copy of `binary` without its debug sections (`strip --strip-debug`: symbols stay,
/// for backtraces), beside it as `NAME.stripped` and refreshed when older, for
/// uploading to SSH hosts: faultline-kv shrinks from ~28 MB to ~4 MB, most of a node's
/// start time over SSH. `binary` itself when `strip` is missing or fails.
pub fn stripped(binary: &Path) -> PathBuf {
    let Some(name) = binary.file_name() else {
        return binary.to_path_buf();
    };
    let out = binary.with_file_name(format!("{}.stripped", name.to_string_lossy()));
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(copied)) = (modified(binary), modified(&out))
        && copied >= built
    {
        return out;
    }
    // Written aside and renamed, so that two runs at once never upload half a file.
    let partial = binary.with_file_name(format!(
        "{}.stripped.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&partial)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    if stripped && std::fs::rename(&partial, &out).is_ok() {
        return out;
    }
    let _ = std::fs::remove_file(&partial);
    binary.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stripped_copy_is_smaller_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("prog");
        std::fs::copy(std::env::current_exe().unwrap(), &binary).unwrap();
        let out = stripped(&binary);
        assert_eq!(out, dir.path().join("prog.stripped"));
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        assert!(
            size(&out) < size(&binary),
            "{} !< {}",
            size(&out),
            size(&binary)
        );
        // Fresh: kept as it is.
        let first = std::fs::metadata(&out).unwrap().modified().unwrap();
        assert_eq!(stripped(&binary), out);
        assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), first);
        // Not an executable: the original is uploaded.
        let text = dir.path().join("notes");
        std::fs::write(&text, "not a program").unwrap();
        assert_eq!(stripped(&text), text);
    }
}
