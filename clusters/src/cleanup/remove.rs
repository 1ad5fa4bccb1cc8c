//! Removing one resource of each kind, tolerating resources already gone.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{self, Signal as NixSignal};
use nix::unistd::Pid;

use super::Resource;
use crate::localhost::Localhost;
use crate::remote::{Cmd, Remote};

/// The start time of `pid` (field 22 of `/proc/PID/stat`); `None` if it is not running
/// (or is a zombie).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Runs a removal command; `Ok(true)` if it succeeded, `Ok(false)` if it failed with
/// a message containing one of `gone` (the resource is already gone).
fn run_removal(argv: &[&str], gone: &[&str]) -> Result<bool, String> {
    let mut cmd = Cmd::new(argv[0]).timeout(Duration::from_secs(20));
    cmd = cmd.args(argv[1..].iter().copied());
    let out = Localhost::new().run(&cmd).map_err(|e| e.to_string())?;
    if out.success() {
        return Ok(true);
    }
    let stderr = out.stderr.trim();
    if gone.iter().any(|g| stderr.contains(g)) {
        return Ok(false);
    }
    Err(format!("`{cmd}` failed with {}: {stderr}", out.status))
}

/// Removes one resource, succeeding if it is already gone. The error says why not.
pub fn remove(resource: &Resource) -> Result<(), String> {
    const NO_NS: &[&str] = &["No such file", "Cannot open network namespace", "not exist"];
    match resource {
        Resource::Namespace { name } => {
            if !Path::new("/run/netns").join(name).exists() {
                return Ok(());
            }
            kill_namespace_processes(name);
            run_removal(&["ip", "netns", "del", name], NO_NS).map(drop)
        }
        Resource::Link { name } => run_removal(
            &["ip", "link", "del", name],
            &["Cannot find device", "does not exist"],
        )
        .map(drop),
        Resource::NftTable {
            family,
            name,
            netns,
        } => {
            let mut argv = Vec::new();
            let pid;
            if let Some(container) = netns
                .as_deref()
                .and_then(|ns| ns.strip_prefix(crate::docker::CONTAINER_NETNS))
            {
                // Inside a container's namespace: gone with the container.
                match container_pid(container)? {
                    Some(p) => pid = p.to_string(),
                    None => return Ok(()),
                }
                argv.extend(["nsenter", "-t", pid.as_str(), "-n"]);
            } else if let Some(ns) = netns {
                if !Path::new("/run/netns").join(ns).exists() {
                    return Ok(());
                }
                argv.extend(["ip", "netns", "exec", ns.as_str()]);
            }
            argv.extend(["nft", "delete", "table", family.as_str(), name.as_str()]);
            run_removal(&argv, NO_NS).map(drop)
        }
        Resource::NftRule {
            family,
            table,
            chain,
            comment,
        } => remove_nft_rule(family, table, chain, comment),
        Resource::Process { pid, start_time: t } => {
            kill_process(*pid, *t);
            Ok(())
        }
        Resource::Container { name } => {
            run_removal(&["docker", "rm", "-f", name], &["No such container"]).map(drop)
        }
        Resource::DockerNetwork { name } => run_removal(
            &["docker", "network", "rm", name],
            &["not found", "No such network"],
        )
        .map(drop),
        Resource::SshDir {
            host,
            known_hosts,
            accept_unknown_host_keys,
            dir,
        } => crate::ssh::remove_run_dir(host, known_hosts, *accept_unknown_host_keys, dir),
        Resource::Command { argv, .. } => {
            if argv.is_empty() {
                return Ok(());
            }
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            run_removal(&argv, &[]).map(drop)
        }
    }
}

/// SIGKILLs `pid` and its group if it is still the process that started at `start`, and
/// waits (up to 2 s) for it to go.
fn kill_process(pid: u32, start: u64) {
    if start_time(pid) != Some(start) {
        return;
    }
    let Ok(raw) = i32::try_from(pid) else { return };
    let _ = signal::killpg(Pid::from_raw(raw), NixSignal::SIGKILL);
    let _ = signal::kill(Pid::from_raw(raw), NixSignal::SIGKILL);
    for _ in 0..200 {
        if start_time(pid) != Some(start) {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILLs every process in network namespace `name`.
fn kill_namespace_processes(name: &str) {
    let cmd = Cmd::new("ip")
        .args(["netns", "pids", name])
        .timeout(Duration::from_secs(10));
    let Ok(out) = Localhost::new().run(&cmd) else {
        return;
    };
    for pid in out.stdout.split_whitespace().filter_map(|p| p.parse().ok()) {
        if let Some(t) = start_time(pid) {
            kill_process(pid, t);
        }
    }
}

fn remove_nft_rule(family: &str, table: &str, chain: &str, comment: &str) -> Result<(), String> {
    let cmd = Cmd::new("nft")
        .args(["-a", "list", "chain", family, table, chain])
        .timeout(Duration::from_secs(10));
    let out = Localhost::new().run(&cmd).map_err(|e| e.to_string())?;
    if !out.success() {
        // No such table or chain: the rule went with it.
        return Ok(());
    }
    let needle = format!("comment \"{comment}\"");
    for line in out.stdout.lines().filter(|l| l.contains(&needle)) {
        if let Some(handle) = line.rsplit("# handle ").next().map(str::trim) {
            run_removal(
                &[
                    "nft", "delete", "rule", family, table, chain, "handle", handle,
                ],
                &["No such file"],
            )?;
        }
    }
    Ok(())
}

/// The init pid of the running container `name`; `None` if it is gone or stopped.
fn container_pid(name: &str) -> Result<Option<u32>, String> {
    let cmd = Cmd::new("docker")
        .args(["inspect", "--format", "{{.State.Pid}}", name])
        .timeout(Duration::from_secs(20));
    let out = Localhost::new().run(&cmd).map_err(|e| e.to_string())?;
    if !out.success() {
        if out.stderr.contains("No such") {
            return Ok(None);
        }
        return Err(format!(
            "`{cmd}` failed with {}: {}",
            out.status,
            out.stderr.trim()
        ));
    }
    Ok(out.stdout.trim().parse::<u32>().ok().filter(|p| *p != 0))
}
