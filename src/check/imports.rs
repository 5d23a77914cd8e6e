//! Loading a file and, transitively, the files it imports (relative to the importing file).

use std::path::{Path, PathBuf};

use super::error::CheckError;
use crate::diagnostic::{Diagnostic, FileId, SourceMap};
use crate::syntax::ast::{File, Item};

pub struct Loaded {
    pub root: FileId,
    /// Every parsed file, the root first.
    pub files: Vec<(FileId, File)>,
}

/// Loads `text` (the contents of `path`) and its imports. Problems become diagnostics.
pub fn load(
    path: &Path,
    text: String,
    sources: &mut SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) -> Loaded {
    let root = sources.add(path.to_path_buf(), text);
    let mut loader = Loader {
        sources,
        diagnostics,
        files: Vec::new(),
        stack: Vec::new(),
        seen: Vec::new(),
    };
    loader.visit(root, canonical(path));
    Loaded {
        root,
        files: loader.files,
    }
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

struct Loader<'a> {
    sources: &'a mut SourceMap,
    diagnostics: &'a mut Vec<Diagnostic>,
    files: Vec<(FileId, File)>,
    /// Files being loaded, outermost first, for cycle detection.
    stack: Vec<PathBuf>,
    seen: Vec<PathBuf>,
}

impl Loader<'_> {
    fn visit(&mut self, id: FileId, canonical_path: PathBuf) {
        self.seen.push(canonical_path.clone());
        let text = self.sources.get(id).text.clone();
        let file = match crate::syntax::parse(id, &text) {
            Ok(file) => file,
            Err(e) => {
                self.diagnostics.push(e.to_diagnostic());
                return;
            }
        };
        self.stack.push(canonical_path.clone());
        let base = self
            .sources
            .get(id)
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for item in &file.items {
            let Item::Import(import) = item else { continue };
            let target = base.join(&import.path.value);
            let target_canonical = canonical(&target);
            if let Some(pos) = self.stack.iter().position(|p| *p == target_canonical) {
                let mut chain: Vec<String> = self.stack[pos..].iter().map(|p| display(p)).collect();
                chain.push(display(&target_canonical));
                self.diagnostics.push(
                    CheckError::ImportCycle {
                        span: import.path.span,
                        chain,
                    }
                    .to_diagnostic(),
                );
                continue;
            }
            if self.seen.contains(&target_canonical) {
                continue;
            }
            match std::fs::read_to_string(&target) {
                Ok(text) => {
                    let child = self.sources.add(target, text);
                    self.visit(child, target_canonical);
                }
                Err(e) => self.diagnostics.push(
                    CheckError::ImportNotFound {
                        span: import.path.span,
                        path: import.path.value.clone(),
                        reason: format!("{}: {e}", target.display()),
                    }
                    .to_diagnostic(),
                ),
            }
        }
        self.stack.pop();
        self.files.push((id, file));
    }
}

fn display(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
