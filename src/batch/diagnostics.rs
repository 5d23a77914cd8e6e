//! Every diagnostic of a batch, rendered once: the batch file's own, and each point's from
//! the spec checker, labelled with the point (`point 3: seed 1, model.d_model 63`). A mistake
//! shared by many points (one in the spec file itself, say) is shown once, naming them all.

use crate::check::Checked;
use crate::diagnostic::{self, Diagnostic, SourceMap};

/// Width of rendered diagnostics, as `lra check` renders them.
const WIDTH: usize = 100;

#[derive(Default)]
pub struct Diagnostics {
    entries: Vec<Entry>,
}

struct Entry {
    /// The diagnostic rendered without its point label, to find repeats.
    key: String,
    /// As shown: with the first point's label, in both colour forms.
    plain: String,
    colored: String,
    error: bool,
    /// The points it was found in, after the first.
    more_points: Vec<usize>,
}

impl Diagnostics {
    /// Diagnostics of the batch file itself (or of a spec file checked whole).
    pub(crate) fn add_file(
        &mut self,
        sources: &SourceMap,
        diagnostics: impl IntoIterator<Item = Diagnostic>,
    ) {
        for d in diagnostics {
            self.push(sources, &d, &d, None);
        }
    }

    /// The diagnostics of a spec file checked on its own.
    pub(crate) fn add_checked(&mut self, checked: &Checked) {
        self.add_file(&checked.sources, checked.diagnostics.iter().cloned());
    }

    /// The diagnostics of point `index`: the checker's (labelled with the point at the
    /// experiment's name), or those of reading its values from the batch file.
    pub(crate) fn add_point(
        &mut self,
        batch: &SourceMap,
        index: usize,
        label: &str,
        checked: &Result<Checked, Vec<Diagnostic>>,
    ) {
        let title = if label.is_empty() {
            format!("point {index}")
        } else {
            format!("point {index}: {label}")
        };
        match checked {
            Err(diagnostics) => {
                for d in diagnostics {
                    let mut shown = d.clone();
                    if let Some(primary) = &mut shown.primary {
                        primary.text = format!("{} (in {title})", primary.text);
                    }
                    self.push(batch, d, &shown, Some(index));
                }
            }
            Ok(checked) => {
                let name_span = checked.experiments.first().map(|x| x.name_span);
                for d in &checked.diagnostics {
                    let shown = d.clone().secondary(name_span, format!("in {title}"));
                    self.push(&checked.sources, d, &shown, Some(index));
                }
            }
        }
    }

    fn push(
        &mut self,
        sources: &SourceMap,
        bare: &Diagnostic,
        shown: &Diagnostic,
        point: Option<usize>,
    ) {
        let key = diagnostic::render(sources, std::slice::from_ref(bare), false, WIDTH);
        if let Some(entry) = self.entries.iter_mut().find(|e| e.key == key) {
            if let Some(point) = point {
                entry.more_points.push(point);
            }
            return;
        }
        let shown = std::slice::from_ref(shown);
        self.entries.push(Entry {
            key,
            plain: diagnostic::render(sources, shown, false, WIDTH),
            colored: diagnostic::render(sources, shown, true, WIDTH),
            error: bare.is_error(),
            more_points: Vec::new(),
        });
    }

    pub fn has_errors(&self) -> bool {
        self.entries.iter().any(|e| e.error)
    }

    pub fn errors(&self) -> usize {
        self.entries.iter().filter(|e| e.error).count()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every diagnostic, in the order found (the batch file's first).
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(if color { &entry.colored } else { &entry.plain });
            if !entry.more_points.is_empty() {
                out.push_str(&format!(
                    "  (the same in {} more point{}: {})\n",
                    entry.more_points.len(),
                    if entry.more_points.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    abbreviated(&entry.more_points)
                ));
            }
        }
        out
    }
}

/// `1, 2, 3, … 40` for long lists of points.
fn abbreviated(points: &[usize]) -> String {
    let shown: Vec<String> = points.iter().take(8).map(usize::to_string).collect();
    if points.len() > 8 {
        format!("{}, …", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
