//! Every release format, made small by the tests themselves: loading, tokenizing, splitting,
//! batching, and the errors bad data gets.

use std::io::Write;
use std::path::Path;

use lra::data::batch::BatchInputs;
use lra::data::gen::listops::ListOpsGen;
use lra::data::gen::pathfinder::{self as pfgen, PathfinderParams};
use lra::data::{
    load, DataConfig, DataError, Difficulty, Encoding, InputKind, Inputs, TaskKind, Tokenizer,
};

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn write_gz(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap();
}

fn png_gray(side: u32, pixel: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(side, side, |x, y| image::Luma([pixel(x, y)]));
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

fn png_rgb(side: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(side, side, image::Rgb(rgb));
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

fn message(err: &DataError) -> String {
    use miette::Diagnostic;
    format!(
        "{err} | {}",
        err.help().map(|h| h.to_string()).unwrap_or_default()
    )
}

// ---------------------------------------------------------------- ListOps

const LISTOPS_ROWS: [(&str, u8); 3] = [
    ("( ( ( [MAX 2 ) 9 ) ] )", 9),
    ("( ( ( [MIN 4 ) ( ( [SM 5 ) 7 ) ] ) ) ] )", 2),
    ("( ( ( [MED 1 ) 8 ) ] )", 4),
];

fn listops_tsv(newline: &str) -> String {
    let mut s = format!("Source\tTarget{newline}");
    for (src, label) in LISTOPS_ROWS {
        s.push_str(&format!("{src}\t{label}{newline}"));
    }
    s
}

#[test]
fn listops_reads_plain_crlf_and_gzip_lf_alike() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("basic_train.tsv"),
        listops_tsv("\r\n").as_bytes(),
    );
    write_gz(
        &dir.path().join("basic_val.tsv.gz"),
        listops_tsv("\n").as_bytes(),
    );
    write(
        &dir.path().join("basic_test.tsv"),
        listops_tsv("\n").as_bytes(),
    );
    let cfg = DataConfig::preset(TaskKind::ListOps, dir.path());
    let ds = load(&cfg, None).unwrap();
    assert_eq!((ds.train.len(), ds.val.len(), ds.test.len()), (3, 3, 3));
    assert_eq!(ds.train.labels().collect::<Vec<_>>(), [9, 2, 4]);
    assert_eq!(ds.num_classes, 10);
    // `[MAX 2 9 X <eos>`: brackets kept as X, parentheses dropped.
    let Inputs::Tokens(seqs) = &ds.train.examples.inputs else {
        panic!()
    };
    let first: Vec<&str> = seqs
        .get(0)
        .iter()
        .map(|&id| ds.vocab.token(id as u32).unwrap())
        .collect();
    assert_eq!(first, ["[MAX", "2", "9", "X", "<eos>"]);
    assert_eq!(seqs.get(0), ds.val.examples.inputs_tokens(0));
}

trait TokensOf {
    fn inputs_tokens(&self, i: usize) -> &[u16];
}

impl TokensOf for lra::data::Examples {
    fn inputs_tokens(&self, i: usize) -> &[u16] {
        match &self.inputs {
            Inputs::Tokens(s) => s.get(i),
            _ => panic!("not tokens"),
        }
    }
}

#[test]
fn listops_errors_name_file_line_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    for split in ["val", "test"] {
        write(
            &dir.path().join(format!("basic_{split}.tsv")),
            listops_tsv("\n").as_bytes(),
        );
    }
    let train = dir.path().join("basic_train.tsv");
    let cfg = DataConfig::preset(TaskKind::ListOps, dir.path());

    write(&train, b"Source\tTarget\n( [MAX 2 ] )\t12\n");
    let err = load(&cfg, None).unwrap_err();
    assert!(
        matches!(err, DataError::Malformed { line: 2, .. }),
        "{err:?}"
    );
    assert!(
        message(&err).contains("basic_train.tsv:2") && message(&err).contains("label from 0 to 9")
    );

    write(&train, b"Source\tTarget\n( [MAX 2 ] )\n");
    let err = load(&cfg, None).unwrap_err();
    assert!(
        message(&err).contains("2 tab-separated fields"),
        "{}",
        message(&err)
    );

    write(&train, b"Src\tTgt\n");
    assert!(message(&load(&cfg, None).unwrap_err()).contains(":1: expected the header"));

    write(&train, b"Source\tTarget\n( [POW 2 ] )\t2\n");
    assert!(message(&load(&cfg, None).unwrap_err()).contains("unknown symbol \"[POW\""));

    write(&train, b"Source\tTarget\n( [MAX 2 ] )\t2\n( [MAX 2 )\t2\n");
    let err = load(&cfg, None).unwrap_err();
    assert!(
        matches!(err, DataError::Malformed { line: 3, .. }),
        "{err:?}"
    );
    assert!(message(&err).contains("not closed"), "{}", message(&err));
}

#[test]
fn missing_listops_folder_prints_the_gen_command() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DataConfig::preset(TaskKind::ListOps, dir.path().join("nowhere"));
    let text = message(&load(&cfg, None).unwrap_err());
    assert!(text.contains("lra data gen listops --out"), "{text}");
    let cfg = DataConfig::preset(TaskKind::ListOps, dir.path());
    let text = message(&load(&cfg, None).unwrap_err());
    assert!(
        text.contains("basic_train.tsv") && text.contains("lra data gen listops"),
        "{text}"
    );
}

#[test]
fn generated_listops_loads_and_every_label_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let gen = ListOpsGen {
        train: 40,
        val: 5,
        test: 5,
        min_len: 20,
        max_len: 80,
        seed: 1,
        ..ListOpsGen::default()
    };
    gen.write(dir.path()).unwrap();
    let raw = std::fs::read(dir.path().join("basic_train.tsv")).unwrap();
    assert!(raw.starts_with(b"Source\tTarget\r\n"));
    let rows = lra::data::listops::read_rows(&dir.path().join("basic_train.tsv")).unwrap();
    for row in &rows {
        assert_eq!(lra::data::listops::evaluate(&row.source), Ok(row.target));
    }
    let ds = load(&DataConfig::preset(TaskKind::ListOps, dir.path()), None).unwrap();
    assert_eq!((ds.train.len(), ds.val.len(), ds.test.len()), (40, 5, 5));
}

// ---------------------------------------------------------------- vocabularies

#[test]
fn a_saved_vocabulary_is_reloaded_not_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("imdb");
    write(&data.join("train.tsv"), b"1\taab\n0\tbbc\n");
    write(&data.join("test.tsv"), b"1\tabcz\n");
    let mut cfg = DataConfig::preset(TaskKind::Text, &data);
    cfg.min_freq = 1;
    let vocab_file = dir.path().join("run").join("vocab.json");
    let first = load(&cfg, Some(&vocab_file)).unwrap();
    assert!(vocab_file.is_file());
    assert_eq!(first.vocab.len(), 4 + 3);
    assert_ne!(first.vocab.id("<mask>"), first.vocab.unk());

    // New training text: a rebuilt vocabulary would differ, the saved one is kept.
    write(&data.join("train.tsv"), b"1\txyz\n0\txyz\n");
    let second = load(&cfg, Some(&vocab_file)).unwrap();
    assert_eq!(second.vocab, first.vocab);
    assert_eq!(second.vocab.id("x"), second.vocab.unk());

    // A vocabulary of another kind is refused.
    cfg.tokenizer = Tokenizer::Byte;
    let err = load(&cfg, Some(&vocab_file)).unwrap_err();
    assert!(matches!(err, DataError::Vocab { .. }), "{err:?}");
}

// ---------------------------------------------------------------- Text

#[test]
fn text_reads_an_acl_imdb_tree_and_gzip_tsv() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("aclImdb");
    write(&tree.join("train/pos/0_9.txt"), "great film".as_bytes());
    write(&tree.join("train/pos/1_8.txt"), "loved it".as_bytes());
    write(&tree.join("train/neg/0_2.txt"), "dull".as_bytes());
    write(&tree.join("test/neg/0_1.txt"), "bad".as_bytes());
    write(&tree.join("test/pos/0_10.txt"), "fine".as_bytes());
    let mut cfg = DataConfig::preset(TaskKind::Text, &tree);
    cfg.min_freq = 1;
    cfg.max_len = 5;
    let ds = load(&cfg, None).unwrap();
    assert_eq!(ds.train.labels().collect::<Vec<_>>(), [0, 1, 1]);
    assert_eq!(ds.val.len(), 2);
    assert_eq!(ds.test.indices, ds.val.indices);
    // "dull" + <eos>, "great film" truncated to 4 characters + <eos>.
    let lens: Vec<usize> = ds.train.seq_lens().collect();
    assert_eq!(lens, [5, 5, 5]);
    assert_eq!(
        lra::data::show::decode(&ds.vocab, ds.train.examples.inputs_tokens(1)),
        "grea"
    );

    let flat = dir.path().join("flat");
    write_gz(&flat.join("train.tsv.gz"), b"0\tdull\n1\tgreat\n");
    write_gz(&flat.join("test.tsv.gz"), b"1\tok\n");
    let mut cfg = DataConfig::preset(TaskKind::Text, &flat);
    cfg.tokenizer = Tokenizer::Byte;
    let ds = load(&cfg, None).unwrap();
    assert_eq!(ds.vocab.len(), 260);
    assert_eq!(
        ds.train.examples.inputs_tokens(0),
        [
            4 + b'd' as u16,
            4 + b'u' as u16,
            4 + b'l' as u16,
            4 + b'l' as u16,
            ds.vocab.eos() as u16
        ]
    );

    write_gz(&flat.join("train.tsv.gz"), b"0\tdull\nyes\tgreat\n");
    let err = load(&cfg, None).unwrap_err();
    assert!(
        message(&err).contains("train.tsv.gz:2"),
        "{}",
        message(&err)
    );
}

// ---------------------------------------------------------------- Retrieval

#[test]
fn retrieval_keeps_pairs_together_and_pads_them_to_one_length() {
    let dir = tempfile::tempdir().unwrap();
    let rows = b"1\ta.1\tb.1\tshort\tmuch longer text\n0.0\tc.1\td.1\tx\ty\n";
    for split in ["train", "eval", "test"] {
        write(&dir.path().join(format!("new_aan_pairs.{split}.tsv")), rows);
    }
    let ds = load(&DataConfig::preset(TaskKind::Retrieval, dir.path()), None).unwrap();
    assert!(ds.paired);
    assert_eq!(ds.train.labels().collect::<Vec<_>>(), [1, 0]);
    let batch = ds.batcher(&ds.train, 2).batch(&[0, 1]);
    assert_eq!(batch.documents.len(), 2);
    assert_eq!(batch.seq_len, "much longer text".len() + 1);
    assert_eq!(batch.documents[0].lengths, [6, 2]);
    assert_eq!(batch.documents[1].lengths, [17, 2]);
    let BatchInputs::Ids(ids) = &batch.documents[0].inputs else {
        panic!()
    };
    assert_eq!(ids.len(), 2 * batch.seq_len);
    assert_eq!(ids[6], ds.vocab.pad());

    write_gz(&dir.path().join("new_aan_pairs.train.tsv.gz"), b"");
    std::fs::remove_file(dir.path().join("new_aan_pairs.train.tsv")).unwrap();
    write_gz(
        &dir.path().join("new_aan_pairs.train.tsv.gz"),
        b"1\ta\tb\tonly four\n",
    );
    let err = load(&DataConfig::preset(TaskKind::Retrieval, dir.path()), None).unwrap_err();
    assert!(
        message(&err).contains("5 tab-separated fields"),
        "{}",
        message(&err)
    );
}

// ---------------------------------------------------------------- Image

/// CIFAR-10 binary batches whose image `i` is a flat colour and label `i % 10`.
fn cifar_binary(dir: &Path, per_batch: usize) {
    let files = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for file in files {
        let mut bytes = Vec::new();
        for i in 0..per_batch {
            bytes.push((i % 10) as u8);
            for channel in [200u8, 100, 50] {
                bytes.extend(std::iter::repeat_n(channel, 1024));
            }
        }
        write(&dir.join(file), &bytes);
    }
}

#[test]
fn cifar_binary_becomes_grayscale_with_a_seeded_validation_split() {
    let dir = tempfile::tempdir().unwrap();
    cifar_binary(dir.path(), 20);
    let mut cfg = DataConfig::preset(TaskKind::Image, dir.path());
    cfg.val_fraction = 0.1;
    let ds = load(&cfg, None).unwrap();
    assert_eq!((ds.train.len(), ds.val.len(), ds.test.len()), (90, 10, 20));
    assert_eq!(ds.num_classes, 10);
    let Inputs::Pixels(px) = &ds.test.examples.inputs else {
        panic!()
    };
    // 0.2989 * 200 + 0.5870 * 100 + 0.1140 * 50 = 124.18
    assert!(px.get(0).iter().all(|&p| p == 124));
    assert_eq!(ds.vocab.len(), 260);
    assert_eq!(ds.vocab.id("124"), 124);
    let again = load(&cfg, None).unwrap();
    assert_eq!(again.val.indices, ds.val.indices);
    // The experiment seed picks training subsets, never the held-out examples.
    cfg.seed = 99;
    assert_eq!(load(&cfg, None).unwrap().val.indices, ds.val.indices);

    cfg.encoding = Encoding::Continuous;
    let ds = load(&cfg, None).unwrap();
    let batch = ds.batcher(&ds.test, 4).batch(&[0]);
    let BatchInputs::Values(v) = &batch.documents[0].inputs else {
        panic!()
    };
    assert!((v[0] - (124.0 / 255.0 - 122.6 / 255.0) / (61.0 / 255.0)).abs() < 1e-6);

    write(&dir.path().join("data_batch_3.bin"), &[3u8; 100]);
    let err = load(&cfg, None).unwrap_err();
    assert!(
        message(&err).contains("data_batch_3.bin"),
        "{}",
        message(&err)
    );
}

fn image_tree(root: &Path) {
    for (split, n) in [("train", 4), ("test", 2)] {
        for (class, rgb) in [("cat", [255, 0, 0]), ("dog", [0, 0, 255])] {
            for i in 0..n {
                write(
                    &root.join(format!("{split}/{class}/{i:04}.png")),
                    &png_rgb(8, rgb),
                );
            }
        }
    }
}

#[test]
fn image_folders_and_tar_archives_load_alike() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    image_tree(&tree);
    let mut cfg = DataConfig::preset(TaskKind::Image, &tree);
    cfg.val_fraction = 0.25;
    // The tree's images are 8x8: read at their own size, not the preset's 32.
    cfg.resolution = 8;
    let from_tree = load(&cfg, None).unwrap();
    assert_eq!(
        (
            from_tree.train.len(),
            from_tree.val.len(),
            from_tree.test.len()
        ),
        (6, 2, 4)
    );
    assert_eq!(from_tree.test.labels().collect::<Vec<_>>(), [0, 0, 1, 1]);
    let Inputs::Pixels(px) = &from_tree.test.examples.inputs else {
        panic!()
    };
    assert_eq!(px.per_image, 64);
    assert_eq!((px.get(0)[0], px.get(3)[0]), (76, 29));

    for name in ["images.tar", "images.tar.xz"] {
        let archive = dir.path().join(name);
        let file = std::fs::File::create(&archive).unwrap();
        let sink: Box<dyn Write> = if name.ends_with(".xz") {
            Box::new(xz2::write::XzEncoder::new(file, 1))
        } else {
            Box::new(file)
        };
        let mut builder = tar::Builder::new(sink);
        builder.append_dir_all("cifar", &tree).unwrap();
        builder.into_inner().unwrap().flush().unwrap();
        cfg.path = archive;
        let from_tar = load(&cfg, None).unwrap();
        assert_eq!(*from_tar.test.examples, *from_tree.test.examples, "{name}");
        assert_eq!(from_tar.val.indices, from_tree.val.indices);
    }

    write(&tree.join("train/dog/bad.png"), b"not a png");
    cfg.path = tree;
    let err = load(&cfg, None).unwrap_err();
    assert!(
        matches!(err, DataError::Image { .. }) && message(&err).contains("bad.png"),
        "{}",
        message(&err)
    );
}

// ---------------------------------------------------------------- Pathfinder

fn pathfinder_release(root: &Path, binary_metadata: bool) {
    let dir = root.join("curv_contour_length_14");
    let mut rows = Vec::new();
    for i in 0..20u32 {
        // Image 5 is empty, as one image of the LRA release is.
        let value = if i == 5 { 0 } else { 10 + i as u8 };
        write(
            &dir.join(format!("imgs/0/sample_{i}.png")),
            &png_gray(4, |x, _| value * (x as u8 % 2)),
        );
        let fields = format!("imgs/0 sample_{i}.png {i} {} 1.0 14 4 2 0.5 1 1", i % 2);
        rows.push(fields.split(' ').map(str::to_string).collect::<Vec<_>>());
    }
    let meta = dir.join("metadata/0.npy");
    if binary_metadata {
        write(&meta, &lra::data::npy::write_strings(&rows));
    } else {
        let text: String = rows.iter().map(|r| r.join(" ") + "\n").collect();
        write(&meta, text.as_bytes());
    }
}

#[test]
fn pathfinder_reads_text_and_binary_metadata_and_skips_empty_images() {
    for binary in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        pathfinder_release(dir.path(), binary);
        let mut cfg = DataConfig::preset(TaskKind::Pathfinder, dir.path());
        cfg.resolution = 4;
        let ds = load(&cfg, None).unwrap();
        let total = ds.train.len() + ds.val.len() + ds.test.len();
        assert_eq!(total, 19, "binary metadata: {binary}");
        assert_eq!((ds.val.len(), ds.test.len()), (2, 2));
        assert!(![&ds.train, &ds.val, &ds.test]
            .iter()
            .any(|s| s.indices.contains(&5)));
        let Inputs::Pixels(px) = &ds.train.examples.inputs else {
            panic!()
        };
        assert_eq!(px.get(3), [0, 13, 0, 13].repeat(4));
        assert_eq!(ds.train.examples.labels[3], 1);
    }
}

#[test]
fn pathfinder_errors_name_the_image_and_the_gen_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = DataConfig::preset(TaskKind::Pathfinder, dir.path().join("pf"));
    let text = message(&load(&cfg, None).unwrap_err());
    assert!(
        text.contains("lra data gen pathfinder --out")
            && text.contains("--resolution 32 --difficulty hard"),
        "{text}"
    );

    pathfinder_release(dir.path(), false);
    cfg.path = dir.path().to_path_buf();
    cfg.resolution = 4;
    let broken = dir
        .path()
        .join("curv_contour_length_14/imgs/0/sample_7.png");
    write(&broken, b"\x89PNG garbage");
    let err = load(&cfg, None).unwrap_err();
    assert!(message(&err).contains("sample_7.png"), "{}", message(&err));

    std::fs::remove_file(&broken).unwrap();
    assert!(message(&load(&cfg, None).unwrap_err()).contains("sample_7.png"));

    pathfinder_release(dir.path(), false);
    cfg.resolution = 8;
    assert!(message(&load(&cfg, None).unwrap_err()).contains("expected 8x8"));
}

#[test]
fn generated_pathfinder_loads_at_every_resolution() {
    let dir = tempfile::tempdir().unwrap();
    for (resolution, difficulty) in [(32, Difficulty::Hard), (64, Difficulty::Easy)] {
        let params = PathfinderParams::lra(resolution, difficulty).unwrap();
        // Ten images: enough that the 80/10/10 split leaves none empty.
        pfgen::write(&params, difficulty, dir.path(), 10, 4, 9).unwrap();
        let mut cfg = DataConfig::preset(TaskKind::Pathfinder, dir.path());
        cfg.resolution = resolution;
        cfg.difficulty = difficulty;
        cfg.encoding = Encoding::Continuous;
        let ds = load(&cfg, None).unwrap();
        assert_eq!(ds.train.len() + ds.val.len() + ds.test.len(), 10);
        assert_eq!(
            ds.input,
            InputKind::Continuous {
                mean: 0.5,
                std: 0.5
            }
        );
        let meta =
            std::fs::read_to_string(dir.path().join(difficulty.folder()).join("metadata/2.npy"))
                .unwrap();
        assert_eq!(meta.lines().count(), 2);
        assert!(meta.starts_with("imgs/2 sample_0.png 0 "), "{meta}");
    }
}

// ---------------------------------------------------------------- batching and subsets

#[test]
fn batches_pad_to_their_longest_and_reshuffle_each_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..10)
        .map(|i| format!("{}\t{}\n", i % 2, "ab".repeat(i + 1)))
        .collect();
    write(&dir.path().join("train.tsv"), lines.as_bytes());
    write(&dir.path().join("test.tsv"), b"1\tab\n");
    let mut cfg = DataConfig::preset(TaskKind::Text, dir.path());
    cfg.min_freq = 1;
    let ds = load(&cfg, None).unwrap();
    let batcher = ds.batcher(&ds.train, 4).shuffled(3);
    assert_eq!(batcher.num_batches(), 3);
    let epoch0: Vec<_> = batcher.epoch(0).collect();
    assert_eq!(
        epoch0.iter().map(|b| b.batch_size).collect::<Vec<_>>(),
        [4, 4, 2]
    );
    for batch in &epoch0 {
        let lengths = &batch.documents[0].lengths;
        assert_eq!(batch.seq_len, *lengths.iter().max().unwrap());
        let BatchInputs::Ids(ids) = &batch.documents[0].inputs else {
            panic!()
        };
        for (row, &len) in ids.chunks(batch.seq_len).zip(lengths) {
            assert_eq!(row[len - 1], ds.vocab.eos());
            assert!(row[len..].iter().all(|&id| id == ds.vocab.pad()));
        }
        for (k, &i) in batch.indices.iter().enumerate() {
            assert_eq!(batch.labels[k], (i % 2) as u32);
        }
    }
    let mut seen: Vec<usize> = epoch0.iter().flat_map(|b| b.indices.clone()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(batcher.order(0), batcher.order(0));
    assert_ne!(batcher.order(0), batcher.order(1));
    assert_eq!(batcher.drop_last(true).num_batches(), 2);

    cfg.train_limit = Some(3);
    let small = load(&cfg, None).unwrap();
    cfg.train_limit = None;
    cfg.train_fraction = Some(0.6);
    let larger = load(&cfg, None).unwrap();
    assert_eq!((small.train.len(), larger.train.len()), (3, 6));
    assert!(small
        .train
        .indices
        .iter()
        .all(|i| larger.train.indices.contains(i)));
}
