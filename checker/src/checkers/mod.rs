//! The `Checker` protocol, after Jepsen's `checker.clj`: a checker judges a whole history
//! and answers valid, invalid or unknown, with the fields it puts into `results.json`.
//! One implementation per family, each in its own file: [`Linearizable`] (with its
//! model), [`Elle`] (list-append, rw-register), [`Bank`], [`Counter`], [`SetFull`]; and
//! [`Compose`], several named checkers on one history.
//!
//! Adding a checker: a file here implementing [`Checker`] (its analysis may live in its
//! own module beside `bank.rs`), a line in this file to export it, and — to choose it
//! from `faultline check`'s flags — its arm in `harness/src/check/choose.rs`; a workload
//! that wants it builds it in `workloads/src/workload/NAME.rs`.

mod bank;
mod compose;
mod counter;
mod elle;
mod linearizable;
mod set;

use std::time::Duration;

use serde_json::{Map, Value};

pub use self::bank::Bank;
pub use self::compose::{Compose, DuplicateChecker};
pub use self::counter::Counter;
pub use self::elle::Elle;
pub use self::linearizable::Linearizable;
pub use self::set::SetFull;

use crate::elle::Artifact;
use crate::history::{History, InputError};
use crate::results::{Results, Validity, Verdict};

/// Judges a history (Jepsen's `Checker` protocol, with the checker's name and
/// description beside `check`).
///
/// A checker is built with everything it needs to know about the test (a model, a
/// total, a consistency model); the limits of one check come in [`CheckOptions`].
pub trait Checker: Send + Sync {
    /// The checker's name: its key in `results.json`'s `checkers` (e.g.
    /// `linearizable`, `elle`). Constant for a given checker.
    fn name(&self) -> &str;

    /// What will be run, and how: the `checker` object of `results.json` (`name`
    /// first, then the settings that decide the verdict, including those of `options`
    /// the checker obeys). Must not look at any history.
    fn describe(&self, options: &CheckOptions) -> Map<String, Value>;

    /// Checks `history`. Must not write anything (drawings come back in
    /// [`Checked::artifacts`] when [`CheckOptions::draw`] asks for them), must not
    /// panic, and must give up with [`Validity::Unknown`] rather than exceed
    /// `options`' limits. A history without client operations verified nothing: its
    /// verdict is unknown (see [`nothing_to_check`]). An error means the history cannot
    /// be checked this way at all (malformed for this checker, or an unsupported shape).
    fn check(&self, history: &History, options: &CheckOptions) -> Result<Checked, InputError>;
}

/// A shared checker is a checker (e.g. a workload's, composed with others).
impl<C: Checker + ?Sized> Checker for std::sync::Arc<C> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn describe(&self, options: &CheckOptions) -> Map<String, Value> {
        (**self).describe(options)
    }

    fn check(&self, history: &History, options: &CheckOptions) -> Result<Checked, InputError> {
        (**self).check(history, options)
    }
}

/// How far one check may go, and what it should produce besides the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// Give up (unknown) after this long (the linearizability search; Elle bounds its
    /// cycle search by steps instead). Default 300 s.
    pub time_limit: Duration,
    /// Give up (unknown) beyond this much memory, in MiB (the linearizability search);
    /// `None` for the checker's default.
    pub memory_limit_mib: Option<u64>,
    /// Return drawings (Elle's cycles) in [`Checked::artifacts`]. Default off: they
    /// cost time.
    pub draw: bool,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            time_limit: Duration::from_secs(300),
            memory_limit_mib: None,
            draw: false,
        }
    }
}

/// What a check produced.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The verdict. For a [`Compose`], the worst of its members', with each member's
    /// `results.json` object under its name in `details`.
    pub verdict: Verdict,
    /// Drawings, when [`CheckOptions::draw`] asked for them.
    pub artifacts: Vec<Artifact>,
    /// A [`Compose`]'s members' results, by name, in order; empty for any other
    /// checker.
    pub members: Vec<(String, Checked)>,
}

impl Checked {
    /// The result of a single checker: `verdict`, no drawings.
    pub fn new(verdict: Verdict) -> Checked {
        Checked {
            verdict,
            artifacts: Vec::new(),
            members: Vec::new(),
        }
    }
}

/// The result for a history without client operations (an empty file, or only nemesis
/// events), `None` for any other: unknown, since nothing was verified. Every checker
/// answers it, whatever it checks.
pub fn nothing_to_check(history: &History) -> Option<Checked> {
    if history.ops().iter().any(|op| op.is_client()) {
        return None;
    }
    let reason = "the history has no client operations: nothing was checked";
    let mut details = Map::new();
    details.insert("error".into(), Value::from(reason));
    details.insert("ops".into(), Value::from(0));
    Some(Checked::new(Verdict {
        valid: Validity::Unknown,
        details,
        explanation: vec![format!("{reason}.")],
    }))
}

/// The start of every description: `{"name": NAME}`.
fn named(checker: &dyn Checker) -> Map<String, Value> {
    let mut info = Map::new();
    info.insert("name".into(), Value::from(checker.name()));
    info
}

#[cfg(test)]
mod tests;

impl Results {
    /// Records the answer of the test's checker, called `name`: a composition's members
    /// each under their own name (`checkers` then holds the composition's nested
    /// results, as Jepsen's `results.edn` holds `compose`'s), any other checker's verdict
    /// (and that of a composition of none) under `name`.
    pub fn record(&mut self, name: &str, checked: &Checked) {
        if checked.members.is_empty() {
            self.checkers
                .insert(name.to_string(), checked.verdict.clone());
        }
        for (member, checked) in &checked.members {
            self.checkers
                .insert(member.clone(), checked.verdict.clone());
        }
    }
}
