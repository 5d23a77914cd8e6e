//! A user's runs are never lost: no run folder is deleted or shared by two processes, every
//! file is written whole, an interrupt (Ctrl-C, SIGTERM, SIGHUP, SIGUSR1) saves the run, and a run
//! killed at any of its writes resumes to the result of an uninterrupted one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::{experiment, metrics, run_options, run_to_end, TempDir};
use lra::train::rundir::RunDir;
use lra::train::{run, RunError, RunOptions};

const SHORT: &str = "steps 6 batch 16 eval_every 2 optimizer adamw { lr 3e-3 }";

fn folder(out: &Path, source: &str) -> PathBuf {
    RunDir::new(out, &experiment(source), None).path
}

fn killed_at(source: &str, out: &Path, step: u64) {
    let options = RunOptions {
        stop_at: Some(step),
        ..run_options(out, source)
    };
    let err = run(&experiment(source), &options, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, RunError::Interrupted { .. }), "{err:?}");
}

fn resumed(source: &str, out: &Path) -> Result<lra::train::RunSummary, RunError> {
    let options = RunOptions {
        resume: true,
        ..run_options(out, source)
    };
    run(&experiment(source), &options, &AtomicBool::new(false))
}

#[test]
fn an_unfinished_run_is_refused_not_deleted_and_restart_moves_it_aside() {
    let tmp = TempDir::new("no-delete");
    let source = common::tiny_spec(&tmp.0.join("data"), SHORT);
    let out = tmp.0.join("runs");
    killed_at(&source, &out, 3);
    let dir = folder(&out, &source);
    let state = std::fs::read(dir.join("finetune-state.json")).unwrap();

    let err = run(
        &experiment(&source),
        &run_options(&out, &source),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(matches!(err, RunError::UnfinishedRun { .. }), "{err:?}");
    let message = format!("{:?}", miette::Report::new(err));
    assert!(
        message.contains("--resume") && message.contains("--restart"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(dir.join("finetune-state.json")).unwrap(),
        state
    );

    let restart = RunOptions {
        restart: true,
        ..run_options(&out, &source)
    };
    let summary = run(&experiment(&source), &restart, &AtomicBool::new(false)).unwrap();
    let aside = dir.with_file_name(format!(
        "{}.old-1",
        dir.file_name().unwrap().to_string_lossy()
    ));
    assert_eq!(
        std::fs::read(aside.join("finetune-state.json")).unwrap(),
        state
    );
    assert_eq!(summary.finetune_steps, 6);
    // The lock is released with the run.
    assert!(!lra::rundir::lock::lock_path(&dir).exists());
}

#[test]
fn a_damaged_state_or_summary_is_named_never_silently_restarted() {
    let tmp = TempDir::new("damaged");
    let source = common::tiny_spec(&tmp.0.join("data"), SHORT);
    let out = tmp.0.join("runs");
    killed_at(&source, &out, 3);
    let dir = folder(&out, &source);
    std::fs::write(dir.join("finetune-state.json"), "{\"phase\": \"fine").unwrap();
    match resumed(&source, &out).unwrap_err() {
        RunError::DamagedFile { path, .. } => {
            assert_eq!(path, dir.join("finetune-state.json"))
        }
        other => panic!("{other:?}"),
    }

    let tmp = TempDir::new("damaged-summary");
    let out = tmp.0.join("runs");
    let finished = run_to_end(&experiment(&source), &out, &source);
    std::fs::write(finished.run_dir.join("summary.json"), "{\"experi").unwrap();
    let err = run(
        &experiment(&source),
        &run_options(&out, &source),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    let message = format!("{:?}", miette::Report::new(err));
    assert!(
        message.contains("summary.json") && message.contains("--resume"),
        "{message}"
    );
    // Resuming tests again and logs the test once.
    let again = resumed(&source, &out).unwrap();
    assert_eq!(again.test_accuracy, finished.test_accuracy);
    let tests = metrics(&again.run_dir)
        .into_iter()
        .filter(|r| r.split == "test")
        .count();
    assert_eq!(tests, 1);
}

#[test]
fn a_damaged_checkpoint_says_so_without_debug_names() {
    let tmp = TempDir::new("damaged-checkpoint");
    let source = common::tiny_spec(&tmp.0.join("data"), SHORT);
    let out = tmp.0.join("runs");
    killed_at(&source, &out, 3);
    let checkpoint = folder(&out, &source).join("checkpoints/finetune-step3.safetensors");
    let bytes = std::fs::read(&checkpoint).unwrap();
    std::fs::write(&checkpoint, &bytes[..bytes.len() / 3]).unwrap();
    let message = format!(
        "{:?}",
        miette::Report::new(resumed(&source, &out).unwrap_err())
    );
    assert!(message.contains("finetune-step3.safetensors"), "{message}");
    assert!(message.contains("cut short"), "{message}");
    assert!(!message.contains("MetadataIncompleteBuffer"), "{message}");
    assert!(!message.contains("same configuration"), "{message}");
}

#[test]
fn an_interrupt_on_an_evaluation_step_keeps_that_evaluation() {
    let tmp = TempDir::new("interrupt-eval");
    let source = common::tiny_spec(&tmp.0.join("data"), SHORT);
    let whole = run_to_end(&experiment(&source), &tmp.0.join("whole"), &source);
    let out = tmp.0.join("runs");
    killed_at(&source, &out, 4);
    let dir = folder(&out, &source);
    let at_four: Vec<_> = metrics(&dir)
        .into_iter()
        .filter(|r| r.step == 4)
        .map(|r| r.split)
        .collect();
    assert_eq!(at_four, ["train", "val"]);
    // What a kill between saving a state and removing the checkpoint it replaced leaves.
    let checkpoints = dir.join("checkpoints");
    std::fs::copy(
        checkpoints.join("finetune-step4.safetensors"),
        checkpoints.join("finetune-step2.safetensors"),
    )
    .unwrap();
    let summary = resumed(&source, &out).unwrap();
    assert_eq!(metrics(&summary.run_dir), metrics(&whole.run_dir));
    assert_eq!(files(&summary.run_dir), files(&whole.run_dir));
    assert_eq!(summary.selected_step, whole.selected_step);
}

#[test]
fn a_run_killed_while_writing_its_summary_logs_its_test_once() {
    let tmp = TempDir::new("summary-kill");
    let source = common::tiny_spec(&tmp.0.join("data"), SHORT);
    let out = tmp.0.join("runs");
    let whole = run_to_end(&experiment(&source), &out, &source);
    // What a kill between the test record and the summary's rename leaves.
    std::fs::remove_file(whole.run_dir.join("summary.json")).unwrap();
    let again = resumed(&source, &out).unwrap();
    assert_eq!(metrics(&again.run_dir), metrics(&whole.run_dir));
}

#[test]
fn from_pretrained_refuses_a_model_that_reads_the_weights_differently() {
    let tmp = TempDir::new("pretrained-heads");
    let data = tmp.0.join("data");
    let pretraining = common::tiny_spec(&data, SHORT).replace(
        "finetune {",
        "pretrain masked { rate 0.15 steps 2 batch 16 eval_every 2 }\n finetune {",
    );
    let source_run = run_to_end(&experiment(&pretraining), &tmp.0.join("runs"), &pretraining);
    // Four heads of four instead of two of eight: every shape is the same.
    let other_heads = common::tiny_spec(&data, SHORT).replace("heads 2", "heads 4");
    let options = RunOptions {
        from_pretrained: Some(source_run.run_dir.clone()),
        ..run_options(&tmp.0.join("runs"), &other_heads)
    };
    let err = run(&experiment(&other_heads), &options, &AtomicBool::new(false)).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, RunError::PretrainedModelDiffers { .. }),
        "{message}"
    );
    assert!(message.contains("heads is 2 there, 4 here"), "{message}");
}

// ---------------------------------------------------------------- other processes

fn lra(out: &Path, spec: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lra"));
    command
        .args(["run", "--quiet", "--out"])
        .arg(out)
        .arg(spec)
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn output(child: Child) -> (Option<i32>, String) {
    let Output { status, stderr, .. } = child.wait_with_output().unwrap();
    (status.code(), String::from_utf8_lossy(&stderr).into_owned())
}

fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A spec file whose run lasts long enough to be disturbed.
fn long_spec(tmp: &TempDir) -> (PathBuf, String) {
    let source = common::tiny_spec(
        &tmp.0.join("data"),
        "steps 100000 batch 16 eval_every 1000 optimizer adamw { lr 3e-3 }",
    );
    let spec = tmp.0.join("long.lra");
    std::fs::write(&spec, &source).unwrap();
    (spec, source)
}

#[cfg(unix)]
#[test]
fn a_second_run_on_a_folder_refuses_naming_the_holder_and_sigterm_saves_the_first() {
    let tmp = TempDir::new("lock");
    let (spec, source) = long_spec(&tmp);
    let out = tmp.0.join("runs");
    let dir = folder(&out, &source);
    let first = lra(&out, &spec, &[]).spawn().unwrap();
    wait_for("the first run's vocabulary", || {
        dir.join("vocab.json").exists()
    });

    let second = lra(&out, &spec, &["--resume"]).spawn().unwrap();
    let (code, stderr) = output(second);
    assert_eq!(code, Some(1), "{stderr}");
    // The report wraps its lines: read it as one.
    let flat: Vec<&str> = stderr.split_whitespace().filter(|w| *w != "│").collect();
    let flat = flat.join(" ");
    assert!(
        flat.contains(&format!(
            "in use by process {} on host `{}`",
            first.id(),
            lra::rundir::lock::host_name()
        )),
        "{stderr}"
    );

    // SIGTERM, as a scheduler sends it, stops the first run with its state saved.
    // SAFETY: signalling a child this test started.
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGTERM) }, 0);
    let (code, stderr) = output(first);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted at step"), "{stderr}");
    assert!(dir.join("finetune-state.json").exists(), "{stderr}");
}

#[cfg(unix)]
#[test]
fn sighup_saves_the_run_as_ctrl_c_does() {
    let tmp = TempDir::new("sighup");
    let (spec, source) = long_spec(&tmp);
    let out = tmp.0.join("runs");
    let dir = folder(&out, &source);
    let child = lra(&out, &spec, &[]).spawn().unwrap();
    wait_for("the run's vocabulary", || dir.join("vocab.json").exists());
    // SAFETY: signalling a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    let (code, stderr) = output(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(dir.join("finetune-state.json").exists(), "{stderr}");
}

#[cfg(unix)]
#[test]
fn sigusr1_saves_the_run_as_slurm_s_warning_before_a_time_limit_asks() {
    // lra's sbatch scripts forward Slurm's USR1 (sent before the time limit) to the worker,
    // which must save its state and exit 130 so the script requeues the task; USR1's default
    // action would kill the run and lose everything since its last evaluation.
    let tmp = TempDir::new("sigusr1");
    let (spec, source) = long_spec(&tmp);
    let out = tmp.0.join("runs");
    let dir = folder(&out, &source);
    let child = lra(&out, &spec, &[]).spawn().unwrap();
    wait_for("the run's vocabulary", || dir.join("vocab.json").exists());
    // SAFETY: signalling a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) }, 0);
    let (code, stderr) = output(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted at step"), "{stderr}");
    assert!(dir.join("finetune-state.json").exists(), "{stderr}");
}

/// The files of a run folder and of its checkpoints folder, by name.
fn files(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for inner in [dir.to_path_buf(), dir.join("checkpoints")] {
        for entry in std::fs::read_dir(&inner).unwrap() {
            names.push(entry.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

/// A run killed in the middle of its Nth file write, for every N, resumes to the metrics of
/// an uninterrupted run, with the same files (no temporary file or stale checkpoint left), or
/// refuses naming the file it cannot use.
#[test]
fn a_run_killed_at_any_write_resumes_to_the_uninterrupted_result() {
    let tmp = TempDir::new("faults");
    let source = common::tiny_spec(&tmp.0.join("data"), SHORT);
    let spec = tmp.0.join("tiny.lra");
    std::fs::write(&spec, &source).unwrap();
    let whole_out = tmp.0.join("whole");
    let (code, stderr) = output(lra(&whole_out, &spec, &[]).spawn().unwrap());
    assert_eq!(code, Some(0), "{stderr}");
    let whole_dir = folder(&whole_out, &source);
    let whole = metrics(&whole_dir);

    let mut completed = false;
    for n in 1..200 {
        let out = tmp.0.join(format!("killed-{n}"));
        let mut killed = lra(&out, &spec, &[]);
        killed.env(lra::rundir::atomic::ABORT_AFTER_WRITES, n.to_string());
        let (code, stderr) = output(killed.spawn().unwrap());
        if code == Some(0) {
            // The run makes fewer than n writes: every write has been a kill point.
            assert!(n > 10, "only {n} writes: {stderr}");
            completed = true;
            break;
        }
        assert_eq!(code, None, "write {n}: the hook aborts: {stderr}");
        let (code, stderr) = output(lra(&out, &spec, &["--resume"]).spawn().unwrap());
        if code == Some(0) {
            let dir = folder(&out, &source);
            assert_eq!(metrics(&dir), whole, "killed at write {n}");
            assert_eq!(files(&dir), files(&whole_dir), "killed at write {n}");
        } else {
            let dir = folder(&out, &source);
            assert!(
                stderr.contains(&dir.display().to_string()),
                "killed at write {n}, the refusal names no file of the run: {stderr}"
            );
        }
    }
    assert!(completed, "the run never finished under the hook");
}
