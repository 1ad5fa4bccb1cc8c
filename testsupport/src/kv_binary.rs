//! The release `faultline-kv` binary that the integration tests start as nodes.

use std::path::PathBuf;
use std::process::Command;

/// `$CARGO_TARGET_DIR/release/faultline-kv`, else the workspace's
/// `target/release/faultline-kv`; built when missing. (`cargo test --workspace
/// --release` builds it with the workspace; building it again from inside a test would
/// wait on cargo's lock, so a present binary is used as it is.)
pub fn kv_binary() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testsupport/ lies in the workspace root")
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let binary = target.join("release/faultline-kv");
    if !binary.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "faultline-kv"])
            .current_dir(&workspace)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("cannot run cargo");
        assert!(
            status.success(),
            "cargo build --release -p faultline-kv failed"
        );
    }
    binary
}
