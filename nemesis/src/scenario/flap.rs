//! `flap`: a new random partition every few hundred milliseconds (any topology of
//! [`crate::TOPOLOGIES`], the leader's isolation where the database names its leader),
//! healed when the scenario stops.
//!
//! Aims at leader-change edge cases: elections that start under one partition and end
//! under another, leaders deposed mid-replication, stale leaders whose heartbeats still
//! reach part of the cluster, terms that race.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::hands::Hands;
use super::plan::{Knobs, flap_wait};
use crate::error::NemesisError;
use crate::nemesis::Nemesis;
use crate::partitioner::{PartitionNemesis, START_PARTITION};

/// Partitions until stopped; the first partition that cannot be applied ends it.
pub(crate) fn run(h: &Hands, rng: &mut ChaCha8Rng, knobs: &Knobs) -> Result<(), NemesisError> {
    let names: Vec<String> = h.nodes.iter().map(|n| n.name.clone()).collect();
    let mut partitions = PartitionNemesis::new(h.net(), &names, rng.random());
    if h.db.primaries().is_some() {
        // No waiting for a leader mid-flap: a drawn `primary` without one falls back.
        partitions = partitions
            .with_primaries(std::sync::Arc::clone(&h.db), h.nodes.clone())?
            .primary_wait(std::time::Duration::ZERO);
    }
    while !h.stopped() {
        h.mark_partitioned();
        let value = partitions.invoke(START_PARTITION, &Value::Null)?;
        h.record(json!({"event": "partition", "value": value}));
        if h.sleep(flap_wait(rng, knobs.period)) {
            break;
        }
    }
    Ok(())
}
