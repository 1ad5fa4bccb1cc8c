//! `faultline gen`: write a seeded synthetic history (JSONL), linearizable by construction
//! or, with `--invalid`, certainly not, so that benchmarks can be reproduced.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Result;
use clap::{Args, ValueEnum};
use faultline_checker::history::HistoryWriter;
use faultline_checker::synth::{self, Object, SynthConfig};

use crate::error::UsageError;

/// Arguments of `faultline gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Where to write the history (JSONL).
    pub history_out: PathBuf,
    /// The object the simulated clients use.
    #[arg(long, value_enum, default_value = "cas-register")]
    pub object: ObjectName,
    /// How many client operations to invoke.
    #[arg(long, default_value_t = 1000)]
    pub ops: usize,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub processes: u64,
    /// Independent keys (0: operations carry no key).
    #[arg(long, default_value_t = 0)]
    pub keys: usize,
    /// Probability that an operation crashes (completes with `info`), 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub crash_rate: f64,
    /// Written values: drawn from 0..D, or `unique`.
    #[arg(long, value_name = "D|unique", default_value = "5")]
    pub values: Values,
    /// The seed: the same arguments give the same history.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Make one read return a value never written, so the history is invalid.
    #[arg(long)]
    pub invalid: bool,
}

/// Simulated objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectName {
    /// `read`, `write`, `cas`.
    CasRegister,
    /// `acquire`, `release`.
    Mutex,
    /// `add`, `read` (whole set).
    Set,
    /// `enqueue`, `dequeue`.
    FifoQueue,
}

impl From<ObjectName> for Object {
    fn from(name: ObjectName) -> Object {
        match name {
            ObjectName::CasRegister => Object::CasRegister,
            ObjectName::Mutex => Object::Mutex,
            ObjectName::Set => Object::Set,
            ObjectName::FifoQueue => Object::FifoQueue,
        }
    }
}

/// Where written values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Drawn from `0..D`.
    Domain(u64),
    /// Every written value distinct.
    Unique,
}

impl FromStr for Values {
    type Err = String;

    fn from_str(text: &str) -> Result<Values, String> {
        if text == "unique" {
            return Ok(Values::Unique);
        }
        match text.parse::<u64>() {
            Ok(domain) if domain > 0 => Ok(Values::Domain(domain)),
            _ => Err(format!(
                "`{text}` is neither a domain size >= 1 nor `unique`"
            )),
        }
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("`{text}` is not a probability between 0 and 1")),
    }
}

/// Runs `faultline gen`.
pub fn run(args: &GenArgs) -> Result<()> {
    let config = SynthConfig {
        seed: args.seed,
        object: args.object.into(),
        ops: args.ops,
        processes: usize::try_from(args.processes).unwrap_or(usize::MAX),
        keys: args.keys,
        crash_rate: args.crash_rate,
        value_domain: match args.values {
            Values::Domain(domain) => Some(domain),
            Values::Unique => None,
        },
    };
    let mut ops = synth::simulate(&config);
    if args.invalid {
        ops = synth::corrupt_with_unwritten_read(&ops, args.seed).ok_or_else(|| {
            UsageError(
                "--invalid: the history has no successful read to corrupt; use more --ops"
                    .to_string(),
            )
        })?;
    }
    let path = &args.history_out;
    let unusable = |e: std::io::Error| UsageError(format!("cannot write {}: {e}", path.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(unusable)?;
    }
    let mut writer = HistoryWriter::new(BufWriter::new(File::create(path).map_err(unusable)?));
    for op in &ops {
        writer.write(op).map_err(unusable)?;
    }
    writer.flush().map_err(unusable)?;
    eprintln!(
        "wrote {} events to {}{}",
        ops.len(),
        path.display(),
        if args.invalid { " (invalid)" } else { "" }
    );
    Ok(())
}
