//! Fixture histories for every model: `tests/fixtures/linearizable/MODEL[-what]-valid.jsonl`
//! must be linearizable and `…-invalid.jsonl` must not be.

use std::path::{Path, PathBuf};

use faultline_checker::History;
use faultline_checker::linearizable::{LinearizableOptions, ModelKind, check};
use faultline_checker::results::Validity;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linearizable");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    paths
}

/// The model a fixture's name starts with (the longest match: `cas-register` before
/// `register`).
fn model_of(stem: &str) -> ModelKind {
    ModelKind::ALL
        .into_iter()
        .filter(|m| stem.starts_with(&format!("{}-", m.name())))
        .max_by_key(|m| m.name().len())
        .unwrap_or_else(|| panic!("fixture {stem} does not start with a model name"))
}

fn expected(stem: &str) -> Validity {
    if stem.ends_with("-invalid") {
        Validity::Invalid
    } else if stem.ends_with("-valid") {
        Validity::Valid
    } else {
        panic!("fixture {stem} must end in -valid or -invalid")
    }
}

#[test]
fn every_model_has_a_valid_and_an_invalid_fixture() {
    let stems: Vec<String> = fixtures()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for model in ModelKind::ALL {
        for suffix in ["valid", "invalid"] {
            let name = format!("{}-{suffix}", model.name());
            assert!(stems.contains(&name), "missing fixture {name}.jsonl");
        }
    }
}

#[test]
fn fixtures_have_the_verdict_their_name_says() {
    for path in fixtures() {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let history = History::read(&path, None).unwrap();
        let options = LinearizableOptions {
            model: Some(model_of(&stem)),
            ..LinearizableOptions::default()
        };
        let verdict = check(&history, &options).unwrap();
        assert_eq!(
            verdict.valid,
            expected(&stem),
            "{stem}: {:#?}",
            verdict.explanation
        );
        if verdict.valid == Validity::Invalid {
            assert!(
                !verdict.explanation.is_empty(),
                "{stem}: an invalid verdict is explained"
            );
            assert!(verdict.details.contains_key("failures"), "{stem}");
        }
    }
}

#[test]
fn inferred_model_gives_the_same_verdict() {
    // `register` fixtures are inferred as cas-register, which accepts the same histories.
    // An unordered queue has the FIFO queue's operations: it is never inferred.
    for path in fixtures() {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if stem.starts_with("unordered-queue-") {
            continue;
        }
        let history = History::read(&path, None).unwrap();
        let verdict = check(&history, &LinearizableOptions::default()).unwrap();
        assert_eq!(verdict.valid, expected(&stem), "{stem}");
    }
}

#[test]
fn multi_key_fixture_names_the_bad_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/linearizable/cas-register-keys-invalid.jsonl");
    let history = History::read(&path, None).unwrap();
    let verdict = check(&history, &LinearizableOptions::default()).unwrap();
    assert_eq!(verdict.valid, Validity::Invalid);
    assert_eq!(verdict.details["keys"], 2);
    assert_eq!(verdict.details["invalid_keys"], serde_json::json!(["b"]));
}
