//! `faultline-delayer --queue N --delay-ms MS [--jitter-ms MS] [--distribution
//! uniform|normal] [--seed S]`: holds the packets of NFQUEUE N (in this process's
//! network namespace) for the delay ± jitter, then accepts them; SIGTERM or SIGINT
//! releases everything held and exits 0. Started by the packet nemesis inside a node's
//! namespace; see `faultline_nemesis::delayer`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use faultline_nemesis::delayer::{Delay, Distribution, QUEUE, run};

const USAGE: &str = "usage: faultline-delayer --queue N --delay-ms MS [--jitter-ms MS] \
                     [--distribution uniform|normal] [--seed S]";

struct Args {
    queue: u16,
    delay_ms: u64,
    jitter_ms: u64,
    distribution: Distribution,
    seed: u64,
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        queue: QUEUE,
        delay_ms: 0,
        jitter_ms: 0,
        distribution: Distribution::Uniform,
        seed: 0,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} {value:?}: not a non-negative integer"))
        };
        match flag.as_str() {
            "--queue" => {
                args.queue = u16::try_from(number()?)
                    .map_err(|_| format!("--queue {value}: at most 65535"))?
            }
            "--delay-ms" => args.delay_ms = number()?,
            "--jitter-ms" => args.jitter_ms = number()?,
            "--seed" => args.seed = number()?,
            "--distribution" => {
                args.distribution = Distribution::from_name(value)
                    .ok_or_else(|| format!("--distribution {value:?}: uniform or normal"))?
            }
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("faultline-delayer: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("faultline-delayer: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let delay = Delay::new(
        Duration::from_millis(args.delay_ms),
        Duration::from_millis(args.jitter_ms),
        args.distribution,
        args.seed,
    );
    match run(args.queue, delay, stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline-delayer: queue {}: {e}", args.queue);
            ExitCode::FAILURE
        }
    }
}
