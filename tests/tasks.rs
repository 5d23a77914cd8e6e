//! A tiny spec per task trains on a small fixture of that task's release format, and its
//! training loss falls.

mod common;

use std::path::Path;

use common::{experiment, metrics, run_to_end, TempDir};

/// Trains `task` briefly with a tiny Transformer and returns the training losses reported at
/// each evaluation.
fn training_losses(tmp: &TempDir, task: &str) -> Vec<f64> {
    let source = format!(
        r#"experiment "task" {{
            threads 2
            {task}
            model transformer {{ layers 1 d_model 16 heads 2 ffn 32 }}
            finetune {{ steps 30 batch 8 eval_every 10 optimizer adamw {{ lr 3e-3 }} }}
        }}"#
    );
    let summary = run_to_end(&experiment(&source), &tmp.0.join("runs"), &source);
    metrics(&summary.run_dir)
        .into_iter()
        .filter(|r| r.split == "train")
        .map(|r| r.loss)
        .collect()
}

fn assert_falls(losses: &[f64]) {
    assert_eq!(losses.len(), 3);
    assert!(
        losses[2] < losses[0],
        "training loss should fall: {losses:?}"
    );
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Reviews whose label is told by their words.
fn review(i: usize) -> (u8, String) {
    let label = (i % 2) as u8;
    let words = if label == 1 {
        "great fun, loved it"
    } else {
        "dull and bad, hated it"
    };
    (label, format!("review {i}: {words} {}", "x".repeat(i % 7)))
}

#[test]
fn text_tsv_trains() {
    let tmp = TempDir::new("task-text");
    let data = tmp.0.join("imdb");
    for (split, n) in [("train", 64), ("test", 16)] {
        let rows: String = (0..n)
            .map(|i| {
                let (label, text) = review(i);
                format!("{label}\t{text}\n")
            })
            .collect();
        write(&data.join(format!("{split}.tsv")), &rows);
    }
    let task = format!(
        "task text {{ data \"{}\" max_len 64 min_freq 1 }}",
        data.display()
    );
    assert_falls(&training_losses(&tmp, &task));
}

#[test]
fn retrieval_pairs_train() {
    let tmp = TempDir::new("task-retrieval");
    let data = tmp.0.join("retrieval");
    for (split, n) in [("train", 64), ("eval", 16), ("test", 16)] {
        let rows: String = (0..n)
            .map(|i| {
                let label = i % 2;
                let topic = if label == 1 {
                    "alpha beta"
                } else {
                    "gamma delta"
                };
                format!(
                    "{label}\td{i}a\td{i}b\tpaper {i} on {topic}\tpaper {} on alpha beta\n",
                    i + 1
                )
            })
            .collect();
        write(&data.join(format!("pairs.{split}.tsv")), &rows);
    }
    let task = format!(
        "task retrieval {{ data \"{}\" max_len 48 }}",
        data.display()
    );
    assert_falls(&training_losses(&tmp, &task));
}

#[test]
fn cifar_binary_images_train() {
    let tmp = TempDir::new("task-image");
    let data = tmp.0.join("cifar10");
    std::fs::create_dir_all(&data).unwrap();
    let batches = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (b, file) in batches.iter().enumerate() {
        let mut bytes = Vec::new();
        for i in 0..16 {
            let label = ((i + b) % 10) as u8;
            bytes.push(label);
            for channel in 0..3u8 {
                bytes.extend((0..1024).map(|p| {
                    label
                        .wrapping_mul(25)
                        .wrapping_add(channel * 7 + (p % 5) as u8)
                }));
            }
        }
        std::fs::write(data.join(file), bytes).unwrap();
    }
    let task = format!(
        "task image {{ data \"{}\" encoding continuous val_fraction 0.1 }}",
        data.display()
    );
    assert_falls(&training_losses(&tmp, &task));
}

#[test]
fn generated_pathfinder_trains() {
    let tmp = TempDir::new("task-pathfinder");
    let task = format!(
        "task pathfinder {{ data \"{}\" generate {{ n 80 seed 2 }} }}",
        tmp.0.join("pathfinder32").display()
    );
    assert_falls(&training_losses(&tmp, &task));
}

#[test]
#[ignore = "Path-X is 16,384 positions long: an acceptance check"]
fn generated_pathx_trains() {
    let tmp = TempDir::new("task-pathx");
    let task = format!(
        "task pathx {{ data \"{}\" generate {{ n 40 seed 2 }} }}",
        tmp.0.join("pathfinder128").display()
    );
    assert_falls(&training_losses(&tmp, &task));
}
