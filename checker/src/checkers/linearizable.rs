//! [`Linearizable`]: linearizability of single-object operations against a model, per key
//! (see [`crate::linearizable`]).

use serde_json::{Map, Value};

use super::{CheckOptions, Checked, Checker, named, nothing_to_check};
use crate::history::{History, InputError};
use crate::linearizable::{self, LinearizableOptions, ModelKind, Semantics};

/// Linearizability against `model` (Knossos's `linearizable` checker).
#[derive(Debug, Clone, PartialEq)]
pub struct Linearizable {
    /// The sequential specification.
    pub model: ModelKind,
    /// The initial value, and what a read of `null` says.
    pub semantics: Semantics,
}

impl Linearizable {
    /// Linearizability against `model`, from an unset initial value, a read of `null`
    /// saying the register is `null` (Faultline's own histories).
    pub fn new(model: ModelKind) -> Linearizable {
        Linearizable {
            model,
            semantics: Semantics::default(),
        }
    }

    /// The same checker with `semantics`, validated against the model (an initial value
    /// the model cannot hold is refused).
    pub fn with_semantics(self, semantics: Semantics) -> Result<Linearizable, InputError> {
        semantics.validate(self.model)?;
        Ok(Linearizable { semantics, ..self })
    }
}

impl Checker for Linearizable {
    fn name(&self) -> &str {
        "linearizable"
    }

    fn describe(&self, options: &CheckOptions) -> Map<String, Value> {
        let mut info = named(self);
        info.insert("model".into(), Value::from(self.model.name()));
        info.insert("initial_value".into(), self.semantics.initial_value.clone());
        if self.model.has_registers() {
            info.insert(
                "nil_reads".into(),
                Value::from(self.semantics.nil_reads.name()),
            );
        }
        info.insert(
            "time_limit_seconds".into(),
            Value::from(options.time_limit.as_secs_f64()),
        );
        if let Some(mib) = options.memory_limit_mib {
            info.insert("memory_limit_mib".into(), Value::from(mib));
        }
        info
    }

    fn check(&self, history: &History, options: &CheckOptions) -> Result<Checked, InputError> {
        if let Some(checked) = nothing_to_check(history) {
            return Ok(checked);
        }
        let mut linearizable = LinearizableOptions {
            model: Some(self.model),
            time_limit: options.time_limit,
            semantics: self.semantics.clone(),
            ..LinearizableOptions::default()
        };
        if let Some(mib) = options.memory_limit_mib {
            linearizable.memory_limit_bytes =
                usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        }
        linearizable::check(history, &linearizable).map(Checked::new)
    }
}
