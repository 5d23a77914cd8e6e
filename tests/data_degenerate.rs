//! Degenerate and damaged data gets an error naming the file (or a warning with counts),
//! never a panic, a silent zero, or a quietly smaller dataset.

use std::io::Write;
use std::path::Path;

use lra::data::{load, DataConfig, DataError, TaskKind};
use proptest::prelude::*;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn png_gray(side: u32, value: u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(side, side, |x, _| image::Luma([value * (x as u8 % 2)]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn listops_folder(dir: &Path, val_rows: usize) {
    let rows = |n: usize| -> String {
        let mut s = String::from("Source\tTarget\n");
        for _ in 0..n {
            s.push_str("( ( ( [MAX 2 ) 9 ) ] )\t9\n");
        }
        s
    };
    write(&dir.join("basic_train.tsv"), rows(4).as_bytes());
    write(&dir.join("basic_val.tsv"), rows(val_rows).as_bytes());
    write(&dir.join("basic_test.tsv"), rows(2).as_bytes());
}

#[test]
fn an_empty_split_is_an_error_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    listops_folder(dir.path(), 0);
    let err = load(&DataConfig::preset(TaskKind::ListOps, dir.path()), None).unwrap_err();
    match &err {
        DataError::EmptySplit { path, .. } => assert!(path.ends_with("basic_val.tsv")),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("holds no val examples"), "{err}");

    // An empty training or test split alike.
    let text = tempfile::tempdir().unwrap();
    write(&text.path().join("train.tsv"), b"");
    write(&text.path().join("test.tsv"), b"1\tgood\n");
    let err = load(&DataConfig::preset(TaskKind::Text, text.path()), None).unwrap_err();
    assert!(
        matches!(&err, DataError::EmptySplit { path, .. } if path.ends_with("train.tsv")),
        "{err:?}"
    );
}

#[test]
fn a_retrieval_row_with_extra_columns_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new_aan_pairs.train.tsv");
    write(&path, b"1\ta\tb\tfirst text\tsecond text\tstray column\n");
    let err = lra::data::retrieval::read_pairs(&path).unwrap_err();
    match err {
        DataError::Malformed { line, expected, .. } => {
            assert_eq!(line, 1);
            assert!(expected.contains("5 tab-separated fields"), "{expected}");
        }
        other => panic!("{other:?}"),
    }
}

fn image_tree(root: &Path, test_classes: &[&str]) {
    for class in ["cat", "dog", "eel"] {
        for i in 0..4 {
            write(
                &root.join(format!("train/{class}/{i}.png")),
                &png_gray(8, 9),
            );
        }
    }
    for class in test_classes {
        write(&root.join(format!("test/{class}/0.png")), &png_gray(8, 9));
    }
}

fn tar_of(tree: &Path, archive: &Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(archive).unwrap());
    builder.append_dir_all("cifar", tree).unwrap();
    builder.into_inner().unwrap().flush().unwrap();
}

#[test]
fn an_image_archive_without_test_images_is_an_error_and_missing_classes_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    image_tree(&tree, &[]);
    let archive = dir.path().join("cut.tar");
    tar_of(&tree, &archive);
    let mut cfg = DataConfig::preset(TaskKind::Image, &archive);
    cfg.val_fraction = 0.25;
    // The tree's images are 8x8: read at their own size, not the preset's 32.
    cfg.resolution = 8;
    let err = load(&cfg, None).unwrap_err();
    assert!(
        matches!(&err, DataError::EmptySplit { path, .. } if *path == archive),
        "{err:?}"
    );
    assert!(err.to_string().contains("test images"), "{err}");

    let tree = dir.path().join("partial");
    image_tree(&tree, &["cat", "dog"]);
    cfg.path = tree;
    let dataset = load(&cfg, None).unwrap();
    assert_eq!(dataset.warnings.len(), 1, "{:?}", dataset.warnings);
    assert!(
        dataset.warnings[0].contains("class `eel` has 4 training and 0 test images"),
        "{:?}",
        dataset.warnings
    );
}

#[test]
fn a_missing_pathfinder_metadata_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("curv_contour_length_14");
    for batch in 0..2 {
        let mut meta = String::new();
        for i in 0..10 {
            write(
                &root.join(format!("imgs/{batch}/sample_{i}.png")),
                &png_gray(4, 20),
            );
            meta.push_str(&format!(
                "imgs/{batch} sample_{i}.png {i} {} 1 1 1 1\n",
                i % 2
            ));
        }
        write(&root.join(format!("metadata/{batch}.npy")), meta.as_bytes());
    }
    let mut cfg = DataConfig::preset(TaskKind::Pathfinder, dir.path());
    cfg.resolution = 4;
    assert_eq!(load(&cfg, None).unwrap().test.len(), 2);
    std::fs::remove_file(root.join("metadata/1.npy")).unwrap();
    let err = load(&cfg, None).unwrap_err();
    assert!(err.to_string().contains("metadata/1.npy"), "{err}");
}

#[test]
fn malformed_npy_headers_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.npy");
    // An 8-byte file, and a header whose shape overflows.
    let overflowing = {
        let header = "{'descr': '<U9', 'fortran_order': False, 'shape': (9223372036854775807, 9223372036854775807), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((header.len() as u16).to_le_bytes());
        b.extend(header.as_bytes());
        b
    };
    for bytes in [b"\x93NUMPY\x01\x00".to_vec(), overflowing] {
        write(&path, &bytes);
        assert!(matches!(
            lra::data::npy::read_rows(&path, &bytes),
            Err(DataError::Npy { .. })
        ));
    }
}

/// `valid` with bytes overwritten at the given positions and cut to `keep` of its length.
fn mutated(valid: &[u8], edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for &(at, value) in edits {
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] = value;
        }
    }
    bytes.truncate(keep.min(bytes.len()));
    bytes
}

fn damage() -> impl Strategy<Value = (Vec<(usize, u8)>, usize)> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        0usize..4096,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn npy_metadata_never_panics((edits, keep) in damage(), noise in prop::collection::vec(any::<u8>(), 0..64)) {
        let rows = vec![vec!["imgs/0".to_string(), "sample_0.png".into(), "0".into(), "1".into()]];
        let valid = lra::data::npy::write_strings(&rows);
        for bytes in [mutated(&valid, &edits, keep), noise.clone()] {
            let _ = lra::data::npy::read_rows(Path::new("0.npy"), &bytes);
        }
    }

    #[test]
    fn png_images_never_panic((edits, keep) in damage()) {
        let bytes = mutated(&png_gray(8, 200), &edits, keep);
        let path = Path::new("sample_0.png");
        if let Ok(side) = lra::data::decode::square_side(&bytes, path) {
            if side <= 64 {
                let mut out = vec![0u8; side * side];
                let _ = lra::data::decode::decode_gray_into(&bytes, path, side, &mut out);
            }
        }
        let mut out = vec![0u8; 64];
        let _ = lra::data::decode::decode_gray_into(&bytes, path, 8, &mut out);
    }

    #[test]
    fn tsv_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.tsv");
        write(&path, &bytes);
        let _ = lra::data::listops::read_rows(&path);
        let _ = lra::data::text::read_tsv(&path);
        let _ = lra::data::retrieval::read_pairs(&path);
    }

    #[test]
    fn tar_archives_never_panic((edits, keep) in damage()) {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        image_tree(&tree, &["cat"]);
        let archive = dir.path().join("images.tar");
        tar_of(&tree, &archive);
        let valid = std::fs::read(&archive).unwrap();
        let keep = keep * valid.len() / 4096;
        write(&archive, &mutated(&valid, &edits, keep.max(1)));
        let _ = lra::data::image::read_tar(&archive);
    }
}
