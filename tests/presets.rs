//! docs/PRESETS.md is the contract between the experiments' presets and their sources: every
//! row of its tables names an experiment file, a dotted setting and the value the source
//! gives (or the documented choice). Each row is checked against what `lra::check` resolves
//! for that file, so a preset that drifts from its table, or a table that drifts from its
//! presets, fails here.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lra::check::resolved::RSection;
use lra::check::Context;

/// One row of a table: `| experiment | setting | value | source |`.
#[derive(Clone, Debug)]
struct Row {
    line: usize,
    file: PathBuf,
    setting: String,
    value: String,
    source: String,
}

const HEADER: &str = "| experiment | setting | value | source |";

/// The task folder a `### Title` heading stands for.
fn task_folder(title: &str) -> Option<&'static str> {
    Some(match title {
        "ListOps" => "listops",
        "Text" => "text",
        "Retrieval" => "retrieval",
        "Image" => "image",
        "Pathfinder" => "pathfinder",
        "Path-X" => "pathx",
        _ => return None,
    })
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split(" | ").map(|c| c.trim().to_string()).collect()
}

/// Every row of every table with the [`HEADER`], under the task heading above it.
fn rows(doc: &str) -> Vec<Row> {
    let mut task: Option<&str> = None;
    let mut in_table = false;
    let mut out = Vec::new();
    for (i, line) in doc.lines().enumerate() {
        if let Some(title) = line.strip_prefix("### ") {
            task = task_folder(title.trim());
            in_table = false;
            continue;
        }
        if line.trim() == HEADER {
            assert!(
                task.is_some(),
                "line {}: a table outside a task heading",
                i + 1
            );
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if line.starts_with("|---") {
            continue;
        }
        let c = cells(line);
        assert_eq!(c.len(), 4, "line {}: expected 4 cells: {line}", i + 1);
        out.push(Row {
            line: i + 1,
            file: Path::new("experiments")
                .join(task.expect("checked above"))
                .join(format!("{}.lra", c[0])),
            setting: c[1].trim_matches('`').to_string(),
            value: c[2].clone(),
            source: c[3].clone(),
        });
    }
    out
}

/// The resolved value at a dotted path: a field's value, or a section's kind.
fn resolved(root: &RSection, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let (last, sections) = parts.split_last()?;
    let mut section = root;
    for name in sections {
        section = section.section(name)?;
    }
    if let Some(field) = section.get(last) {
        return Some(field.value.to_string());
    }
    section
        .section(last)
        .map(|s| s.kind_name().unwrap_or("").to_string())
}

/// Numbers compare as numbers (`1e-4` = `0.0001`, `0` = `0.0`), everything else as text.
fn same(table: &str, actual: &str) -> bool {
    match (table.parse::<f64>(), actual.parse::<f64>()) {
        (Ok(a), Ok(b)) => (a - b).abs() <= 1e-12 * a.abs().max(b.abs()),
        _ => table.split_whitespace().eq(actual.split_whitespace()),
    }
}

fn context() -> Context {
    common::paper_machine_context()
}

fn doc() -> String {
    std::fs::read_to_string("docs/PRESETS.md").expect("docs/PRESETS.md exists")
}

/// The mismatches between the table and the presets, one line each.
fn mismatches(rows: &[Row]) -> Vec<String> {
    let context = context();
    let mut roots: BTreeMap<PathBuf, RSection> = BTreeMap::new();
    let mut out = Vec::new();
    for row in rows {
        if !roots.contains_key(&row.file) {
            let checked = lra::check::check(&row.file, &context)
                .unwrap_or_else(|e| panic!("line {}: {}: {e}", row.line, row.file.display()));
            assert!(
                !checked.has_errors(),
                "{}:\n{}",
                row.file.display(),
                common::rendered(&checked)
            );
            assert_eq!(checked.experiments.len(), 1, "{}", row.file.display());
            roots.insert(row.file.clone(), checked.experiments[0].root.clone());
        }
        let root = &roots[&row.file];
        match resolved(root, &row.setting) {
            Some(actual) if same(&row.value, &actual) => {}
            actual => out.push(format!(
                "docs/PRESETS.md:{}: {} {}: table says {}, the preset resolves to {}",
                row.line,
                row.file.display(),
                row.setting,
                row.value,
                actual.as_deref().unwrap_or("nothing")
            )),
        }
    }
    out
}

#[test]
fn every_number_of_the_table_is_the_resolved_preset() {
    let rows = rows(&doc());
    let wrong = mismatches(&rows);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The tables cover every task, the Transformer's and S4's settings in both objectives, and
/// every other model kind; each row cites a source or says it is a choice.
#[test]
fn the_tables_cover_every_task_and_model_and_cite_a_source() {
    let rows = rows(&doc());
    assert!(rows.len() > 600, "only {} rows", rows.len());
    let mut covered: BTreeSet<(String, String)> = BTreeSet::new();
    for row in &rows {
        assert!(
            row.source.starts_with("SPT ") || row.source.starts_with("choice:"),
            "docs/PRESETS.md:{}: the source must name the SPT code or say `choice:`",
            row.line
        );
        assert!(
            row.file.exists(),
            "docs/PRESETS.md:{}: no {}",
            row.line,
            row.file.display()
        );
        let task = row.file.parent().unwrap().display().to_string();
        let experiment = row.file.file_stem().unwrap().to_string_lossy().to_string();
        covered.insert((task, experiment));
    }
    // The experiment folders are named after the task kinds.
    for &task in lra::spec::TaskKind::NAMES {
        for experiment in [
            "transformer-masked",
            "transformer-causal",
            "s4-masked",
            "s4-causal",
            "s4d-masked",
            "dlr-masked",
            "s5-masked",
            "lru-masked",
            "mega-masked",
        ] {
            let key = (format!("experiments/{task}"), experiment.to_string());
            assert!(covered.contains(&key), "no rows for {task}/{experiment}");
        }
        // The settings every Transformer and S4 table must state.
        for (experiment, setting) in [
            ("transformer-masked", "model.layers"),
            ("transformer-masked", "model.d_model"),
            ("transformer-masked", "model.heads"),
            ("transformer-masked", "model.dropout"),
            ("transformer-masked", "model.position"),
            ("transformer-masked", "model.pool"),
            ("transformer-masked", "finetune.optimizer.lr"),
            ("transformer-masked", "finetune.optimizer.weight_decay"),
            ("transformer-masked", "finetune.batch"),
            ("transformer-masked", "finetune.epochs"),
            ("transformer-masked", "finetune.schedule.warmup"),
            ("transformer-masked", "pretrain.rate"),
            ("s4-masked", "model.d_state"),
            ("s4-masked", "model.ssm_lr"),
            ("s4-masked", "model.norm_kind"),
            ("s4-masked", "finetune.optimizer.lr"),
            ("s4-masked", "pretrain.epochs"),
        ] {
            let file = PathBuf::from(format!("experiments/{task}/{experiment}.lra"));
            assert!(
                rows.iter().any(|r| r.file == file && r.setting == setting),
                "no row for {task}/{experiment} {setting}"
            );
        }
    }
}

/// The comparison is not vacuous: a changed value in the table, a setting that does not
/// resolve, and a differently spelt number are each caught or accepted as they should be.
#[test]
fn a_table_that_disagrees_with_a_preset_fails() {
    let rows = rows(&doc());
    let layers = rows
        .iter()
        .find(|r| r.setting == "model.layers")
        .expect("a layers row")
        .clone();
    assert!(mismatches(std::slice::from_ref(&layers)).is_empty());
    let wrong = Row {
        value: format!("{}", layers.value.parse::<u64>().unwrap() + 1),
        ..layers.clone()
    };
    assert_eq!(mismatches(&[wrong]).len(), 1);
    let missing = Row {
        setting: "model.no_such_field".into(),
        ..layers.clone()
    };
    assert_eq!(mismatches(&[missing]).len(), 1);
    assert!(same("1e-4", "0.0001") && same("0", "0.0") && same("5e-4", "0.0005"));
    assert!(!same("1e-4", "1e-3") && !same("mean", "max"));
    assert!(same("(0.9, 0.999)", "(0.9, 0.999)"));
}
