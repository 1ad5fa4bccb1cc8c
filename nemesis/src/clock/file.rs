//! Clock files: each node's libfaketime offset (whole seconds, `+N`), rewritten on its
//! host by one shell command per change.

use std::time::Duration;

use faultline_clusters::db::FakeClock;
use faultline_clusters::{Cmd, Node};

use crate::error::NemesisError;

/// The start of every shell command that rewrites a clock file (`$1`): the clock
/// nemesis and a scenario (`stale-leader`) may move one node's clock at once, from two
/// threads, so each takes an exclusive lock on `$1.lock` for the rest of its command
/// (`flock`, where the host has it: util-linux, busybox; without it the command goes on
/// unlocked) and writes its own temp file (`$1.tmp.$$`, this shell's pid) before the
/// atomic rename. A shared temp file let one command rename the other's away, and the
/// second `mv` failed the run.
const CLOCK_FILE_LOCK: &str = "exec 9>\"$1.lock\" && { flock 9 2>/dev/null || true; }; ";

/// Rewrites `node`'s clock file under the lock: `compute` (shell, with the current
/// offset in `$cur` and `args` as `$2`…) sets `new`, or exits 0 to leave the file as it
/// is; `new` is then written atomically and echoed. Returns what the command printed:
/// the new offset, or nothing when `compute` left the file alone. `what` names the
/// change in an error.
fn rewrite(
    clock: &dyn FakeClock,
    node: &Node,
    compute: &str,
    args: &[String],
    what: impl Fn(&str) -> String,
) -> Result<String, NemesisError> {
    let file = clock.clock_file(node);
    let file = file.to_string_lossy();
    let script = format!(
        "{CLOCK_FILE_LOCK}cur=$(cat \"$1\" 2>/dev/null); {compute}; \
         printf '%+d\\n' \"$new\" > \"$1.tmp.$$\" && mv -f \"$1.tmp.$$\" \"$1\" && echo \"$new\""
    );
    let cmd = Cmd::new("sh")
        .args(["-c", script.as_str(), "sh", &file])
        .args(args)
        .timeout(Duration::from_secs(10));
    let out = node.remote.run(&cmd)?;
    if out.success() {
        return Ok(out.stdout);
    }
    Err(NemesisError::Command {
        node: node.name.clone(),
        command: what(&file),
        reason: out.stderr.trim().to_string(),
    })
}

/// Writes `offset` seconds into `node`'s clock file.
pub(crate) fn write_clock_file(
    clock: &dyn FakeClock,
    node: &Node,
    offset: i64,
) -> Result<(), NemesisError> {
    let text = format!("{offset:+}");
    rewrite(clock, node, "new=$2", std::slice::from_ref(&text), |file| {
        format!("write {text} to {file}")
    })
    .map(drop)
}

/// Moves `node`'s clock by `delta_secs` on top of whatever offset its file holds (read,
/// added and written atomically, in one command on its host), so that the clock nemesis
/// and a scenario that moves a clock compose; returns the new offset in seconds.
pub(crate) fn shift_clock_file(
    clock: &dyn FakeClock,
    node: &Node,
    delta_secs: i64,
) -> Result<i64, NemesisError> {
    let command = |file: &str| format!("move the clock in {file} by {delta_secs:+} s");
    let out = rewrite(
        clock,
        node,
        "new=$((${cur:-0} + $2))",
        &[delta_secs.to_string()],
        command,
    )?;
    out.trim().parse().map_err(|_| NemesisError::Command {
        node: node.name.clone(),
        command: command(&clock.clock_file(node).to_string_lossy()),
        reason: format!("the clock file held no offset in seconds: {out:?}"),
    })
}

/// Puts `node`'s clock offset back to `to` seconds if its file still holds `expected`
/// (nothing else moved that clock since; if something did, its change stands, and a
/// `reset-clock` puts every clock back). Returns whether it was put back.
pub(crate) fn restore_clock_file(
    clock: &dyn FakeClock,
    node: &Node,
    expected: i64,
    to: i64,
) -> Result<bool, NemesisError> {
    let out = rewrite(
        clock,
        node,
        "[ $((${cur:-0})) -eq \"$2\" ] || exit 0; new=$3",
        &[expected.to_string(), to.to_string()],
        |file| format!("put the clock in {file} back to {to} s"),
    )?;
    Ok(!out.trim().is_empty())
}
