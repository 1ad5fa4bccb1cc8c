//! Faultline's checker library: the history format, readers and importers, and the
//! checkers that decide whether a history is valid.
//!
//! This crate is pure: it does no I/O other than reading histories, and nothing async.
#![deny(missing_docs)]

pub mod elle;
pub mod history;
pub mod linearizable;
pub mod results;
pub mod synth;

pub use history::{History, InputError, Op, OpType, Process};
pub use results::{Results, Validity, Verdict};
