//! The report's text forms: an aligned table for the terminal, markdown, CSV, JSON, and the
//! paper-shaped markdown (tasks as columns plus the average, models × objectives as rows).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::groups::Group;
use super::published::{Published, AVERAGE};
use crate::spec::{ModelKind, TaskKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for the terminal.
    Table,
    /// A markdown table of the groups.
    Md,
    Csv,
    Json,
    /// Markdown shaped like the papers' tables: tasks as columns plus the average.
    Paper,
}

/// `77.50 ± 1.30` (or `77.50` for one seed, `-` for none).
fn mean_std(mean: Option<f64>, std: Option<f64>) -> String {
    match (mean, std) {
        (Some(m), Some(s)) => format!("{m:.2} ± {s:.2}"),
        (Some(m), None) => format!("{m:.2}"),
        _ => "-".into(),
    }
}

fn signed(value: f64) -> String {
    format!("{value:+.2}")
}

/// The header and cells of the group table, shared by the table, markdown and CSV forms.
fn cells(groups: &[Group]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = groups
        .first()
        .map(|g| g.key.iter().map(|(p, _)| p.clone()).collect())
        .unwrap_or_default();
    header.extend(
        [
            "seeds",
            "test accuracy %",
            "at chance",
            "published",
            "diff",
            "source",
            "notes",
        ]
        .map(String::from),
    );
    let rows = groups
        .iter()
        .map(|g| {
            let mut row: Vec<String> = g.key.iter().map(|(_, v)| v.clone()).collect();
            let s = &g.stats;
            row.push(s.seeds.to_string());
            row.push(mean_std(s.mean, s.std));
            row.push(match s.at_chance.len() {
                0 => String::new(),
                n => {
                    let seeds: Vec<String> = s.at_chance.iter().map(u64::to_string).collect();
                    format!("{n} (seed {})", seeds.join(", "))
                }
            });
            row.push(
                g.published
                    .as_ref()
                    .map_or("-".into(), |p| format!("{:.2}", p.value)),
            );
            row.push(g.difference().map_or(String::new(), signed));
            row.push(g.published.as_ref().map_or(String::new(), |p| {
                format!("{}, {}", short_source(&p.source), p.table)
            }));
            let mut notes = Vec::new();
            if s.unfinished > 0 {
                notes.push(format!("{} unfinished", s.unfinished));
            }
            if s.with_problems > 0 {
                notes.push(format!("{} with problems (see above)", s.with_problems));
            }
            row.push(notes.join("; "));
            row
        })
        .collect();
    (header, rows)
}

/// `Tay et al. 2021, Long Range Arena (arXiv …)` → `Tay et al. 2021`.
fn short_source(source: &str) -> &str {
    source.split(',').next().unwrap_or(source)
}

pub fn render(groups: &[Group], format: Format, published: &Published) -> String {
    match format {
        Format::Table => {
            let (header, rows) = cells(groups);
            aligned(&header, &rows)
        }
        Format::Md => {
            let (header, rows) = cells(groups);
            markdown(&header, &rows)
        }
        Format::Csv => {
            let (header, rows) = cells(groups);
            let mut writer = csv::Writer::from_writer(Vec::new());
            for record in std::iter::once(&header).chain(&rows) {
                // Writing to memory cannot fail.
                let _ = writer.write_record(record);
            }
            String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        Format::Json => serde_json::to_string_pretty(groups).unwrap_or_default() + "\n",
        Format::Paper => paper(groups, published),
    }
}

fn aligned(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header[i])
                .chain(rows.iter().map(|r| &r[i]))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn markdown(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// Rows in the papers' order: model kinds as the language lists them, then scratch, masked,
/// causal; a model or objective lra does not know sorts last.
fn row_order(model: &str, objective: &str) -> (usize, usize) {
    let m = ModelKind::ALL
        .iter()
        .position(|k| k.name() == model)
        .unwrap_or(usize::MAX);
    let o = super::published::OBJECTIVES
        .iter()
        .position(|x| *x == objective)
        .unwrap_or(usize::MAX);
    (m, o)
}

/// A row of the paper-shaped table: its place in the papers' order, the model kind and the
/// objective.
type PaperRow = ((usize, usize), String, String);

/// The paper-shaped markdown: for every model × objective measured, a row of our mean ± std
/// (seeds) per task and their average, then a row of the published figures, footnoted with
/// their sources. `groups` must be grouped by task, model and pretrain (the default `--by`).
pub fn paper(groups: &[Group], published: &Published) -> String {
    let mut rows: BTreeMap<PaperRow, BTreeMap<&str, &Group>> = BTreeMap::new();
    for g in groups {
        if let (Some(t), Some(m), Some(o)) = (&g.task, &g.model, &g.objective) {
            rows.entry((row_order(m, o), m.clone(), o.clone()))
                .or_default()
                .insert(t.as_str(), g);
        }
    }
    let mut out = String::new();
    let titles: Vec<&str> = TaskKind::ALL.iter().map(|t| t.title()).collect();
    let _ = writeln!(out, "| model | objective | {} | Avg |", titles.join(" | "));
    let _ = writeln!(out, "|---|---|{}---:|", "---:|".repeat(titles.len()));
    let mut sources: Vec<String> = Vec::new();
    let mut any_chance = false;
    for ((_, model, objective), by_task) in &rows {
        let mut cells = Vec::new();
        let mut means = Vec::new();
        for task in TaskKind::ALL {
            let cell = match by_task.get(task.name()) {
                Some(g) => {
                    let s = &g.stats;
                    if let Some(m) = s.mean {
                        means.push(m);
                    }
                    let mut cell = format!("{} ({})", mean_std(s.mean, s.std), s.seeds);
                    if !s.at_chance.is_empty() {
                        any_chance = true;
                        let _ = write!(cell, " †{}", s.at_chance.len());
                    }
                    cell
                }
                None => String::new(),
            };
            cells.push(cell);
        }
        let average = match super::groups::mean(&means) {
            Some(m) if means.len() == TaskKind::ALL.len() => format!("{m:.2}"),
            Some(m) => format!("{m:.2} ({} of 6)", means.len()),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "| {model} | {objective} | {} | {average} |",
            cells.join(" | ")
        );
        let mut published_cells: Vec<(String, usize)> = Vec::new();
        let mut notes: Vec<usize> = Vec::new();
        for task in TaskKind::ALL
            .iter()
            .map(|t| t.name())
            .chain(std::iter::once(AVERAGE))
        {
            let cell = match published.lookup(task, model, objective) {
                Some(row) => {
                    let cite = format!("{}, {}", row.source, row.table);
                    let n = match sources.iter().position(|s| *s == cite) {
                        Some(i) => i + 1,
                        None => {
                            sources.push(cite);
                            sources.len()
                        }
                    };
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                    (format!("{:.2}", row.value), n)
                }
                None => (String::new(), 0),
            };
            published_cells.push(cell);
        }
        if !notes.is_empty() {
            let marks: Vec<String> = notes.iter().map(|n| format!("[{n}]")).collect();
            // A row drawn from several papers says which figure is whose.
            let cells: Vec<String> = published_cells
                .into_iter()
                .map(|(value, n)| match n {
                    n if n > 0 && notes.len() > 1 => format!("{value} [{n}]"),
                    _ => value,
                })
                .collect();
            let _ = writeln!(
                out,
                "| | published {} | {} |",
                marks.join(""),
                cells.join(" | ")
            );
        }
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "Test accuracy (%), mean ± standard deviation over seeds (number of seeds); Avg over the tasks measured."
    );
    if any_chance {
        let _ = writeln!(
            out,
            "†n: n seeds stuck at chance (within {} points), left out of the mean.",
            super::groups::CHANCE_MARGIN
        );
    }
    for (i, source) in sources.iter().enumerate() {
        let _ = writeln!(out, "[{}] {source}", i + 1);
    }
    out
}
