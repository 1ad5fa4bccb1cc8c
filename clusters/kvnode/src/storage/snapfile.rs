//! The snapshot file: `FLKVSNP1`, a crc32 of the rest, the metadata and the data.
//! Written atomically: a temp file, fsync, rename over the old one, fsync the directory.

use std::io::Write;
use std::path::Path;

use crate::codec::{Decoder, Encoder};
use crate::consensus::Snapshot;

use super::{StorageError, sync_dir};

const MAGIC: &[u8; 8] = b"FLKVSNP1";

/// Writes `snapshot` to `path` atomically.
pub fn write(path: &Path, snapshot: &Snapshot) -> Result<(), StorageError> {
    let mut body = Encoder::default();
    body.snapshot_meta(&snapshot.meta);
    body.bytes(&snapshot.data);
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&body.buf).to_le_bytes());
    bytes.extend_from_slice(&body.buf);

    let tmp = path.with_extension("tmp");
    let io = |op: &'static str, p: &Path| {
        let path = p.to_path_buf();
        move |source| StorageError::Io { op, path, source }
    };
    let mut file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(&bytes).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("fsync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io("rename", &tmp))?;
    sync_dir(path)
}

/// Reads the snapshot at `path`; `Ok(None)` if there is none.
pub fn read(path: &Path) -> Result<Option<Snapshot>, StorageError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StorageError::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let corrupt = |detail: &str| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail: detail.to_string(),
    };
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(corrupt("not a faultline-kv snapshot (bad magic)"));
    }
    let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let body = &bytes[12..];
    if crc32fast::hash(body) != crc {
        return Err(corrupt("snapshot fails its checksum"));
    }
    let mut d = Decoder::new(body, "snapshot");
    let meta = d.snapshot_meta().map_err(|e| corrupt(&e.to_string()))?;
    let data = d.bytes().map_err(|e| corrupt(&e.to_string()))?;
    Ok(Some(Snapshot { meta, data }))
}
