//! The real filesystem, mounted with FUSE: needs root and `/dev/fuse`
//! (`faultline_testsupport::available`: skipped without them, a failure under `CI=true`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use faultline_lazyfs::control::{LOSE_UNSYNCED, STATUS, request};
use faultline_testsupport::{Need, available};

/// A mounted lazyfs, unmounted (and its process reaped) when dropped.
struct Mounted {
    dir: tempfile::TempDir,
    child: Child,
}

impl Mounted {
    fn new() -> Option<Mounted> {
        if !available(Need::Root) || !available(Need::Fuse) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("backing")).unwrap();
        fs::create_dir(dir.path().join("mnt")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_faultline-lazyfs"))
            .arg("--backing")
            .arg(dir.path().join("backing"))
            .arg("--mount")
            .arg(dir.path().join("mnt"))
            .arg("--control")
            .arg(dir.path().join("control"))
            .spawn()
            .unwrap();
        let m = Mounted { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_mounted(&m.mnt()) {
            assert!(Instant::now() < deadline, "lazyfs did not mount");
            thread::sleep(Duration::from_millis(20));
        }
        Some(m)
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    fn backing(&self) -> PathBuf {
        self.dir.path().join("backing")
    }

    fn control(&self, command: &str) -> serde_json::Value {
        let reply = request(&self.dir.path().join("control"), command).unwrap();
        assert_eq!(reply["ok"], true, "{reply}");
        reply
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.mnt()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(&*path) && l.contains("faultline-lazyfs"))
}

fn rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap()
}

#[test]
fn losing_unsynced_writes_keeps_exactly_the_fsynced_bytes() {
    let Some(m) = Mounted::new() else { return };
    let path = m.mnt().join("wal");
    let mut f = rw(&path);
    f.write_all(b"synced record 1;").unwrap();
    f.sync_data().unwrap();
    f.write_all(b"lost record 2;").unwrap();
    f.write_all(b"lost record 3;").unwrap();
    assert_eq!(fs::read(&path).unwrap().len(), 16 + 28);
    assert_eq!(m.control(STATUS)["unsynced_bytes"], 28);
    drop(f);

    let reply = m.control(LOSE_UNSYNCED);
    assert_eq!(reply["files"], 1, "{reply}");
    assert_eq!(reply["bytes"], 28, "{reply}");
    assert_eq!(reply["discarded"][0]["file"], "wal");
    assert_eq!(reply["discarded"][0]["size"], 16);
    assert_eq!(fs::read(&path).unwrap(), b"synced record 1;");
    assert_eq!(
        fs::read(m.backing().join("wal")).unwrap(),
        b"synced record 1;"
    );
    // A second loss finds nothing.
    assert_eq!(m.control(LOSE_UNSYNCED)["files"], 0);
}

#[test]
fn overwrites_truncations_and_renames_roll_back() {
    let Some(m) = Mounted::new() else { return };
    let dir = m.mnt().join("data");
    fs::create_dir(&dir).unwrap();

    // A snapshot written the careful way (temp file, fsync, rename) survives.
    let tmp = dir.join("snapshot.tmp");
    let mut f = File::create(&tmp).unwrap();
    f.write_all(b"snapshot v1").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::rename(&tmp, dir.join("snapshot")).unwrap();

    // A log overwritten in place and cut short, never synced afterwards.
    let log = dir.join("log");
    let f = rw(&log);
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"0123456789", 0).unwrap();
    f.sync_all().unwrap();
    f.write_all_at(b"ab", 2).unwrap();
    f.set_len(5).unwrap();
    f.write_all_at(b"zz", 20).unwrap();
    drop(f);

    // A file written without fsync and renamed keeps its unsynced data with it.
    let mut f = File::create(dir.join("careless.tmp")).unwrap();
    f.write_all(b"never synced").unwrap();
    drop(f);
    fs::rename(dir.join("careless.tmp"), dir.join("careless")).unwrap();

    let reply = m.control(LOSE_UNSYNCED);
    assert_eq!(reply["files"], 2, "{reply}");
    assert_eq!(fs::read(dir.join("snapshot")).unwrap(), b"snapshot v1");
    assert_eq!(fs::read(&log).unwrap(), b"0123456789");
    // Directory operations are durable at once: the file is there, empty.
    assert_eq!(fs::read(dir.join("careless")).unwrap(), b"");
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["careless", "log", "snapshot"]);

    // Removing a file takes its unsynced changes with it.
    fs::write(dir.join("gone"), b"x").unwrap();
    fs::remove_file(dir.join("gone")).unwrap();
    assert_eq!(m.control(LOSE_UNSYNCED)["files"], 0);
}
