//! What `lra check` accepts, `lra run` builds: for every model kind, random combinations of
//! every value the schema offers (each enumerated word, booleans, and integers and numbers at
//! and near their bounds) either get an error from the checker or build a model that runs a
//! forward pass. An engine refusal of a checked spec fails the test with the spec.

mod common;

use std::path::Path;

use dfdx::prelude::*;
use lra::check::schema::{FieldDef, KindDef, Ty, MODEL};
use lra::check::{check_source, Context};
use lra::engine::layers::encoder::{InputData, Inputs};
use lra::engine::models::SequenceClassifier;
use lra::engine::params::ParamStore;
use lra::spec::ExperimentSpec;
use lra::train::compile::{build_model, model_config, DataShape, Role};
use lra::train::objective::Corruption;
use proptest::prelude::*;
use proptest::sample::Index;

/// Samples per model kind.
const CASES: u32 = 256;

/// Short inputs keep every model tiny.
const MAX_LEN: usize = 16;

/// The tasks a sample is built for: tokens, paired documents (two towers) and pixel values.
const TASKS: &[&str] = &[
    "task listops { max_len 16 }",
    "task retrieval { max_len 16 }",
    "task image { encoding continuous max_len 16 }",
];

/// Without pretraining, or with either objective (the pretraining model has its own input
/// layer: a mask-indicator channel for masked pixel inputs).
const PRETRAIN: &[&str] = &[
    "",
    "pretrain masked { steps 1 batch 2 }",
    "pretrain causal { steps 1 batch 2 }",
];

/// Values to try for a field: every word or flag, and integers and numbers at their bounds.
/// Sizes are capped so that every sample builds in milliseconds (the bounds above a few units
/// only scale tensors).
fn candidates(field: &FieldDef) -> Vec<String> {
    match field.ty {
        Ty::Enum(words) => words.iter().map(|w| w.to_string()).collect(),
        Ty::Bool => vec!["true".into(), "false".into()],
        Ty::Int { min, max } => {
            // Depth only repeats a block: two layers show every interaction between blocks.
            let largest = if field.name == "layers" { 2 } else { 32 };
            let mut values: Vec<i64> = (min..=min + 3).chain([8, 32]).collect();
            values.retain(|v| *v <= max && *v <= largest.max(min));
            values.sort_unstable();
            values.dedup();
            values.iter().map(|v| v.to_string()).collect()
        }
        Ty::IntOneOf(options) => options.iter().map(|o| o.to_string()).collect(),
        Ty::Float {
            min,
            max,
            min_open,
            max_open,
        } => {
            // An open end is tried just inside it.
            let nudge = 1e-6 * (max.min(1e6) - min).abs().max(1e-6);
            let low = if min_open { min + nudge } else { min };
            let mut values = vec![low, (min + max.min(1.0)) / 2.0];
            if max.is_finite() {
                values.push(if max_open { max - nudge } else { max });
            }
            values.iter().map(|v| format!("{v:e}")).collect()
        }
        Ty::Str | Ty::FloatPair | Ty::StepsOrPercent | Ty::Select | Ty::Device => vec![],
    }
}

/// Every field a model of `kind` accepts, with its candidate values.
fn fields(kind: &KindDef) -> Vec<(&'static str, Vec<String>)> {
    MODEL
        .common
        .iter()
        .chain(kind.fields)
        .map(|f| (f.name, candidates(f)))
        .filter(|(_, values)| !values.is_empty())
        .collect()
}

/// Small sizes by default, so that a field left unset does not build a large model.
const SMALL: &[(&str, &str)] = &[
    ("layers", "1"),
    ("d_model", "8"),
    ("heads", "2"),
    ("ffn", "8"),
    ("d_state", "4"),
    ("blocks", "2"),
    ("d_attin", "4"),
    ("d_attout", "8"),
    ("ema_dims", "2"),
];

/// The spec text of one sample: `choices[i]` picks field i's value or leaves it unset.
fn spec_text(kind: &KindDef, task: &str, pretrain: &str, choices: &[Index]) -> String {
    let mut body: Vec<(String, String)> = SMALL
        .iter()
        .filter(|(name, _)| MODEL.field(Some(kind), name).is_some())
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    for ((name, values), choice) in fields(kind).into_iter().zip(choices) {
        // One chance in three to leave the field at its default (or the small size above).
        let pick = choice.index(values.len() * 3 / 2 + 1);
        if let Some(value) = values.get(pick) {
            body.retain(|(n, _)| n != name);
            body.push((name.to_string(), value.clone()));
        }
    }
    let fields: Vec<String> = body.iter().map(|(n, v)| format!("{n} {v}")).collect();
    format!(
        "experiment \"p\" {{ {task} model {} {{ {} }} {pretrain} finetune {{ steps 1 batch 2 }} }}",
        kind.name,
        fields.join(" ")
    )
}

fn context() -> Context {
    common::paper_machine_context()
}

/// Builds the checked experiment's model and runs it on a batch of two inputs, in inference
/// and in training mode; any engine error is returned.
fn build_and_run(x: &ExperimentSpec) -> Result<(), String> {
    if let Some(pretrain) = &x.pretrain {
        let role = Role::Pretrain(Corruption::from(pretrain.objective));
        let mut store = ParamStore::new(Cpu::default(), 0);
        build_model(x, DataShape::nominal(x, role), &mut store)
            .map_err(|e| format!("build for pretraining: {e}"))?;
    }
    let shape = DataShape::nominal(x, Role::Finetune);
    let mut store = ParamStore::new(Cpu::default(), 0);
    let model = build_model(x, shape, &mut store).map_err(|e| format!("build: {e}"))?;
    let lengths = [MAX_LEN, MAX_LEN / 2];
    let ids: Vec<usize> = (0..2 * MAX_LEN).map(|i| 4 + i % 10).collect();
    let values: Vec<f32> = (0..2 * MAX_LEN).map(|i| (i % 7) as f32 / 7.0).collect();
    let data = if x.task.is_continuous() {
        InputData::Continuous(&values)
    } else {
        InputData::Tokens(&ids)
    };
    let inputs = Inputs {
        batch: 2,
        seq: MAX_LEN,
        lengths: &lengths,
        data,
    };
    for train in [false, true] {
        let logits = if shape.paired {
            model.pair_logits::<Cpu, NoneTape>(&store, &inputs, &inputs, train)
        } else {
            model.logits::<Cpu, NoneTape>(&store, &inputs, train)
        }
        .map_err(|e| format!("forward (train {train}): {e}"))?;
        let values = logits.as_vec();
        if values.len() != 2 * x.task.n_classes || values.iter().any(|v| !v.is_finite()) {
            return Err(format!("forward (train {train}): logits {values:?}"));
        }
    }
    Ok(())
}

/// Checks one sample; when the checker accepts it, the engine must build and run it.
fn check_then_build(text: &str) -> Result<bool, TestCaseError> {
    let checked = check_source(Path::new("sample.lra"), text.to_string(), &context());
    let Some(spec) = checked.spec else {
        return Ok(false);
    };
    for x in &spec.experiments {
        build_and_run(x).map_err(|e| {
            TestCaseError::fail(format!(
                "`lra check` accepted\n{text}\nbut the engine refused: {e}"
            ))
        })?;
    }
    Ok(true)
}

fn property(kind_name: &str) {
    let kind = MODEL.kind(kind_name).expect("a model kind of the schema");
    let n = fields(kind).len();
    let accepted = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        0..TASKS.len(),
        0..PRETRAIN.len(),
        proptest::collection::vec(any::<Index>(), n),
    );
    let result = runner.run(&strategy, |(task, pretrain, choices)| {
        let text = spec_text(kind, TASKS[task], PRETRAIN[pretrain], &choices);
        if check_then_build(&text)? {
            accepted.set(accepted.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{kind_name}: {e}");
    }
    // The property says nothing if the checker refused every sample.
    let accepted = accepted.get();
    eprintln!("{kind_name}: {accepted} of {CASES} samples passed the checker and ran");
    assert!(
        accepted >= 16,
        "{kind_name}: only {accepted} samples passed the checker"
    );
}

#[test]
fn every_checked_transformer_builds() {
    property("transformer");
}

#[test]
fn every_checked_s4_builds() {
    property("s4");
}

#[test]
fn every_checked_s4d_builds() {
    property("s4d");
}

#[test]
fn every_checked_dlr_builds() {
    property("dlr");
}

#[test]
fn every_checked_s5_builds() {
    property("s5");
}

#[test]
fn every_checked_lru_builds() {
    property("lru");
}

#[test]
fn every_checked_mega_builds() {
    property("mega");
}

/// Every enumerated word of every model kind, one at a time on a default model: each is built,
/// or refused by the checker with a diagnostic (never by the engine).
#[test]
fn every_word_of_every_model_kind_is_built_or_refused_by_check() {
    for kind in MODEL.kinds {
        for field in MODEL.common.iter().chain(kind.fields) {
            let Ty::Enum(words) = field.ty else { continue };
            for word in words {
                let small: Vec<String> = SMALL
                    .iter()
                    .filter(|(name, _)| MODEL.field(Some(kind), name).is_some())
                    .map(|(n, v)| format!("{n} {v}"))
                    .collect();
                let text = format!(
                    "experiment \"w\" {{ {} model {} {{ {} {} {word} }} finetune {{ steps 1 }} }}",
                    TASKS[0],
                    kind.name,
                    small.join(" "),
                    field.name
                );
                check_then_build(&text).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

/// The lowering carries every enumerated word into the engine's configuration (a word the
/// engine ignored, building another value, would pass the tests above), and every word the
/// schema offers is usable: some spec with it checks (alone, or with one other word changed,
/// as S4's `init lin` needs `mode diag`).
#[test]
fn every_word_reaches_the_engine_configuration() {
    for kind in MODEL.kinds {
        let enums: Vec<(&str, &[&str])> = MODEL
            .common
            .iter()
            .chain(kind.fields)
            .filter_map(|f| match f.ty {
                Ty::Enum(words) => Some((f.name, words)),
                _ => None,
            })
            .collect();
        for (name, words) in &enums {
            for word in *words {
                let companions = std::iter::once(String::new()).chain(
                    enums
                        .iter()
                        .filter(|(other, _)| other != name)
                        .flat_map(|(other, ws)| ws.iter().map(move |w| format!("{other} {w}"))),
                );
                let x = companions
                    .filter_map(|companion| {
                        let text = format!(
                            "experiment \"w\" {{ {} model {} {{ {companion} {name} {word} }} finetune {{ steps 1 }} }}",
                            TASKS[0], kind.name
                        );
                        let checked = check_source(Path::new("w.lra"), text, &context());
                        checked.spec.map(|mut spec| spec.experiments.remove(0))
                    })
                    .next()
                    .unwrap_or_else(|| {
                        panic!("{} {name} {word}: no spec with this word checks", kind.name)
                    });
                let config = model_config(&x, DataShape::nominal(&x, Role::Finetune));
                let json = serde_json::to_string(&config).unwrap();
                // `post` lowers to a flag; every other word appears as itself.
                let expected = match (*name, *word) {
                    ("post", "glu") => "\"glu\":true".to_string(),
                    ("post", _) => "\"glu\":false".to_string(),
                    _ => format!("\"{word}\""),
                };
                assert!(
                    json.contains(&expected),
                    "{} {name} {word}: {json}",
                    kind.name
                );
            }
        }
    }
}
