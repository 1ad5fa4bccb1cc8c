//! Disk full for the disk nemesis: a node's data directory moved onto a size-limited
//! tmpfs, whose limit is then lowered to what is in use and the rest filled, so the
//! node's next write fails with `ENOSPC`; freeing raises the limit again and removes the
//! filler.
//!
//! Mounts are made on the controller, in its own mount namespace (never inside `ip
//! netns exec`, which gives each command a private copy of the mount table), so this
//! works where a node's directory is a directory of the controller: local namespace
//! hosts. The tmpfs is mounted at `DIR/disk` and `DIR/data` becomes a symbolic link to
//! `DIR/disk/data` (so wiping the data directory removes the link, not a mount point).
//! Each mount is recorded in the run's registry before it is made, as a command that
//! unmounts it, so teardown, an interrupt and `faultline clean` remove it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use faultline_clusters::{Cmd, Localhost, Node, Registry, Remote, Resource};

use crate::error::NemesisError;

/// The filler file's name, inside the full data directory.
pub const FILLER: &str = "faultline-disk-full";
/// How long one mount or fill command may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where node `node`'s tmpfs is mounted.
pub(crate) fn mount_point(node: &Node) -> PathBuf {
    node.dir.join("disk")
}

/// The registry entry that unmounts `mount` (lazily; nothing if it is not mounted).
pub(crate) fn unmount_resource(mount: &Path) -> Resource {
    Resource::Command {
        description: format!("tmpfs mount at {}", mount.display()),
        argv: vec![
            "sh".into(),
            "-c".into(),
            "if mountpoint -q \"$1\"; then umount -l \"$1\"; fi".into(),
            "sh".into(),
            mount.to_string_lossy().into_owned(),
        ],
    }
}

/// Mounts and fills tmpfs data directories on the controller.
pub(crate) struct FullDisks {
    registry: Arc<Registry>,
    local: Localhost,
}

impl FullDisks {
    /// Mounts recorded in `registry` (the run's).
    pub(crate) fn new(registry: Arc<Registry>) -> FullDisks {
        FullDisks {
            registry,
            local: Localhost::new(),
        }
    }

    fn sh(
        &self,
        node: &Node,
        what: &str,
        script: &str,
        args: &[&str],
    ) -> Result<String, NemesisError> {
        let cmd = Cmd::new("sh")
            .args(["-c", script, "sh"])
            .args(args.iter().copied())
            .timeout(TIMEOUT);
        let out = self.local.run(&cmd)?;
        if !out.success() {
            return Err(NemesisError::Command {
                node: node.name.clone(),
                command: what.to_string(),
                reason: out.stderr.trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    /// Moves the (stopped) node's data directory onto a fresh tmpfs (limit: half the
    /// memory, tmpfs's default), recorded in the registry first.
    pub(crate) fn mount(&self, node: &Node) -> Result<(), NemesisError> {
        let mount = mount_point(node);
        let resource = unmount_resource(&mount);
        self.registry
            .record(resource.clone())
            .map_err(|e| NemesisError::Record {
                resource: resource.to_string(),
                reason: e.to_string(),
            })?;
        let data = node.data_dir();
        self.sh(
            node,
            &format!("mount a tmpfs at {} for {}", mount.display(), data.display()),
            "set -e; d=\"$1\"; m=\"$2\"; mkdir -p \"$m\"; \
             mountpoint -q \"$m\" || mount -t tmpfs -o size=50%,mode=0755 faultline-disk \"$m\"; \
             rm -rf \"$m/data\"; if [ -e \"$d\" ]; then cp -a \"$d\" \"$m/data\"; else mkdir \"$m/data\"; fi; \
             rm -rf \"$d\"; ln -s \"$m/data\" \"$d\"",
            &[&data.to_string_lossy(), &mount.to_string_lossy()],
        )?;
        Ok(())
    }

    /// Lowers the tmpfs limit to what is in use and fills what is left; the bytes of
    /// the filler.
    pub(crate) fn fill(&self, node: &Node) -> Result<u64, NemesisError> {
        let mount = mount_point(node);
        let out = self.sh(
            node,
            &format!("fill the tmpfs at {}", mount.display()),
            "set -e; m=\"$1\"; f=\"$m/data/$2\"; \
             for slack in 64 1024 8192; do \
               used=$(df -k --output=used \"$m\" | tail -n 1 | tr -d ' '); \
               if mount -o remount,size=$((used + slack))k \"$m\"; then break; fi; \
             done; \
             dd if=/dev/zero of=\"$f\" bs=4096 2>/dev/null || true; \
             stat -c %s \"$f\"",
            &[&mount.to_string_lossy(), FILLER],
        )?;
        out.trim().parse().map_err(|_| NemesisError::Command {
            node: node.name.clone(),
            command: format!("fill the tmpfs at {}", mount.display()),
            reason: format!("unexpected output {out:?}"),
        })
    }

    /// Raises the limit back (half the memory) and removes the filler.
    pub(crate) fn free(&self, node: &Node) -> Result<(), NemesisError> {
        let mount = mount_point(node);
        self.sh(
            node,
            &format!("free the tmpfs at {}", mount.display()),
            "set -e; m=\"$1\"; mountpoint -q \"$m\" || exit 0; \
             mount -o remount,size=50% \"$m\"; rm -f \"$m/data/$2\"",
            &[&mount.to_string_lossy(), FILLER],
        )?;
        Ok(())
    }
}
