//! Machine-wide reservations, so that runs started at the same moment (two `faultline`
//! processes, or two runs of one `faultline suite --jobs J`) never pick the same run id
//! or the same subnet. A reservation is a file created with `O_CREAT|O_EXCL` (atomic:
//! of two runs claiming one name, exactly one succeeds) under [`DIR`]:
//! `ids/ID` for a run id (its bridge, namespaces, veths, nft tables, Docker network and
//! containers, `/tmp/faultline-ID` on SSH hosts all derive from it) and
//! `subnets/10.X.Y` for a local cluster's `/24`.
//!
//! Each reservation is recorded in its run's [`Registry`] as a removal command, the id's
//! first of all, so it is released last, at teardown or by `faultline clean` after a
//! crash: an id stays taken as long as a state file may still name its resources, and
//! `faultline clean` can never remove the resources of a newer run that reused it.
//! `/run` is a tmpfs, emptied at boot together with every namespace and link.
//!
//! Where [`DIR`] cannot be written (a controller without root, e.g. Docker through the
//! `docker` group, or SSH; a read-only `/run`), runs go unreserved: ids are then random 24-bit values
//! checked against what exists, as before.

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use crate::cleanup::{Registry, Resource};
use crate::error::ClusterError;
use crate::netns::new_run_id;

/// Where reservations live.
pub const DIR: &str = "/run/faultline";

/// How many ids or subnets are tried before giving up.
const ATTEMPTS: usize = 200;

/// Claims `dir/kind/name` atomically: its path when this call created it, `None` when it
/// exists already (someone else's).
fn claim(dir: &Path, kind: &str, name: &str) -> io::Result<Option<PathBuf>> {
    let kind_dir = dir.join(kind);
    fs::create_dir_all(&kind_dir)?;
    let path = kind_dir.join(name);
    match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(mut file) => {
            // Who holds it, for people looking; the file's existence is the claim.
            let _ = writeln!(file, "{}", std::process::id());
            Ok(Some(path))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `e` means there is no place for reservations here (no root, no writable
/// `/run`): runs then go unreserved rather than refused.
fn unreservable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::PermissionDenied | ErrorKind::NotFound | ErrorKind::ReadOnlyFilesystem
    )
}

/// The registry resource that releases the reservation at `path`.
fn release(path: &Path) -> Resource {
    Resource::Command {
        description: format!("reservation {}", path.display()),
        argv: vec!["rm".into(), "-f".into(), path.display().to_string()],
    }
}

/// A new run's registry in `run_dir`, under a fresh id reserved machine-wide (in `dir`,
/// normally [`DIR`]) for which `free(id)` holds (no resource of that name exists). The
/// reservation is the registry's first resource, so it is released last.
pub fn new_registry(
    run_dir: &Path,
    dir: &Path,
    free: impl Fn(&str) -> bool,
) -> Result<Registry, ClusterError> {
    for _ in 0..ATTEMPTS {
        let id = new_run_id();
        let claimed = match claim(dir, "ids", &id) {
            Ok(Some(path)) => Some(path),
            Ok(None) => continue,
            // No place for reservations (not root): unreserved, as documented.
            Err(e) if unreservable(&e) => None,
            Err(e) => {
                return Err(ClusterError::Config(format!(
                    "cannot reserve a run id in {}: {e}",
                    dir.join("ids").display()
                )));
            }
        };
        if !free(&id) {
            if let Some(path) = &claimed {
                let _ = fs::remove_file(path);
            }
            continue;
        }
        let registry = match Registry::create(run_dir, &id) {
            Ok(registry) => registry,
            Err(e) => {
                if let Some(path) = &claimed {
                    let _ = fs::remove_file(path);
                }
                return Err(e.into());
            }
        };
        if let Some(path) = &claimed {
            if let Err(e) = registry.record(release(path)) {
                let _ = fs::remove_file(path);
                let _ = registry.teardown();
                return Err(e.into());
            }
        }
        return Ok(registry);
    }
    Err(ClusterError::Config(format!(
        "no free run id found in {ATTEMPTS} tries (reservations in {})",
        dir.join("ids").display()
    )))
}

/// Reserves a `10.X.Y.0/24` (X in 200..250) for the run of `registry`, in `dir`: claimed
/// first (atomically, recorded in the registry), then checked against `used` (this
/// machine's addresses and routes, read after the claim), released and another tried
/// when it is in use.
pub fn subnet(
    registry: &Registry,
    dir: &Path,
    used: impl Fn() -> Result<String, ClusterError>,
) -> Result<[u8; 3], ClusterError> {
    for _ in 0..ATTEMPTS {
        let r = u64::from_str_radix(&new_run_id(), 16).unwrap_or(0);
        let subnet = [10, 200 + (r % 50) as u8, (r >> 8) as u8];
        let name = format!("10.{}.{}", subnet[1], subnet[2]);
        let claimed = match claim(dir, "subnets", &name) {
            Ok(Some(path)) => Some(path),
            Ok(None) => continue,
            Err(e) if unreservable(&e) => None,
            Err(e) => {
                return Err(ClusterError::Config(format!(
                    "cannot reserve a subnet in {}: {e}",
                    dir.join("subnets").display()
                )));
            }
        };
        if let Some(path) = &claimed {
            if let Err(e) = registry.record(release(path)) {
                let _ = fs::remove_file(path);
                return Err(e.into());
            }
        }
        let in_use = used().map(|text| text.contains(&format!("{name}.")));
        match in_use {
            Ok(false) => return Ok(subnet),
            Ok(true) | Err(_) => {
                if let Some(path) = &claimed {
                    let _ = fs::remove_file(path);
                    registry.forget(&release(path))?;
                }
                in_use?;
            }
        }
    }
    Err(ClusterError::Config(
        "local hosts: no free 10.200-249.X.0/24 subnet found".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn of_many_claims_of_one_name_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let barrier = Arc::clone(&barrier);
                    let dir = dir.path();
                    s.spawn(move || {
                        barrier.wait();
                        usize::from(claim(dir, "subnets", "10.200.1").unwrap().is_some())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
    }

    #[test]
    fn concurrent_runs_get_distinct_ids_and_subnets_released_at_teardown() {
        let reservations = tempfile::tempdir().unwrap();
        let runs = tempfile::tempdir().unwrap();
        let registries: Vec<(Registry, [u8; 3])> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let (res, runs) = (reservations.path(), runs.path());
                    s.spawn(move || {
                        let registry = new_registry(&runs.join(i.to_string()), res, |_| true)
                            .expect("registry");
                        let net = subnet(&registry, res, || Ok(String::new())).expect("subnet");
                        (registry, net)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut ids: Vec<String> = registries.iter().map(|(r, _)| r.run()).collect();
        let mut nets: Vec<[u8; 3]> = registries.iter().map(|(_, n)| *n).collect();
        ids.sort();
        ids.dedup();
        nets.sort();
        nets.dedup();
        assert_eq!((ids.len(), nets.len()), (16, 16));
        let count = |kind: &str| {
            fs::read_dir(reservations.path().join(kind))
                .unwrap()
                .count()
        };
        assert_eq!((count("ids"), count("subnets")), (16, 16));
        // The id's reservation is the first resource: released last.
        let first = registries[0].0.resources()[0].to_string();
        assert!(
            first.starts_with("reservation ") && first.contains("/ids/"),
            "{first}"
        );
        for (registry, _) in &registries {
            registry.teardown().unwrap();
        }
        assert_eq!((count("ids"), count("subnets")), (0, 0));
    }

    #[test]
    fn a_subnet_in_use_is_released_and_another_taken() {
        let reservations = tempfile::tempdir().unwrap();
        let runs = tempfile::tempdir().unwrap();
        let registry = new_registry(runs.path(), reservations.path(), |_| true).unwrap();
        let tries = std::cell::Cell::new(0);
        // The first subnet claimed is reported used (whatever it is): read its name
        // from the reservation files.
        let net = subnet(&registry, reservations.path(), || {
            tries.set(tries.get() + 1);
            if tries.get() == 1 {
                let taken = fs::read_dir(reservations.path().join("subnets"))
                    .unwrap()
                    .flatten()
                    .map(|e| format!("{}.1/24\n", e.file_name().to_string_lossy()))
                    .collect::<String>();
                Ok(taken)
            } else {
                Ok(String::new())
            }
        })
        .unwrap();
        assert_eq!(tries.get(), 2);
        let left = fs::read_dir(reservations.path().join("subnets"))
            .unwrap()
            .count();
        assert_eq!(left, 1, "the used subnet's claim was released");
        let name = format!("10.{}.{}", net[1], net[2]);
        assert!(reservations.path().join("subnets").join(name).exists());
        registry.teardown().unwrap();
    }

    #[test]
    fn an_id_whose_names_exist_is_not_taken() {
        let reservations = tempfile::tempdir().unwrap();
        let runs = tempfile::tempdir().unwrap();
        let refused = std::cell::RefCell::new(Vec::new());
        let registry = new_registry(runs.path(), reservations.path(), |id| {
            let mut refused = refused.borrow_mut();
            let ok = !refused.is_empty();
            if !ok {
                refused.push(id.to_string());
            }
            ok
        })
        .unwrap();
        let refused = refused.into_inner();
        assert_ne!(registry.run(), refused[0]);
        assert!(!reservations.path().join("ids").join(&refused[0]).exists());
        assert!(
            reservations
                .path()
                .join("ids")
                .join(registry.run())
                .exists()
        );
        registry.teardown().unwrap();
    }
}
