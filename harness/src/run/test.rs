//! The whole test, built before anything runs (Jepsen's test map as `run!` receives
//! it): the configuration, the hosts and database to create (checked), how clients
//! connect, the workload's client, setup and checker, and the complete generator
//! (clients and the nemesis schedule under the time limit, final heal, recovery, final
//! operations).

use std::time::Duration;

use std::sync::Arc;

use anyhow::Result;
use faultline_checker::Checker;
use faultline_generator::{
    BoxGen, Generator, clients, clients_and_nemesis, nemesis, phases, rate, sleep, time_limit,
};
use faultline_nemesis::Fault;
use faultline_workloads::store::Micro;
use faultline_workloads::workload::{self, WorkloadClient, WorkloadOptions};

use super::database::Clients;
use super::deploy::Prepared;
use crate::config::RunConfig;
use crate::error::UsageError;

/// The longest the final phase (e.g. final reads) may take.
const FINAL_PHASE_LIMIT: Duration = Duration::from_secs(120);

/// A test ready to run: everything that can refuse it has been checked.
pub struct Test {
    /// The hosts and the database, to create.
    pub hosts: Prepared,
    /// What runs on them.
    pub ops: Operations,
    /// The workload's checker, run on the recorded history.
    pub checker: Arc<dyn Checker>,
}

/// The operations of a test: who performs them, and in what order.
pub struct Operations {
    /// How clients connect.
    pub clients: Clients,
    /// The workload's operations on a store.
    pub client: Box<dyn WorkloadClient>,
    /// Transactions before any client operation.
    pub setup: Vec<Vec<Micro>>,
    /// Every operation of the run, clients' and nemesis's, phase by phase.
    pub generator: BoxGen,
}

impl Test {
    /// Builds the test `config` describes: the workload, the generator, and every
    /// check that can refuse the run ([`Prepared::new`]). Creates nothing.
    pub fn new(config: &RunConfig) -> Result<Test> {
        let workload =
            workload::by_name(&config.workload, &workload_options(config)).map_err(UsageError)?;
        let hosts = Prepared::new(config)?;
        let clients = Clients::new(config);
        Ok(Test {
            hosts,
            ops: Operations {
                generator: generator(config, workload.generator, workload.final_generator),
                clients,
                client: workload.client,
                setup: workload.setup,
            },
            checker: workload.checker,
        })
    }
}

/// The workload's settings for the run `config` describes.
pub(super) fn workload_options(config: &RunConfig) -> WorkloadOptions {
    WorkloadOptions {
        consistency_model: config.consistency_model,
        ..WorkloadOptions::default()
    }
}

/// `phases(time_limit(T, clients + nemesis schedule), final heal, sleep(recovery),
/// final operations)`.
fn generator(config: &RunConfig, ops: BoxGen, finals: Option<BoxGen>) -> BoxGen {
    let faults: &[Fault] = &config.nemesis;
    let clients_gen: BoxGen = if config.rate > 0.0 {
        rate(config.rate, ops).boxed()
    } else {
        ops
    };
    let nemesis_gen = match &config.schedule {
        Some(steps) => faultline_nemesis::timeline(steps.clone()).boxed(),
        None => config
            .nemesis_mode
            .schedule(faults, config.nemesis_interval),
    };
    let mut gens: Vec<BoxGen> = vec![
        time_limit(
            config.time_limit,
            clients_and_nemesis(clients_gen, nemesis_gen),
        )
        .boxed(),
    ];
    if !faults.is_empty() {
        gens.push(nemesis(faultline_nemesis::final_heal(faults)).boxed());
    }
    gens.push(sleep(config.recovery_time).boxed());
    if let Some(finals) = finals {
        gens.push(time_limit(FINAL_PHASE_LIMIT, clients(finals)).boxed());
    }
    phases(gens).boxed()
}
