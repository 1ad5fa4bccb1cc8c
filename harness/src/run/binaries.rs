//! The programs a run needs on this machine: faultline-kv, faultline-lazyfs and the
//! packet delayer (built beside `faultline`, or named by an environment variable), and
//! etcd (on the `PATH`). A missing one is a usage error saying how to get it.

use std::path::PathBuf;

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
