//! The FUSE passthrough filesystem: every operation goes to the backing directory at
//! once; writes and size changes are also recorded in their file's [`UndoLog`] until
//! the file is fsynced, so [`State::lose_unsynced`] can take them back.
//!
//! Simplifications (documented in `docs/running.md`): directory operations (create,
//! mkdir, rename, unlink, rmdir) are durable at once; a file's unsynced data stays with
//! it across renames; `fsync` and `fdatasync` both make a file's data durable; hard
//! links, symlinks, special files and extended attributes are not supported.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow,
};
use serde_json::{Value, json};

use crate::undo::UndoLog;

/// Attributes and entries are never cached by the kernel: rollbacks change files behind
/// its back.
const TTL: Duration = Duration::ZERO;
/// The kernel's page cache is bypassed for the same reason.
const FOPEN_DIRECT_IO: u32 = 1;

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

    fn path(&self, ino: u64) -> Result<&Path, i32> {
        self.paths
            .get(&ino)
            .map(PathBuf::as_path)
            .ok_or(libc::ENOENT)
    }

    fn full(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<PathBuf, i32> {
        Ok(self.path(parent)?.join(name))
    }

    fn ino_for(&mut self, rel: &Path) -> u64 {
        if let Some(ino) = self.inos.get(rel) {
            return *ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.paths.insert(ino, rel.to_path_buf());
        self.inos.insert(rel.to_path_buf(), ino);
        ino
    }

    fn forget_path(&mut self, rel: &Path) {
        if let Some(ino) = self.inos.remove(rel) {
            self.paths.remove(&ino);
            self.pending.remove(&ino);
        }
    }

    fn entry(&mut self, rel: &Path) -> Result<FileAttr, i32> {
        let meta = fs::symlink_metadata(self.full(rel)).map_err(|e| errno(&e))?;
        let ino = self.ino_for(rel);
        Ok(attr(ino, &meta))
    }

    fn getattr(&self, ino: u64) -> Result<FileAttr, i32> {
        let meta = fs::symlink_metadata(self.full(self.path(ino)?)).map_err(|e| errno(&e))?;
        Ok(attr(ino, &meta))
    }

    fn open_backing(&self, rel: &Path, flags: i32, create: Option<u32>) -> Result<File, i32> {
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

    fn add_handle(&mut self, file: File, ino: u64, flags: i32) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        let append = flags & libc::O_APPEND != 0;
        self.handles.insert(fh, Handle { file, ino, append });
        fh
    }

    /// Opens `ino` for the caller; `O_TRUNC` is an unsynced size change.
    fn open(&mut self, ino: u64, flags: i32) -> Result<u64, i32> {
        let rel = self.path(ino)?.to_path_buf();
        let file = self.open_backing(&rel, flags, None)?;
        if flags & libc::O_TRUNC != 0 {
            self.truncate(ino, &rel, 0)?;
        }
        Ok(self.add_handle(file, ino, flags))
    }

    fn truncate(&mut self, ino: u64, rel: &Path, size: u64) -> Result<(), i32> {
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

    fn create(
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

    fn read(&self, fh: u64, offset: i64, size: u32) -> Result<Vec<u8>, i32> {
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

    fn write(&mut self, fh: u64, offset: i64, data: &[u8]) -> Result<u32, i32> {
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

    fn fsync(&mut self, ino: u64, fh: u64, datasync: bool) -> Result<(), i32> {
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

    fn setattr(
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

    fn mkdir(&mut self, parent: u64, name: &OsStr, mode: u32, umask: u32) -> Result<FileAttr, i32> {
        let rel = self.child(parent, name)?;
        let full = self.full(&rel);
        fs::create_dir(&full).map_err(|e| errno(&e))?;
        fs::set_permissions(&full, fs::Permissions::from_mode(mode & !umask & 0o7777))
            .map_err(|e| errno(&e))?;
        self.entry(&rel)
    }

    fn unlink(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), i32> {
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

    fn rename(
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

    fn readdir(&mut self, ino: u64) -> Result<Vec<(u64, FileType, PathBuf)>, i32> {
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

/// The FUSE side of the filesystem.
pub struct LazyFs {
    state: Arc<Mutex<State>>,
}

impl LazyFs {
    /// The filesystem over `state` (shared with the control socket).
    pub fn new(state: Arc<Mutex<State>>) -> LazyFs {
        LazyFs { state }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Filesystem for LazyFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let mut state = self.lock();
        match state.child(parent, name).and_then(|rel| state.entry(&rel)) {
            Ok(attr) => reply.entry(&TTL, &attr, 0),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.lock().getattr(ino) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        match self.lock().setattr(ino, mode, size, mtime) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        match self.lock().mkdir(parent, name, mode, umask) {
            Ok(attr) => reply.entry(&TTL, &attr, 0),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match self.lock().unlink(parent, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match self.lock().unlink(parent, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        match self.lock().rename(parent, name, newparent, newname, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        match self.lock().open(ino, flags) {
            Ok(fh) => reply.opened(fh, FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.lock().create(parent, name, mode, umask, flags) {
            Ok((attr, fh)) => reply.created(&TTL, &attr, 0, fh, FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        match self.lock().read(fh, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        match self.lock().write(fh, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _lock_owner: u64,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.lock().handles.remove(&fh);
        reply.ok();
    }

    fn fsync(&mut self, _req: &Request<'_>, ino: u64, fh: u64, datasync: bool, reply: ReplyEmpty) {
        match self.lock().fsync(ino, fh, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.lock().readdir(ino) {
            Ok(entries) => entries,
            Err(e) => return reply.error(e),
        };
        let skip = usize::try_from(offset).unwrap_or(0);
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(skip) {
            if reply.add(ino, (i + 1) as i64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    /// Directory operations are durable at once: nothing to do.
    fn fsyncdir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn access(&mut self, _req: &Request<'_>, ino: u64, _mask: i32, reply: ReplyEmpty) {
        match self.lock().getattr(ino) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
