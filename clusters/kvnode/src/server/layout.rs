//! The data directory's layout: an unsharded node's storage is the directory itself;
//! a sharded node's is `shard-K` under it for each shard, with the shard count in the
//! file `shards`, so that a node restarted with another `--shards` stops with an error
//! instead of reading keys from the wrong shards.

use std::path::{Path, PathBuf};

use crate::commit::ShardId;

/// The data directory does not fit the shard count, or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Written with another shard count.
    #[error(
        "the data directory {dir} was written with --shards {found} but this node runs \
         --shards {wanted}; start it with --shards {found}, or remove the data directory"
    )]
    WrongShards {
        /// The data directory.
        dir: String,
        /// Its shard count.
        found: u32,
        /// The node's.
        wanted: u32,
    },
    /// The shard count file holds something else.
    #[error("{path} holds {text:?}, not a shard count; remove the data directory")]
    BadCount {
        /// The file.
        path: String,
        /// What it holds.
        text: String,
    },
    /// The directory or the file cannot be read or written.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Where shard `shard` of `shards` keeps its storage under `data_dir`.
pub fn shard_dir(data_dir: &Path, shard: ShardId, shards: u32) -> PathBuf {
    if shards <= 1 {
        data_dir.to_path_buf()
    } else {
        data_dir.join(format!("shard-{shard}"))
    }
}

/// Checks that `data_dir` was written with `shards` shards (or is new), and records
/// the count when sharded.
pub fn check(data_dir: &Path, shards: u32) -> Result<(), LayoutError> {
    let wrong = |found: u32| LayoutError::WrongShards {
        dir: data_dir.display().to_string(),
        found,
        wanted: shards,
    };
    let marker = data_dir.join("shards");
    let io = |op: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |source| LayoutError::Io { op, path, source }
    };
    let found = match std::fs::read_to_string(&marker) {
        Ok(text) => Some(
            text.trim()
                .parse::<u32>()
                .map_err(|_| LayoutError::BadCount {
                    path: marker.display().to_string(),
                    text: text.trim().to_string(),
                })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("read", &marker)(e)),
    };
    match found {
        Some(found) if found != shards => Err(wrong(found)),
        Some(_) => Ok(()),
        None if shards <= 1 => Ok(()),
        None => {
            // An unsharded node's storage sits in the directory itself.
            let unsharded = std::fs::read_dir(data_dir)
                .map(|entries| {
                    entries.flatten().any(|e| {
                        let name = e.file_name();
                        !name.to_string_lossy().starts_with("shard-")
                    })
                })
                .unwrap_or(false);
            if unsharded {
                return Err(wrong(1));
            }
            std::fs::create_dir_all(data_dir).map_err(io("create", data_dir))?;
            std::fs::write(&marker, format!("{shards}\n")).map_err(io("write", &marker))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_keeps_its_shard_count() {
        let dir = std::env::temp_dir().join(format!("faultline-kv-layout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        check(&dir, 1).unwrap();
        check(&dir, 3).unwrap();
        assert_eq!(shard_dir(&dir, 2, 3), dir.join("shard-2"));
        assert_eq!(shard_dir(&dir, 0, 1), dir);
        check(&dir, 3).unwrap();
        let e = check(&dir, 1).unwrap_err().to_string();
        assert!(e.contains("--shards 3") && e.contains("--shards 1"), "{e}");
        assert!(check(&dir, 2).is_err());
        // An unsharded node's storage, then --shards 3.
        let old = dir.join("old");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("wal"), b"x").unwrap();
        let e = check(&old, 3).unwrap_err().to_string();
        assert!(e.contains("--shards 1"), "{e}");
        std::fs::write(old.join("shards"), b"many").unwrap();
        assert!(check(&old, 3).unwrap_err().to_string().contains("many"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
