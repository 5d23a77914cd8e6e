//! Diagnostics as data. Every phase turns its own error enum into [`Diagnostic`]s; they are
//! rendered in one place ([`render`]) with miette, on the whole source file, so labels point at
//! exact spans and labels in other files (an imported preset, say) become related notes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

/// Index of a file in a [`SourceMap`].
pub(crate) type FileId = usize;

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span { file, start, end }
    }

    /// The span of a value no one wrote (a built-in default); never rendered.
    pub(crate) fn synthetic() -> Self {
        Span::new(FileId::MAX, 0, 0)
    }
}

/// One loaded source file.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as it was opened (relative paths stay relative, for readable messages).
    pub path: PathBuf,
    pub text: Arc<String>,
}

impl SourceFile {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, col)
    }
}

/// All files read while checking one command-line file (the file and its imports).
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.files.push(SourceFile {
            path,
            text: Arc::new(text),
        });
        self.files.len() - 1
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files.iter().position(|f| f.path == path)
    }

    /// `file:line` of a span, as `explain` prints origins.
    pub(crate) fn location(&self, span: Span) -> String {
        let file = self.get(span.file);
        let (line, _) = file.line_col(span.start);
        format!("{}:{}", file.path.display(), line)
    }

    pub fn slice(&self, span: Span) -> &str {
        &self.get(span.file).text[span.start..span.end]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

impl Label {
    pub fn new(span: Span, text: impl Into<String>) -> Self {
        Label {
            span,
            text: text.into(),
        }
    }
}

/// A problem found in a user's input: a stable code, a message, a primary label on the exact
/// span, secondary labels at the fields it conflicts with, and help that says how to fix it.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub primary: Option<Label>,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.primary = Some(Label::new(span, text));
        self
    }

    pub(crate) fn secondary(mut self, span: Option<Span>, text: impl Into<String>) -> Self {
        if let Some(span) = span {
            self.secondary.push(Label::new(span, text));
        }
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Sort key: by file, then position, errors before warnings at the same place.
    pub fn position(&self) -> (FileId, usize, Severity) {
        match &self.primary {
            Some(label) => (label.span.file, label.span.start, self.severity),
            None => (usize::MAX, 0, self.severity),
        }
    }
}

/// Sorts diagnostics by position, as `check` reports them.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| d.position());
}

/// Renders diagnostics as text. `color` false gives the stable form used by snapshot tests.
pub fn render(
    sources: &SourceMap,
    diagnostics: &[Diagnostic],
    color: bool,
    width: usize,
) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = Rendered::new(sources, diagnostic);
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, &report);
    }
    out
}

/// The miette view of one [`Diagnostic`].
#[derive(Debug)]
struct Rendered {
    code: &'static str,
    severity: Severity,
    message: String,
    help: Option<String>,
    source: Option<NamedSource<Arc<String>>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Rendered>,
}

impl Rendered {
    fn new(sources: &SourceMap, diagnostic: &Diagnostic) -> Self {
        let file = diagnostic.primary.as_ref().map(|l| l.span.file);
        let mut labels = Vec::new();
        let mut related = Vec::new();
        if let Some(primary) = &diagnostic.primary {
            labels.push(LabeledSpan::new_primary_with_span(
                Some(primary.text.clone()),
                source_span(primary.span),
            ));
        }
        for label in &diagnostic.secondary {
            if Some(label.span.file) == file {
                labels.push(LabeledSpan::new_with_span(
                    Some(label.text.clone()),
                    source_span(label.span),
                ));
            } else {
                related.push(Rendered::note(sources, label));
            }
        }
        Rendered {
            code: diagnostic.code,
            severity: diagnostic.severity,
            message: diagnostic.message.clone(),
            help: diagnostic.help.clone(),
            source: file.map(|f| named_source(sources, f)),
            labels,
            related,
        }
    }

    /// A label in another file, shown as a related note on that file's source.
    fn note(sources: &SourceMap, label: &Label) -> Self {
        Rendered {
            code: "",
            severity: Severity::Warning,
            message: label.text.clone(),
            help: None,
            source: Some(named_source(sources, label.span.file)),
            labels: vec![LabeledSpan::new_primary_with_span(
                Some(label.text.clone()),
                source_span(label.span),
            )],
            related: Vec::new(),
        }
    }
}

fn named_source(sources: &SourceMap, file: FileId) -> NamedSource<Arc<String>> {
    let f = sources.get(file);
    NamedSource::new(f.path.display().to_string(), f.text.clone())
}

fn source_span(span: Span) -> SourceSpan {
    (span.start, span.end.saturating_sub(span.start)).into()
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.code.is_empty()).then(|| Box::new(self.code) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match (self.severity, self.code.is_empty()) {
            (_, true) => miette::Severity::Advice,
            (Severity::Error, false) => miette::Severity::Error,
            (Severity::Warning, false) => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        (!self.labels.is_empty()).then(|| Box::new(self.labels.iter().cloned()) as Box<_>)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        (!self.related.is_empty())
            .then(|| Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)) as Box<_>)
    }
}
