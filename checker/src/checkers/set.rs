//! [`SetFull`]: lost, stale, unexpected and duplicated elements of a set (see
//! [`crate::set`]).

use serde_json::{Map, Value};

use super::{CheckOptions, Checked, Checker, named, nothing_to_check};
use crate::history::{History, InputError};
use crate::set::{self, SetOptions};

/// Jepsen's `set-full` checker.
#[derive(Debug, Clone, Default)]
pub struct SetFull {
    /// Whether the set must be linearizable (stale elements invalid).
    pub options: SetOptions,
}

impl SetFull {
    /// The set checker with `options`.
    pub fn new(options: SetOptions) -> SetFull {
        SetFull { options }
    }
}

impl Checker for SetFull {
    fn name(&self) -> &str {
        "set"
    }

    fn describe(&self, _options: &CheckOptions) -> Map<String, Value> {
        let mut info = named(self);
        info.insert(
            "linearizable".into(),
            Value::from(self.options.linearizable),
        );
        info
    }

    fn check(&self, history: &History, _options: &CheckOptions) -> Result<Checked, InputError> {
        if let Some(checked) = nothing_to_check(history) {
            return Ok(checked);
        }
        set::check(history, &self.options).map(Checked::new)
    }
}
