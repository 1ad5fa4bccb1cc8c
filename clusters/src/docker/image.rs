//! The node image: `FROM scratch`, holding the node binaries, the shared libraries they
//! need (found with `ldd`), libfaketime when this machine has it, and a static busybox
//! for a shell and tools. Built once per content: the tag is a hash of every file that
//! goes in.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{DockerError, docker};

/// Where the image's busybox comes from (Debian `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// The repository part of every node image's tag.
pub const IMAGE_REPOSITORY: &str = "faultline-node";

/// The label every node image carries (for `faultline clean` and tests).
pub const IMAGE_LABEL: &str = "faultline.image";

/// Bumped when the image's layout changes, so old cached images are not reused.
const LAYOUT_VERSION: &str = "faultline-node-image/1";

/// Builds (or finds, when an image with the same content exists) the node image holding
/// `binaries` in `/usr/local/bin`, and returns its tag (`faultline-node:HASH`).
///
/// Errors name the file that could not be read, the `ldd` that failed, or the
/// `docker build` and its output. Needs `ldd` and [`BUSYBOX`] on this machine.
pub fn build_image(binaries: &[&Path]) -> Result<String, DockerError> {
    let files = image_files(binaries)?;
    let mut hash = Fnv::new();
    hash.write(LAYOUT_VERSION.as_bytes());
    for (source, dest) in &files {
        let bytes = fs::read(source).map_err(|e| DockerError::file("read", source, e))?;
        hash.write(dest.to_string_lossy().as_bytes());
        hash.write(&[0]);
        hash.write(&(bytes.len() as u64).to_le_bytes());
        hash.write(&bytes);
    }
    let tag = format!("{IMAGE_REPOSITORY}:{:016x}", hash.0);
    let exists = docker(["image", "inspect", "--format", "{{.Id}}", &tag], 30)?;
    if exists.success() {
        return Ok(tag);
    }
    let context = TempDir::new()?;
    assemble(context.path(), &files)?;
    let dir = context.path().to_string_lossy().into_owned();
    let label = format!("{IMAGE_LABEL}=1");
    let out = docker(
        ["build", "--quiet", "--label", &label, "--tag", &tag, &dir],
        600,
    )?;
    if !out.success() {
        return Err(DockerError::Command {
            command: format!("docker build --tag {tag} {dir}"),
            reason: out.stderr.trim().to_string(),
        });
    }
    Ok(tag)
}

/// Removes every node image (those labelled [`IMAGE_LABEL`]): the cache, which runs
/// keep between them; for `faultline clean`. Returns how many were removed.
pub fn remove_images() -> Result<usize, DockerError> {
    let filter = format!("label={IMAGE_LABEL}");
    let out = docker(["images", "--quiet", "--filter", &filter], 30)?;
    let ids: Vec<&str> = out.stdout.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let mut args = vec!["image", "rm", "--force"];
    args.extend(ids.iter().copied());
    let removed = docker(args, 120)?;
    if !removed.success() {
        return Err(DockerError::Command {
            command: "docker image rm --force …".to_string(),
            reason: removed.stderr.trim().to_string(),
        });
    }
    Ok(ids.len())
}

/// Every file of the image: (source on this machine, destination in the image), sorted
/// by destination, without duplicates.
fn image_files(binaries: &[&Path]) -> Result<Vec<(PathBuf, PathBuf)>, DockerError> {
    let mut files = vec![(PathBuf::from(BUSYBOX), PathBuf::from("/bin/busybox"))];
    for binary in binaries {
        let name = binary.file_name().ok_or_else(|| {
            DockerError::file("read", binary, std::io::Error::other("no file name"))
        })?;
        files.push((binary.to_path_buf(), Path::new("/usr/local/bin").join(name)));
    }
    // libfaketime where this machine has it, at the same path, so that nodes can run
    // with per-node clocks (the clock nemesis).
    if let Some(lib) = crate::db::FAKETIME_LIBS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
    {
        files.push((lib.to_path_buf(), lib.to_path_buf()));
    }
    let mut libraries = Vec::new();
    for (source, _) in &files {
        libraries.extend(shared_libraries(source)?);
    }
    files.extend(libraries.into_iter().map(|lib| (lib.clone(), lib)));
    files.sort_by(|a, b| a.1.cmp(&b.1));
    files.dedup_by(|a, b| a.1 == b.1);
    Ok(files)
}

/// The shared libraries `binary` loads, as `ldd` resolves them (absolute paths), with
/// the dynamic loader; none for a static binary.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, DockerError> {
    if let Err(e) = fs::metadata(binary) {
        return Err(DockerError::file("read", binary, e));
    }
    let path = binary.to_string_lossy().into_owned();
    let out = super::local_run("ldd", [path.as_str()], 30)?;
    let text = format!("{}{}", out.stdout, out.stderr);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !out.success() {
        return Err(DockerError::Command {
            command: format!("ldd {path}"),
            reason: text.trim().to_string(),
        });
    }
    let mut libraries = Vec::new();
    for line in out.stdout.lines() {
        let line = line.trim();
        if line.contains("=> not found") {
            return Err(DockerError::Command {
                command: format!("ldd {path}"),
                reason: format!("missing library: {line}"),
            });
        }
        let target = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let file = target.split_whitespace().next().unwrap_or_default();
        if file.starts_with('/') {
            libraries.push(PathBuf::from(file));
        }
    }
    Ok(libraries)
}

/// Writes the build context: `rootfs/` (the files, busybox applet links, `/tmp`) and
/// the Dockerfile.
fn assemble(dir: &Path, files: &[(PathBuf, PathBuf)]) -> Result<(), DockerError> {
    let rootfs = dir.join("rootfs");
    for (source, dest) in files {
        let target = rootfs.join(dest.strip_prefix("/").unwrap_or(dest));
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| DockerError::file("create directory", parent, e))?;
        }
        fs::copy(source, &target).map_err(|e| DockerError::file("copy", source, e))?;
    }
    let out = super::local_run(BUSYBOX, ["--list"], 30)?;
    let bin = rootfs.join("bin");
    for applet in out.stdout.lines().map(str::trim) {
        let link = bin.join(applet);
        if applet.is_empty() || applet.contains('/') || link.exists() {
            continue;
        }
        symlink("busybox", &link).map_err(|e| DockerError::file("create link", &link, e))?;
    }
    let tmp = rootfs.join("tmp");
    fs::create_dir_all(&tmp).map_err(|e| DockerError::file("create directory", &tmp, e))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
        .map_err(|e| DockerError::file("set permissions of", &tmp, e))?;
    let dockerfile = dir.join("Dockerfile");
    let text = "FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/bin\n\
                CMD [\"/bin/tail\", \"-f\", \"/dev/null\"]\n";
    fs::write(&dockerfile, text).map_err(|e| DockerError::file("write", &dockerfile, e))
}

/// 64-bit FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, DockerError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        // Created, not merely named: two runs of one process building at the same
        // nanosecond must not share a build context.
        let base = format!("faultline-image-{}-{nanos}", std::process::id());
        let mut n = 0u32;
        loop {
            let path = std::env::temp_dir().join(format!("{base}-{n}"));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(DockerError::file("create directory", &path, e)),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        let mut h = Fnv::new();
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn ldd_finds_libc_and_the_loader() {
        let libs = shared_libraries(Path::new("/bin/ls")).unwrap();
        assert!(libs.iter().any(|l| l.to_string_lossy().contains("libc.so")));
        assert!(
            libs.iter()
                .any(|l| l.to_string_lossy().contains("ld-linux"))
        );
    }
}
