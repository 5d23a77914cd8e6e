//! `lra check FILE…`

use std::path::{Path, PathBuf};

use super::{machine, print_diagnostics, EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use crate::check::{self, Checked, Context};
use crate::estimate::{estimate, human, human_bytes};
use crate::spec::{Budget, ExperimentSpec, LayerSpec};

pub fn run(files: &[PathBuf], check_data: bool) -> u8 {
    let context = machine::context(check_data);
    let mut code = EXIT_OK;
    for file in files {
        code = code.max(check_one(file, &context));
    }
    code
}

fn check_one(file: &Path, context: &Context) -> u8 {
    let checked = match check::check(file, context) {
        Ok(checked) => checked,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return EXIT_USAGE;
        }
    };
    print_diagnostics(&checked);
    let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = checked.diagnostics.len() - errors;
    if errors > 0 {
        eprintln!(
            "✗ {}: {errors} error{}, {warnings} warning{}",
            file.display(),
            plural(errors),
            plural(warnings)
        );
        return EXIT_ERRORS;
    }
    print!("{}", summary(file, &checked, context));
    EXIT_OK
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What each experiment of a clean file will cost.
pub fn summary(file: &Path, checked: &Checked, context: &Context) -> String {
    let mut out = format!("✓ {}\n", file.display());
    for x in checked.spec.iter().flat_map(|s| &s.experiments) {
        out.push_str(&describe(x, context));
    }
    out
}

fn describe(x: &ExperimentSpec, context: &Context) -> String {
    let cost = estimate(x, None);
    let m = &x.model;
    let extra = match &m.layer {
        LayerSpec::Transformer(t) => format!(", {} heads", t.heads),
        _ => String::new(),
    };
    let params = match cost.pretrain_params {
        Some(p) => format!(
            "{} (pretraining {})",
            human(cost.params as f64),
            human(p as f64)
        ),
        None => human(cost.params as f64),
    };
    let budget = |b: Budget| match b {
        Budget::Epochs(e) => format!("{e} epochs"),
        Budget::Steps(s) => format!("{s} steps"),
    };
    let phases = match &x.pretrain {
        Some(p) => format!(
            "pretrain {} for {}, then finetune for {}",
            match p.objective {
                crate::spec::Objective::Masked { rate, .. } => format!("masked ({rate})"),
                crate::spec::Objective::Causal => "causal".into(),
            },
            budget(p.phase.budget),
            budget(x.finetune.budget)
        ),
        None => format!("from scratch, finetune for {}", budget(x.finetune.budget)),
    };
    let available = match x.device {
        crate::spec::Device::Cpu => Some(context.machine_memory),
        crate::spec::Device::Cuda(_) => context.gpu_memory,
    };
    let of = available.map_or(String::new(), |a| format!(" of {}", human_bytes(a)));
    format!(
        "  {}\n    model          {} {}×{}{extra} on {} (max_len {}), {}\n    parameters     {params}\n    FLOPs/step     {} (batch {})\n    peak memory    ≈{}{of} on {}\n",
        x.name,
        m.kind.name(),
        m.layers,
        m.d_model,
        x.task.kind.name(),
        x.task.max_len,
        phases,
        human(cost.flops_per_step),
        x.finetune.batch,
        human_bytes(cost.peak_bytes),
        x.device,
    )
}
