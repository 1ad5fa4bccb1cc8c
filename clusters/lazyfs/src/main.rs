//! `faultline-lazyfs --backing DIR --mount DIR --control SOCKET`: mounts DIR's content
//! at the mount point and serves until unmounted (or killed).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::Parser;
use faultline_lazyfs::{control, fs};
use fuser::MountOption;

/// A FUSE passthrough filesystem that loses every unsynced write on command.
#[derive(Debug, Parser)]
#[command(name = "faultline-lazyfs", version)]
struct Args {
    /// The directory holding the files.
    #[arg(long)]
    backing: PathBuf,
    /// Where to mount it (an existing directory).
    #[arg(long)]
    mount: PathBuf,
    /// The control socket (`lose-unsynced`, `status`); default: MOUNT.control beside the
    /// mount point.
    #[arg(long)]
    control: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let backing = args
        .backing
        .canonicalize()
        .with_context(|| format!("backing directory {}", args.backing.display()))?;
    let control_path = args.control.clone().unwrap_or_else(|| {
        let mut p = args.mount.clone().into_os_string();
        p.push(".control");
        PathBuf::from(p)
    });
    let state = Arc::new(Mutex::new(fs::State::new(&backing)));
    control::listen(&control_path, Arc::clone(&state))
        .with_context(|| format!("control socket {}", control_path.display()))?;
    eprintln!(
        "faultline-lazyfs: serving {} at {} (control {})",
        backing.display(),
        args.mount.display(),
        control_path.display()
    );
    let options = [
        MountOption::FSName("faultline-lazyfs".into()),
        MountOption::Subtype("lazyfs".into()),
        MountOption::AllowOther,
        MountOption::DefaultPermissions,
    ];
    fuser::mount2(fs::LazyFs::new(state), &args.mount, &options)
        .with_context(|| format!("cannot mount at {}", args.mount.display()))?;
    eprintln!("faultline-lazyfs: unmounted {}", args.mount.display());
    Ok(())
}
