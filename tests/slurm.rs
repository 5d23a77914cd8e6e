//! lra's Slurm executor against a real Slurm: job arrays through real `sbatch`, states through
//! real `squeue`/`sacct`, `scancel`, dependencies, and the USR1 → checkpoint → requeue →
//! resume path of the generated scripts.
//!
//! Needs a reachable Slurm (`.ci/slurm-up` starts a single-node one as root). Without one the
//! tests print why and pass, except under CI (env `CI` set), where they fail: CI must run them.
//!
//! The workers here are small shell scripts standing in for `lra batch worker`, so these tests
//! exercise the scripts' contract with Slurm (exit status → FAILED, USR1 → requeue, offsets of
//! split arrays) independently of training.

#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lra::slurm::{
    self, ArrayPlan, ArrayRequest, JobsRecord, SlurmOptions, StageScript, Submission, TaskId,
    TaskState, WorkerCommand,
};

/// One test at a time: the CI node has two CPUs, and the tests assert on timings of their own
/// jobs.
static SLURM: Mutex<()> = Mutex::new(());

/// The lock on the cluster when Slurm is reachable; `None` (after saying why, loudly) when it
/// is not and this is not CI.
fn cluster(test: &str) -> Option<MutexGuard<'static, ()>> {
    let why_not = match Command::new("sinfo")
        .args(["--noheader", "--format=%P %a %T"])
        .output()
    {
        Err(e) => Some(format!("`sinfo` cannot run ({e})")),
        Ok(out) if !out.status.success() => Some(format!(
            "`sinfo` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim().is_empty() => {
            Some("`sinfo` shows no partition".into())
        }
        Ok(_) => None,
    };
    match why_not {
        None => Some(SLURM.lock().unwrap_or_else(|e| e.into_inner())),
        Some(why) if std::env::var_os("CI").is_some() => panic!(
            "Slurm is not reachable: {why}. CI must run the Slurm tests: .ci/run installs \
             slurm-wlm and munge and starts a single-node Slurm with .ci/slurm-up"
        ),
        Some(why) => {
            eprintln!(
                "\n*** SKIPPED {test}: Slurm is not reachable: {why}.\n*** Start a single-node \
                 Slurm as root with `.ci/slurm-up` (after `apt-get install slurm-wlm munge`) \
                 to run it.\n"
            );
            None
        }
    }
}

/// Ten minutes a task: the tests' tasks take seconds.
fn options() -> SlurmOptions {
    SlurmOptions {
        time: Some("10".parse().unwrap()),
        ..SlurmOptions::default()
    }
}

/// A batch folder with a worker script, removed at the end.
struct Batch {
    dir: tempfile::TempDir,
}

impl Batch {
    /// `worker_body` is the script's text after `#!/bin/bash`; `$1` is the plan index, and
    /// `$OUT` the batch folder.
    fn new(worker_body: &str) -> Batch {
        let dir = tempfile::Builder::new()
            .prefix("lra-slurm-test-")
            .tempdir()
            .unwrap();
        let worker = dir.path().join("worker.sh");
        std::fs::write(
            &worker,
            format!("#!/bin/bash\nOUT={}\n{worker_body}\n", dir.path().display()),
        )
        .unwrap();
        std::fs::set_permissions(&worker, std::fs::Permissions::from_mode(0o755)).unwrap();
        Batch { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn worker(&self) -> WorkerCommand {
        WorkerCommand {
            program: self.path().join("worker.sh"),
            args: vec![],
        }
    }

    /// Writes the stage's script and submits `indices`, recording the jobs.
    fn submit(&self, stage: &str, indices: &[usize], after_ok: &[String]) -> Vec<Submission> {
        let options = options();
        let worker = self.worker();
        let script = StageScript {
            batch_name: "slurm-test",
            stage,
            batch_dir: self.path(),
            options: &options,
            worker: &worker,
        }
        .write()
        .unwrap();
        let request = ArrayRequest {
            stage,
            script: &script,
            indices,
            parallel: None,
            after_ok,
        };
        let submitted = slurm::submit(&request, slurm::max_array_size().unwrap()).unwrap();
        JobsRecord::append(self.path(), &submitted).unwrap();
        submitted
    }

    /// The state of each (stage, plan index) submitted, as `lra batch status` reads them.
    fn states(&self) -> Vec<((String, usize), TaskState)> {
        let (points, _) = slurm::batch_states(self.path()).unwrap();
        points
            .into_iter()
            .map(|(key, point)| (key, point.status.state))
            .collect()
    }

    /// Waits until every submitted point satisfies `done`, and returns the states.
    fn wait_for(
        &self,
        what: &str,
        done: impl Fn(TaskState) -> bool,
    ) -> Vec<((String, usize), TaskState)> {
        let start = Instant::now();
        let expected: usize = JobsRecord::load(self.path())
            .unwrap()
            .submissions
            .iter()
            .map(|s| s.points().unwrap().len())
            .sum();
        loop {
            let states = self.states();
            if states.len() == expected && states.iter().all(|(_, s)| done(*s)) {
                return states;
            }
            if start.elapsed() > Duration::from_secs(180) {
                panic!(
                    "timed out waiting for {what}: {states:?}\nlogs:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Every task's log, for failure messages.
    fn logs(&self) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.path().join("slurm/logs")) {
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                text += &format!(
                    "--- {}\n{}",
                    path.display(),
                    std::fs::read_to_string(&path).unwrap_or_default()
                );
            }
        }
        text
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\nlogs:\n{}", self.logs()))
    }
}

fn state_of(states: &[((String, usize), TaskState)], index: usize) -> TaskState {
    states
        .iter()
        .find(|((_, i), _)| *i == index)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("point {index} not in {states:?}"))
}

fn scontrol(args: &[&str]) {
    let status = Command::new("scontrol").args(args).status().unwrap();
    assert!(status.success(), "scontrol {args:?} failed");
}

#[test]
fn every_point_runs_once_and_a_failing_worker_is_failed_in_slurm() {
    let Some(_cluster) = cluster("every_point_runs_once_and_a_failing_worker_is_failed_in_slurm")
    else {
        return;
    };
    // Point 2 fails; the others record which index they ran.
    let batch = Batch::new(
        r#"echo "$1" > "$OUT/ran-$1"
[ "$1" = 2 ] && { echo "point 2 fails on purpose" >&2; exit 3; }
exit 0"#,
    );
    // Six points: more than a MaxArraySize of 4 (as .ci/slurm-up configures) holds, so on the
    // CI cluster they go in two arrays, the second with offset 4.
    let submitted = batch.submit("points", &[0, 1, 2, 3, 4, 5], &[]);
    let max = slurm::max_array_size().unwrap();
    assert_eq!(submitted.len(), 6_usize.div_ceil(max));

    let states = batch.wait_for("every task to end", TaskState::is_final);
    for index in [0, 1, 3, 4, 5] {
        assert_eq!(state_of(&states, index), TaskState::Completed, "{states:?}");
        assert_eq!(
            batch.read(&format!("ran-{index}")).trim(),
            index.to_string()
        );
    }
    assert_eq!(
        state_of(&states, 2),
        TaskState::Failed,
        "a failing worker must be FAILED in Slurm, never COMPLETED"
    );
    assert!(batch.logs().contains("point 2 fails on purpose"));
}

#[test]
fn fine_tuning_waits_for_its_own_pretraining_and_only_its_failure_cancels_it() {
    let Some(_cluster) = cluster("fine_tuning_waits_for_its_own_pretraining") else {
        return;
    };
    // Pretraining points 0 and 1 take a moment and leave a marker; fine-tuning point 10 + p
    // fails unless pretraining point p's marker is there when it starts. Pretraining point 1
    // fails.
    let batch = Batch::new(
        r#"if [ "$1" -ge 10 ]; then
    p=$(( $1 - 10 ))
    [ -e "$OUT/pretrain-done-$p" ] || { echo "finetune $1 started before pretrain $p ended" >&2; exit 4; }
    touch "$OUT/finetune-done-$1"
    exit 0
fi
sleep 2
[ "$1" = 1 ] && { echo "pretrain 1 fails on purpose" >&2; exit 5; }
touch "$OUT/pretrain-done-$1"
exit 0"#,
    );
    let array = |stage: &str, indices: Vec<usize>, after: &[usize]| ArrayPlan {
        stage: stage.into(),
        indices,
        after_points: after.iter().map(|&i| ("pretrain".to_string(), i)).collect(),
    };
    let submitted = slurm::submit_batch(
        batch.path(),
        "slurm-test",
        &options(),
        &batch.worker(),
        &[
            array("pretrain", vec![0, 1], &[]),
            array("finetune", vec![10], &[0]),
            array("finetune", vec![11], &[1]),
        ],
    )
    .unwrap();
    let pretrain = submitted[0].job_id;
    assert_eq!(submitted[1].after_ok, vec![format!("{pretrain}_0")]);
    assert_eq!(submitted[2].after_ok, vec![format!("{pretrain}_1")]);

    let states = batch.wait_for("every stage to end", TaskState::is_final);
    assert_eq!(state_of(&states, 0), TaskState::Completed, "{states:?}");
    assert_eq!(state_of(&states, 10), TaskState::Completed, "{states:?}");
    assert!(batch.path().join("finetune-done-10").exists());
    // The failed pretraining cancels only the fine-tuning that starts from it.
    assert_eq!(state_of(&states, 1), TaskState::Failed, "{states:?}");
    assert_eq!(state_of(&states, 11), TaskState::Cancelled, "{states:?}");
    assert!(!batch.path().join("finetune-done-11").exists());
}

#[test]
fn cancel_stops_running_and_pending_tasks() {
    let Some(_cluster) = cluster("cancel_stops_running_and_pending_tasks") else {
        return;
    };
    let batch = Batch::new(r#"touch "$OUT/started-$1"; sleep 120"#);
    batch.submit("points", &[0, 1, 2], &[]);
    // Three one-CPU tasks on the two-CPU node: some run, the rest wait.
    batch.wait_for("the tasks to be queued", |s| {
        matches!(s, TaskState::Running | TaskState::Pending)
    });
    let cancelled = slurm::cancel_batch(batch.path()).unwrap();
    assert_eq!(cancelled, JobsRecord::load(batch.path()).unwrap().job_ids());
    let states = batch.wait_for("the cancelled tasks to end", TaskState::is_final);
    for index in 0..3 {
        assert_eq!(state_of(&states, index), TaskState::Cancelled, "{states:?}");
    }
    // Cancelling again, after the end, is no error.
    slurm::cancel_batch(batch.path()).unwrap();
}

#[test]
fn usr1_before_the_time_limit_checkpoints_requeues_and_resumes() {
    let Some(_cluster) = cluster("usr1_before_the_time_limit_checkpoints_requeues_and_resumes")
    else {
        return;
    };
    // A worker that counts to 20, a step every 0.2 s, resuming from its checkpoint file; on
    // USR1 (forwarded by the sbatch script) it saves the count and exits 130, as lra's worker
    // does after saving a checkpoint.
    let batch = Batch::new(
        r#"ckpt="$OUT/count-$1"
count=$(cat "$ckpt" 2>/dev/null || echo 0)
echo start >> "$OUT/starts-$1"
stop=0
trap 'stop=1' USR1
while [ "$count" -lt 20 ]; do
    if [ "$stop" = 1 ]; then echo "$count" > "$ckpt"; exit 130; fi
    sleep 0.2
    count=$((count + 1))
    echo "$count" > "$OUT/progress-$1"
done
echo "$count" > "$ckpt"
echo "finished at $count" > "$OUT/result-$1""#,
    );
    let submitted = batch.submit("points", &[0], &[]);
    let task = TaskId {
        job: submitted[0].job_id,
        task: 0,
    };
    let task_name = format!("{}_{}", task.job, task.task);
    // Wait until the worker is part-way.
    let start = Instant::now();
    while std::fs::read_to_string(batch.path().join("progress-0"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .unwrap_or(0)
        < 3
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the task did not start\n{}",
            batch.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // What Slurm does 120 s before the time limit (--signal=B:USR1@120): USR1 to the batch shell.
    let status = Command::new("scancel")
        .args(["--signal=USR1", "--batch", &task_name])
        .status()
        .unwrap();
    assert!(status.success());
    // The script requeues the task; Slurm holds a requeued batch job for a while (its begin
    // time is set two minutes ahead) — release it now.
    let start = Instant::now();
    loop {
        let restarts = Command::new("scontrol")
            .args(["show", "job", &task_name])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&restarts.stdout);
        if text.contains("Restarts=1") && text.contains("JobState=PENDING") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the task was not requeued: {text}\n{}",
            batch.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    scontrol(&["update", &format!("JobId={task_name}"), "StartTime=now"]);

    let states = batch.wait_for("the requeued task to finish", TaskState::is_final);
    assert_eq!(
        state_of(&states, 0),
        TaskState::Completed,
        "{}",
        batch.logs()
    );
    assert_eq!(batch.read("result-0").trim(), "finished at 20");
    assert_eq!(
        batch.read("starts-0").lines().count(),
        2,
        "the worker ran twice: before the signal and after the requeue"
    );
    let logs = batch.logs();
    assert!(logs.contains("requeueing task"), "{logs}");
    assert!(logs.contains("(restart 1)"), "{logs}");
}

/// Long enough to be signalled after its first checkpoint and before its end.
const LONG: &str = "steps 3000 batch 16 eval_every 300 optimizer adamw { lr 3e-3 }";

#[test]
fn lra_runs_through_sbatch_fail_in_slurm_and_resume_after_a_requeue() {
    let Some(_cluster) =
        cluster("lra_runs_through_sbatch_fail_in_slurm_and_resume_after_a_requeue")
    else {
        return;
    };
    // Each point runs `lra run --resume` on its own spec file and runs folder, as
    // `lra batch worker` runs a point of a plan; `--resume` lets a requeued task continue.
    let batch = Batch::new(&format!(
        r#"exec {} run --quiet --resume --out "$OUT/runs-$1" "$OUT/spec-$1.lra""#,
        env!("CARGO_BIN_EXE_lra")
    ));
    let out = batch.path();
    let short = "steps 6 batch 16 eval_every 2 optimizer adamw { lr 3e-3 }";
    let specs = [
        // 0: finishes.
        common::tiny_spec(&out.join("data-0"), short),
        // 1: its data folder does not exist and has nothing to generate it: fails at run time.
        common::tiny_spec(&out.join("data-1"), short).replace(
            "generate { train 64 val 32 test 32 min_length 8 max_length 24 seed 3 }",
            "",
        ),
        // 2: signalled with USR1 mid-run, requeued, resumed.
        common::tiny_spec(&out.join("data-2"), LONG),
        // 3: the same experiment as 2, uninterrupted: the figures 2 must reach.
        common::tiny_spec(&out.join("data-3"), LONG),
    ];
    for (i, spec) in specs.iter().enumerate() {
        std::fs::write(out.join(format!("spec-{i}.lra")), spec).unwrap();
    }
    let run_dir = |i: usize| {
        lra::train::rundir::RunDir::new(
            &out.join(format!("runs-{i}")),
            &common::experiment(&specs[i]),
            None,
        )
        .path
    };
    let submitted = batch.submit("points", &[0, 1, 2, 3], &[]);
    let task2 = format!("{}_2", submitted[0].job_id);

    // Signal point 2 once it has saved a checkpoint, as Slurm does before the time limit.
    let start = Instant::now();
    while !run_dir(2).join("finetune-state.json").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "point 2 saved no checkpoint\n{}",
            batch.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("scancel")
        .args(["--signal=USR1", "--batch", &task2])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        let job = Command::new("scontrol")
            .args(["show", "job", &task2])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&job.stdout);
        if text.contains("Restarts=1") && text.contains("JobState=PENDING") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "point 2 was not requeued (did it finish before the signal?): {text}\n{}",
            batch.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !run_dir(2).join("summary.json").exists(),
        "point 2 was interrupted, not finished"
    );
    scontrol(&["update", &format!("JobId={task2}"), "StartTime=now"]);

    let states = batch.wait_for("every point to end", TaskState::is_final);
    let logs = batch.logs();
    assert_eq!(state_of(&states, 0), TaskState::Completed, "{logs}");
    assert_eq!(state_of(&states, 1), TaskState::Failed, "{logs}");
    assert_eq!(state_of(&states, 2), TaskState::Completed, "{logs}");
    assert_eq!(state_of(&states, 3), TaskState::Completed, "{logs}");
    assert!(logs.contains("interrupted at step"), "{logs}");
    assert!(logs.contains("(restart 1)"), "{logs}");
    for i in [0, 2, 3] {
        assert!(
            run_dir(i).join("summary.json").exists(),
            "point {i}\n{logs}"
        );
    }
    assert!(!run_dir(1).join("summary.json").exists());
    assert_eq!(
        common::metrics(&run_dir(2)),
        common::metrics(&run_dir(3)),
        "the requeued run must resume to the uninterrupted run's figures"
    );
}

#[test]
fn lra_batch_run_with_the_slurm_executor_finishes_every_point_and_fails_only_the_bad_ones() {
    let Some(_cluster) = cluster("lra_batch_run_with_the_slurm_executor") else {
        return;
    };
    let tmp = tempfile::Builder::new()
        .prefix("lra-slurm-batch-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    // The bad data folder holds a damaged file: its points fail when they load it, and the
    // fine-tuning that shares its pretraining is cancelled by Slurm.
    let bad = dir.join("bad-data");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("basic_train.tsv"),
        "Source\tTarget\nnot a tree\tx\n",
    )
    .unwrap();
    let specs = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/batches/specs/tiny.lra");
    let path = dir.join("slurm.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\nname: on-slurm\nspecs: [\"{specs}\"]\nonly: [\"tiny/transformer-masked\"]\n\
             sweep:\n  task.data: [\"{}\", \"{}\"]\n  finetune.optimizer.lr: [1e-3, 3e-3]\n\
             executor: {{ kind: slurm, time: \"10\", cpus: 1 }}\n",
            dir.join("data").display(),
            bad.display()
        ),
    )
    .unwrap();
    let out = dir.join("runs");
    let out_arg = out.display().to_string();
    let file = path.to_str().unwrap();
    let (code, stdout, stderr) = common::lra(&["batch", "run", file, "--out", &out_arg]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("submitted job"), "{stdout}");

    let planned = lra::batch::plan::plan(&path, &common::context(), Some(&out)).unwrap();
    let plan = planned.plan.expect("the batch file plans");
    assert_eq!(plan.points.len(), 4);
    let start = Instant::now();
    let states = loop {
        let (states, _) = slurm::batch_states(&plan.batch_dir).unwrap();
        if states.len() == 4 && states.values().all(|s| s.status.state.is_final()) {
            break states;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the batch's tasks did not end: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let state = |index: usize| {
        states
            .iter()
            .find(|((_, i), _)| *i == index)
            .map(|(_, s)| s.status.state)
            .unwrap()
    };
    for point in &plan.points {
        let on_bad_data = point.label.contains("bad-data");
        let expected = match (on_bad_data, point.pretrained_by) {
            (false, _) => TaskState::Completed,
            (true, None) => TaskState::Failed,
            // Its shared pretraining failed: the dependency can never be satisfied.
            (true, Some(_)) => TaskState::Cancelled,
        };
        assert_eq!(
            state(point.index),
            expected,
            "point {} ({})",
            point.index,
            point.label
        );
        assert_eq!(
            point.run_dir.join("summary.json").exists(),
            !on_bad_data,
            "point {} ({})",
            point.index,
            point.label
        );
    }
    assert!(
        plan.points.iter().any(|p| p.pretrained_by.is_some()),
        "the batch exercises shared pretraining"
    );

    let (code, status, _) = common::lra(&["batch", "status", file, "--out", &out_arg]);
    assert_eq!(code, 0);
    assert!(status.contains("| slurm |"), "{status}");
    assert!(status.contains("FAILED"), "{status}");
    assert!(status.contains("2 done"), "{status}");
    // Nothing left to submit but the failed points, which wait for --retry-failed.
    let (code, again, _) = common::lra(&["batch", "run", file, "--out", &out_arg]);
    assert_eq!(code, 0);
    assert!(!again.contains("submitted job"), "{again}");
    let (code, cancelled, _) = common::lra(&["batch", "cancel", file, "--out", &out_arg]);
    assert_eq!(code, 0);
    assert!(
        cancelled.contains("cancelled the Slurm jobs"),
        "{cancelled}"
    );
}
