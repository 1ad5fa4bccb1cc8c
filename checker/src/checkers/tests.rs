//! Tests of the protocol: [`Compose`]'s verdicts and nesting, [`Results::record`], and
//! the built-in checkers' common rules.

use serde_json::{Map, Value, json};

use super::*;
use crate::elle::{ElleOptions, ElleWorkload};
use crate::linearizable::{ModelKind, NilReads, Semantics};
use crate::results::Results;
use crate::testing::rows;

/// A checker with a fixed answer, for composing.
struct Fixed {
    name: &'static str,
    valid: Validity,
    error: bool,
    drawing: bool,
}

fn fixed(name: &'static str, valid: Validity) -> Box<dyn Checker> {
    Box::new(Fixed {
        name,
        valid,
        error: false,
        drawing: false,
    })
}

impl Checker for Fixed {
    fn name(&self) -> &str {
        self.name
    }

    fn describe(&self, _options: &CheckOptions) -> Map<String, Value> {
        named(self)
    }

    fn check(&self, _history: &History, _options: &CheckOptions) -> Result<Checked, InputError> {
        if self.error {
            return Err(InputError::Unsupported(format!("{} refuses", self.name)));
        }
        let mut details = Map::new();
        details.insert("by".into(), Value::from(self.name));
        Ok(Checked {
            artifacts: if self.drawing {
                vec![Artifact {
                    anomaly: "G0".into(),
                    name: "G0-0".into(),
                    dot: String::new(),
                    svg: String::new(),
                }]
            } else {
                Vec::new()
            },
            ..Checked::new(Verdict {
                valid: self.valid,
                details,
                explanation: vec![format!("{} says {}", self.name, self.valid.word())],
            })
        })
    }
}

fn register_history() -> History {
    rows(&[
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "read", Value::Null),
        (1, "ok", "read", json!(1)),
    ])
}

fn compose(members: Vec<Box<dyn Checker>>) -> Compose {
    members
        .into_iter()
        .fold(Compose::new(), |compose, checker| {
            let name = checker.name().to_string();
            compose.with(name, checker).unwrap()
        })
}

fn composed_validity(answers: &[Validity]) -> Validity {
    const NAMES: [&str; 3] = ["a", "b", "c"];
    let members = answers
        .iter()
        .zip(NAMES)
        .map(|(valid, name)| fixed(name, *valid))
        .collect();
    let checked = compose(members)
        .check(&register_history(), &CheckOptions::default())
        .unwrap();
    checked.verdict.valid
}

#[test]
fn compose_verdict_is_the_worst_of_its_members() {
    use Validity::*;
    assert_eq!(composed_validity(&[]), Valid);
    assert_eq!(composed_validity(&[Valid, Valid]), Valid);
    assert_eq!(composed_validity(&[Valid, Unknown]), Unknown);
    assert_eq!(composed_validity(&[Unknown, Invalid, Valid]), Invalid);
    assert_eq!(composed_validity(&[Invalid, Unknown]), Invalid);
}

#[test]
fn compose_nests_each_result_under_its_name() {
    let checker = compose(vec![
        fixed("a", Validity::Valid),
        fixed("b", Validity::Invalid),
    ]);
    let checked = checker
        .check(&register_history(), &CheckOptions::default())
        .unwrap();
    assert_eq!(
        checked.verdict.to_json(),
        json!({"valid": false, "a": {"valid": true, "by": "a"}, "b": {"valid": false, "by": "b"}})
    );
    let names: Vec<&str> = checked.members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(checker.names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(checked.members[1].1.verdict.valid, Validity::Invalid);
    // Only the members that are not valid explain themselves, under their names.
    assert_eq!(
        checked.verdict.explanation,
        ["b: invalid", "  b says invalid"]
    );
}

#[test]
fn a_composition_inside_a_composition_nests_deeper() {
    let inner = compose(vec![
        fixed("x", Validity::Valid),
        fixed("y", Validity::Unknown),
    ]);
    let outer = Compose::new()
        .with("inner", Box::new(inner))
        .unwrap()
        .with("z", fixed("z", Validity::Valid))
        .unwrap();
    let checked = outer
        .check(&register_history(), &CheckOptions::default())
        .unwrap();
    let json = checked.verdict.to_json();
    assert_eq!(json["valid"], "unknown");
    assert_eq!(json["inner"]["valid"], "unknown");
    assert_eq!(json["inner"]["y"], json!({"valid": "unknown", "by": "y"}));
    assert_eq!(json["z"]["valid"], true);
    assert_eq!(
        Value::Object(outer.describe(&CheckOptions::default())),
        json!({"name": "compose", "checkers": {
            "inner": {"name": "compose", "checkers": {"x": {"name": "x"}, "y": {"name": "y"}}},
            "z": {"name": "z"}}})
    );
}

#[test]
fn a_shared_checker_composes() {
    let shared: std::sync::Arc<dyn Checker> =
        std::sync::Arc::new(Linearizable::new(ModelKind::CasRegister));
    let checker = Compose::new()
        .with(shared.name(), Box::new(std::sync::Arc::clone(&shared)))
        .unwrap()
        .with("other", fixed("other", Validity::Valid))
        .unwrap();
    let checked = checker
        .check(&register_history(), &CheckOptions::default())
        .unwrap();
    assert_eq!(checked.verdict.details["linearizable"]["valid"], true);
    assert_eq!(
        checked.verdict.details["linearizable"]["model"],
        "cas-register"
    );
}

#[test]
fn compose_refuses_two_members_of_one_name() {
    let result = Compose::new()
        .with("a", fixed("a", Validity::Valid))
        .unwrap()
        .with("a", fixed("b", Validity::Valid));
    assert_eq!(result.err(), Some(DuplicateChecker("a".into())));
}

#[test]
fn a_member_that_cannot_check_is_unknown_and_the_others_still_answer() {
    let refusing = Box::new(Fixed {
        name: "r",
        valid: Validity::Valid,
        error: true,
        drawing: false,
    });
    let checker = compose(vec![refusing, fixed("a", Validity::Invalid)]);
    let checked = checker
        .check(&register_history(), &CheckOptions::default())
        .unwrap();
    assert_eq!(checked.verdict.valid, Validity::Invalid);
    assert_eq!(
        checked.verdict.details["r"],
        json!({"valid": "unknown", "error": "r refuses"})
    );
    assert_eq!(checked.verdict.details["a"]["valid"], false);
    // Outside a composition, the error is the caller's.
    let alone = Fixed {
        name: "r",
        valid: Validity::Valid,
        error: true,
        drawing: false,
    };
    assert!(
        alone
            .check(&register_history(), &CheckOptions::default())
            .is_err()
    );
}

#[test]
fn compose_renames_drawings_by_member() {
    let drawer = |name| {
        Box::new(Fixed {
            name,
            valid: Validity::Invalid,
            error: false,
            drawing: true,
        }) as Box<dyn Checker>
    };
    let checked = compose(vec![drawer("p"), drawer("q")])
        .check(&register_history(), &CheckOptions::default())
        .unwrap();
    let names: Vec<&str> = checked.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["p-G0-0", "q-G0-0"]);
    // Each member keeps its own drawings, as named by itself.
    assert_eq!(checked.members[0].1.artifacts[0].name, "G0-0");
}

#[test]
fn results_hold_a_single_checker_under_its_name() {
    let checker = Linearizable::new(ModelKind::CasRegister);
    let checked = checker
        .check(&register_history(), &CheckOptions::default())
        .unwrap();
    let mut results = Results::default();
    results.record(checker.name(), &checked);
    let json = results.to_json();
    assert_eq!(json["valid"], true);
    let checkers = json["checkers"].as_object().unwrap();
    assert_eq!(checkers.keys().collect::<Vec<_>>(), ["linearizable"]);
    assert_eq!(checkers["linearizable"], checked.verdict.to_json());
    assert_eq!(checkers["linearizable"]["model"], "cas-register");
}

#[test]
fn results_hold_a_composition_as_its_nested_results() {
    let checker = compose(vec![
        Box::new(Linearizable::new(ModelKind::CasRegister)),
        fixed("other", Validity::Unknown),
    ]);
    let checked = checker
        .check(&register_history(), &CheckOptions::default())
        .unwrap();
    let mut results = Results::default();
    results.record(checker.name(), &checked);
    let json = results.to_json();
    assert_eq!(json["valid"], "unknown");
    // `checkers` is exactly the composition's nesting, without its `valid`.
    let mut nested = checked.verdict.to_json();
    nested.as_object_mut().unwrap().remove("valid");
    assert_eq!(json["checkers"], nested);
    assert_eq!(
        results.checkers["other"].explanation,
        ["other says unknown"]
    );
}

#[test]
fn every_checker_answers_unknown_without_client_operations() {
    let empty = History::from_ops("test", Vec::new()).unwrap();
    let checkers: Vec<Box<dyn Checker>> = vec![
        Box::new(Linearizable::new(ModelKind::Register)),
        Box::new(Elle::new(ElleOptions::new(ElleWorkload::ListAppend))),
        Box::new(Bank::new(crate::bank::BankOptions::default())),
        Box::new(Counter::new()),
        Box::new(SetFull::default()),
    ];
    for checker in checkers {
        let checked = checker.check(&empty, &CheckOptions::default()).unwrap();
        assert_eq!(
            checked.verdict.valid,
            Validity::Unknown,
            "{}",
            checker.name()
        );
        assert_eq!(checked.verdict.details["ops"], 0, "{}", checker.name());
    }
}

#[test]
fn descriptions_start_with_the_name_then_the_settings() {
    let options = CheckOptions {
        memory_limit_mib: Some(64),
        ..CheckOptions::default()
    };
    let linearizable = Linearizable::new(ModelKind::CasRegister)
        .with_semantics(Semantics {
            initial_value: json!(0),
            nil_reads: NilReads::Unknown,
        })
        .unwrap();
    let info = linearizable.describe(&options);
    assert_eq!(
        info.keys().collect::<Vec<_>>(),
        [
            "name",
            "model",
            "initial_value",
            "nil_reads",
            "time_limit_seconds",
            "memory_limit_mib"
        ]
    );
    assert_eq!(info["nil_reads"], "unknown");
    // A model without registers has no null reads to interpret.
    let mutex = Linearizable::new(ModelKind::Mutex).describe(&CheckOptions::default());
    assert!(!mutex.contains_key("nil_reads"));
    assert!(!mutex.contains_key("memory_limit_mib"));
    let elle = Elle::new(ElleOptions::new(ElleWorkload::RwRegister));
    assert_eq!(
        Value::Object(elle.describe(&options)),
        json!({"name": "elle", "workload": "rw-register", "consistency_model": "strict-serializable"})
    );
}

#[test]
fn an_initial_value_the_model_cannot_hold_is_refused() {
    let semantics = Semantics {
        initial_value: json!(1),
        nil_reads: NilReads::Null,
    };
    assert!(
        Linearizable::new(ModelKind::Mutex)
            .with_semantics(semantics)
            .is_err()
    );
}
