//! Faultline's generators: Jepsen's generator protocol in Rust.
//!
//! A [`Generator`] says what operations to perform and when. The driver (the run loop,
//! or the deterministic [`sim::Simulation`] used in tests) asks it for an operation
//! whenever a process is free or time passes ([`Generator::op`]), and tells it about
//! every invocation and completion ([`Generator::update`]). A generator answers with an
//! operation for one free process *now*, with [`GenOp::Pending`] (nothing yet: ask again
//! at a time, or after the next event), or with [`GenOp::Exhausted`].
//!
//! Generators are pure: no I/O, no clocks, no threads. Time comes from the
//! [`Context`], and randomness from the context's seeded RNG, so a run is a function of
//! its seed and of the completions it observes.
//!
//! Combinators compose generators:
//!
//! ```
//! use std::time::Duration;
//! use faultline_generator::{self as g, OpSpec, Generator, sim::Simulation};
//! use serde_json::json;
//!
//! // Random reads and writes, about 100 per second, for 10 seconds, while the nemesis
//! // starts and stops a partition every 2 seconds; then every client reads until one
//! // read succeeds on each thread.
//! let clients = g::stagger(
//!     Duration::from_millis(10),
//!     g::mix(vec![
//!         g::repeat(OpSpec::new("read", json!(null))).boxed(),
//!         g::from_fn(|ctx| Some(OpSpec::new("write", json!(ctx.random_below(5))))).boxed(),
//!     ]),
//! );
//! let nemesis = g::cycle(|| {
//!     g::seq(vec![
//!         g::sleep(Duration::from_secs(2)).boxed(),
//!         g::once(OpSpec::new("start-partition", json!(null))).boxed(),
//!         g::sleep(Duration::from_secs(2)).boxed(),
//!         g::once(OpSpec::new("stop-partition", json!(null))).boxed(),
//!     ])
//! });
//! let mut test = g::phases(vec![
//!     g::time_limit(Duration::from_secs(10), g::clients_and_nemesis(clients, nemesis))
//!         .boxed(),
//!     g::clients(g::each_thread(|_| g::until_ok(g::repeat(OpSpec::new("read", json!(null))))))
//!         .boxed(),
//! ]);
//! let history = Simulation::new(42).concurrency(5).run(&mut test).unwrap();
//! assert!(history.len() > 1000);
//! ```
#![deny(missing_docs)]

mod basic;
mod context;
mod generator;
mod independent;
mod limit;
mod route;
pub mod sim;
mod timing;

pub use basic::{
    Cycle, FromFn, Map, Once, Repeat, Seq, Sleep, cycle, from_fn, map, once, repeat, seq, sleep,
};
pub use context::Context;
pub use generator::{BoxGen, GenOp, Generator, OpSpec, earliest};
pub use independent::{Independent, independent};
pub use limit::{Limit, TimeLimit, UntilOk, limit, time_limit, until_ok};
pub use route::{
    Any, EachThread, OnProcesses, Synchronize, any, clients, clients_and_nemesis, each_thread, mix,
    nemesis, on_processes, phases, synchronize,
};
pub use timing::{Rate, Stagger, rate, stagger};
