//! Pathfinder and Path-X in the release layout: `<difficulty folder>/imgs/<b>/sample_<i>.png`
//! with `metadata/<b>.npy` (plain text or a NumPy string array). All-black images are
//! skipped (the release has one). Split 80/10/10 with a fixed seed, as S4 does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::config::DataConfig;
use super::decode::decode_gray_into;
use super::error::DataError;
use super::npy;
use super::split::{three_way, CARVE_SEED};
use super::store::{Examples, Inputs, Pixels, Split};
use super::vocab::{Vocab, VocabKind};
use super::{Dataset, InputKind};

pub const CLASSES: usize = 2;
/// Metadata columns: image folder, file name, index, label, then generator settings.
const LABEL_COLUMN: usize = 3;

/// One image listed in the metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub image: PathBuf,
    pub label: u8,
}

/// The images of one difficulty folder, decoded; `kept` lists the non-empty ones.
#[derive(Debug)]
pub(crate) struct Release {
    pub examples: Examples,
    pub kept: Vec<usize>,
}

/// The difficulty folder under `path` (or `path` itself when it holds `metadata/`).
pub(crate) fn contour_dir(cfg: &DataConfig) -> Result<PathBuf, DataError> {
    let path = cfg.path.as_path();
    let candidates = [path.to_path_buf(), path.join(cfg.difficulty.folder())];
    candidates
        .into_iter()
        .find(|d| d.join("metadata").is_dir())
        .ok_or_else(|| DataError::Missing {
            path: path.to_path_buf(),
            expected: format!(
                "{}/metadata/<b>.npy and {0}/imgs/<b>/sample_<i>.png",
                cfg.difficulty.folder()
            ),
            hint: super::gen_command(cfg)
                .map(|c| format!("make them with `{c}`"))
                .unwrap_or_default(),
        })
}

/// Each batch of images (`imgs/<b>/`) needs its metadata file (`metadata/<b>.npy`): without
/// it a quarter or more of the release would silently be left out.
fn require_metadata_of_every_batch(dir: &Path, metadata: &[PathBuf]) -> Result<(), DataError> {
    let imgs = dir.join("imgs");
    let Ok(batches) = std::fs::read_dir(&imgs) else {
        return Ok(());
    };
    let mut batches: Vec<String> = batches
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    batches.sort();
    for batch in batches {
        let wanted = dir.join("metadata").join(format!("{batch}.npy"));
        if !metadata.contains(&wanted) {
            return Err(DataError::Missing {
                path: dir.to_path_buf(),
                expected: format!("metadata/{batch}.npy, the metadata of the images in imgs/{batch}/"),
                hint: "restore the file from the release, or regenerate the folder with `lra data gen`".into(),
            });
        }
    }
    Ok(())
}

/// Every image listed in `dir/metadata/*.npy`, batches in numeric order.
pub(crate) fn read_metadata(dir: &Path) -> Result<Vec<Entry>, DataError> {
    let meta_dir = dir.join("metadata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&meta_dir)
        .map_err(|e| DataError::io(&meta_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "npy"))
        .collect();
    let batch_number = |p: &PathBuf| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
    };
    files.sort_by_key(|p| (batch_number(p), p.clone()));
    require_metadata_of_every_batch(dir, &files)?;
    let mut entries = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| DataError::io(&file, e))?;
        for (line, fields) in npy::read_rows(&file, &bytes)? {
            let expected = "`imgs/<b> sample_<i>.png <i> <label> ...` (at least 4 fields)";
            if fields.len() <= LABEL_COLUMN {
                return Err(DataError::malformed(
                    &file,
                    line,
                    expected,
                    fields.join(" "),
                ));
            }
            let label = match fields[LABEL_COLUMN].as_str() {
                "0" => 0,
                "1" => 1,
                other => {
                    return Err(DataError::malformed(
                        &file,
                        line,
                        "label 0 or 1 in column 3",
                        other,
                    ))
                }
            };
            entries.push(Entry {
                image: dir.join(&fields[0]).join(&fields[1]),
                label,
            });
        }
    }
    Ok(entries)
}

/// Decodes every listed image, in parallel, straight into one buffer of `side`² bytes each.
pub(crate) fn read_release(dir: &Path, side: usize) -> Result<Release, DataError> {
    let entries = read_metadata(dir)?;
    let per_image = side * side;
    let mut data = vec![0u8; entries.len() * per_image];
    data.par_chunks_mut(per_image)
        .zip(entries.par_iter())
        .try_for_each(|(out, entry)| {
            let bytes =
                std::fs::read(&entry.image).map_err(|e| DataError::image(&entry.image, e))?;
            decode_gray_into(&bytes, &entry.image, side, out)
        })?;
    let kept = data
        .par_chunks(per_image)
        .enumerate()
        .filter(|(_, px)| px.iter().any(|&p| p != 0))
        .map(|(i, _)| i)
        .collect();
    let labels = entries.iter().map(|e| e.label).collect();
    Ok(Release {
        examples: Examples {
            inputs: Inputs::Pixels(Pixels { data, per_image }),
            labels,
        },
        kept,
    })
}

pub fn load(cfg: &DataConfig, vocab_file: Option<&Path>) -> Result<Dataset, DataError> {
    let dir = contour_dir(cfg)?;
    let release = read_release(&dir, cfg.pathfinder_resolution())?;
    let vocab = Vocab::load_or_build(vocab_file, VocabKind::Pixel, Vocab::pixels)?;
    let (train, val, test) = three_way(&release.kept, (0.8, 0.1), CARVE_SEED);
    for (split, indices) in [("training", &train), ("validation", &val), ("test", &test)] {
        if indices.is_empty() {
            return Err(DataError::EmptySplit {
                path: dir.join("metadata"),
                what: format!(
                    "{split} images: {} usable images are too few to split 80/10/10",
                    release.kept.len()
                ),
            });
        }
    }
    let examples = Arc::new(release.examples);
    let split = |indices| Split {
        examples: examples.clone(),
        indices,
    };
    Ok(Dataset::new(
        cfg,
        split(train),
        split(val),
        split(test),
        vocab,
        CLASSES,
        InputKind::for_pixels(cfg),
    ))
}
