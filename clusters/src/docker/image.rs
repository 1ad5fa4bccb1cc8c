//! The node image: `FROM scratch`, holding the node binaries, the shared libraries they
//! need (found with `ldd`), libfaketime when this machine has it, and a static busybox
//! for a shell and tools; a database that needs more (PostgreSQL: its install tree,
//! share files, time zones, `setpriv` and its user) names it in an [`ImageContent`].
//! Built once per content: the tag is a hash of every file that goes in.

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
const LAYOUT_VERSION: &str = "faultline-node-image/2";

/// How deep [`ImageContent::trees`] are walked: deeper means a link loop.
const MAX_TREE_DEPTH: usize = 32;

/// What a node image holds beside busybox (and libfaketime where this machine has it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageContent {
    /// Programs put in `/usr/local/bin` (the image's `PATH`), with their shared
    /// libraries.
    pub programs: Vec<PathBuf>,
    /// Files and directories of this machine copied to the same absolute path,
    /// directories whole (symbolic links kept as links), with the shared libraries of
    /// every ELF file among them: e.g. PostgreSQL's `/usr/lib/postgresql/15`.
    pub trees: Vec<PathBuf>,
    /// Users whose `/etc/passwd` line (and their groups' `/etc/group` lines) are copied
    /// from this machine into the image, beside `root`'s.
    pub users: Vec<String>,
}

impl ImageContent {
    /// An image holding `programs` on its `PATH` and nothing else of its own.
    pub fn programs(programs: Vec<PathBuf>) -> ImageContent {
        ImageContent {
            programs,
            ..ImageContent::default()
        }
    }
}

/// One entry of the image's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A file of this machine, copied.
    File(PathBuf),
    /// A symbolic link, pointing here.
    Link(PathBuf),
    /// A file written for the image (`/etc/passwd`).
    Text(String),
}

/// Builds (or finds, when an image with the same content exists) the node image holding
/// `binaries` in `/usr/local/bin`, and returns its tag (`faultline-node:HASH`).
///
/// Errors name the file that could not be read, the `ldd` that failed, or the
/// `docker build` and its output. Needs `ldd` and [`BUSYBOX`] on this machine.
pub fn build_image(binaries: &[&Path]) -> Result<String, DockerError> {
    build_image_of(&ImageContent::programs(
        binaries.iter().map(|p| p.to_path_buf()).collect(),
    ))
}

/// Builds (or finds) the node image holding `content`, as [`build_image`] does.
pub fn build_image_of(content: &ImageContent) -> Result<String, DockerError> {
    let files = image_files(content)?;
    let mut hash = Fnv::new();
    hash.write(LAYOUT_VERSION.as_bytes());
    for (source, dest) in &files {
        hash.write(dest.to_string_lossy().as_bytes());
        hash.write(&[0]);
        match source {
            Source::File(path) => {
                let bytes = fs::read(path).map_err(|e| DockerError::file("read", path, e))?;
                hash.write(b"f");
                hash.write(&(bytes.len() as u64).to_le_bytes());
                hash.write(&bytes);
            }
            Source::Link(target) => {
                hash.write(b"l");
                hash.write(target.to_string_lossy().as_bytes());
            }
            Source::Text(text) => {
                hash.write(b"t");
                hash.write(&(text.len() as u64).to_le_bytes());
                hash.write(text.as_bytes());
            }
        }
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

/// Every entry of the image: (its source, its destination in the image), sorted by
/// destination, without duplicates.
fn image_files(content: &ImageContent) -> Result<Vec<(Source, PathBuf)>, DockerError> {
    let mut files = vec![(
        Source::File(PathBuf::from(BUSYBOX)),
        PathBuf::from("/bin/busybox"),
    )];
    for binary in &content.programs {
        let name = binary.file_name().ok_or_else(|| {
            DockerError::file("read", binary, std::io::Error::other("no file name"))
        })?;
        files.push((
            Source::File(binary.clone()),
            Path::new("/usr/local/bin").join(name),
        ));
    }
    // libfaketime where this machine has it, at the same path, so that nodes can run
    // with per-node clocks (the clock nemesis).
    if let Some(lib) = crate::db::FAKETIME_LIBS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
    {
        files.push((Source::File(lib.to_path_buf()), lib.to_path_buf()));
    }
    for tree in &content.trees {
        walk_tree(tree, 0, &mut files)?;
    }
    if !content.users.is_empty() {
        let (passwd, group) = accounts(&content.users)?;
        files.push((Source::Text(passwd), PathBuf::from("/etc/passwd")));
        files.push((Source::Text(group), PathBuf::from("/etc/group")));
    }
    let mut libraries = Vec::new();
    for (source, dest) in &files {
        if let Source::File(path) = source
            && is_elf(path)
        {
            // A program must find every library; a tree's own libraries may load others
            // of the tree by their run path, which ldd does not always follow (a JVM's).
            let strict = path != dest || content.programs.contains(path);
            libraries.extend(shared_libraries(path, strict)?);
        }
    }
    files.extend(
        libraries
            .into_iter()
            .map(|lib| (Source::File(lib.clone()), lib)),
    );
    files.sort_by(|a, b| a.1.cmp(&b.1));
    files.dedup_by(|a, b| a.1 == b.1);
    Ok(files)
}

/// Adds `path` (a file, a link, or a directory and everything under it) at the same
/// path.
fn walk_tree(
    path: &Path,
    depth: usize,
    files: &mut Vec<(Source, PathBuf)>,
) -> Result<(), DockerError> {
    let meta = fs::symlink_metadata(path).map_err(|e| DockerError::file("read", path, e))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(|e| DockerError::file("read", path, e))?;
        files.push((Source::Link(target), path.to_path_buf()));
    } else if meta.is_dir() {
        if depth >= MAX_TREE_DEPTH {
            return Err(DockerError::file(
                "copy",
                path,
                std::io::Error::other(format!("more than {MAX_TREE_DEPTH} directories deep")),
            ));
        }
        let entries = fs::read_dir(path).map_err(|e| DockerError::file("read", path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DockerError::file("read", path, e))?;
            walk_tree(&entry.path(), depth + 1, files)?;
        }
    } else {
        files.push((Source::File(path.to_path_buf()), path.to_path_buf()));
    }
    Ok(())
}

/// Whether `path` starts with the ELF magic (a program or a shared library).
fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// The image's `/etc/passwd` and `/etc/group`: `root`'s lines and those of `users` (and
/// of their groups), copied from this machine's.
fn accounts(users: &[String]) -> Result<(String, String), DockerError> {
    let read = |path: &str| {
        fs::read_to_string(path).map_err(|e| DockerError::file("read", Path::new(path), e))
    };
    let passwd_here = read("/etc/passwd")?;
    let group_here = read("/etc/group")?;
    accounts_from(users, &passwd_here, &group_here)
}

fn accounts_from(
    users: &[String],
    passwd_here: &str,
    group_here: &str,
) -> Result<(String, String), DockerError> {
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/sh\n");
    let mut group = String::from("root:x:0:\n");
    let mut gids = Vec::new();
    for user in users {
        let line = passwd_here
            .lines()
            .find(|l| l.split(':').next() == Some(user.as_str()))
            .ok_or_else(|| DockerError::Command {
                command: format!("find user {user} in /etc/passwd"),
                reason: format!(
                    "no user {user} on this machine: the node image copies its account \
                     (install the package that creates it)"
                ),
            })?;
        passwd.push_str(line);
        passwd.push('\n');
        gids.extend(line.split(':').nth(3).map(str::to_string));
    }
    for line in group_here.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let (Some(name), Some(gid), Some(members)) = (fields.first(), fields.get(2), fields.get(3))
        else {
            continue;
        };
        let member = members.split(',').any(|m| users.iter().any(|u| u == m));
        if *name != "root" && (gids.iter().any(|g| g == gid) || member) {
            group.push_str(line);
            group.push('\n');
        }
    }
    Ok((passwd, group))
}

/// The shared libraries `binary` loads, as `ldd` resolves them (absolute paths), with
/// the dynamic loader; none for a static binary.
/// With `strict`, a library ldd cannot find is an error; else it is left out.
fn shared_libraries(binary: &Path, strict: bool) -> Result<Vec<PathBuf>, DockerError> {
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
            if !strict {
                continue;
            }
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
fn assemble(dir: &Path, files: &[(Source, PathBuf)]) -> Result<(), DockerError> {
    let rootfs = dir.join("rootfs");
    for (source, dest) in files {
        let target = rootfs.join(dest.strip_prefix("/").unwrap_or(dest));
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| DockerError::file("create directory", parent, e))?;
        }
        match source {
            Source::File(path) => {
                fs::copy(path, &target).map_err(|e| DockerError::file("copy", path, e))?;
            }
            Source::Link(to) => {
                symlink(to, &target).map_err(|e| DockerError::file("create link", &target, e))?;
            }
            Source::Text(text) => {
                fs::write(&target, text).map_err(|e| DockerError::file("write", &target, e))?;
            }
        }
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
    fn accounts_copy_the_users_and_their_groups_beside_root() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgres:x:104:110:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        let group = "root:x:0:\nssl-cert:x:109:postgres\npostgres:x:110:\nnogroup:x:65534:\n";
        let (p, g) = accounts_from(&["postgres".to_string()], passwd, group).unwrap();
        assert_eq!(
            p,
            "root:x:0:0:root:/root:/bin/sh\n\
             postgres:x:104:110:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n"
        );
        assert_eq!(g, "root:x:0:\nssl-cert:x:109:postgres\npostgres:x:110:\n");
        let missing = accounts_from(&["zk".to_string()], passwd, group).unwrap_err();
        assert!(missing.to_string().contains("no user zk"), "{missing}");
    }

    #[test]
    fn trees_keep_links_and_bring_the_libraries_of_their_programs() {
        let dir = TempDir::new().unwrap();
        let root = dir.path().join("tree");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::copy("/bin/ls", root.join("bin/ls")).unwrap();
        fs::write(root.join("data.txt"), "x").unwrap();
        symlink("ls", root.join("bin/dir")).unwrap();
        let content = ImageContent {
            trees: vec![root.clone()],
            ..ImageContent::default()
        };
        let files = image_files(&content).unwrap();
        let find = |dest: &Path| {
            files
                .iter()
                .find(|(_, d)| d == dest)
                .map(|(s, _)| s.clone())
        };
        assert_eq!(
            find(&root.join("bin/dir")),
            Some(Source::Link(PathBuf::from("ls")))
        );
        assert_eq!(
            find(&root.join("data.txt")),
            Some(Source::File(root.join("data.txt")))
        );
        assert!(
            files
                .iter()
                .any(|(_, d)| d.to_string_lossy().contains("libc.so")),
            "ls's libc comes along"
        );
        assert!(!is_elf(&root.join("data.txt")) && is_elf(&root.join("bin/ls")));
    }

    #[test]
    fn ldd_finds_libc_and_the_loader() {
        let libs = shared_libraries(Path::new("/bin/ls"), true).unwrap();
        assert!(libs.iter().any(|l| l.to_string_lossy().contains("libc.so")));
        assert!(
            libs.iter()
                .any(|l| l.to_string_lossy().contains("ld-linux"))
        );
    }
}
