//! `--plots DIR`: figures drawn with plotters, each as PNG and SVG.
//!
//! - `curves-<group>.{png,svg}` per group: validation accuracy (top) and loss (bottom)
//!   against the step for every seed, the pretraining and fine-tuning phases side by side.
//! - `summary.{png,svg}`: test accuracy per group (task / model / objective) with each seed,
//!   the mean and its standard deviation as an error bar, the published figure and the
//!   task's chance level marked.
//!
//! Text is drawn with DejaVu Sans built into the binary (plotters' `ab_glyph` backend), so
//! figures render the same on a machine without any system font.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::error::{ReportError, Result};
use super::groups::{chance_level, Group};
use crate::results::IndexedRun;

const FONT: &str = "sans-serif";

/// Makes the bundled font the one plotters draws with.
fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped by the `dejavu` crate.
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// A figure that can draw itself on any plotters backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String>;
}

/// Writes `figure` as `<stem>.png` and `<stem>.svg`; returns both paths.
fn save(figure: &impl Figure, stem: &Path) -> Result<Vec<PathBuf>> {
    let (w, h) = figure.size();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |reason: String| ReportError::Write { path, reason }
    };
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        figure.draw(&root).map_err(failed(&png))?;
        root.present().map_err(|e| failed(&png)(e.to_string()))?;
    }
    image::save_buffer(&png, &pixels, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| failed(&png)(e.to_string()))?;
    {
        let root = SVGBackend::new(&svg, (w, h)).into_drawing_area();
        figure.draw(&root).map_err(failed(&svg))?;
        root.present().map_err(|e| failed(&svg)(e.to_string()))?;
    }
    Ok(vec![png, svg])
}

/// Writes every figure into `dir` (created if needed); returns the files written.
pub(crate) fn write_plots(groups: &[Group], dir: &Path) -> Result<Vec<PathBuf>> {
    register_fonts();
    std::fs::create_dir_all(dir).map_err(|e| ReportError::Write {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut written = Vec::new();
    for group in groups {
        let curves = Curves::new(group);
        if !curves.phases.is_empty() {
            let stem = dir.join(format!("curves-{}", slug(&group.label())));
            written.extend(save(&curves, &stem)?);
        }
    }
    if groups
        .iter()
        .any(|g| g.runs.iter().any(|r| r.test.is_some()))
    {
        written.extend(save(&Summary { groups }, &dir.join("summary"))?);
    }
    Ok(written)
}

/// `pathfinder / transformer / masked` → `pathfinder-transformer-masked`.
pub(crate) fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Width of the legend strip on the right of every figure: legends drawn inside a chart
/// would hide data.
const LEGEND_WIDTH: u32 = 150;

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Mark {
    Line(RGBColor),
    Dot(RGBColor, u32),
    Cross(RGBColor),
    Tick(RGBColor),
}

/// Draws `entries` top to bottom in `area`, beside the charts.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Mark)],
) -> std::result::Result<(), String> {
    for (i, (label, mark)) in entries.iter().enumerate() {
        let y = 70 + 26 * i as i32;
        let x = 12;
        match *mark {
            Mark::Line(c) => area.draw(&PathElement::new([(x, y), (x + 24, y)], c.stroke_width(3))),
            Mark::Dot(c, r) => area.draw(&Circle::new((x + 12, y), r, c.filled())),
            Mark::Cross(c) => area.draw(&Cross::new((x + 12, y), 6, c.stroke_width(3))),
            Mark::Tick(c) => area.draw(&PathElement::new(
                [(x + 12, y - 8), (x + 12, y + 8)],
                c.stroke_width(2),
            )),
        }
        .map_err(err)?;
        area.draw(&Text::new(
            label.clone(),
            (x + 34, y - 8),
            (FONT, 14).into_font(),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// The colour of the i-th seed.
fn seed_colour(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

fn seed_label(run: &IndexedRun) -> String {
    match run.seed {
        Some(seed) => format!("seed {seed}"),
        None => run.folder.clone(),
    }
}

/// Validation curves of one group.
struct Curves<'a> {
    group: &'a Group,
    /// The phases any run of the group evaluated, pretraining first.
    phases: Vec<&'static str>,
}

impl<'a> Curves<'a> {
    fn new(group: &'a Group) -> Self {
        let phases = ["pretrain", "finetune"]
            .into_iter()
            .filter(|p| {
                group
                    .runs
                    .iter()
                    .any(|r| !points(r, p, |e| e.loss).is_empty())
            })
            .collect();
        Curves { group, phases }
    }
}

/// `(step, value)` of a run's validation evaluations in one phase.
fn points(
    run: &IndexedRun,
    phase: &str,
    value: impl Fn(&crate::results::Evaluation) -> f64,
) -> Vec<(f64, f64)> {
    run.evaluations
        .iter()
        .filter(|e| e.phase == phase && e.split == "val")
        .map(|e| (e.step as f64, value(e)))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// The y range of a panel, padded so lines do not run along the frame.
fn y_range(series: &[Vec<(f64, f64)>], floor_zero: bool) -> std::ops::Range<f64> {
    let values = series.iter().flatten().map(|p| p.1);
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    // A flat series still gets a readable axis: at least 2% of its magnitude either side.
    let pad = ((hi - lo) * 0.08)
        .max(0.02 * hi.abs().max(lo.abs()))
        .max(1e-3);
    let lo = if floor_zero {
        (lo - pad).max(0.0)
    } else {
        lo - pad
    };
    lo..hi + pad
}

impl Figure for Curves<'_> {
    fn size(&self) -> (u32, u32) {
        (
            (520 * self.phases.len() as u32).max(720) + LEGEND_WIDTH,
            760,
        )
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let runs = self.group.runs.len();
        let title = format!(
            "{}: validation curves ({runs} run{})",
            self.group.label(),
            if runs == 1 { "" } else { "s" }
        );
        let body = root
            .titled(&title, (FONT, 22).into_font().style(FontStyle::Bold))
            .map_err(err)?;
        let (body, legend) = body.split_horizontally(body.dim_in_pixel().0 - LEGEND_WIDTH);
        let entries: Vec<(String, Mark)> = self
            .group
            .runs
            .iter()
            .enumerate()
            .map(|(i, run)| (seed_label(run), Mark::Line(seed_colour(i))))
            .collect();
        draw_legend(&legend, &entries)?;
        let panels = body.split_evenly((2, self.phases.len()));
        let metrics: [(&str, bool); 2] = [("accuracy %", true), ("loss", false)];
        for (row, (metric, is_accuracy)) in metrics.iter().enumerate() {
            for (col, phase) in self.phases.iter().enumerate() {
                let area = &panels[row * self.phases.len() + col];
                let series: Vec<Vec<(f64, f64)>> = self
                    .group
                    .runs
                    .iter()
                    .map(|r| {
                        points(r, phase, |e| {
                            if *is_accuracy {
                                e.accuracy * 100.0
                            } else {
                                e.loss
                            }
                        })
                    })
                    .collect();
                let max_step = series.iter().flatten().map(|p| p.0).fold(1.0f64, f64::max);
                let phase_name = if *phase == "pretrain" {
                    "pretraining"
                } else {
                    "fine-tuning"
                };
                let mut chart = ChartBuilder::on(area)
                    .caption(format!("{phase_name}: val {metric}"), (FONT, 17))
                    .margin(12)
                    .x_label_area_size(36)
                    .y_label_area_size(56)
                    .build_cartesian_2d(0.0..max_step * 1.02, y_range(&series, true))
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .x_desc("step")
                    .x_label_formatter(&|step| format!("{step:.0}"))
                    .label_style((FONT, 13))
                    .axis_desc_style((FONT, 14))
                    .light_line_style(WHITE.mix(0.0))
                    .draw()
                    .map_err(err)?;
                for (i, line) in series.iter().enumerate() {
                    let colour = seed_colour(i);
                    chart
                        .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
                        .map_err(err)?;
                    chart
                        .draw_series(line.iter().map(|p| Circle::new(*p, 2, colour.filled())))
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    }
}

/// Test accuracy of every group.
struct Summary<'a> {
    groups: &'a [Group],
}

impl Figure for Summary<'_> {
    fn size(&self) -> (u32, u32) {
        (1000 + LEGEND_WIDTH, 170 + 56 * self.groups.len() as u32)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let (root, legend) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_WIDTH);
        let n = self.groups.len();
        let labels: Vec<String> = self.groups.iter().map(Group::label).collect();
        let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(10) as u32;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Test accuracy per group",
                (FONT, 22).into_font().style(FontStyle::Bold),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(24 + 8 * label_width)
            .build_cartesian_2d(0.0..100.0, -0.5..n as f64 - 0.5)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("test accuracy %")
            .x_labels(11)
            .light_line_style(WHITE.mix(0.0))
            // Enough ticks that every integer (one per group) is among them; the others
            // get no label.
            .y_labels(4 * n + 1)
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                    // Top to bottom in the order of the table.
                    labels[n - 1 - i as usize].clone()
                } else {
                    String::new()
                }
            })
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .disable_y_mesh()
            .draw()
            .map_err(err)?;
        let blue = RGBColor(31, 119, 180);
        let light_blue = RGBColor(150, 190, 222);
        let red = RGBColor(214, 39, 40);
        let grey = RGBColor(120, 120, 120);
        for (i, group) in self.groups.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            if let Some(chance) = group.runs.first().and_then(chance_level) {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        [(chance, y - 0.35), (chance, y + 0.35)],
                        grey.stroke_width(2),
                    )))
                    .map_err(err)?;
            }
            let seeds = group.runs.iter().filter_map(|r| r.test.as_ref());
            chart
                .draw_series(
                    seeds.map(|t| {
                        Circle::new((t.accuracy * 100.0, y + 0.18), 4, light_blue.filled())
                    }),
                )
                .map_err(err)?;
            if let Some(mean) = group.stats.mean {
                let std = group.stats.std.unwrap_or(0.0);
                chart
                    .draw_series(std::iter::once(ErrorBar::new_horizontal(
                        y,
                        mean - std,
                        mean,
                        mean + std,
                        blue.filled().stroke_width(2),
                        10,
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Circle::new((mean, y), 6, blue.filled())))
                    .map_err(err)?;
            }
            if let Some(published) = &group.published {
                chart
                    .draw_series(std::iter::once(Cross::new(
                        (published.value, y),
                        7,
                        red.stroke_width(3),
                    )))
                    .map_err(err)?;
            }
        }
        draw_legend(
            &legend,
            &[
                ("mean ± std".to_string(), Mark::Dot(blue, 6)),
                ("one seed".to_string(), Mark::Dot(light_blue, 4)),
                ("published".to_string(), Mark::Cross(red)),
                ("chance".to_string(), Mark::Tick(grey)),
            ],
        )?;
        Ok(())
    }
}
