//! `faultline`: the command line. This file only parses arguments and maps outcomes to
//! Jepsen's exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments or input,
//! 255 the harness itself crashed.

mod check;
mod clean;
mod client;
mod config;
mod conformance;
mod error;
mod generate;
mod hosts;
mod hunt;
mod junit;
mod outcome;
mod output;
mod report;
mod run;
mod schedule;
mod serve;
mod session;
mod suite;
mod summary;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use faultline_checker::InputError;

use error::UsageError;

/// Exit code for bad arguments or unusable input.
const EXIT_BAD_INPUT: u8 = 254;
/// Exit code for a crash of the harness itself.
const EXIT_CRASH: u8 = 255;

/// Faultline: Jepsen-style fault-injection testing for distributed databases.
///
/// `faultline run` deploys a cluster (the bundled faultline-kv, etcd, or your database
/// through a db-file) on local network namespaces, Docker containers or SSH hosts, runs
/// concurrent clients while a nemesis partitions, pauses, kills, delays, skews clocks
/// and loses power, records every operation, checks the history (linearizability,
/// Elle's transactional anomalies, bank, set, lock…) and the nodes' logs, and writes an
/// HTML report. `faultline check` checks a history offline (JSONL or Jepsen's EDN).
/// Exit codes, as Jepsen's: 0 valid, 1 invalid, 2 unknown, 254 bad input, 255 crash.
/// Docs: README.md and docs/ in the source tree.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a test: deploy a cluster, run a workload under faults, check the history and
    /// the nodes' logs (docs/checkers.md, "Node logs").
    Run(Box<config::RunArgs>),
    /// Check a client program (--client-cmd) against the protocol: start the database,
    /// send scripted operations, check the replies. Exit 0 if all checks pass, 1 if not.
    ClientTest(conformance::ClientTestArgs),
    /// Check a history (JSONL, or Jepsen EDN) and print the verdict.
    Check(check::CheckArgs),
    /// Check a stored run's node logs (protocol-event invariants, crash patterns) and
    /// print the verdict: exit 0 valid, 1 invalid. The run's results.json is not changed.
    CheckLogs(check::logs::CheckLogsArgs),
    /// Write a seeded synthetic history, e.g. for benchmarks.
    Gen(generate::GenArgs),
    /// Remove what crashed or killed runs left (namespaces, links, nft tables, processes).
    Clean(clean::CleanArgs),
    /// Run a suite of tests from a TOML file (a matrix and entries with expected verdicts),
    /// then write the store's index.html and a JUnit report.
    Suite(suite::SuiteArgs),
    /// Merge the stores of a suite's shards (`suite --shard K/N` on several machines)
    /// into one directory: every run, one index.html, one JUnit file, one exit code.
    Index(suite::merge::IndexArgs),
    /// Serve the store (index, reports, results) over HTTP on 127.0.0.1, read-only.
    Serve(serve::ServeArgs),
    /// Preflight: check that the hosts of a backend (local, docker, ssh) can be used.
    Hosts(hosts::HostsArgs),
    /// Hunt for a bug: many short runs with varied seeds and fault mixes, guided by
    /// what the nodes did, until one is invalid; then shrink its fault schedule.
    Hunt(Box<hunt::HuntArgs>),
    /// Re-render a run's report.html from its files (results.json, history.jsonl, …).
    Report(report::ReportArgs),
    /// Print a run's faults (RUN_DIR/nemesis.jsonl) as a TOML schedule: the same faults
    /// on the same nodes at the same times, to edit and pass to `run --nemesis-schedule`.
    Schedule(schedule::ScheduleArgs),
    /// Panic on purpose, to test that a crash exits 255.
    #[command(hide = true)]
    InternalPanic,
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("faultline: internal error (this is a bug in faultline): {info}");
        std::process::exit(i32::from(EXIT_CRASH));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout and succeed; usage errors must not exit 2,
            // which means "unknown".
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let outcome = match &cli.command {
        Command::Run(args) => run::run(args).map(|v| v.exit_code()),
        Command::Check(args) => check::run(args).map(|v| v.exit_code()),
        Command::CheckLogs(args) => check::logs::run(args).map(|v| v.exit_code()),
        Command::ClientTest(args) => conformance::run(args),
        Command::Gen(args) => generate::run(args).map(|()| 0),
        Command::Clean(args) => clean::run(args).map(|()| 0),
        Command::Hosts(args) => hosts::run(args).map(|()| 0),
        Command::Index(args) => suite::merge::run(args),
        Command::Report(args) => report::run(args).map(|()| 0),
        Command::Schedule(args) => schedule::run(args).map(|()| 0),
        Command::Suite(args) => suite::run(args),
        Command::Hunt(args) => hunt::run(args),
        Command::Serve(args) => serve::run(args).map(|()| 0),
        Command::InternalPanic => panic!("deliberate panic (internal-panic)"),
    };
    match outcome {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(EXIT_CRASH)),
        Err(error) => report(&error),
    }
}

/// Prints an error and picks its exit code: 254 for the user's input, 255 otherwise.
fn report(error: &anyhow::Error) -> ExitCode {
    let input = error.chain().find_map(|e| e.downcast_ref::<InputError>());
    match input {
        // Already `FILE:LINE: message` lines, like a compiler's.
        Some(input @ InputError::Invalid { .. }) => eprintln!("{input}"),
        _ => eprintln!("faultline: {error:#}"),
    }
    let bad_input = input.is_some() || error.chain().any(|e| e.is::<UsageError>());
    ExitCode::from(if bad_input {
        EXIT_BAD_INPUT
    } else {
        EXIT_CRASH
    })
}
