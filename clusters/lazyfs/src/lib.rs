//! `faultline-lazyfs`: a FUSE passthrough filesystem that remembers, per file, every
//! change not yet fsynced, and on command forgets them all (a power loss), in the
//! spirit of Jepsen's LazyFS.
//!
//! The [`fs`] module is the filesystem, [`undo`] the per-file undo log, [`control`] the
//! Unix socket that asks for the loss (`lose-unsynced`).
#![deny(missing_docs)]

pub mod control;
pub mod fs;
mod state;
pub mod undo;
