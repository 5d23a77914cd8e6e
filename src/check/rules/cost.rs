//! The memory rule: it needs the run's estimated cost, so it runs on the built spec.

use super::Context;
use crate::check::resolved::ResolvedExperiment;
use crate::diagnostic::Diagnostic;
use crate::estimate::{estimate, human_bytes};
use crate::spec::{Attention, Device, ExperimentSpec, LayerSpec};

/// Full attention whose estimated memory exceeds the machine is an error that suggests local
/// attention; any other run that will not fit is a warning.
pub fn attention_memory(
    x: &ResolvedExperiment,
    spec: &ExperimentSpec,
    context: &Context,
) -> Vec<Diagnostic> {
    let available = match spec.device {
        Device::Cpu => Some(context.machine_memory),
        Device::Cuda(_) => context.gpu_memory,
    };
    let Some(available) = available else {
        return vec![];
    };
    let cost = estimate(spec, None);
    if cost.peak_bytes <= available {
        return vec![];
    }
    let (Some(model), Some(task)) = (x.model(), x.task()) else {
        return vec![];
    };
    let where_ = match spec.device {
        Device::Cpu => "this machine".to_string(),
        Device::Cuda(i) => format!("GPU {i}"),
    };
    let full_attention =
        matches!(&spec.model.layer, LayerSpec::Transformer(t) if t.attention == Attention::Full);
    // Attention is to blame when the run would fit without its score matrices.
    if full_attention && cost.peak_bytes - cost.attention_bytes <= available {
        let label = model
            .section("attention")
            .and_then(|a| a.kind_origin.span())
            .unwrap_or(model.span);
        return vec![Diagnostic::error(
            "lra::rule::attention-memory",
            format!(
                "full attention over {} positions needs about {} here, more than {where_} has ({})",
                spec.task.max_len,
                human_bytes(cost.peak_bytes),
                human_bytes(available)
            ),
        )
        .label(label, format!("{} of attention scores", human_bytes(cost.attention_bytes)))
        .secondary(task.written_span("max_len"), "sequence length")
        .help("use `attention local { window 4096 }` (blocks that see themselves and their neighbours, as for Path-X), or a smaller batch")];
    }
    vec![Diagnostic::warning(
        "lra::memory",
        format!(
            "this run needs about {} at its peak, more than {where_} has ({})",
            human_bytes(cost.peak_bytes),
            human_bytes(available)
        ),
    )
    .label(x.name_span, "too large")
    .help("use a smaller `batch`, fewer `layers` or a smaller `d_model`")]
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
        attention_memory(&x, &spec, &ctx)
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
}
