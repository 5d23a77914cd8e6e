//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use lra::check::{check, Checked, Context};

/// A fixed machine, so snapshots do not depend on where the tests run: 24 GiB, no GPU, a
/// CPU-only build.
pub fn context() -> Context {
    Context {
        machine_memory: 24 << 30,
        gpu_memory: None,
        check_data: false,
        cuda_built: false,
        gpus: Some(0),
    }
}

/// [`context`] on a machine large enough for the paper's runs (1 TiB), for the experiment
/// grid, whose specs are sized for the SPT paper's GPUs: only mistakes may show.
pub fn paper_machine_context() -> Context {
    Context {
        machine_memory: 1 << 40,
        ..context()
    }
}

/// Checks a file given relative to the crate root.
pub fn check_file(relative: &Path) -> Checked {
    check(relative, &context()).expect("fixture is readable")
}

/// Diagnostics as the CLI prints them, without colour, at a fixed width.
pub fn rendered(checked: &Checked) -> String {
    lra::diagnostic::render(&checked.sources, &checked.diagnostics, false, 100)
}

/// `path` relative to the crate root (tests run there).
pub fn relative(path: &Path) -> &Path {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
}

/// A temporary folder removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("lra-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The single experiment of `text`, which must check without errors.
pub fn experiment(text: &str) -> lra::spec::ExperimentSpec {
    let context = Context {
        machine_memory: 1 << 40,
        ..context()
    };
    let checked = lra::check::check_source(Path::new("test.lra"), text.to_string(), &context);
    assert!(!checked.has_errors(), "{}", rendered(&checked));
    checked.spec.unwrap().experiments.remove(0)
}

/// Quiet run options writing under `out`.
pub fn run_options(out: &Path, source: &str) -> lra::train::RunOptions {
    lra::train::RunOptions {
        out: Some(out.to_path_buf()),
        quiet: true,
        spec_path: "test.lra".into(),
        source: source.into(),
        ..lra::train::RunOptions::default()
    }
}

/// A run's metrics without the wall-clock figures, which no two runs share.
pub fn metrics(run_dir: &Path) -> Vec<lra::train::metrics::Record> {
    lra::train::metrics::MetricsLog::new(&run_dir.join("metrics.jsonl"))
        .read()
        .into_iter()
        .map(|r| lra::train::metrics::Record {
            tokens_per_s: None,
            ..r
        })
        .collect()
}

/// The values of an f32 safetensors tensor.
pub fn tensor_values(view: &safetensors::tensor::TensorView<'_>) -> Vec<f32> {
    view.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Runs `x` to its end with quiet options writing under `out`.
pub fn run_to_end(
    x: &lra::spec::ExperimentSpec,
    out: &Path,
    source: &str,
) -> lra::train::RunSummary {
    let never = std::sync::atomic::AtomicBool::new(false);
    lra::train::run(x, &run_options(out, source), &never).unwrap()
}

/// Runs the `lra` binary without colour: (exit code, stdout, stderr).
pub fn lra(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lra"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("lra runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A full data set beside the repository (`../shared/data/<name>`, not in it: see
/// tests/data/README.md), for the `--ignored` acceptance tests; a clear failure naming the
/// folder when it is not there.
pub fn full_data(name: &str) -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    assert!(
        path.exists(),
        "this acceptance test needs the full data set at {} (../shared/data/{name} beside the \
         repository; see tests/data/README.md); run `cargo test` without --ignored to check \
         the samples shipped in tests/data instead",
        path.display()
    );
    path
}

/// A tiny ListOps experiment on data it generates into `data`, one thread so runs in other
/// processes give identical figures; `finetune` is the body of its fine-tuning section.
pub fn tiny_spec(data: &Path, finetune: &str) -> String {
    format!(
        r#"experiment "tiny" {{
            threads 1
            task listops {{
                data "{}"
                max_len 32
                generate {{ train 64 val 32 test 32 min_length 8 max_length 24 seed 3 }}
            }}
            model transformer {{ layers 1 d_model 16 heads 2 ffn 32 }}
            finetune {{ {finetune} }}
        }}"#,
        data.display()
    )
}
