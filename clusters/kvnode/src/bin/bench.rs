//! `faultline-kv-bench`: put throughput and latency of a 3-node cluster on 127.0.0.1.
//!
//! `faultline-kv-bench kv [--consensus paxos]` starts three `faultline-kv` nodes (fsync on,
//! Raft or Multi-Paxos) in a temporary
//! directory and runs N concurrent clients, each with one connection and one put in
//! flight, against the leader. `faultline-kv-bench etcd --endpoint HOST:PORT` runs the
//! same load against an etcd started by hand (`/v3/kv/put` through its JSON gateway).
//! Prints puts/s, p50 and p99 latency.
//!
//! With `--shards N` the nodes spread the keys over N shards; client `c` then talks to
//! node `c mod 3` (the preferred leader of shard `c mod 3`) with `"forward": true` and
//! writes keys of that shard, one a transaction, or with `--cross` two keys a
//! transaction, the second of the next shard (so every transaction commits across two
//! shards, by `--commit-protocol`). Unsharded, `--cross` writes two keys at the leader.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "faultline-kv-bench")]
struct Args {
    #[command(subcommand)]
    target: Target,
    /// Concurrent clients, one connection and one request in flight each.
    #[arg(long, default_value_t = 50, global = true)]
    clients: usize,
    /// How long to measure, in seconds (after a 1 s warm-up).
    #[arg(long, default_value_t = 10, global = true)]
    seconds: u64,
    /// Size of each value, in bytes.
    #[arg(long, default_value_t = 100, global = true)]
    value_size: usize,
    /// Distinct keys written.
    #[arg(long, default_value_t = 10_000, global = true)]
    keys: usize,
}

#[derive(Debug, Subcommand)]
enum Target {
    /// Start a 3-node faultline-kv cluster (fsync on) and load its leader.
    Kv {
        /// The faultline-kv binary (default: next to this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// The nodes' consensus protocol: raft or paxos.
        #[arg(long, default_value = "raft", value_parser = ["raft", "paxos"])]
        consensus: String,
        /// The nodes' `--log` filter; `info` includes the protocol events. Each node's
        /// log goes to a file in the cluster's temporary directory.
        #[arg(long, default_value = "warn")]
        node_log: String,
        /// Spread the keys over this many shards (the nodes' `--shards`).
        #[arg(long, default_value_t = 1)]
        shards: u32,
        /// How a transaction of several shards commits: 2pc or 3pc.
        #[arg(long, default_value = "2pc", value_parser = ["2pc", "3pc"])]
        commit_protocol: String,
        /// Two keys a transaction, of two shards when sharded.
        #[arg(long)]
        cross: bool,
    },
    /// Load an already running etcd through its v3 JSON gateway.
    Etcd {
        /// Client address of one member (the leader is best), e.g. 127.0.0.1:2379.
        #[arg(long)]
        endpoint: String,
    },
}

/// Opens a client connection with Nagle's algorithm off.
fn connect(addr: &str) -> anyhow::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// Does client `c`'s put number `i` on its connection (opening it if needed).
type Put = Arc<
    dyn Fn(usize, usize, &mut Option<BufReader<TcpStream>>) -> anyhow::Result<()> + Send + Sync,
>;

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct KvCluster {
    children: Vec<Child>,
    clients: Vec<String>,
    dir: PathBuf,
}

impl Drop for KvCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_kv(
    binary: PathBuf,
    consensus: &str,
    log: &str,
    extra: &[String],
) -> anyhow::Result<KvCluster> {
    let dir = std::env::temp_dir().join(format!("faultline-kv-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push((
            format!("127.0.0.1:{}", free_port()?),
            format!("127.0.0.1:{}", free_port()?),
        ));
    }
    let mut cluster = KvCluster {
        children: Vec::new(),
        clients: peers.iter().map(|p| p.1.clone()).collect(),
        dir: dir.clone(),
    };
    for (i, (peer, client)) in peers.iter().enumerate() {
        let id = i + 1;
        let mut cmd = Command::new(&binary);
        cmd.args([
            "--id",
            &id.to_string(),
            "--listen-peer",
            peer,
            "--listen-client",
            client,
        ])
        .arg("--data-dir")
        .arg(dir.join(format!("n{id}")))
        .args(["--log", log, "--consensus", consensus])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
        let log_path = dir.join(format!("n{id}.log"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log_file = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        cmd.stderr(log_file);
        for (j, (p, c)) in peers.iter().enumerate() {
            if j != i {
                cmd.args(["--peer", &format!("{}={p}/{c}", j + 1)]);
            }
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        cluster.children.push(child);
    }
    Ok(cluster)
}

fn kv_call(stream: &mut BufReader<TcpStream>, request: &Value) -> anyhow::Result<Value> {
    let mut line = request.to_string();
    line.push('\n');
    stream.get_mut().write_all(line.as_bytes())?;
    let mut line = String::new();
    if stream.read_line(&mut line)? == 0 {
        bail!("connection closed");
    }
    Ok(serde_json::from_str(&line)?)
}

fn kv_leader(cluster: &KvCluster) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for addr in &cluster.clients {
            if let Ok(stream) = TcpStream::connect(addr) {
                let mut stream = BufReader::new(stream);
                if let Ok(r) = kv_call(&mut stream, &json!({"id": 0, "type": "status"}))
                    && r["status"]["role"] == "leader"
                {
                    return Ok(addr.clone());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("no leader within 20 s")
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One HTTP/1.1 POST on a kept-alive connection; returns the status code.
fn http_post(
    stream: &mut BufReader<TcpStream>,
    host: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<u16> {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(request.as_bytes())?;
    let mut status = String::new();
    stream.read_line(&mut status)?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("bad HTTP status line")?;
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        stream.read_line(&mut header)?;
        let header = header.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(v) = header.strip_prefix("content-length:") {
            length = v.trim().parse()?;
        }
        if header.starts_with("transfer-encoding:") && header.contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        loop {
            let mut size = String::new();
            stream.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16)?;
            let mut skip = vec![0u8; n + 2];
            stream.read_exact(&mut skip)?;
            if n == 0 {
                break;
            }
        }
    } else {
        let mut skip = vec![0u8; length];
        stream.read_exact(&mut skip)?;
    }
    Ok(code)
}

/// Puts at the leader: key `i`, and with `cross` key `i + 1` too.
fn kv_put(leader: String, value: String, keys: usize, cross: bool) -> Put {
    Arc::new(move |_, i, conn| {
        if conn.is_none() {
            *conn = Some(connect(&leader)?);
        }
        let stream = conn.as_mut().context("no connection")?;
        let key = i % keys;
        let mut txn = vec![json!(["w", format!("k{key}"), value])];
        if cross {
            txn.push(json!(["w", format!("k{}", (key + 1) % keys), value]));
        }
        let r = kv_call(stream, &json!({"id": i, "txn": txn}))?;
        if r["type"] != "ok" {
            bail!("put failed: {r}");
        }
        Ok(())
    })
}

/// Sharded puts (see the crate docs): client `c` at node `c mod 3`, keys of shard
/// `c mod shards`, and with `cross` a key of the next shard too.
fn kv_sharded_put(nodes: Vec<String>, value: String, keys: usize, shards: u32, cross: bool) -> Put {
    let mut by_shard: Vec<Vec<String>> = vec![Vec::new(); shards as usize];
    for k in 0..keys.max(shards as usize * 4) {
        let key = format!("k{k}");
        by_shard[faultline_kv_proto::shard_of(&key, shards) as usize].push(key);
    }
    Arc::new(move |c, i, conn| {
        if conn.is_none() {
            *conn = Some(connect(&nodes[c % nodes.len()])?);
        }
        let stream = conn.as_mut().context("no connection")?;
        let home = c % by_shard.len();
        let pick = |shard: usize| {
            let keys = &by_shard[shard];
            keys[i % keys.len()].clone()
        };
        let mut txn = vec![json!(["w", pick(home), value])];
        if cross {
            txn.push(json!(["w", pick((home + 1) % by_shard.len()), value]));
        }
        let r = kv_call(stream, &json!({"id": i, "txn": txn, "forward": true}))?;
        if r["type"] != "ok" {
            bail!("put failed: {r}");
        }
        Ok(())
    })
}

fn etcd_put(host: String, value: String, keys: usize) -> Put {
    let value = base64(value.as_bytes());
    Arc::new(move |_, i, conn| {
        let key = i % keys;
        if conn.is_none() {
            *conn = Some(connect(&host)?);
        }
        let stream = conn.as_mut().context("no connection")?;
        let body = json!({"key": base64(format!("k{key}").as_bytes()), "value": value}).to_string();
        let code = http_post(stream, &host, "/v3/kv/put", &body)?;
        if code != 200 {
            bail!("put failed: HTTP {code}");
        }
        Ok(())
    })
}

/// Runs the clients; returns sorted latencies of the measured puts, the measured
/// time, and the number of errors.
fn load(args: &Args, put: Put) -> anyhow::Result<(Vec<Duration>, Duration, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for c in 0..args.clients {
        let (put, stop, measuring) = (put.clone(), stop.clone(), measuring.clone());
        workers.push(std::thread::spawn(move || {
            let mut conn = None;
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match put(c, i, &mut conn) {
                    Ok(()) if measuring.load(Ordering::Relaxed) => {
                        latencies.push(started.elapsed())
                    }
                    Ok(()) => {}
                    Err(_) => {
                        errors += 1;
                        conn = None;
                    }
                }
                i += 7919;
            }
            (latencies, errors)
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(args.seconds));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    Ok((all, elapsed, errors))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let value = "x".repeat(args.value_size);
    let (name, _cluster, put) = match &args.target {
        Target::Kv {
            binary,
            consensus,
            node_log,
            shards,
            commit_protocol,
            cross,
        } => {
            let binary = match binary {
                Some(b) => b.clone(),
                None => std::env::current_exe()?.with_file_name("faultline-kv"),
            };
            let extra = [
                "--shards".to_string(),
                shards.to_string(),
                "--commit-protocol".to_string(),
                commit_protocol.clone(),
            ];
            let cluster = start_kv(binary, consensus, node_log, &extra)?;
            let leader = kv_leader(&cluster)?;
            let keys = args.keys.max(2);
            let put = if *shards > 1 {
                // Let every shard elect its preferred leader before loading.
                std::thread::sleep(Duration::from_secs(2));
                kv_sharded_put(cluster.clients.clone(), value, keys, *shards, *cross)
            } else {
                eprintln!("faultline-kv leader at {leader}");
                kv_put(leader, value, keys, *cross)
            };
            ("faultline-kv", Some(cluster), put)
        }
        Target::Etcd { endpoint } => {
            let host = endpoint
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            ("etcd", None, etcd_put(host, value, args.keys.max(1)))
        }
    };
    let (all, elapsed, errors) = load(&args, put)?;
    let pct = |p: f64| {
        let i = ((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1));
        all.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{name}: {} clients, {} B values: {:.0} puts/s, p50 {:.2} ms, p99 {:.2} ms ({} puts in {:.1} s, {errors} errors)",
        args.clients,
        args.value_size,
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        all.len(),
        elapsed.as_secs_f64()
    );
    Ok(())
}
