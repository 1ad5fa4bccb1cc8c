//! Faultline's workloads: what the clients of a run do, and against what.
//!
//! [`store`] is the [`store::Store`] trait (atomic transactions of micro-ops) with its
//! `kv` and `etcd` clients; [`workload`] holds each workload's generator (built with
//! `faultline_generator`), its client on a `Store`, its setup and final generators, and
//! its checker.
#![deny(missing_docs)]

pub mod store;
pub mod workload;
