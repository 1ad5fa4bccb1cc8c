//! [`Counter`]: every read lies between the totals the adds could have produced (see
//! [`crate::counter`]).

use serde_json::{Map, Value};

use super::{CheckOptions, Checked, Checker, named, nothing_to_check};
use crate::counter::{self, CounterOptions};
use crate::history::{History, InputError};

/// Jepsen's counter checker.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    /// Nothing to choose yet.
    pub options: CounterOptions,
}

impl Counter {
    /// The counter checker.
    pub fn new() -> Counter {
        Counter::default()
    }
}

impl Checker for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn describe(&self, _options: &CheckOptions) -> Map<String, Value> {
        named(self)
    }

    fn check(&self, history: &History, _options: &CheckOptions) -> Result<Checked, InputError> {
        if let Some(checked) = nothing_to_check(history) {
            return Ok(checked);
        }
        counter::check(history, &self.options).map(Checked::new)
    }
}
