//! [`Elle`]: transactional anomalies by dependency-graph cycles (see [`crate::elle`]).

use serde_json::{Map, Value};

use super::{CheckOptions, Checked, Checker, named, nothing_to_check};
use crate::elle::{self, ElleOptions};
use crate::history::{History, InputError, TxnHistory};

/// Elle's checker for list-append or rw-register transactions.
#[derive(Debug, Clone)]
pub struct Elle {
    /// The workload, the consistency model that must hold, and the search's bounds.
    pub options: ElleOptions,
}

impl Elle {
    /// Elle with `options`.
    pub fn new(options: ElleOptions) -> Elle {
        Elle { options }
    }
}

impl Checker for Elle {
    fn name(&self) -> &str {
        "elle"
    }

    fn describe(&self, _options: &CheckOptions) -> Map<String, Value> {
        let mut info = named(self);
        info.insert("workload".into(), Value::from(self.options.workload.name()));
        info.insert(
            "consistency_model".into(),
            Value::from(self.options.consistency_model.name()),
        );
        info
    }

    fn check(&self, history: &History, options: &CheckOptions) -> Result<Checked, InputError> {
        if let Some(checked) = nothing_to_check(history) {
            return Ok(checked);
        }
        if !options.draw {
            return elle::check(history, &self.options).map(Checked::new);
        }
        let analysis = elle::analyze(history, &self.options)?;
        Ok(Checked {
            artifacts: analysis.artifacts,
            ..Checked::new(analysis.verdict)
        })
    }
}

impl Elle {
    /// [`Checker::check`] on a compact list-append history: the same answer as on the
    /// same file read whole (see [`TxnHistory`]). The options' workload must be
    /// list-append.
    pub fn check_compact(
        &self,
        history: &TxnHistory,
        options: &CheckOptions,
    ) -> Result<Checked, InputError> {
        if !options.draw {
            return elle::check_compact(history, &self.options).map(Checked::new);
        }
        let analysis = elle::analyze_compact(history, &self.options)?;
        Ok(Checked {
            artifacts: analysis.artifacts,
            ..Checked::new(analysis.verdict)
        })
    }
}
