//! Recognises which task's release a path holds, for `lra data stats|show PATH`.

use std::path::{Path, PathBuf};

use super::config::{DataConfig, Difficulty, TaskKind};
use super::decode::square_side;
use super::error::DataError;
use super::source::find_maybe_gz;
use super::{listops, pathfinder, retrieval};

/// The task whose files `path` holds; `None` when no layout matches.
pub(crate) fn detect_task(path: &Path) -> Option<TaskKind> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if path.is_file() {
        return [".tar", ".tar.xz", ".tar.gz", ".tgz"]
            .iter()
            .any(|e| name.ends_with(e))
            .then_some(TaskKind::Image);
    }
    if listops::split_file(path, "train").is_ok() {
        return Some(TaskKind::ListOps);
    }
    if retrieval::split_file(path, "train").is_ok() {
        return Some(TaskKind::Retrieval);
    }
    if path.join("train").join("pos").is_dir() || find_maybe_gz(path, "train.tsv").is_some() {
        return Some(TaskKind::Text);
    }
    if path.join("metadata").is_dir() || pathfinder_folders(path).next().is_some() {
        return Some(TaskKind::Pathfinder);
    }
    let has = |f: &str| path.join(f).exists();
    let is_tar = |p: &PathBuf| {
        let n = p.file_name().unwrap_or_default().to_string_lossy();
        n.ends_with(".tar") || n.ends_with(".tar.xz") || n.ends_with(".tar.gz")
    };
    let tar_inside = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .any(|p| is_tar(&p));
    (has("test_batch.bin")
        || has("cifar-10-batches-bin")
        || (has("train") && has("test"))
        || tar_inside)
        .then_some(TaskKind::Image)
}

/// The difficulty folders (`curv_*` with `metadata/`) under `path`.
fn pathfinder_folders(path: &Path) -> impl Iterator<Item = Difficulty> + '_ {
    [Difficulty::Hard, Difficulty::Medium, Difficulty::Easy]
        .into_iter()
        .filter(move |d| path.join(d.folder()).join("metadata").is_dir())
}

/// A configuration that reads `path` with the task's reference settings: the task detected
/// unless given, and for Pathfinder the difficulty present and the resolution of its images.
pub(crate) fn config_for(
    path: &Path,
    task: Option<TaskKind>,
    difficulty: Option<Difficulty>,
) -> Result<DataConfig, DataError> {
    let task = task
        .or_else(|| detect_task(path))
        .ok_or_else(|| DataError::Missing {
            path: path.to_path_buf(),
            expected: "the release files of an LRA task (see docs/METHOD.md)".into(),
            hint: "pass --task, or make data with `lra data gen listops` or \
               `lra data gen pathfinder`"
                .into(),
        })?;
    let mut cfg = DataConfig::preset(task, path);
    if matches!(task, TaskKind::Pathfinder | TaskKind::PathX) {
        cfg.difficulty = difficulty
            .or_else(|| {
                path.file_name()
                    .and_then(|n| {
                        [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard]
                            .into_iter()
                            .find(|d| n == d.folder())
                    })
                    .or_else(|| pathfinder_folders(path).next())
            })
            .unwrap_or(Difficulty::Hard);
        let dir = pathfinder::contour_dir(&cfg)?;
        let first = pathfinder::read_metadata(&dir)?
            .into_iter()
            .next()
            .ok_or_else(|| DataError::Missing {
                path: dir.clone(),
                expected: "at least one image listed in metadata/*.npy".into(),
                hint: "regenerate the folder with `lra data gen pathfinder`".into(),
            })?;
        let bytes = std::fs::read(&first.image).map_err(|e| DataError::image(&first.image, e))?;
        cfg.resolution = square_side(&bytes, &first.image)?;
        if cfg.resolution == 128 {
            cfg.task = TaskKind::PathX;
        }
    }
    Ok(cfg)
}
