//! Faultline's checker library: the history format, readers and importers, and the
//! checkers that decide whether a history is valid.
//!
//! This crate is pure: it does no I/O other than reading histories, and nothing async.
#![deny(missing_docs)]

/// The bank checker: every read of the accounts sums to the total, with no negative balance.
pub mod bank;
pub mod checkers;
/// The counter checker: every read lies between the totals the adds could have produced.
pub mod counter;
pub mod elle;
pub mod history;
pub mod linearizable;
pub mod nodelog;
pub mod results;
/// The set checker (Jepsen's `set-full`): lost, stale, never-read, unexpected, duplicated elements.
pub mod set;
pub mod shape;
pub mod synth;
#[cfg(test)]
mod testing;

pub use checkers::{CheckOptions, Checked, Checker, Compose};
pub use history::{History, InputError, Op, OpType, Process};
pub use results::{Results, Validity, Verdict};
