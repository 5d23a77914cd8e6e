//! Image (CIFAR-10 in grayscale): the official binary batches (`data_batch_{1..5}.bin`,
//! `test_batch.bin`), or an image-folder tree `train|test/<class>/*.{png,jpg}`, as a folder or
//! packed in a `.tar`, `.tar.gz` or `.tar.xz`. Validation is carved from training.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::config::DataConfig;
use super::decode::{decode_gray_into, gray_from_rgb, square_side};
use super::error::DataError;
use super::source::read_all;
use super::split::{carve_validation, CARVE_SEED};
use super::store::{Examples, Inputs, Pixels, Split};
use super::vocab::{Vocab, VocabKind};
use super::{Dataset, InputKind};

const CIFAR_SIDE: usize = 32;
const CIFAR_RECORD: usize = 1 + 3 * CIFAR_SIDE * CIFAR_SIDE;
const TRAIN_BATCHES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const TEST_BATCH: &str = "test_batch.bin";

/// Train and test images of one release, before validation is carved.
#[derive(Debug)]
pub struct ImageSet {
    pub train: Examples,
    pub test: Examples,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// What looks wrong but can still be trained on (a class missing from one split).
    pub warnings: Vec<String>,
}

pub fn load(cfg: &DataConfig, vocab_file: Option<&Path>) -> Result<Dataset, DataError> {
    let mut set = read(&cfg.path)?;
    for examples in [&mut set.train, &mut set.test] {
        match &mut examples.inputs {
            Inputs::Pixels(pixels) if pixels.per_image != cfg.resolution * cfg.resolution => {
                *pixels = downsample(pixels, cfg.resolution, &cfg.path)?;
            }
            _ => {}
        }
    }
    let warnings = std::mem::take(&mut set.warnings);
    let vocab = Vocab::load_or_build(vocab_file, VocabKind::Pixel, Vocab::pixels)?;
    let train = Arc::new(set.train);
    let (train_indices, val_indices) =
        carve_validation(train.labels.len(), cfg.val_fraction, CARVE_SEED);
    if val_indices.is_empty() {
        return Err(DataError::EmptySplit {
            path: cfg.path.clone(),
            what: format!(
                "validation images: val_fraction {} of {} training images rounds to none",
                cfg.val_fraction,
                train.labels.len()
            ),
        });
    }
    let mut dataset = Dataset::new(
        cfg,
        Split {
            examples: train.clone(),
            indices: train_indices,
        },
        Split {
            examples: train,
            indices: val_indices,
        },
        Split::all(Arc::new(set.test)),
        vocab,
        set.classes.len(),
        InputKind::for_pixels(cfg),
    );
    dataset.warnings = warnings;
    Ok(dataset)
}

/// Each image at `to`×`to`: the mean of each block of `side / to` × `side / to` pixels,
/// rounded to the nearest level (a reduced size for short runs).
fn downsample(pixels: &Pixels, to: usize, path: &Path) -> Result<Pixels, DataError> {
    let side = (pixels.per_image as f64).sqrt().round() as usize;
    if to == 0 || to > side || !side.is_multiple_of(to) {
        return Err(DataError::image(
            path,
            format!(
                "the images are {side}x{side}, and `resolution {to}` does not divide them \
                 into whole blocks; use a divisor of {side}"
            ),
        ));
    }
    let block = side / to;
    let area = (block * block) as u32;
    let mut data = Vec::with_capacity(pixels.len() * to * to);
    for image in pixels.data.chunks_exact(pixels.per_image) {
        for by in 0..to {
            for bx in 0..to {
                let sum: u32 = (0..block)
                    .flat_map(|dy| {
                        let row = (by * block + dy) * side + bx * block;
                        image[row..row + block].iter().map(|&p| p as u32)
                    })
                    .sum();
                data.push(((sum + area / 2) / area) as u8);
            }
        }
    }
    Ok(Pixels {
        data,
        per_image: to * to,
    })
}

/// Reads whichever layout `path` holds.
pub fn read(path: &Path) -> Result<ImageSet, DataError> {
    if is_tar(path) && path.is_file() {
        return read_tar(path);
    }
    let binary_dir = [path.to_path_buf(), path.join("cifar-10-batches-bin")]
        .into_iter()
        .find(|d| d.join(TEST_BATCH).is_file());
    if let Some(dir) = binary_dir {
        return read_binary(&dir);
    }
    if path.join("train").is_dir() && path.join("test").is_dir() {
        return read_folder(path);
    }
    let tars: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_tar(p))
        .collect();
    match tars.as_slice() {
        [one] => read_tar(one),
        _ => Err(DataError::Missing {
            path: path.to_path_buf(),
            expected: "CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin), or \
                       train/<class>/*.png|jpg and test/<class>/*.png|jpg, or one .tar[.xz] \
                       of that tree"
                .into(),
            hint: "unpack cifar-10-binary.tar.gz there (docs/METHOD.md names the sources), or \
                   point `data` at a tar of {train,test}/<class>/*.jpg"
                .into(),
        }),
    }
}

fn is_tar(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    [".tar", ".tar.xz", ".tar.gz", ".tgz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// CIFAR-10 binary: records of one label byte and three 1024-byte colour planes.
pub(crate) fn read_binary(dir: &Path) -> Result<ImageSet, DataError> {
    let read_batches = |names: &[&str]| -> Result<Examples, DataError> {
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for name in names {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(DataError::Missing {
                    path: dir.to_path_buf(),
                    expected: format!("{name} beside {TEST_BATCH}"),
                    hint: "unpack the whole cifar-10-binary.tar.gz".into(),
                });
            }
            let bytes = read_all(&path)?;
            if bytes.len() % CIFAR_RECORD != 0 {
                return Err(DataError::image(
                    &path,
                    format!(
                        "{} bytes is not a whole number of {CIFAR_RECORD}-byte records",
                        bytes.len()
                    ),
                ));
            }
            for (i, record) in bytes.chunks_exact(CIFAR_RECORD).enumerate() {
                if record[0] >= 10 {
                    return Err(DataError::image(
                        &path,
                        format!("record {i} has label {}, expected 0 to 9", record[0]),
                    ));
                }
                labels.push(record[0]);
                let plane = CIFAR_SIDE * CIFAR_SIDE;
                let (r, g, b) = (
                    &record[1..1 + plane],
                    &record[1 + plane..1 + 2 * plane],
                    &record[1 + 2 * plane..],
                );
                data.extend((0..plane).map(|p| gray_from_rgb(r[p], g[p], b[p])));
            }
        }
        Ok(Examples {
            inputs: Inputs::Pixels(Pixels {
                data,
                per_image: CIFAR_SIDE * CIFAR_SIDE,
            }),
            labels,
        })
    };
    let classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ];
    Ok(ImageSet {
        train: read_batches(&TRAIN_BATCHES)?,
        test: read_batches(&[TEST_BATCH])?,
        classes: classes.iter().map(|c| c.to_string()).collect(),
        warnings: Vec::new(),
    })
}

/// One encoded image file of the tree.
struct ImageFile {
    split: String,
    class: String,
    /// Where it came from, for error messages.
    origin: PathBuf,
    bytes: Vec<u8>,
}

fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg"].iter().any(|e| lower.ends_with(e))
}

/// `train|test/<class>/<file>` at the end of a path, whatever precedes it.
fn tree_position(path: &Path) -> Option<(String, String)> {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let n = parts.len();
    if n < 3 || !is_image_name(&parts[n - 1]) {
        return None;
    }
    let split = &parts[n - 3];
    (split == "train" || split == "test").then(|| (split.clone(), parts[n - 2].clone()))
}

pub(crate) fn read_folder(dir: &Path) -> Result<ImageSet, DataError> {
    let mut files = Vec::new();
    for split in ["train", "test"] {
        let split_dir = dir.join(split);
        let classes = std::fs::read_dir(&split_dir).map_err(|e| DataError::io(&split_dir, e))?;
        for class in classes.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
            let class_dir = class.path();
            let entries =
                std::fs::read_dir(&class_dir).map_err(|e| DataError::io(&class_dir, e))?;
            for entry in entries.filter_map(|e| e.ok()) {
                let path = entry.path();
                if let Some((split, class)) = tree_position(&path) {
                    let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e))?;
                    files.push(ImageFile {
                        split,
                        class,
                        origin: path,
                        bytes,
                    });
                }
            }
        }
    }
    decode_tree(dir, files)
}

pub fn read_tar(path: &Path) -> Result<ImageSet, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let reader: Box<dyn Read> = if name.ends_with(".xz") {
        Box::new(xz2::read::XzDecoder::new(std::io::BufReader::new(file)))
    } else if name.ends_with(".gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = Vec::new();
    let entries = archive.entries().map_err(|e| DataError::io(path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| DataError::io(path, e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let inner = entry
            .path()
            .map_err(|e| DataError::io(path, e))?
            .into_owned();
        let Some((split, class)) = tree_position(&inner) else {
            continue;
        };
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| DataError::io(path, e))?;
        files.push(ImageFile {
            split,
            class,
            origin: path.join(inner),
            bytes,
        });
    }
    decode_tree(path, files)
}

/// Each split must hold images (an error naming `root` otherwise); a class that one split has
/// and the other lacks (an archive cut short) is a warning with each split's count.
fn split_coverage(
    root: &Path,
    files: &[ImageFile],
    classes: &[String],
) -> Result<Vec<String>, DataError> {
    let count = |split: &str, class: &str| {
        files
            .iter()
            .filter(|f| f.split == split && f.class == class)
            .count()
    };
    for split in ["train", "test"] {
        if !files.iter().any(|f| f.split == split) {
            return Err(DataError::EmptySplit {
                path: root.to_path_buf(),
                what: format!("{split} images ({split}/<class>/*.png|jpg)"),
            });
        }
    }
    let mut warnings = Vec::new();
    for class in classes {
        let (train, test) = (count("train", class), count("test", class));
        if train == 0 || test == 0 {
            warnings.push(format!(
                "{}: class `{class}` has {train} training and {test} test images; a class \
                 missing from one split usually means an archive cut short",
                root.display()
            ));
        }
    }
    Ok(warnings)
}

/// Decodes the images in parallel; labels are the sorted class names' positions. Files are
/// ordered by split, class and name, so the result does not depend on the archive's order.
fn decode_tree(root: &Path, mut files: Vec<ImageFile>) -> Result<ImageSet, DataError> {
    files.sort_by(|a, b| (&a.split, &a.class, &a.origin).cmp(&(&b.split, &b.class, &b.origin)));
    let mut classes: Vec<String> = files.iter().map(|f| f.class.clone()).collect();
    classes.sort();
    classes.dedup();
    let first = files.first().ok_or_else(|| DataError::Missing {
        path: root.to_path_buf(),
        expected: "images at train/<class>/*.png|jpg and test/<class>/*.png|jpg".into(),
        hint: "check the folder layout".into(),
    })?;
    if classes.len() > u8::MAX as usize {
        return Err(DataError::image(
            &first.origin,
            format!("{} classes, at most 255 are supported", classes.len()),
        ));
    }
    let side = square_side(&first.bytes, &first.origin)?;
    let decode = |split: &str| -> Result<Examples, DataError> {
        let chosen: Vec<&ImageFile> = files.iter().filter(|f| f.split == split).collect();
        let per_image = side * side;
        let mut data = vec![0u8; chosen.len() * per_image];
        data.par_chunks_mut(per_image)
            .zip(chosen.par_iter())
            .try_for_each(|(out, file)| decode_gray_into(&file.bytes, &file.origin, side, out))?;
        let labels = chosen
            .iter()
            .map(|f| classes.binary_search(&f.class).expect("class listed") as u8)
            .collect();
        Ok(Examples {
            inputs: Inputs::Pixels(Pixels { data, per_image }),
            labels,
        })
    };
    let warnings = split_coverage(root, &files, &classes)?;
    let train = decode("train")?;
    let test = decode("test")?;
    drop(files);
    Ok(ImageSet {
        train,
        test,
        classes,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_averages_each_block_and_rounds() {
        // Two 4x4 images; the first's 2x2 blocks hold 0..3, 10..13, 20..23 and 30..33 spread out.
        #[rustfmt::skip]
        let first = [
            0, 1, 10, 11,
            2, 3, 12, 13,
            20, 21, 30, 31,
            22, 23, 32, 255,
        ];
        let mut data = first.to_vec();
        data.extend([7u8; 16]);
        let pixels = Pixels {
            data,
            per_image: 16,
        };
        let small = downsample(&pixels, 2, Path::new("x")).unwrap();
        assert_eq!(small.per_image, 4);
        // (0+1+2+3)/4 = 1.5 rounds to 2; (30+31+32+255)/4 = 87.
        assert_eq!(small.data, vec![2, 12, 22, 87, 7, 7, 7, 7]);
        let one = downsample(&pixels, 1, Path::new("x")).unwrap();
        let mean = (first.iter().map(|&p| p as u32).sum::<u32>() as f64 / 16.0).round() as u8;
        assert_eq!(one.data, vec![mean, 7]);
    }

    #[test]
    fn a_resolution_that_does_not_divide_the_images_names_the_file() {
        let pixels = Pixels {
            data: vec![0; 16],
            per_image: 16,
        };
        for to in [3, 8] {
            let err = downsample(&pixels, to, Path::new("data/cifar10")).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("data/cifar10") && text.contains("4x4"),
                "{text}"
            );
        }
    }
}
