//! `lra report RUN_A RUN_B --diff`: what differs between two runs' resolved specs (by the
//! paths `lra explain` prints), and their results side by side.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use super::error::{ReportError, Result};
use crate::results::folder::{read_run_folder, RunFolder, RunState};

fn read(path: &Path) -> Result<RunFolder> {
    if !path.join("spec.json").is_file() {
        return Err(ReportError::NotARun {
            path: path.to_path_buf(),
        });
    }
    let parent = path.parent().unwrap_or(Path::new(""));
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let mut run = read_run_folder(parent, &name);
    // A corrupt metrics line only costs the throughput figure; an unreadable spec or summary
    // leaves nothing to compare.
    if run.state == RunState::Unreadable && !run.problems.is_empty() {
        return Err(run.problems.remove(0).into());
    }
    Ok(run)
}

/// The comparison as text: differing spec values, then the results.
pub fn diff(a: &Path, b: &Path) -> Result<String> {
    let (run_a, run_b) = (read(a)?, read(b)?);
    let values_a: BTreeMap<_, _> = run_a.spec_values.iter().cloned().collect();
    let values_b: BTreeMap<_, _> = run_b.spec_values.iter().cloned().collect();
    let mut paths: Vec<&String> = values_a.keys().chain(values_b.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut rows = vec![["".to_string(), "A".to_string(), "B".to_string()]];
    let absent = || "(absent)".to_string();
    for path in paths {
        let (va, vb) = (values_a.get(path), values_b.get(path));
        if va != vb {
            rows.push([
                path.clone(),
                va.cloned().unwrap_or_else(absent),
                vb.cloned().unwrap_or_else(absent),
            ]);
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "A  {}\nB  {}\n", a.display(), b.display());
    if rows.len() == 1 {
        let _ = writeln!(out, "The resolved specs are the same.");
    } else {
        let _ = writeln!(out, "Spec (what differs):");
        out.push_str(&columns(&rows));
    }
    let _ = writeln!(out, "\nResults:");
    let result_rows = [
        ["".to_string(), "A".to_string(), "B".to_string()],
        results_row("state", &run_a, &run_b, |r| {
            Some(r.state.name().to_string())
        }),
        results_row("test accuracy %", &run_a, &run_b, |r| {
            Some(format!("{:.2}", r.summary.as_ref()?.test_accuracy * 100.0))
        }),
        results_row("test loss", &run_a, &run_b, |r| {
            Some(format!("{:.4}", r.summary.as_ref()?.test_loss))
        }),
        results_row("selected step", &run_a, &run_b, |r| {
            Some(r.summary.as_ref()?.selected_step?.to_string())
        }),
        results_row("fine-tuning steps", &run_a, &run_b, |r| {
            Some(r.summary.as_ref()?.finetune_steps?.to_string())
        }),
        results_row("parameters", &run_a, &run_b, |r| {
            Some(r.summary.as_ref()?.parameters?.to_string())
        }),
        results_row("minutes", &run_a, &run_b, |r| {
            Some(format!("{:.1}", r.summary.as_ref()?.seconds? / 60.0))
        }),
        results_row("tokens/s (fine-tuning)", &run_a, &run_b, |r| {
            Some(format!("{:.0}", r.tokens_per_s()?))
        }),
    ];
    out.push_str(&columns(&result_rows));
    Ok(out)
}

fn results_row(
    name: &str,
    a: &RunFolder,
    b: &RunFolder,
    get: impl Fn(&RunFolder) -> Option<String>,
) -> [String; 3] {
    let show = |r: &RunFolder| get(r).unwrap_or_else(|| "-".into());
    [name.to_string(), show(a), show(b)]
}

fn columns(rows: &[[String; 3]]) -> String {
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    let mut out = String::new();
    for [name, a, b] in rows {
        let _ = writeln!(out, "  {name:<w0$}  {a:<w1$}  {b}");
    }
    out
}
