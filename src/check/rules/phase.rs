//! Rules about the pretraining and fine-tuning phases.

use super::Context;
use crate::check::derive::is_causal;
use crate::check::error::suggest;
use crate::check::resolved::{RSection, ResolvedExperiment};
use crate::diagnostic::Diagnostic;
use crate::spec::{Loss, Metric, Split};
use crate::syntax::ast::ValueKind;

/// Next-token prediction is trivial for a model that sees the next token.
pub(crate) fn causal_pretraining_needs_causal_model(
    x: &ResolvedExperiment,
    _: &Context,
) -> Vec<Diagnostic> {
    let (Some(pretrain), Some(model)) = (x.pretrain(), x.model()) else {
        return vec![];
    };
    if !pretrain.is_kind("causal") || is_causal(model) {
        return vec![];
    }
    let (field, fix) = if model.is_kind("transformer") {
        ("causal", "set `causal true` in the model")
    } else {
        ("bidirectional", "set `bidirectional false` in the model")
    };
    let kind = model.kind_name().unwrap_or("model");
    vec![Diagnostic::error(
        "lra::rule::causal-pretraining-needs-causal-model",
        format!("causal pretraining needs a causal model, but this {kind} sees the whole sequence"),
    )
    .label(
        pretrain.kind_origin.span().unwrap_or(pretrain.span),
        "predicts each next token",
    )
    .secondary(
        Some(model.span_of(field)),
        format!("the {kind} can see the token it must predict"),
    )
    .help(format!("{fix}, or use `pretrain masked`"))]
}

/// Masked denoising with a causal model sees only the left context of each mask.
pub(crate) fn masked_pretraining_of_causal_model(
    x: &ResolvedExperiment,
    _: &Context,
) -> Vec<Diagnostic> {
    let (Some(pretrain), Some(model)) = (x.pretrain(), x.model()) else {
        return vec![];
    };
    if !pretrain.is_kind("masked") || !is_causal(model) {
        return vec![];
    }
    vec![Diagnostic::warning(
        "lra::rule::masked-pretraining-causal-model",
        "masked pretraining of a causal model sees only what comes before each mask",
    )
    .label(pretrain.kind_origin.span().unwrap_or(pretrain.span), "masked denoising")
    .secondary(Some(model.span), "a causal model")
    .help("the paper pairs causal models with `pretrain causal` and bidirectional ones with `pretrain masked`")]
}

pub(crate) fn masked_rate_in_unit_interval(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(pretrain) = x.pretrain().filter(|p| p.is_kind("masked")) else {
        return vec![];
    };
    let Some(rate) = pretrain.float("rate") else {
        return vec![];
    };
    if rate > 0.0 && rate < 1.0 {
        return vec![];
    }
    vec![Diagnostic::error(
        "lra::rule::masked-rate",
        format!("a masking rate of {rate} leaves nothing to learn"),
    )
    .label(pretrain.span_of("rate"), "must be strictly between 0 and 1")
    .help(
        "the paper masks 0.1 (ListOps), 0.15 (Text, Retrieval) and 0.5 (Image, Pathfinder, Path-X)",
    )]
}

pub(crate) fn l1_loss_needs_continuous_inputs(
    x: &ResolvedExperiment,
    _: &Context,
) -> Vec<Diagnostic> {
    let (Some(pretrain), Some(task)) = (x.pretrain(), x.task()) else {
        return vec![];
    };
    if pretrain.ident("loss") != Some("l1") || task.ident("encoding") == Some("continuous") {
        return vec![];
    }
    let image_like = task.get("encoding").is_some();
    let help = if image_like {
        "set `encoding continuous` in the task, or use `loss ce` (pixels as 256 classes)"
    } else {
        "this task's inputs are tokens: use `loss ce`"
    };
    vec![Diagnostic::error(
        "lra::rule::l1-needs-continuous",
        "an L1 loss needs continuous inputs, but this task's inputs are tokens",
    )
    .label(pretrain.span_of("loss"), "L1 on pixel values")
    .secondary(Some(task.span_of("encoding")), "token inputs")
    .help(help)]
}

fn each_phase(
    x: &ResolvedExperiment,
    check: impl Fn(&RSection) -> Option<Diagnostic>,
) -> Vec<Diagnostic> {
    x.phases().filter_map(check).collect()
}

pub(crate) fn steps_epochs_exclusive(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    each_phase(x, |phase| {
        let (epochs, steps) = (phase.written_span("epochs")?, phase.written_span("steps")?);
        let (first, second) = if epochs.start < steps.start {
            (epochs, steps)
        } else {
            (steps, epochs)
        };
        Some(
            Diagnostic::error(
                "lra::rule::steps-epochs-exclusive",
                format!(
                    "this {} phase gives both `steps` and `epochs`",
                    phase.def.name
                ),
            )
            .label(second, "second budget")
            .secondary(Some(first), "first budget")
            .help("a phase runs for `epochs N` or for `steps N`: keep one"),
        )
    })
}

pub(crate) fn budget_required(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    each_phase(x, |phase| {
        if phase.get("epochs").is_some() || phase.get("steps").is_some() {
            return None;
        }
        Some(
            Diagnostic::error(
                "lra::rule::missing-budget",
                format!("this {} phase has no length", phase.def.name),
            )
            .label(phase.span, "needs `epochs` or `steps`")
            .help("add `epochs 10` or `steps 20_000`"),
        )
    })
}

/// `SPLIT.METRIC` for every metric each phase reports: fine-tuning classifies; L1
/// pretraining reports MAE and R² instead of accuracy.
pub fn metrics(phase: &RSection) -> Vec<String> {
    let l1 = phase.def.name != "finetune" && phase.ident("loss") == Some(Loss::L1.name());
    [Split::Val, Split::Train]
        .iter()
        .flat_map(|split| {
            Metric::reported(l1)
                .iter()
                .map(move |metric| format!("{split}.{metric}"))
        })
        .collect()
}

pub(crate) fn select_metric_known(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    each_phase(x, |phase| {
        let ValueKind::Best(metric) = &phase.get("select")?.value else {
            return None;
        };
        let known = metrics(phase);
        if known.contains(metric) {
            return None;
        }
        let hint = suggest(metric, known.iter().map(String::as_str))
            .map_or(String::new(), |s| format!("did you mean `{s}`? "));
        Some(
            Diagnostic::error(
                "lra::rule::unknown-metric",
                format!("the {} phase reports no metric `{metric}`", phase.def.name),
            )
            .label(phase.span_of("select"), "unknown metric")
            .help(format!(
                "{hint}this phase reports {}",
                crate::check::schema::ticked(&known.iter().map(String::as_str).collect::<Vec<_>>())
            )),
        )
    })
}

pub(crate) fn patience_needs_best(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    each_phase(x, |phase| {
        let patience = phase.written_span("patience")?;
        if !matches!(phase.get("select")?.value, ValueKind::Ident(_)) {
            return None;
        }
        Some(
            Diagnostic::error(
                "lra::rule::patience-needs-best",
                "`patience` stops when a metric stops improving, but `select last` follows none",
            )
            .label(patience, "early stopping")
            .secondary(phase.written_span("select"), "no metric to watch")
            .help("use `select best val.accuracy` (or another metric), or remove `patience`"),
        )
    })
}

pub(crate) fn warmup_within_budget(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    each_phase(x, |phase| {
        let steps = phase.int("steps")?;
        let schedule = phase.section("schedule")?;
        let ValueKind::Int(warmup) = schedule.get("warmup")?.value else {
            return None;
        };
        if warmup < steps {
            return None;
        }
        Some(
            Diagnostic::warning(
                "lra::rule::warmup-beyond-budget",
                format!("the warm-up ({warmup} steps) lasts the whole phase ({steps} steps)"),
            )
            .label(
                schedule.span_of("warmup"),
                "never reaches the peak learning rate",
            )
            .secondary(phase.written_span("steps"), "the phase's length")
            .help("shorten the warm-up, or give it as a percentage such as `warmup 5%`"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::codes;
    use super::*;

    const T: &str = "task listops { } finetune { epochs 1 }";

    #[test]
    fn causal_pretraining_needs_a_causal_model() {
        let code = "lra::rule::causal-pretraining-needs-causal-model";
        let s4 = format!("{T} model s4 {{ }} pretrain causal {{ epochs 1 }}");
        assert_eq!(codes(causal_pretraining_needs_causal_model, &s4), [code]);
        let tf = format!("{T} model transformer {{ }} pretrain causal {{ epochs 1 }}");
        assert_eq!(codes(causal_pretraining_needs_causal_model, &tf), [code]);
        let ok = format!("{T} model s4 {{ bidirectional false }} pretrain causal {{ epochs 1 }}");
        assert!(codes(causal_pretraining_needs_causal_model, &ok).is_empty());
        let ok = format!("{T} model transformer {{ causal true }} pretrain causal {{ epochs 1 }}");
        assert!(codes(causal_pretraining_needs_causal_model, &ok).is_empty());
    }

    #[test]
    fn masked_pretraining_of_causal_models_warns() {
        let bad = format!("{T} model transformer {{ causal true }} pretrain masked {{ epochs 1 }}");
        assert_eq!(
            codes(masked_pretraining_of_causal_model, &bad),
            ["lra::rule::masked-pretraining-causal-model"]
        );
    }

    #[test]
    fn masked_rate_is_a_proper_probability() {
        for rate in ["0", "1", "1.0"] {
            let bad = format!("{T} model s4d {{ }} pretrain masked {{ rate {rate} epochs 1 }}");
            assert_eq!(
                codes(masked_rate_in_unit_interval, &bad),
                ["lra::rule::masked-rate"]
            );
        }
        let ok = format!("{T} model s4d {{ }} pretrain masked {{ rate 0.3 epochs 1 }}");
        assert!(codes(masked_rate_in_unit_interval, &ok).is_empty());
    }

    #[test]
    fn l1_needs_continuous_inputs() {
        let bad = "task image { } model s4d { } finetune { epochs 1 } pretrain masked { loss l1 epochs 1 }";
        assert_eq!(
            codes(l1_loss_needs_continuous_inputs, bad),
            ["lra::rule::l1-needs-continuous"]
        );
        let ok = "task image { encoding continuous } model s4d { } finetune { epochs 1 } pretrain masked { loss l1 epochs 1 }";
        assert!(codes(l1_loss_needs_continuous_inputs, ok).is_empty());
    }

    #[test]
    fn steps_and_epochs_are_exclusive() {
        let bad = "task listops { } model s4d { } finetune { epochs 1 steps 10 }";
        assert_eq!(
            codes(steps_epochs_exclusive, bad),
            ["lra::rule::steps-epochs-exclusive"]
        );
        assert!(codes(steps_epochs_exclusive, &format!("{T} model s4d {{ }}")).is_empty());
    }

    #[test]
    fn a_phase_needs_a_budget() {
        let bad = "task listops { } model s4d { } finetune { batch 8 }";
        assert_eq!(codes(budget_required, bad), ["lra::rule::missing-budget"]);
    }

    #[test]
    fn selected_metrics_exist() {
        let bad = "task listops { } model s4d { } finetune { epochs 1 select best val.acuracy }";
        assert_eq!(
            codes(select_metric_known, bad),
            ["lra::rule::unknown-metric"]
        );
        let l1 = "task image { encoding continuous } model s4d { } finetune { epochs 1 } pretrain masked { loss l1 epochs 1 select best val.r2 }";
        assert!(codes(select_metric_known, l1).is_empty());
        let ce = "task image { } model s4d { } finetune { epochs 1 } pretrain masked { epochs 1 select best val.r2 }";
        assert_eq!(
            codes(select_metric_known, ce),
            ["lra::rule::unknown-metric"]
        );
    }

    #[test]
    fn patience_needs_a_metric() {
        let bad = "task listops { } model s4d { } finetune { epochs 1 select last patience 3 }";
        assert_eq!(
            codes(patience_needs_best, bad),
            ["lra::rule::patience-needs-best"]
        );
        assert!(codes(
            patience_needs_best,
            "task listops { } model s4d { } finetune { epochs 1 patience 3 }"
        )
        .is_empty());
    }

    #[test]
    fn warmup_longer_than_the_phase_warns() {
        let bad = "task listops { } model s4d { } finetune { steps 100 schedule constant { warmup 2_000 } }";
        assert_eq!(
            codes(warmup_within_budget, bad),
            ["lra::rule::warmup-beyond-budget"]
        );
        let ok =
            "task listops { } model s4d { } finetune { steps 100 schedule cosine { warmup 5% } }";
        assert!(codes(warmup_within_budget, ok).is_empty());
    }
}
