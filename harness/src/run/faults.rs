//! The run's nemesis, built by the nemesis crate for the enabled faults on the
//! deployment ([`faultline_nemesis::build`]). Which faults the database and backend
//! allow was decided when the configuration was resolved (`Fault::refusal`); a nemesis
//! that still refuses (a capability missing at run time) is a usage error naming the
//! fault.

use anyhow::{Result, anyhow};
use faultline_nemesis::{BuildError, Fault, Nemesis, Target};

use super::binaries::delayer_binary;
use super::deploy::Deployment;
use crate::error::UsageError;

/// The nemesis for `faults` on `deployment`, seeded from `seed`; `None` without faults.
/// With `track_leaders` it asks who leads before every operation (a schedule aiming
/// at the `previous-leader`).
pub(super) fn build(
    deployment: &Deployment,
    faults: &[Fault],
    seed: u64,
    track_leaders: bool,
) -> Result<Option<Box<dyn Nemesis>>> {
    let target = Target {
        backend: &*deployment.backend,
        db: deployment.db.clone(),
        nodes: deployment.nodes.clone(),
        delayer: delayer_binary(),
    };
    faultline_nemesis::build_tracking(faults, &target, seed, track_leaders).map_err(|e| match e {
        BuildError::Refused { .. } => UsageError(format!("--nemesis {e}")).into(),
        BuildError::Failed { .. } => anyhow!(e),
    })
}
