//! The real data in `../shared/data` (beside the repository, as CI lays it out): counts, label
//! balance and one decoded example per task, and the fidelity of lra's ListOps and Pathfinder
//! generators against the shared official samples.

use std::path::PathBuf;

use lra::data::gen::listops::ListOpsGen;
use lra::data::gen::pathfinder::{generate, PathfinderParams};
use lra::data::stats::{ks_critical_001, ks_statistic, pixel_summary};
use std::sync::OnceLock;

use lra::data::{listops, load, DataConfig, Dataset, Difficulty, Inputs, Task};

fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name)
}

fn counts(ds: &Dataset) -> [usize; 3] {
    [ds.train.len(), ds.val.len(), ds.test.len()]
}

fn label_counts(split: &lra::data::Split, classes: usize) -> Vec<usize> {
    let mut c = vec![0; classes];
    for l in split.labels() {
        c[l as usize] += 1;
    }
    c
}

fn tokens(ds: &Dataset, split: &lra::data::Split, k: usize) -> Vec<u16> {
    match &split.examples.inputs {
        Inputs::Tokens(s) => s.get(split.indices[k]).to_vec(),
        Inputs::Pairs(a, _) => a.get(split.indices[k]).to_vec(),
        Inputs::Pixels(_) => panic!("{:?} has pixels", ds.task),
    }
}

#[test]
fn listops_counts_balance_and_first_example() {
    let ds = load(&DataConfig::preset(Task::ListOps, shared("listops")), None).unwrap();
    assert_eq!(counts(&ds), [10_000, 1_000, 1_000]);
    assert_eq!(
        label_counts(&ds.train, 10),
        [1744, 838, 775, 818, 875, 884, 775, 696, 862, 1733]
    );
    assert_eq!(
        label_counts(&ds.test, 10),
        [152, 92, 81, 90, 95, 68, 78, 69, 104, 171]
    );
    assert_eq!(ds.vocab.len(), 19);
    let first = lra::data::show::decode(&ds.vocab, &tokens(&ds, &ds.train, 0));
    assert!(first.starts_with('['), "{first}");
    assert!(first.split(' ').all(|t| t != "(" && t != ")"));
}

/// The shared ListOps rows of each split, read once for all tests.
fn official_rows() -> &'static [Vec<listops::Row>] {
    static ROWS: OnceLock<Vec<Vec<listops::Row>>> = OnceLock::new();
    ROWS.get_or_init(|| {
        listops::SPLITS
            .iter()
            .map(|split| {
                let path = listops::split_file(&shared("listops"), split).unwrap();
                listops::read_rows(&path).unwrap()
            })
            .collect()
    })
}

#[test]
fn every_shared_listops_label_is_recomputed_by_the_evaluator() {
    for (split, rows) in listops::SPLITS.iter().zip(official_rows()) {
        assert!(!rows.is_empty());
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(
                listops::evaluate(&row.source),
                Ok(row.target),
                "{split} row {i}"
            );
        }
    }
}

/// Length as the generator counts it (operators, `]`, digits) and nesting depth.
fn length_and_depth(source: &str) -> (f64, f64) {
    let (mut length, mut depth, mut deepest) = (0, 0i32, 0);
    for t in source.split_ascii_whitespace() {
        match t {
            "(" | ")" => continue,
            "]" => depth -= 1,
            t if t.starts_with('[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            _ => {}
        }
        length += 1;
    }
    (length as f64, deepest as f64)
}

#[test]
fn generated_listops_matches_the_official_sample() {
    let official = &official_rows()[0];
    let (off_len, off_depth): (Vec<f64>, Vec<f64>) =
        official.iter().map(|r| length_and_depth(&r.source)).unzip();
    let generated = ListOpsGen {
        seed: 2020,
        ..ListOpsGen::default()
    }
    .generate(1_500);
    let (gen_len, gen_depth): (Vec<f64>, Vec<f64>) = generated
        .iter()
        .map(|e| length_and_depth(&e.source))
        .unzip();
    let critical = ks_critical_001(off_len.len(), gen_len.len());
    let d_len = ks_statistic(&off_len, &gen_len);
    assert!(d_len < critical, "length KS {d_len:.3} >= {critical:.3}");
    let d_depth = ks_statistic(&off_depth, &gen_depth);
    assert!(d_depth < critical, "depth KS {d_depth:.3} >= {critical:.3}");
    // Labels: the shares of each digit agree within a few points (0 and 9 near 17%).
    let share = |labels: &mut dyn Iterator<Item = u8>, n: usize| {
        let mut c = [0.0; 10];
        for l in labels {
            c[l as usize] += 1.0 / n as f64;
        }
        c
    };
    let off = share(&mut official.iter().map(|r| r.target), official.len());
    let gen = share(&mut generated.iter().map(|e| e.value), generated.len());
    for d in 0..10 {
        assert!(
            (off[d] - gen[d]).abs() < 0.035,
            "digit {d}: {:.3} vs {:.3}",
            off[d],
            gen[d]
        );
    }
}

#[test]
fn text_counts_balance_and_first_example() {
    let ds = load(&DataConfig::preset(Task::Text, shared("imdb")), None).unwrap();
    assert_eq!(counts(&ds), [25_000, 25_000, 25_000]);
    assert_eq!(label_counts(&ds.train, 2), [12_500, 12_500]);
    assert_eq!(label_counts(&ds.test, 2), [12_500, 12_500]);
    // Characters seen at least 15 times plus 4 specials: about 135.
    assert!((125..=145).contains(&ds.vocab.len()), "{}", ds.vocab.len());
    let text = lra::data::show::decode(&ds.vocab, &tokens(&ds, &ds.train, 0));
    assert!(text.len() > 20 && text.is_ascii() || text.chars().count() > 20);
    assert!(ds.train.seq_lens().all(|l| l <= 4096));
}

#[test]
fn retrieval_counts_balance_and_first_pair() {
    let ds = load(
        &DataConfig::preset(Task::Retrieval, shared("retrieval")),
        None,
    )
    .unwrap();
    assert_eq!(counts(&ds), [9_242, 1_228, 1_068]);
    assert_eq!(label_counts(&ds.train, 2), [4_621, 4_621]);
    assert_eq!(label_counts(&ds.val, 2), [614, 614]);
    assert_eq!(label_counts(&ds.test, 2), [534, 534]);
    assert!(ds.paired);
    assert!((90..=110).contains(&ds.vocab.len()), "{}", ds.vocab.len());
    let batch = ds.batcher(&ds.val, 2).batch(&[0, 1]);
    assert_eq!(batch.documents.len(), 2);
    assert!(batch.seq_len <= 4000);
    let text = lra::data::show::decode(&ds.vocab, &tokens(&ds, &ds.val, 0));
    assert!(
        text.chars().filter(|c| c.is_alphabetic()).count() > 100,
        "{text}"
    );
}

#[test]
fn image_counts_balance_and_first_example() {
    let ds = load(&DataConfig::preset(Task::Image, shared("cifar10")), None).unwrap();
    assert_eq!(counts(&ds), [45_000, 5_000, 10_000]);
    assert_eq!(ds.num_classes, 10);
    let train_and_val: Vec<usize> = label_counts(&ds.train, 10)
        .iter()
        .zip(label_counts(&ds.val, 10))
        .map(|(a, b)| a + b)
        .collect();
    assert_eq!(train_and_val, [5_000; 10]);
    assert_eq!(label_counts(&ds.test, 10), [1_000; 10]);
    let (mean, lit) = pixel_summary(&ds.test).unwrap();
    assert!((110.0..135.0).contains(&mean) && lit > 0.95, "{mean} {lit}");
}

fn shared_pathfinder() -> Dataset {
    load(
        &DataConfig::preset(Task::Pathfinder, shared("pathfinder32")),
        None,
    )
    .unwrap()
}

#[test]
fn pathfinder_counts_balance_and_first_example() {
    let ds = shared_pathfinder();
    assert_eq!(counts(&ds), [1_600, 200, 200]);
    let all: Vec<usize> = [&ds.train, &ds.val, &ds.test]
        .iter()
        .map(|s| label_counts(s, 2))
        .fold(vec![0, 0], |a, c| vec![a[0] + c[0], a[1] + c[1]]);
    assert_eq!(all, [1_012, 988]);
    let Inputs::Pixels(px) = &ds.train.examples.inputs else {
        panic!()
    };
    assert_eq!(px.per_image, 1024);
    assert_eq!(*px.get(0).iter().max().unwrap(), 255);
}

/// How often each pixel value occurs in a set of images.
fn value_counts(images: &[&[u8]]) -> [usize; 256] {
    let mut counts = [0usize; 256];
    for image in images {
        for &p in *image {
            counts[p as usize] += 1;
        }
    }
    counts
}

fn generated_pathfinder(n: usize) -> Vec<lra::data::gen::pathfinder::Sample> {
    let params = PathfinderParams::lra(32, Difficulty::Hard).unwrap();
    generate(&params, n, 11)
}

#[test]
fn generated_pathfinder_draws_like_the_official_sample() {
    let ds = shared_pathfinder();
    let Inputs::Pixels(px) = &ds.train.examples.inputs else {
        panic!()
    };
    let official: Vec<&[u8]> = (0..px.len()).map(|i| px.get(i)).collect();
    let samples = generated_pathfinder(200);
    let ours: Vec<&[u8]> = samples.iter().map(|s| s.pixels.as_slice()).collect();
    // Paddles and markers are drawn at 2x, downsampled with Lanczos and scaled to the full
    // range: the same drawing gives the same grey levels. Which element sets an image's
    // maximum shifts them a little, so nine in ten bright official pixels (not all) must have a
    // level that lra's images also show.
    let (a, b) = (value_counts(&official), value_counts(&ours));
    let bright: usize = (64..256).map(|v| a[v]).sum();
    let reproduced: usize = (64..256).filter(|&v| b[v] > 0).map(|v| a[v]).sum();
    let share = reproduced as f64 / bright as f64;
    assert!(
        share > 0.9,
        "{share:.3} of the official bright pixels have levels lra draws"
    );
    assert!(ours.iter().all(|img| img.iter().max() == Some(&255)));
    // Labels are drawn with probability 1/2, as in the reference.
    let positive = samples.iter().filter(|s| s.label == 1).count() as f64 / samples.len() as f64;
    let official_positive = 988.0 / 2000.0;
    assert!((positive - official_positive).abs() < 0.1, "{positive}");
}

/// The distractor count decides how busy an image is. The reference places far fewer than the
/// nominal five at 32x32 (its seed search fails for most paddle orientations, see
/// `seed` in src/data/gen/pathfinder.rs); placing nearly all five gave mean 27.7 and 45% lit pixels. The per-image
/// spread (standard deviation about 2.0 of the mean, 0.04 of the lit share) puts the sampling
/// error of 400 images near 0.5%, well inside the 4% tolerance.
#[test]
fn generated_pathfinder_matches_the_official_intensity() {
    let ds = shared_pathfinder();
    let all = lra::data::Split::all(ds.train.examples.clone());
    let (official_mean, official_lit) = pixel_summary(&all).unwrap();
    let samples = generated_pathfinder(400);
    let n = (samples.len() * 1024) as f64;
    let mean = samples
        .iter()
        .flat_map(|s| &s.pixels)
        .map(|&p| p as f64)
        .sum::<f64>()
        / n;
    let lit = samples
        .iter()
        .flat_map(|s| &s.pixels)
        .filter(|&&p| p > 0)
        .count() as f64
        / n;
    assert!(
        (mean / official_mean - 1.0).abs() < 0.04,
        "mean {mean:.1} vs {official_mean:.1}"
    );
    assert!(
        (lit / official_lit - 1.0).abs() < 0.04,
        "lit {lit:.3} vs {official_lit:.3}"
    );
}
