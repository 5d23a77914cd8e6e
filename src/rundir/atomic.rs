//! Writes that a kill, a crash or a full disk cannot leave half done: the contents go to a
//! temporary name beside the file, are synced, and replace the file by a rename (atomic on
//! POSIX file systems), after which the folder itself is synced so the rename survives a
//! power cut. A reader sees the old file or the new one, never a mixture.
//!
//! Test hook: with `LRA_TEST_ABORT_AFTER_WRITES=N` in its environment, a process aborts
//! (as `kill -9` would stop it) in the middle of its Nth write, leaving that write half done.
//! The fault-injection tests kill a run at each of its writes this way and resume it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::{io, Result};

/// The environment variable of the fault-injection hook.
pub const ABORT_AFTER_WRITES: &str = "LRA_TEST_ABORT_AFTER_WRITES";

/// Writes done by this process, counted for the fault-injection hook.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Aborts the process when this is the write the hook names, after `half_write` has put half
/// of the contents where the real write would put all of them.
fn count_write(half_write: impl FnOnce()) {
    static ABORT_AT: OnceLock<Option<u64>> = OnceLock::new();
    let abort_at = *ABORT_AT.get_or_init(|| {
        std::env::var(ABORT_AFTER_WRITES)
            .ok()
            .and_then(|n| n.parse().ok())
    });
    let this = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    if abort_at == Some(this) {
        half_write();
        std::process::abort();
    }
}

/// The temporary name `path` is written under: hidden, in the same folder (a rename across
/// file systems is not atomic), and unique to this process.
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Whether `name` is a temporary name of [`write_atomic`]'s.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Removes the temporary files that writes cut short by a kill left in `folder`. Only the
/// holder of the folder's lock may call it: another writer's temporary file is in use.
pub(crate) fn remove_leftovers(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        if is_temporary(&entry.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Syncs a folder, so that a rename into it is on the disk. Some platforms cannot open a
/// folder for syncing; there the rename stands as the file system keeps it.
fn sync_folder(folder: &Path) {
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}

/// Replaces `path` with `contents`, atomically.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = temporary(path);
    count_write(|| {
        let _ = std::fs::write(&tmp, &contents[..contents.len() / 2]);
    });
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path)(e)
    })?;
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_folder(folder);
    }
    Ok(())
}

/// Appends `line` and a newline to the log at `path` in one write, synced. A log grows by
/// whole records; a kill in the middle of one leaves a torn last line, which readers skip and
/// a resumed run removes (rewriting the log with [`write_atomic`]).
pub fn append_synced(path: &Path, line: &str) -> Result<()> {
    let open = || OpenOptions::new().create(true).append(true).open(path);
    let record = format!("{line}\n");
    count_write(|| {
        if let Ok(mut file) = open() {
            let _ = file.write_all(&record.as_bytes()[..record.len() / 2]);
        }
    });
    let mut file = open().map_err(io(path))?;
    file.write_all(record.as_bytes()).map_err(io(path))?;
    file.sync_data().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full disk is reported with the file and the system's words, and the help says what
    /// to check, never a Debug form of the error (`Os { code: 28, … }`). `/dev/full` answers
    /// every write with ENOSPC, as a full disk does.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_reported_with_the_file_in_words() {
        use miette::Diagnostic;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let err = append_synced(&path, "{}").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("metrics.jsonl"), "{message}");
        assert!(message.contains("No space left on device"), "{message}");
        assert!(!message.contains("Os {"), "{message}");
        let help = err.help().map(|h| h.to_string()).unwrap_or_default();
        assert!(help.contains("room"), "{help}");
    }

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-folder").join("state.json");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    #[test]
    fn leftovers_of_cut_writes_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("state.json");
        write_atomic(&kept, b"{}").unwrap();
        std::fs::write(temporary(&kept), b"{").unwrap();
        remove_leftovers(dir.path());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(kept.exists());
    }

    #[test]
    fn appends_add_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        append_synced(&path, "{\"a\":1}").unwrap();
        append_synced(&path, "{\"a\":2}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
    }
}
