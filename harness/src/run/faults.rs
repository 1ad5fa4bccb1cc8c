//! The run's nemesis: one member per enabled fault, on the deployment's backend and
//! database, composed. Which faults the database and backend allow was decided when the
//! configuration was resolved (`Fault::refusal`); a nemesis that still refuses (a
//! capability missing at run time) is a usage error naming the fault.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use faultline_nemesis::{
    ClockNemesis, Compose, DiskNemesis, Fault, KillNemesis, Nemesis, NftPartitions, PacketNemesis,
    PartitionNemesis, PauseNemesis, PowerNemesis, StormNemesis,
};

use super::binaries::delayer_binary;
use super::deploy::Deployment;
use crate::error::UsageError;

/// The nemesis for `faults` on `deployment`, each member seeded from `seed` and its
/// place; `None` without faults.
pub(super) fn build(
    deployment: &Deployment,
    faults: &[Fault],
    seed: u64,
) -> Result<Option<Box<dyn Nemesis>>> {
    if faults.is_empty() {
        return Ok(None);
    }
    let mut members: Vec<Box<dyn Nemesis>> = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let seed = seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1));
        members.push(member(deployment, *fault, faults, seed)?);
    }
    Ok(Some(Box::new(
        Compose::new(members).map_err(|e| anyhow!(e))?,
    )))
}

/// The nemesis of one fault (`all` the run's faults, for those that depend on others).
fn member(
    deployment: &Deployment,
    fault: Fault,
    all: &[Fault],
    seed: u64,
) -> Result<Box<dyn Nemesis>> {
    let db = || Arc::clone(&deployment.db);
    let nodes = || deployment.nodes.clone();
    let refused =
        |e: faultline_nemesis::NemesisError| UsageError(format!("--nemesis {fault}: {e}"));
    Ok(match fault {
        Fault::Partition => {
            let net = deployment
                .backend
                .net()
                .context("cannot set up network faults")?;
            let names: Vec<String> = deployment.nodes.iter().map(|n| n.name.clone()).collect();
            let partitions =
                PartitionNemesis::new(Arc::new(NftPartitions::new(&net)), &names, seed);
            // Isolating the leader, where the database can say who leads.
            Box::new(if deployment.db.primaries().is_some() {
                partitions
                    .with_primaries(db(), nodes())
                    .context("cannot set up leader partitions")?
            } else {
                partitions
            })
        }
        Fault::Kill => Box::new(KillNemesis::new(db(), nodes(), seed)),
        Fault::Pause => Box::new(PauseNemesis::new(db(), nodes(), seed).map_err(refused)?),
        Fault::Packet => {
            let net = deployment
                .backend
                .net()
                .context("cannot set up packet faults")?;
            let packet = PacketNemesis::new(&net, seed);
            Box::new(match delayer_binary() {
                Some(delayer) => packet.delayer(delayer),
                None => packet,
            })
        }
        Fault::Clock => Box::new(ClockNemesis::new(db(), nodes(), seed).map_err(refused)?),
        Fault::Disk => {
            let disk = DiskNemesis::new(db(), nodes(), seed).map_err(refused)?;
            // Full disks need the nodes' directories on this machine, and cannot
            // replace a data directory that is a faultline-lazyfs mount (`power`).
            let full_disks = deployment.backend.shares_filesystem() && !all.contains(&Fault::Power);
            Box::new(match full_disks {
                true => disk.disk_full(Arc::clone(&deployment.registry)),
                false => disk,
            })
        }
        Fault::Power => Box::new(PowerNemesis::new(db(), nodes(), seed).map_err(refused)?),
        Fault::Storm => Box::new(StormNemesis::new(db(), nodes(), seed)),
    })
}
