//! Newline-delimited request/response over TCP: one line out, one line back (how the
//! harness asks faultline-kv who leads, and how tests talk to it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

pub(crate) fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("bad address {addr}"))
}

/// A connection to `addr` whose connect, reads and writes each give up after
/// `timeout`.
pub(super) fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&resolve(addr)?, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Sends one line to `addr` and reads one line back, within `timeout`.
pub fn request_line(addr: &str, line: &str, timeout: Duration) -> Result<String, String> {
    let mut stream = connect(addr, timeout)?;
    stream
        .write_all(format!("{}\n", line.trim_end()).as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    while !buf.contains(&b'\n') {
        let n = stream.read(&mut byte).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a response".into());
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}
