//! Shared by the packet-delay tests (a `#[path]` module): TCP connect times, measured
//! by bash inside a node's network namespace, however the test gets there.

/// A bash script that opens `count` TCP connections to `addr:port`, one after another,
/// and prints each one's start and end (`$EPOCHREALTIME`) on a line.
pub fn connect_script(addr: &str, port: u16, count: usize) -> String {
    format!(
        "for i in $(seq {count}); do s=$EPOCHREALTIME; exec 3<>/dev/tcp/{addr}/{port} || exit 1; \
         e=$EPOCHREALTIME; exec 3>&-; echo \"$s $e\"; done"
    )
}

/// The connect times (ms) in the output of [`connect_script`].
pub fn connect_ms(output: &str) -> Vec<f64> {
    output
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (b.parse::<f64>().unwrap() - a.parse::<f64>().unwrap()) * 1000.0
        })
        .collect()
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
