//! What the filesystem knows and does, apart from FUSE: inode numbers and paths, open
//! handles, passthrough operations on the backing directory, and each file's
//! [`UndoLog`] of unsynced changes, which [`State::lose_unsynced`] rolls back. Errors
//! are errnos, for the FUSE replies ([`crate::fs::LazyFs`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, TimeOrNow};
use serde_json::{Value, json};

use crate::undo::UndoLog;

/// An open file.
#[derive(Debug)]
struct Handle {
    file: File,
    ino: u64,
    append: bool,
}

/// Everything the filesystem knows, shared between the FUSE loop and the control
/// socket.
#[derive(Debug)]
pub struct State {
    backing: PathBuf,
    /// Inode number to path relative to the backing directory (root: empty path).
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    /// Unsynced changes by inode.
    pending: HashMap<u64, UndoLog>,
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn system_time(secs: i64, nsecs: i64) -> SystemTime {
    let nanos = u32::try_from(nsecs).unwrap_or(0);
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nanos),
        Err(_) => UNIX_EPOCH,
    }
}

fn attr(ino: u64, meta: &fs::Metadata) -> FileAttr {
    let kind = if meta.is_dir() {
        FileType::Directory
    } else if meta.file_type().is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    };
    FileAttr {
        ino,
        size: meta.size(),
        blocks: meta.blocks(),
        atime: system_time(meta.atime(), meta.atime_nsec()),
        mtime: system_time(meta.mtime(), meta.mtime_nsec()),
        ctime: system_time(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind,
        perm: (meta.mode() & 0o7777) as u16,
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: u32::try_from(meta.rdev()).unwrap_or(0),
        blksize: u32::try_from(meta.blksize()).unwrap_or(4096),
        flags: 0,
    }
}

impl State {
    /// A filesystem over `backing`.
    pub fn new(backing: &Path) -> State {
        let mut paths = HashMap::new();
        let mut inos = HashMap::new();
        paths.insert(fuser::FUSE_ROOT_ID, PathBuf::new());
        inos.insert(PathBuf::new(), fuser::FUSE_ROOT_ID);
        State {
            backing: backing.to_path_buf(),
            paths,
            inos,
            next_ino: fuser::FUSE_ROOT_ID + 1,
            handles: HashMap::new(),
            next_fh: 1,
            pending: HashMap::new(),
        }
    }

    pub(crate) fn path(&self, ino: u64) -> Result<&Path, i32> {
        self.paths
            .get(&ino)
            .map(PathBuf::as_path)
            .ok_or(libc::ENOENT)
    }

    pub(crate) fn full(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    pub(crate) fn child(&self, parent: u64, name: &OsStr) -> Result<PathBuf, i32> {
        Ok(self.path(parent)?.join(name))
    }

    pub(crate) fn ino_for(&mut self, rel: &Path) -> u64 {
        if let Some(ino) = self.inos.get(rel) {
            return *ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.paths.insert(ino, rel.to_path_buf());
        self.inos.insert(rel.to_path_buf(), ino);
        ino
    }

    pub(crate) fn forget_path(&mut self, rel: &Path) {
        if let Some(ino) = self.inos.remove(rel) {
            self.paths.remove(&ino);
            self.pending.remove(&ino);
        }
    }

    pub(crate) fn entry(&mut self, rel: &Path) -> Result<FileAttr, i32> {
        let meta = fs::symlink_metadata(self.full(rel)).map_err(|e| errno(&e))?;
        let ino = self.ino_for(rel);
        Ok(attr(ino, &meta))
    }

    pub(crate) fn getattr(&self, ino: u64) -> Result<FileAttr, i32> {
        let meta = fs::symlink_metadata(self.full(self.path(ino)?)).map_err(|e| errno(&e))?;
        Ok(attr(ino, &meta))
    }

    pub(crate) fn open_backing(
        &self,
        rel: &Path,
        flags: i32,
        create: Option<u32>,
    ) -> Result<File, i32> {
        let mode = flags & libc::O_ACCMODE;
        let mut options = OpenOptions::new();
        // Always readable: a write first saves the bytes it overwrites.
        options
            .read(true)
            .write(mode == libc::O_WRONLY || mode == libc::O_RDWR);
        if let Some(perm) = create {
            options.write(true).mode(perm);
            if flags & libc::O_EXCL != 0 {
                options.create_new(true);
            } else {
                options.create(true);
            }
        }
        options.open(self.full(rel)).map_err(|e| errno(&e))
    }

    pub(crate) fn add_handle(&mut self, file: File, ino: u64, flags: i32) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        let append = flags & libc::O_APPEND != 0;
        self.handles.insert(fh, Handle { file, ino, append });
        fh
    }

    /// Opens `ino` for the caller; `O_TRUNC` is an unsynced size change.
    pub(crate) fn open(&mut self, ino: u64, flags: i32) -> Result<u64, i32> {
        let rel = self.path(ino)?.to_path_buf();
        let file = self.open_backing(&rel, flags, None)?;
        if flags & libc::O_TRUNC != 0 {
            self.truncate(ino, &rel, 0)?;
        }
        Ok(self.add_handle(file, ino, flags))
    }

    pub(crate) fn truncate(&mut self, ino: u64, rel: &Path, size: u64) -> Result<(), i32> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.full(rel))
            .map_err(|e| errno(&e))?;
        self.pending
            .entry(ino)
            .or_default()
            .set_len(&file, size)
            .map_err(|e| errno(&e))
    }

    pub(crate) fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64), i32> {
        let rel = self.child(parent, name)?;
        let existed = self.full(&rel).exists();
        let file = self.open_backing(&rel, flags, Some(mode & !umask & 0o7777))?;
        let attr = self.entry(&rel)?;
        if existed && flags & libc::O_TRUNC != 0 {
            self.truncate(attr.ino, &rel, 0)?;
        }
        let attr = self.entry(&rel)?;
        let fh = self.add_handle(file, attr.ino, flags);
        Ok((attr, fh))
    }

    pub(crate) fn read(&self, fh: u64, offset: i64, size: u32) -> Result<Vec<u8>, i32> {
        let handle = self.handles.get(&fh).ok_or(libc::EBADF)?;
        let offset = u64::try_from(offset).map_err(|_| libc::EINVAL)?;
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match handle
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno(&e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub(crate) fn write(&mut self, fh: u64, offset: i64, data: &[u8]) -> Result<u32, i32> {
        let handle = self.handles.get(&fh).ok_or(libc::EBADF)?;
        let offset = if handle.append {
            handle.file.metadata().map_err(|e| errno(&e))?.len()
        } else {
            u64::try_from(offset).map_err(|_| libc::EINVAL)?
        };
        self.pending
            .entry(handle.ino)
            .or_default()
            .write(&handle.file, offset, data)
            .map_err(|e| errno(&e))?;
        u32::try_from(data.len()).map_err(|_| libc::EINVAL)
    }

    pub(crate) fn fsync(&mut self, ino: u64, fh: u64, datasync: bool) -> Result<(), i32> {
        if let Some(handle) = self.handles.get(&fh) {
            let synced = if datasync {
                handle.file.sync_data()
            } else {
                handle.file.sync_all()
            };
            synced.map_err(|e| errno(&e))?;
        }
        if let Some(log) = self.pending.get_mut(&ino) {
            log.synced();
        }
        Ok(())
    }

    pub(crate) fn setattr(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        size: Option<u64>,
        mtime: Option<TimeOrNow>,
    ) -> Result<FileAttr, i32> {
        let rel = self.path(ino)?.to_path_buf();
        let full = self.full(&rel);
        if let Some(mode) = mode {
            fs::set_permissions(&full, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| errno(&e))?;
        }
        if let Some(size) = size {
            self.truncate(ino, &rel, size)?;
        }
        if let Some(mtime) = mtime {
            let time = match mtime {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            let file = File::options()
                .write(true)
                .open(&full)
                .or_else(|_| File::open(&full))
                .map_err(|e| errno(&e))?;
            file.set_modified(time).map_err(|e| errno(&e))?;
        }
        self.getattr(ino)
    }

    pub(crate) fn mkdir(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<FileAttr, i32> {
        let rel = self.child(parent, name)?;
        let full = self.full(&rel);
        fs::create_dir(&full).map_err(|e| errno(&e))?;
        fs::set_permissions(&full, fs::Permissions::from_mode(mode & !umask & 0o7777))
            .map_err(|e| errno(&e))?;
        self.entry(&rel)
    }

    pub(crate) fn unlink(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), i32> {
        let rel = self.child(parent, name)?;
        let full = self.full(&rel);
        if dir {
            fs::remove_dir(&full)
        } else {
            fs::remove_file(&full)
        }
        .map_err(|e| errno(&e))?;
        self.forget_path(&rel);
        Ok(())
    }

    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> Result<(), i32> {
        if flags != 0 {
            return Err(libc::EINVAL);
        }
        let from = self.child(parent, name)?;
        let to = self.child(newparent, newname)?;
        fs::rename(self.full(&from), self.full(&to)).map_err(|e| errno(&e))?;
        // The replaced file is gone, with its unsynced changes.
        self.forget_path(&to);
        // The renamed file (or directory, with everything below it) keeps its inodes.
        let moved: Vec<(PathBuf, u64)> = self
            .inos
            .iter()
            .filter(|(p, _)| p.starts_with(&from))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (old, ino) in moved {
            let new = match old.strip_prefix(&from) {
                Ok(rest) if rest.as_os_str().is_empty() => to.clone(),
                Ok(rest) => to.join(rest),
                Err(_) => continue,
            };
            self.inos.remove(&old);
            self.inos.insert(new.clone(), ino);
            self.paths.insert(ino, new);
        }
        Ok(())
    }

    pub(crate) fn readdir(&mut self, ino: u64) -> Result<Vec<(u64, FileType, PathBuf)>, i32> {
        let rel = self.path(ino)?.to_path_buf();
        let mut names: Vec<(PathBuf, bool)> = fs::read_dir(self.full(&rel))
            .map_err(|e| errno(&e))?
            .filter_map(Result::ok)
            .map(|e| {
                let dir = e.file_type().is_ok_and(|t| t.is_dir());
                (PathBuf::from(e.file_name()), dir)
            })
            .collect();
        names.sort();
        let parent = rel
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(PathBuf::new);
        let mut out = vec![
            (ino, FileType::Directory, PathBuf::from(".")),
            (
                self.ino_for(&parent),
                FileType::Directory,
                PathBuf::from(".."),
            ),
        ];
        for (name, dir) in names {
            let child = self.ino_for(&rel.join(&name));
            let kind = if dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            out.push((child, kind, name));
        }
        Ok(out)
    }

    /// Closes open handle `fh` (its unsynced changes stay with the file).
    pub(crate) fn release(&mut self, fh: u64) {
        self.handles.remove(&fh);
    }

    /// Unsynced writes and files, for `status`.
    pub fn status(&self) -> Value {
        let files = self.pending.values().filter(|l| !l.is_empty()).count();
        let bytes: u64 = self.pending.values().map(UndoLog::unsynced_bytes).sum();
        json!({ "unsynced_files": files, "unsynced_bytes": bytes })
    }

    /// Rolls every file back to its last fsync (a power loss): restores the bytes each
    /// unsynced write overwrote and the size it had. Returns what was discarded, per file
    /// and in total: `{"files":N,"bytes":B,"writes":W,"truncations":T,"discarded":[…]}`.
    pub fn lose_unsynced(&mut self) -> Result<Value, String> {
        let mut inos: Vec<u64> = self.pending.keys().copied().collect();
        inos.sort_unstable();
        let (mut files, mut bytes, mut writes, mut truncations) = (0u64, 0u64, 0u64, 0u64);
        let mut per_file = Vec::new();
        let mut errors = Vec::new();
        for ino in inos {
            let Some(mut log) = self.pending.remove(&ino) else {
                continue;
            };
            if log.is_empty() {
                continue;
            }
            let Some(rel) = self.paths.get(&ino).cloned() else {
                continue;
            };
            let full = self.full(&rel);
            let rolled = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&full)
                .and_then(|file| log.roll_back(&file));
            match rolled {
                Ok(d) => {
                    files += 1;
                    bytes += d.bytes;
                    writes += d.writes;
                    truncations += d.truncations;
                    per_file.push(json!({
                        "file": rel.to_string_lossy(),
                        "writes": d.writes,
                        "bytes": d.bytes,
                        "truncations": d.truncations,
                        "size": d.size,
                    }));
                }
                Err(e) => errors.push(format!("{}: {e}", full.display())),
            }
        }
        if !errors.is_empty() {
            return Err(format!("cannot roll back {}", errors.join("; ")));
        }
        Ok(json!({
            "files": files,
            "bytes": bytes,
            "writes": writes,
            "truncations": truncations,
            "discarded": per_file,
        }))
    }
}
