//! One process per run folder. The lock is a file beside the folder (`<folder>.lock`, so a
//! folder can be moved aside while it is held) that its holder keeps locked with the operating
//! system's advisory lock and fills with who it is: process id, host, start and a heartbeat
//! renewed every [`HEARTBEAT_S`] seconds.
//!
//! The operating system drops the advisory lock when its holder dies, however it dies, so on
//! one host a lock file left by a killed run is taken over at once. A holder on another host
//! (a cluster worker on a shared file system) is taken for dead when its heartbeat is older
//! than [`STALE_AFTER_S`]. A lock that is taken over is reported with its former holder.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{io, Result, RunDirError};

/// Seconds between two heartbeats of a holder.
pub(crate) const HEARTBEAT_S: u64 = 30;
/// Seconds without a heartbeat after which a holder on another host is taken for dead.
pub(crate) const STALE_AFTER_S: u64 = 10 * 60;

/// Who holds a run folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    pub heartbeat: u64,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = now();
        write!(
            f,
            "process {} on host `{}` (started {} s ago, last heartbeat {} s ago)",
            self.pid,
            self.host,
            now.saturating_sub(self.started),
            now.saturating_sub(self.heartbeat)
        )
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This machine's name, as a holder reports it.
pub fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        if ok {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    }
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown".into())
}

/// The lock file of `folder`.
pub fn lock_path(folder: &Path) -> PathBuf {
    let name = folder
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    folder.with_file_name(format!("{name}.lock"))
}

/// A held lock on a run folder: released (its file removed) when dropped.
pub struct RunLock {
    path: PathBuf,
    file: Option<File>,
    stop_heartbeat: Option<Sender<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

/// A lock just acquired, and the holder it was taken over from, if any.
pub struct Acquired {
    pub lock: RunLock,
    pub took_over: Option<Holder>,
}

/// Reads the holder a lock file names. A file being written at this moment reads empty for
/// an instant: read again before giving up.
fn read_holder(file: &mut File) -> Option<Holder> {
    for _ in 0..5 {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok() && file.read_to_string(&mut text).is_ok() {
            if let Ok(holder) = serde_json::from_str(&text) {
                return Some(holder);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn write_holder(file: &mut File, holder: &Holder) -> std::io::Result<()> {
    let json = serde_json::to_string(holder).unwrap_or_default();
    file.seek(SeekFrom::Start(0))?;
    file.set_len(0)?;
    file.write_all(json.as_bytes())?;
    file.sync_data()
}

/// Whether `file` is still the file at `path` (and not one its holder removed on release
/// after this process had opened it).
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_at(_file: &File, path: &Path) -> bool {
    path.exists()
}

impl RunLock {
    /// Locks `folder` (which need not exist yet) for this process, or says who holds it.
    pub fn acquire(folder: &Path) -> Result<Acquired> {
        let path = lock_path(folder);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let host = host_name();
        // A few rounds: a holder may release (and remove) the file between our open and our
        // lock, and a stale file from another host is removed before the next round.
        for _ in 0..4 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io(&path))?;
            match file.try_lock() {
                Ok(()) => {
                    if !still_at(&file, &path) {
                        continue;
                    }
                    let previous = read_holder(&mut file);
                    let me = Holder {
                        pid: std::process::id(),
                        host: host.clone(),
                        started: now(),
                        heartbeat: now(),
                    };
                    write_holder(&mut file, &me).map_err(io(&path))?;
                    return Ok(Acquired {
                        lock: RunLock::hold(path, file, me),
                        took_over: previous,
                    });
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file).unwrap_or(Holder {
                        pid: 0,
                        host: "unknown".into(),
                        started: 0,
                        heartbeat: 0,
                    });
                    let stale = holder.host != host
                        && now().saturating_sub(holder.heartbeat) > STALE_AFTER_S;
                    if !stale {
                        return Err(RunDirError::Locked {
                            folder: folder.to_path_buf(),
                            holder,
                            stale_after_s: STALE_AFTER_S,
                        });
                    }
                    // Its holder stopped beating: a new file (a new lock) replaces it.
                    std::fs::remove_file(&path).map_err(io(&path))?;
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
            }
        }
        Err(io(&path)(std::io::Error::other(
            "the lock file kept changing while it was being taken",
        )))
    }

    /// Starts the heartbeat of a lock just taken.
    fn hold(path: PathBuf, file: File, mut me: Holder) -> RunLock {
        let (stop, stopped) = mpsc::channel::<()>();
        let beating = file.try_clone().ok();
        let heartbeat = beating.map(|mut file| {
            std::thread::spawn(move || {
                while let Err(RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_secs(HEARTBEAT_S))
                {
                    me.heartbeat = now();
                    // A missed heartbeat only matters to another host after minutes.
                    let _ = write_holder(&mut file, &me);
                }
            })
        });
        RunLock {
            path,
            file: Some(file),
            stop_heartbeat: Some(stop),
            heartbeat,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds `folder` now, if anyone alive does (a holder on another host whose
    /// heartbeat is older than [`STALE_AFTER_S`] counts as dead). Takes nothing.
    pub(crate) fn holder(folder: &Path) -> Option<Holder> {
        let path = lock_path(folder);
        let mut file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
        match file.try_lock() {
            // Free: the file is a leftover of a dead holder (closing it releases the lock).
            Ok(()) => None,
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file)?;
                let stale = holder.host != host_name()
                    && now().saturating_sub(holder.heartbeat) > STALE_AFTER_S;
                (!stale).then_some(holder)
            }
            Err(std::fs::TryLockError::Error(_)) => None,
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        drop(self.stop_heartbeat.take());
        if let Some(beat) = self.heartbeat.take() {
            let _ = beat.join();
        }
        // Removed while still locked, so no one can take the file being removed.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_folder_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("seed0-abcd");
        let first = RunLock::acquire(&folder).unwrap();
        assert!(first.took_over.is_none());
        // Another open file description is another lock owner, as another process would be.
        let err = RunLock::acquire(&folder)
            .err()
            .expect("the folder is locked");
        let text = err.to_string();
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&host_name()), "{text}");
        drop(first);
        assert!(
            !lock_path(&folder).exists(),
            "a released lock leaves no file"
        );
        let again = RunLock::acquire(&folder).unwrap();
        assert!(again.took_over.is_none());
    }

    #[test]
    fn a_lock_file_left_by_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("seed0-abcd");
        let dead = Holder {
            pid: 4_000_000,
            host: host_name(),
            started: 1,
            heartbeat: 2,
        };
        std::fs::write(lock_path(&folder), serde_json::to_string(&dead).unwrap()).unwrap();
        let acquired = RunLock::acquire(&folder).unwrap();
        assert_eq!(acquired.took_over, Some(dead));
    }
}
