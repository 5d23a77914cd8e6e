//! The memory rule: it needs the run's estimated cost, so it runs on the built spec.
//!
//! The estimate is approximate, so the rule grades it: a run that needs far more than the
//! machine has ([`FAR_BEYOND`] times) cannot run and is an error (`lra run` refuses it before
//! allocating anything); one that needs more, or nearly all of it, is a warning.

use super::Context;
use crate::check::resolved::ResolvedExperiment;
use crate::diagnostic::Diagnostic;
use crate::estimate::{estimate, human_bytes};
use crate::spec::{Attention, Device, ExperimentSpec, LayerSpec};

/// An estimate this many times the machine's memory is beyond any error of the estimate.
pub(crate) const FAR_BEYOND: u64 = 4;

/// The share of the machine's memory above which a run is warned that it may not fit, in
/// percent.
pub(crate) const NEAR_PERCENT: u64 = 80;

/// Full attention whose estimated memory exceeds the machine is an error that suggests local
/// attention; any other run far beyond the machine is an error, and one beyond or near it a
/// warning.
pub fn memory(x: &ResolvedExperiment, spec: &ExperimentSpec, context: &Context) -> Vec<Diagnostic> {
    let available = match spec.device {
        Device::Cpu => Some(context.machine_memory),
        Device::Cuda(_) => context.gpu_memory,
    };
    let Some(available) = available else {
        return vec![];
    };
    let cost = estimate(spec, None);
    let near = available / 100 * NEAR_PERCENT;
    if cost.peak_bytes <= near {
        return vec![];
    }
    let (Some(model), Some(task)) = (x.model(), x.task()) else {
        return vec![];
    };
    let where_ = match spec.device {
        Device::Cpu => "this machine".to_string(),
        Device::Cuda(i) => format!("GPU {i}"),
    };
    let needs = human_bytes(cost.peak_bytes);
    let has = human_bytes(available);
    let full_attention =
        matches!(&spec.model.layer, LayerSpec::Transformer(t) if t.attention == Attention::Full);
    // Attention is to blame when the run would fit without its score matrices.
    if cost.peak_bytes > available
        && full_attention
        && cost.peak_bytes - cost.attention_bytes <= available
    {
        let label = model
            .section("attention")
            .and_then(|a| a.kind_origin.span())
            .unwrap_or(model.span);
        return vec![Diagnostic::error(
            "lra::rule::attention-memory",
            format!(
                "full attention over {} positions needs about {needs} here, more than {where_} has ({has})",
                spec.task.max_len,
            ),
        )
        .label(label, format!("{} of attention scores", human_bytes(cost.attention_bytes)))
        .secondary(task.written_span("max_len"), "sequence length")
        .help("use `attention local { window 4096 }` (blocks that see themselves and their neighbours, as for Path-X), or a smaller batch")];
    }
    let smaller =
        "use a smaller `batch`, fewer `layers`, or a smaller `d_model` (or `ffn`, `d_state`)";
    if cost.peak_bytes / FAR_BEYOND > available {
        return vec![Diagnostic::error(
            "lra::rule::memory",
            format!(
                "this run needs about {needs} at its peak, {}× what {where_} has ({has}): it cannot run here",
                cost.peak_bytes / available.max(1)
            ),
        )
        .label(model.span, format!("{} parameters", crate::estimate::human(cost.params as f64)))
        .help(smaller)];
    }
    let how_much = if cost.peak_bytes > available {
        "more than"
    } else {
        "close to all that"
    };
    vec![Diagnostic::warning(
        "lra::memory",
        format!("this run needs about {needs} at its peak, {how_much} {where_} has ({has})"),
    )
    .label(x.name_span, "may not fit")
    .help(smaller)]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{context, resolve};
    use super::*;
    use crate::check::build::build;

    fn run(body: &str, gpu: Option<u64>) -> Vec<&'static str> {
        let x = resolve(&format!("experiment \"t\" {{ {body} }}"));
        let spec = build(&x).expect("builds");
        let mut ctx = context();
        ctx.gpu_memory = gpu;
        memory(&x, &spec, &ctx)
            .into_iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn full_attention_beyond_gpu_memory_suggests_local() {
        let pathx = "device cuda task pathx { } model transformer { heads 4 } finetune { epochs 1 batch 1 }";
        assert_eq!(run(pathx, Some(16 << 30)), ["lra::rule::attention-memory"]);
        let local = "device cuda task pathx { } model transformer { heads 4 attention local { window 512 } } finetune { epochs 1 batch 1 }";
        assert!(run(local, Some(16 << 30)).is_empty());
    }

    #[test]
    fn the_fused_cpu_kernel_fits_where_composed_attention_does_not() {
        let pathx = "task pathx { } model transformer { heads 4 } finetune { epochs 1 batch 32 }";
        assert!(run(pathx, None).is_empty());
    }

    #[test]
    fn a_model_far_beyond_the_machine_is_an_error_and_one_near_it_a_warning() {
        let impossible = "task listops { } model transformer { ffn 4_000_000_000 } finetune { epochs 1 batch 32 }";
        assert_eq!(run(impossible, None), ["lra::rule::memory"]);

        let body = "task listops { } model s4d { } finetune { epochs 1 batch 32 }";
        let x = resolve(&format!("experiment \"t\" {{ {body} }}"));
        let spec = build(&x).expect("builds");
        let peak = estimate(&spec, None).peak_bytes;
        let on = |machine_memory: u64| -> Vec<&'static str> {
            let ctx = Context {
                machine_memory,
                ..context()
            };
            memory(&x, &spec, &ctx)
                .into_iter()
                .map(|d| d.code)
                .collect()
        };
        assert!(on(peak * 2).is_empty());
        assert_eq!(on(peak / 10 * 11), ["lra::memory"], "near all of it");
        assert_eq!(on(peak / 2), ["lra::memory"], "beyond it");
        assert_eq!(on(peak / 5), ["lra::rule::memory"], "far beyond it");
    }
}
