//! [`Compose`]: several named checkers on one history (Jepsen's `checker/compose`).

use serde_json::{Map, Value};

use super::{CheckOptions, Checked, Checker, named};
use crate::history::{History, InputError};
use crate::results::{Validity, Verdict};

/// Runs each of its checkers on the same history. The verdict is the worst of theirs
/// (invalid beats unknown beats valid; valid when there are none), and their
/// `results.json` objects are nested under their names, as in `results.json`'s
/// `checkers`. A member that cannot check the history (an [`InputError`]) answers
/// unknown with the error, as Jepsen's `check-safe`: the others still answer.
#[derive(Default)]
pub struct Compose {
    members: Vec<(String, Box<dyn Checker>)>,
}

/// Two members of a [`Compose`] under one name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("two checkers are called `{0}`")]
pub struct DuplicateChecker(pub String);

impl Compose {
    /// A composition of no checkers (valid on any history).
    pub fn new() -> Compose {
        Compose::default()
    }

    /// The same composition with `checker` under `name`; refused when `name` is taken.
    pub fn with(
        mut self,
        name: impl Into<String>,
        checker: Box<dyn Checker>,
    ) -> Result<Compose, DuplicateChecker> {
        let name = name.into();
        if self.members.iter().any(|(taken, _)| *taken == name) {
            return Err(DuplicateChecker(name));
        }
        self.members.push((name, checker));
        Ok(self)
    }

    /// The members' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(name, _)| name.as_str())
    }
}

impl Checker for Compose {
    fn name(&self) -> &str {
        "compose"
    }

    /// `{"name": "compose", "checkers": {NAME: description, …}}`.
    fn describe(&self, options: &CheckOptions) -> Map<String, Value> {
        let mut info = named(self);
        let members = self
            .members
            .iter()
            .map(|(name, checker)| (name.clone(), Value::Object(checker.describe(options))))
            .collect();
        info.insert("checkers".into(), Value::Object(members));
        info
    }

    /// Never an error: a member's error becomes its unknown verdict. Drawings are
    /// renamed `MEMBER-NAME`, so two members' never collide.
    fn check(&self, history: &History, options: &CheckOptions) -> Result<Checked, InputError> {
        let mut valid = Validity::Valid;
        let mut details = Map::new();
        let mut explanation = Vec::new();
        let mut artifacts = Vec::new();
        let mut members = Vec::new();
        for (name, checker) in &self.members {
            let checked = checker
                .check(history, options)
                .unwrap_or_else(|error| Checked::new(failed(&error)));
            valid = valid.merge(checked.verdict.valid);
            details.insert(name.clone(), checked.verdict.to_json());
            if checked.verdict.valid != Validity::Valid {
                explanation.push(format!("{name}: {}", checked.verdict.valid.word()));
                explanation.extend(checked.verdict.explanation.iter().map(|l| format!("  {l}")));
            }
            artifacts.extend(checked.artifacts.iter().map(|artifact| {
                let mut artifact = artifact.clone();
                artifact.name = format!("{name}-{}", artifact.name);
                artifact
            }));
            members.push((name.clone(), checked));
        }
        Ok(Checked {
            verdict: Verdict {
                valid,
                details,
                explanation,
            },
            artifacts,
            members,
        })
    }
}

/// The verdict of a member that could not check the history.
fn failed(error: &InputError) -> Verdict {
    let mut details = Map::new();
    details.insert("error".into(), Value::from(error.to_string()));
    Verdict {
        valid: Validity::Unknown,
        details,
        explanation: vec![format!("cannot check: {error}")],
    }
}
