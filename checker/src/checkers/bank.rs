//! [`Bank`]: every read of the accounts sums to the total (see [`crate::bank`]).

use serde_json::{Map, Value};

use super::{CheckOptions, Checked, Checker, named, nothing_to_check};
use crate::bank::{self, BankOptions};
use crate::history::{History, InputError};

/// Jepsen's bank checker: a constant total, no negative balance unless allowed.
#[derive(Debug, Clone)]
pub struct Bank {
    /// The total, the accounts, whether balances may go negative.
    pub options: BankOptions,
}

impl Bank {
    /// The bank checker with `options`.
    pub fn new(options: BankOptions) -> Bank {
        Bank { options }
    }
}

impl Checker for Bank {
    fn name(&self) -> &str {
        "bank"
    }

    fn describe(&self, _options: &CheckOptions) -> Map<String, Value> {
        let mut info = named(self);
        info.insert("total".into(), Value::from(self.options.total));
        info.insert(
            "negative_allowed".into(),
            Value::from(self.options.negative_allowed),
        );
        if let Some(accounts) = &self.options.accounts {
            info.insert("accounts".into(), Value::from(accounts.clone()));
        }
        info
    }

    fn check(&self, history: &History, _options: &CheckOptions) -> Result<Checked, InputError> {
        if let Some(checked) = nothing_to_check(history) {
            return Ok(checked);
        }
        bank::check(history, &self.options).map(Checked::new)
    }
}
