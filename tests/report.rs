//! The results index and `lra report` on real run folders: tiny ListOps runs trained by the
//! `lra` binary once per test process, then copied into each test's own runs folder.

mod common;

use common::lra;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;

use lra::report::{self, groups, render, Condition, Format, Published, ReportOptions};
use lra::results::{self, IndexedRun, TestResult};

/// A spec file of two tiny ListOps experiments (from scratch, masked SPT) at `seed`, with
/// `steps` fine-tuning steps, on data generated into `data`.
fn write_spec(dir: &Path, data: &Path, seed: u64, steps: u64) -> PathBuf {
    let path = dir.join(format!("tiny-seed{seed}-{steps}.lra"));
    let text = format!(
        r#"task tiny = listops {{
            data "{}"
            max_len 48
            generate {{ train 64 val 16 test 16 min_length 8 max_length 30 }}
        }}
        model small = transformer {{ layers 1 d_model 16 heads 2 ffn 32 }}
        experiment "tiny/transformer/scratch" {{
            seed {seed} threads 1 task tiny model small
            finetune {{ steps {steps} batch 8 eval_every 2 }}
        }}
        experiment "tiny/transformer/masked" {{
            seed {seed} threads 1 task tiny model small
            pretrain masked {{ steps 4 batch 8 eval_every 2 }}
            finetune {{ steps {steps} batch 8 eval_every 2 }}
        }}"#,
        data.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run_spec(spec: &Path, out: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lra"));
    command
        .args(["run", "-q", "--threads", "1", "--out"])
        .arg(out)
        .arg(spec);
    command
}

/// The shared work folder: data, specs and a runs folder of four finished runs (two
/// experiments × seeds 0 and 1), trained once per test process into cargo's scratch folder
/// for integration tests (replaced on each run of this test binary).
fn trained() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-runs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        for seed in [0, 1] {
            let spec = write_spec(&dir, &data, seed, 4);
            let status = run_spec(&spec, &dir.join("runs")).status().unwrap();
            assert!(status.success(), "lra run {} failed", spec.display());
        }
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the four trained runs in a fresh folder.
fn fresh_runs() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    copy_dir(&trained().join("runs"), &out);
    let _ = std::fs::remove_file(out.join(results::INDEX_FILE));
    (dir, out)
}

/// A run folder says which lra wrote it, so a report by an older lra can refuse it.
#[test]
fn a_run_folder_names_the_lra_that_wrote_it() {
    let (_dir, out) = fresh_runs();
    for key in run_folders(&out) {
        let summary = std::fs::read_to_string(out.join(&key).join("summary.json")).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(summary["lra_version"], env!("CARGO_PKG_VERSION"), "{key}");
    }
}

fn run_folders(out: &Path) -> Vec<String> {
    results::folder::find_run_folders(out).unwrap()
}

/// The dump of an index built from nothing: the index files are deleted and the runs
/// folder synced again (in place, so files keep their times).
fn rebuilt_dump(out: &Path) -> String {
    for name in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(out.join(name));
    }
    let (index, stats) = results::sync(out).unwrap();
    assert!(stats.rebuilt);
    index.dump().unwrap()
}

#[test]
fn an_incrementally_updated_index_equals_a_rebuilt_one() {
    let (_dir, full) = fresh_runs();
    let folders = run_folders(&full);
    assert_eq!(folders.len(), 4, "{folders:?}");
    // Runs arrive one at a time, each followed by a report.
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("runs");
    std::fs::create_dir_all(&out).unwrap();
    for (i, key) in folders.iter().enumerate() {
        copy_dir(&full.join(key), &out.join(key));
        let (_, stats) = results::sync(&out).unwrap();
        assert_eq!((stats.updated, stats.unchanged), (1, i), "{key}");
    }
    let (_, stats) = results::sync(&out).unwrap();
    assert_eq!(
        (stats.updated, stats.unchanged, stats.rebuilt),
        (0, 4, false)
    );
    // A run changes (one more evaluation) and another disappears.
    let metrics = out.join(&folders[0]).join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text.push_str(
        r#"{"phase":"finetune","split":"val","step":99,"epoch":9.0,"loss":0.5,"accuracy":0.75}"#,
    );
    text.push('\n');
    std::fs::write(&metrics, text).unwrap();
    std::fs::remove_dir_all(out.join(&folders[1])).unwrap();
    let (index, stats) = results::sync(&out).unwrap();
    assert_eq!((stats.updated, stats.removed), (1, 1));
    let incremental = index.dump().unwrap();
    drop(index);
    assert!(incremental.contains("step=Integer(99)"), "{incremental}");
    assert_eq!(incremental, rebuilt_dump(&out));
}

#[test]
fn an_index_of_another_schema_version_is_rebuilt() {
    let (_dir, out) = fresh_runs();
    let (index, _) = results::sync(&out).unwrap();
    let before = index.dump().unwrap();
    index
        .connection()
        .pragma_update(None, "user_version", results::SCHEMA_VERSION + 1)
        .unwrap();
    index
        .connection()
        .execute("DELETE FROM metrics", [])
        .unwrap();
    drop(index);
    let (index, stats) = results::sync(&out).unwrap();
    assert!(stats.rebuilt);
    assert_eq!(index.schema_version().unwrap(), results::SCHEMA_VERSION);
    assert_eq!(index.dump().unwrap(), before);
}

#[test]
fn runs_finishing_while_reports_run_are_not_lost() {
    let (dir, out) = fresh_runs();
    let data = trained().join("data");
    // Two `lra run`s of two experiments each, writing into the folder being reported.
    let mut children: Vec<Child> = [2, 3]
        .iter()
        .map(|seed| {
            let spec = write_spec(dir.path(), &data, *seed, 24);
            run_spec(&spec, &out).spawn().unwrap()
        })
        .collect();
    let mut reports = 0;
    let mut saw_unfinished = false;
    loop {
        let running = children.iter_mut().any(|c| c.try_wait().unwrap().is_none());
        // Two reports at once: writers take turns, readers see whole states.
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let out = out.clone();
                std::thread::spawn(move || {
                    let (index, _) = results::sync(&out).unwrap();
                    results::load(&index).unwrap()
                })
            })
            .collect();
        for handle in handles {
            let runs = handle.join().unwrap();
            for run in &runs {
                assert_eq!(run.state == "done", run.test.is_some(), "{run:?}");
                assert!(run.problems.is_none(), "{run:?}");
                saw_unfinished |= run.state == "partial";
            }
            reports += 1;
        }
        if !running {
            break;
        }
    }
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    let (index, _) = results::sync(&out).unwrap();
    let runs = results::load(&index).unwrap();
    assert_eq!(runs.len(), 8, "{reports} reports");
    for run in &runs {
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(&run.folder).join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(run.state, "done");
        assert_eq!(
            run.test.as_ref().map(|t| t.accuracy),
            summary["test_accuracy"].as_f64()
        );
    }
    let incremental = index.dump().unwrap();
    drop(index);
    assert_eq!(incremental, rebuilt_dump(&out));
    eprintln!("{reports} reports, a run seen unfinished: {saw_unfinished}");
}

#[test]
fn a_corrupt_metrics_line_is_named_by_file_and_line_and_the_rest_prints() {
    let (_dir, out) = fresh_runs();
    let key = &run_folders(&out)[0];
    let metrics = out.join(key).join("metrics.jsonl");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(1, "{\"phase\": \"finetune\", \"split\": ");
    std::fs::write(&metrics, lines.join("\n") + "\n").unwrap();
    let (code, stdout, stderr) = lra(&["report", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2: not a metrics record", metrics.display())),
        "{stderr}"
    );
    assert!(stdout.contains("1 with problems"), "{stdout}");
    // Both groups still print, each with its two seeds.
    assert_eq!(
        stdout.matches("listops  transformer  ").count(),
        2,
        "{stdout}"
    );
}

/// Sets a run's test accuracy, as if training had ended there.
fn set_test_accuracy(out: &Path, key: &str, accuracy: f64) {
    let path = out.join(key).join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    summary["test_accuracy"] = accuracy.into();
    std::fs::write(&path, summary.to_string()).unwrap();
}

#[test]
fn seeds_at_chance_are_flagged_and_left_out_of_the_mean() {
    let (dir, out) = fresh_runs();
    let data = trained().join("data");
    let spec = write_spec(dir.path(), &data, 2, 4);
    assert!(run_spec(&spec, &out).status().unwrap().success());
    let scratch: Vec<String> = run_folders(&out)
        .into_iter()
        .filter(|k| k.contains("/scratch/"))
        .collect();
    assert_eq!(scratch.len(), 3);
    // ListOps has 10 classes: 11.5% is within 2 points of chance, 12.5% is not.
    set_test_accuracy(&out, &scratch[0], 0.60);
    set_test_accuracy(&out, &scratch[1], 0.115);
    set_test_accuracy(&out, &scratch[2], 0.64);
    let options = ReportOptions {
        conditions: vec![Condition::parse("pretrain=scratch").unwrap()],
        ..ReportOptions::default()
    };
    let result = report::report(&out, &options).unwrap();
    let [group] = result.groups.as_slice() else {
        panic!("{:?}", result.groups);
    };
    assert_eq!(group.stats.seeds, 2);
    assert_eq!(group.stats.at_chance, vec![1]);
    assert!((group.stats.mean.unwrap() - 62.0).abs() < 1e-9);
    assert!((group.stats.std.unwrap() - 8f64.sqrt()).abs() < 1e-9);
    assert!(result.text.contains("62.00 ± 2.83"), "{}", result.text);
    assert!(result.text.contains("1 (seed 1)"), "{}", result.text);
    set_test_accuracy(&out, &scratch[1], 0.125);
    let result = report::report(&out, &options).unwrap();
    assert_eq!(result.groups[0].stats.seeds, 3);
    assert!(result.groups[0].stats.at_chance.is_empty());
}

#[test]
fn the_published_figures_match_the_papers_averages() {
    let published = Published::builtin().unwrap();
    let mut checked = 0;
    for average in published.rows.iter().filter(|r| r.task == "average") {
        let tasks: Vec<f64> = published
            .rows
            .iter()
            .filter(|r| {
                r.task != "average"
                    && r.source == average.source
                    && r.model == average.model
                    && r.objective == average.objective
            })
            .map(|r| r.value)
            .collect();
        if tasks.is_empty() {
            continue; // the paper gives only the average
        }
        let mean = tasks.iter().sum::<f64>() / tasks.len() as f64;
        assert!(
            (mean - average.value).abs() < 0.01,
            "{} {} {}: tasks average {mean:.3}, the paper says {}",
            average.source,
            average.model,
            average.objective,
            average.value
        );
        // Six tasks, or the LRA paper's five where Path-X failed.
        assert!(
            tasks.len() == 6 || average.note.contains("five"),
            "{average:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 7);
    let figure = |task, model, objective| published.lookup(task, model, objective).unwrap().value;
    assert_eq!(figure("pathfinder", "transformer", "causal"), 88.49);
    assert_eq!(figure("listops", "transformer", "scratch"), 36.37);
    assert_eq!(figure("average", "transformer", "masked"), 86.21);
    assert_eq!(figure("pathx", "mega", "scratch"), 97.98);
}

/// A run as the index returns it, for the table tests.
fn run(task: &str, model: &str, pretrain: Option<&str>, seed: u64, accuracy: f64) -> IndexedRun {
    let mut values: Vec<(String, String)> = vec![
        ("task".into(), task.into()),
        ("model".into(), model.into()),
        ("seed".into(), seed.to_string()),
    ];
    if let Some(p) = pretrain {
        values.push(("pretrain".into(), p.into()));
    }
    IndexedRun {
        folder: format!(
            "{task}/{model}/{}/seed{seed}-00000000",
            pretrain.unwrap_or("scratch")
        ),
        experiment: format!("{task}/{model}/{}", pretrain.unwrap_or("scratch")),
        seed: Some(seed),
        state: "done".into(),
        problems: None,
        values: values.into_iter().collect(),
        test: Some(TestResult {
            accuracy,
            loss: 0.5,
        }),
        evaluations: Vec::new(),
    }
}

#[test]
fn the_paper_shaped_markdown() {
    let runs = vec![
        run("listops", "transformer", None, 0, 0.3612),
        run("listops", "transformer", None, 1, 0.3788),
        run("listops", "transformer", Some("masked"), 0, 0.5907),
        run("listops", "transformer", Some("masked"), 1, 0.6011),
        run("pathfinder", "transformer", None, 0, 0.5050),
        run("pathfinder", "transformer", None, 1, 0.7230),
        run("pathfinder", "transformer", None, 2, 0.7010),
        run("pathfinder", "transformer", Some("masked"), 0, 0.8812),
        run("pathfinder", "s4", None, 0, 0.9390),
        run("pathfinder", "s4", None, 1, 0.9460),
        run("pathfinder", "transformer", Some("causal"), 0, 0.8702),
    ];
    let published = Published::builtin().unwrap();
    let by: Vec<String> = groups::DEFAULT_BY.iter().map(|s| s.to_string()).collect();
    let groups = groups::build(&runs, &by, &[], &published).unwrap();
    insta::assert_snapshot!(render::paper(&groups, &published));
}

#[test]
fn grouping_and_filtering_by_any_field() {
    let runs = vec![
        run("listops", "transformer", None, 0, 0.36),
        run("listops", "s4", None, 0, 0.58),
        run("listops", "s4", None, 1, 0.60),
    ];
    let published = Published::builtin().unwrap();
    let groups = groups::build(
        &runs,
        &["model".to_string()],
        &[Condition::parse("seed!=1").unwrap()],
        &published,
    )
    .unwrap();
    let text = render::render(&groups, Format::Csv, &published);
    assert_eq!(
        text.lines().next().unwrap(),
        "model,seeds,test accuracy %,at chance,published,diff,source,notes"
    );
    assert!(
        text.contains("s4,1,58.00,,59.60,-1.60,\"Ma et al. 2023, LRA results table\","),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&render::render(&groups, Format::Json, &published)).unwrap();
    assert_eq!(json[0]["key"]["model"], "s4");
    assert_eq!(json[0]["stats"]["seeds"], 1);
    assert_eq!(json[0]["published"]["value"], 59.6);
    let accuracy = json[0]["runs"][0]["test_accuracy"].as_f64().unwrap();
    assert!((accuracy - 58.0).abs() < 1e-9);
    let err = groups::build(&runs, &["modle".to_string()], &[], &published).unwrap_err();
    assert!(
        format!("{:?}", miette::Report::new(err)).contains("did you mean `model`?"),
        "unknown paths get a suggestion"
    );
}

#[test]
fn errors_say_what_is_wrong_and_how_to_fix_it() {
    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = lra(&["report", empty.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no run folders under"), "{stderr}");
    assert!(stderr.contains("lra::results::empty"), "{stderr}");

    let (code, _, stderr) = lra(&["report", "tests/batches/tiny.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("lra::report::batch-not-run"), "{stderr}");

    let (_dir, out) = fresh_runs();
    let key = &run_folders(&out)[0];
    let summary = out.join(key).join("summary.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    value["lra_version"] = "99.0.0".into();
    std::fs::write(&summary, value.to_string()).unwrap();
    let (code, stdout, stderr) = lra(&["report", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("written by lra 99.0.0, newer than this lra"),
        "{stderr}"
    );
    assert!(stdout.contains("1 unfinished"), "{stdout}");

    let (code, _, stderr) = lra(&["report", out.to_str().unwrap(), "--where", "model.d_model"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a condition"), "{stderr}");
}

#[test]
fn diff_shows_what_differs_in_the_specs_and_the_results() {
    let out = trained().join("runs");
    let folders = run_folders(&out);
    let masked = folders
        .iter()
        .find(|k| k.contains("/masked/seed0"))
        .unwrap();
    let scratch = folders
        .iter()
        .find(|k| k.contains("/scratch/seed0"))
        .unwrap();
    let (code, stdout, stderr) = lra(&[
        "report",
        out.join(scratch).to_str().unwrap(),
        out.join(masked).to_str().unwrap(),
        "--diff",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let pretrain = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("pretrain "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let words: Vec<&str> = pretrain.split_whitespace().collect();
    assert_eq!(words, ["pretrain", "(absent)", "masked"]);
    assert!(stdout.contains("test accuracy %"), "{stdout}");
    assert!(!stdout.contains("model.d_model"), "{stdout}");
}

#[test]
fn plots_are_written_as_png_and_svg_with_text() {
    let (dir, out) = fresh_runs();
    let plots = dir.path().join("plots");
    let options = ReportOptions {
        plots: Some(plots.clone()),
        ..ReportOptions::default()
    };
    let result = report::report(&out, &options).unwrap();
    let names: Vec<String> = result
        .plots
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "curves-listops-transformer-masked.png",
            "curves-listops-transformer-masked.svg",
            "curves-listops-transformer-scratch.png",
            "curves-listops-transformer-scratch.svg",
            "summary.png",
            "summary.svg",
        ]
    );
    // Pretraining and fine-tuning side by side: the masked group's figure is wider.
    let masked = image::open(plots.join("curves-listops-transformer-masked.png")).unwrap();
    let scratch = image::open(plots.join("curves-listops-transformer-scratch.png")).unwrap();
    assert!(masked.width() > scratch.width());
    assert_eq!(masked.height(), scratch.height());
    // Text is drawn: the title row is not blank.
    let rgb = masked.to_rgb8();
    let dark = (0..rgb.width())
        .flat_map(|x| (5..30).map(move |y| (x, y)))
        .filter(|&(x, y)| rgb.get_pixel(x, y).0.iter().all(|c| *c < 100))
        .count();
    assert!(dark > 200, "title pixels: {dark}");
    let svg = std::fs::read_to_string(plots.join("summary.svg")).unwrap();
    assert!(svg.contains("published") && svg.contains("<text"), "{svg}");
}

#[test]
fn spec_paths_are_the_paths_explain_prints() {
    let context = lra::check::Context {
        machine_memory: 1 << 40,
        gpu_memory: None,
        check_data: false,
        cuda_built: false,
        gpus: None,
    };
    let mut files = vec![PathBuf::from("experiments/quickstart.lra")];
    for task in ["listops", "pathx", "retrieval"] {
        for entry in std::fs::read_dir(Path::new("experiments").join(task)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    files.sort();
    for file in &files {
        let checked = lra::check::check(file, &context).unwrap();
        let explained: serde_json::Value =
            serde_json::from_str(&lra::commands::explain::to_json(&checked)).unwrap();
        let spec = checked
            .spec
            .as_ref()
            .expect("the shipped experiments check clean");
        for (i, x) in spec.experiments.iter().enumerate() {
            let ours: std::collections::BTreeMap<String, String> =
                results::spec_paths(&serde_json::to_value(x).unwrap())
                    .into_iter()
                    .collect();
            let theirs: Vec<&str> = explained["origins"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["experiment"] == x.name.as_str() && !o["value"].is_null())
                .map(|o| o["path"].as_str().unwrap())
                .collect();
            for path in &theirs {
                assert!(
                    ours.contains_key(*path),
                    "{}: {path} missing",
                    file.display()
                );
            }
            let extra: Vec<&String> = ours
                .keys()
                .filter(|p| !theirs.contains(&p.as_str()))
                .collect();
            assert!(
                extra.is_empty(),
                "{} experiment {i}: {extra:?}",
                file.display()
            );
        }
    }
}
