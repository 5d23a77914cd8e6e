//! Loading a file and, transitively, the files it imports (relative to the importing file).

use std::path::{Path, PathBuf};

use super::error::CheckError;
use crate::diagnostic::{Diagnostic, FileId, SourceMap};
use crate::syntax::ast::{File, Item};

pub(crate) struct Loaded {
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

/// The largest spec file read: hand-written specs are a few kilobytes, and a bound keeps
/// `import "/dev/zero"` from filling memory.
pub(crate) const MAX_SPEC_BYTES: u64 = 4 << 20;

/// Reads a spec file: only a regular file (a FIFO would block, a device never ends) of at
/// most [`MAX_SPEC_BYTES`], as UTF-8 text.
pub fn read_spec_file(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        let what = if metadata.is_dir() {
            "a folder"
        } else {
            "not a regular file (a device, a pipe or a socket)"
        };
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is {what}; a spec is a text file"),
        ));
    }
    let too_large = |size: u64| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "it holds {size} bytes or more; a spec file holds at most {} MiB",
                MAX_SPEC_BYTES >> 20
            ),
        )
    };
    if metadata.len() > MAX_SPEC_BYTES {
        return Err(too_large(metadata.len()));
    }
    // Some files report no size (procfs) or grow while read: the bound holds while reading.
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SPEC_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(too_large(MAX_SPEC_BYTES + 1));
    }
    Ok(text)
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
            match read_spec_file(&target) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn import_error(target: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.lra");
        let text = format!("import \"{target}\"\n");
        let mut sources = SourceMap::default();
        let mut diagnostics = Vec::new();
        load(&root, text, &mut sources, &mut diagnostics);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        format!("{:?}", diagnostics[0])
    }

    #[cfg(unix)]
    #[test]
    fn importing_a_device_is_refused_without_reading_it() {
        let message = import_error("/dev/zero");
        assert!(message.contains("not a regular file"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn importing_a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.lra");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let message = import_error(fifo.to_str().unwrap());
        assert!(message.contains("not a regular file"), "{message}");
    }

    #[test]
    fn an_oversized_import_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.lra");
        std::fs::write(&big, vec![b' '; MAX_SPEC_BYTES as usize + 1]).unwrap();
        let message = import_error(big.to_str().unwrap());
        assert!(message.contains("at most 4 MiB"), "{message}");
    }
}
