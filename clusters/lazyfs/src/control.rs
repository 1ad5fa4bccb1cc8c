//! The control socket: a Unix stream socket taking one command per line and answering
//! one JSON line per command.
//!
//! - `lose-unsynced`: roll every file back to its last fsync (a power loss); answers
//!   `{"ok":true,"files":N,"bytes":B,"writes":W,"truncations":T,"discarded":[…]}`.
//! - `status`: `{"ok":true,"unsynced_files":N,"unsynced_bytes":B}`.
//!
//! Anything else answers `{"ok":false,"error":…}`.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{Value, json};

use crate::fs::State;

/// The command that rolls back every unsynced change.
pub const LOSE_UNSYNCED: &str = "lose-unsynced";
/// The command that reports what is unsynced.
pub const STATUS: &str = "status";

/// Answers one command.
pub fn answer(state: &Mutex<State>, command: &str) -> Value {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    let mut reply = match command.trim() {
        LOSE_UNSYNCED => match state.lose_unsynced() {
            Ok(v) => v,
            Err(e) => return json!({ "ok": false, "error": e }),
        },
        STATUS => state.status(),
        other => {
            return json!({
                "ok": false,
                "error": format!("unknown command {other:?} (known: {LOSE_UNSYNCED}, {STATUS})"),
            });
        }
    };
    reply["ok"] = Value::Bool(true);
    reply
}

fn serve(state: &Mutex<State>, stream: UnixStream) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = answer(state, &line);
        eprintln!("faultline-lazyfs: {} -> {reply}", line.trim());
        writeln!(writer, "{reply}")?;
    }
    Ok(())
}

/// Listens on `path` (replacing a stale socket) in a background thread.
pub fn listen(path: &Path, state: Arc<Mutex<State>>) -> io::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    thread::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let state = Arc::clone(&state);
                    thread::spawn(move || {
                        if let Err(e) = serve(&state, stream) {
                            eprintln!("faultline-lazyfs: control connection: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("faultline-lazyfs: control socket: {e}"),
            }
        }
    });
    Ok(())
}

/// Sends `command` to the control socket at `path` and returns its answer.
pub fn request(path: &Path, command: &str) -> io::Result<Value> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    writeln!(writer, "{command}")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
