//! Rules about the model's own fields.

use super::Context;
use crate::check::derive::is_causal;
use crate::check::resolved::ResolvedExperiment;
use crate::diagnostic::Diagnostic;
use crate::spec::PositionKind;

/// Attention splits d_model evenly across heads.
pub(crate) fn heads_divide_d_model(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(m) = x.model().filter(|m| m.is_kind("transformer")) else {
        return vec![];
    };
    let (Some(heads), Some(d_model)) = (m.int("heads"), m.int("d_model")) else {
        return vec![];
    };
    if d_model % heads == 0 {
        return vec![];
    }
    let mut divisors: Vec<i64> = (1..=d_model.min(256))
        .filter(|h| d_model % h == 0)
        .collect();
    divisors.sort_by_key(|h| (h - heads).abs());
    let divisors: Vec<String> = divisors.iter().take(3).map(|h| h.to_string()).collect();
    let multiple = (d_model / heads + 1) * heads;
    vec![Diagnostic::error(
        "lra::rule::heads-divide-d-model",
        format!("{heads} heads do not divide d_model {d_model}"),
    )
    .label(m.span_of("heads"), format!("{heads} heads"))
    .secondary(m.written_span("d_model"), format!("d_model is {d_model}"))
    .help(format!(
        "each head gets d_model / heads features: use heads {} or d_model {multiple}",
        divisors.join(", ")
    ))]
}

/// Rotary embeddings rotate pairs of features, so each head needs an even size.
pub(crate) fn rotary_needs_even_head_size(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(m) = x.model().filter(|m| m.is_kind("transformer")) else {
        return vec![];
    };
    let (Some(heads), Some(d_model)) = (m.int("heads"), m.int("d_model")) else {
        return vec![];
    };
    let rotates = m
        .ident("position")
        .and_then(PositionKind::from_name)
        .is_some_and(PositionKind::rotates);
    if !rotates || d_model % heads != 0 || (d_model / heads) % 2 == 0 {
        return vec![];
    }
    vec![Diagnostic::error(
        "lra::rule::rotary-even-head-size",
        format!(
            "rotary positions need an even head size, but d_model {d_model} / {heads} heads = {}",
            d_model / heads
        ),
    )
    .label(m.span_of("position"), "rotary rotates pairs of features")
    .secondary(m.written_span("heads"), format!("{heads} heads"))
    .secondary(m.written_span("d_model"), format!("d_model {d_model}"))
    .help("choose heads and d_model whose quotient is even, or use `position sinusoidal`")]
}

/// A local window as long as the input is full attention at extra cost.
pub(crate) fn local_window_within_max_len(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let (Some(m), Some(task)) = (x.model(), x.task()) else {
        return vec![];
    };
    let Some(attention) = m.section("attention").filter(|a| a.is_kind("local")) else {
        return vec![];
    };
    let (Some(window), Some(max_len)) = (attention.int("window"), task.int("max_len")) else {
        return vec![];
    };
    if window < max_len {
        return vec![];
    }
    vec![Diagnostic::warning(
        "lra::rule::window-covers-input",
        format!("a local window of {window} covers the whole input of {max_len}"),
    )
    .label(attention.span_of("window"), "window ≥ max_len")
    .secondary(task.written_span("max_len"), format!("max_len {max_len}"))
    .help("this is full attention; write `attention full` or a window below max_len")]
}

/// S5 initialises A block-diagonally: the state splits into equal blocks.
pub(crate) fn s5_blocks_divide_d_state(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(m) = x.model().filter(|m| m.is_kind("s5")) else {
        return vec![];
    };
    let (Some(blocks), Some(d_state)) = (m.int("blocks"), m.int("d_state")) else {
        return vec![];
    };
    if d_state % blocks == 0 {
        return vec![];
    }
    vec![Diagnostic::error(
        "lra::rule::s5-blocks-divide-d-state",
        format!("{blocks} blocks do not divide d_state {d_state}"),
    )
    .label(m.span_of("blocks"), format!("{blocks} blocks"))
    .secondary(m.written_span("d_state"), format!("d_state {d_state}"))
    .help("S5 initialises A with `blocks` equal HiPPO-N blocks: choose a divisor of d_state")]
}

/// Conjugate symmetry keeps one state of each conjugate pair of a HiPPO-N block, so a block
/// must hold whole pairs (an odd block has a real eigenvalue without a partner).
pub(crate) fn s5_conj_sym_even_blocks(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(m) = x.model().filter(|m| m.is_kind("s5")) else {
        return vec![];
    };
    let (Some(blocks), Some(d_state), Some(true)) =
        (m.int("blocks"), m.int("d_state"), m.bool("conj_sym"))
    else {
        return vec![];
    };
    if blocks == 0 || d_state % blocks != 0 || (d_state / blocks) % 2 == 0 {
        return vec![];
    }
    let size = d_state / blocks;
    vec![Diagnostic::error(
        "lra::rule::s5-conj-sym-even-blocks",
        format!(
            "conj_sym needs an even block size, but d_state {d_state} / {blocks} blocks = {size}"
        ),
    )
    .label(
        m.span_of("conj_sym"),
        "keeps one state of each conjugate pair",
    )
    .secondary(m.written_span("blocks"), format!("{blocks} blocks"))
    .secondary(m.written_span("d_state"), format!("d_state {d_state}"))
    .help(format!(
        "use blocks {} or d_state {}, or `conj_sym false`",
        (1..=blocks)
            .rev()
            .find(|b| d_state % b == 0 && (d_state / b) % 2 == 0)
            .unwrap_or(1),
        2 * d_state
    ))]
}

/// HiPPO-LegS's eigenvalues come in conjugate pairs, and S4 and S4D keep one of each pair
/// (d_state counts both), so a LegS initialisation needs an even state size.
pub(crate) fn legs_even_d_state(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(m) = x.model().filter(|m| m.is_kind("s4") || m.is_kind("s4d")) else {
        return vec![];
    };
    let (Some("legs"), Some(d_state)) = (m.ident("init"), m.int("d_state")) else {
        return vec![];
    };
    if d_state % 2 == 0 {
        return vec![];
    }
    vec![Diagnostic::error(
        "lra::rule::legs-even-d-state",
        format!("init legs needs an even d_state, but d_state is {d_state}"),
    )
    .label(m.span_of("d_state"), "an odd state size")
    .secondary(m.written_span("init"), "LegS modes come in conjugate pairs")
    .help(format!(
        "use d_state {} or {}, or `init lin`",
        d_state - 1,
        d_state + 1
    ))]
}

/// S4's NPLR form A = Λ − P·P* takes Λ, P and B from the HiPPO-LegS matrix (S4, §3.3): the
/// S4D-Lin and S4D-Inv eigenvalues have no low-rank term to go with them, so they need the
/// diagonal mode.
pub(crate) fn nplr_needs_legs(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(m) = x.model().filter(|m| m.is_kind("s4")) else {
        return vec![];
    };
    let (Some("nplr"), Some(init @ ("lin" | "inv"))) = (m.ident("mode"), m.ident("init")) else {
        return vec![];
    };
    vec![Diagnostic::error(
        "lra::rule::nplr-needs-legs",
        format!("S4 in mode nplr is initialised from HiPPO-LegS, not from init {init}"),
    )
    .label(
        m.span_of("init"),
        format!("S4D-{} eigenvalues have no low-rank term", title(init)),
    )
    .secondary(m.written_span("mode"), "the normal-plus-low-rank form")
    .help(format!(
        "write `mode diag` to use the S4D-{} eigenvalues, or `init legs` for the NPLR form",
        title(init)
    ))]
}

fn title(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// LRU samples eigenvalue moduli uniformly on a ring r_min ≤ |λ| ≤ r_max.
pub(crate) fn lru_radius_order(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(m) = x.model().filter(|m| m.is_kind("lru")) else {
        return vec![];
    };
    ordered(
        m,
        "r_min",
        "r_max",
        "lra::rule::lru-radius-order",
        "the ring initialisation samples |λ| between r_min and r_max",
    )
}

/// Initial step sizes are sampled log-uniformly in [dt_min, dt_max].
pub(crate) fn dt_order(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(m) = x.model().filter(|m| m.get("dt_min").is_some()) else {
        return vec![];
    };
    ordered(
        m,
        "dt_min",
        "dt_max",
        "lra::rule::dt-order",
        "Δ is initialised log-uniformly between dt_min and dt_max",
    )
}

fn ordered(
    m: &crate::check::resolved::RSection,
    low: &str,
    high: &str,
    code: &'static str,
    why: &str,
) -> Vec<Diagnostic> {
    let (Some(a), Some(b)) = (m.float(low), m.float(high)) else {
        return vec![];
    };
    if a < b {
        return vec![];
    }
    let culprit = if m.written_span(low).is_some() {
        low
    } else {
        high
    };
    let other = if culprit == low { high } else { low };
    vec![
        Diagnostic::error(code, format!("{low} ({a}) must be below {high} ({b})"))
            .label(
                m.span_of(culprit),
                format!("{culprit} {}", m.float(culprit).unwrap_or(0.0)),
            )
            .secondary(
                m.written_span(other),
                format!("{other} {}", m.float(other).unwrap_or(0.0)),
            )
            .help(format!("{why}: make {low} < {high}")),
    ]
}

/// A causal model's first position has seen one token: pooling it discards the sequence.
pub(crate) fn causal_pool_first(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(m) = x.model() else {
        return vec![];
    };
    if !is_causal(m) || m.ident("pool") != Some("first") {
        return vec![];
    }
    vec![Diagnostic::warning(
        "lra::rule::causal-pool-first",
        "a causal model pooled at its first position sees only the first token",
    )
    .label(m.span_of("pool"), "pool first")
    .help("use `pool last` (the paper's choice for causal models) or `pool mean`")]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::codes;
    use super::*;

    const T: &str = "task listops { } finetune { epochs 1 }";

    #[test]
    fn heads_must_divide_d_model() {
        let bad = format!("{T} model transformer {{ d_model 100 heads 8 }}");
        assert_eq!(
            codes(heads_divide_d_model, &bad),
            ["lra::rule::heads-divide-d-model"]
        );
        let good = format!("{T} model transformer {{ d_model 128 heads 8 }}");
        assert!(codes(heads_divide_d_model, &good).is_empty());
    }

    #[test]
    fn rotary_needs_even_heads() {
        let bad = format!("{T} model transformer {{ d_model 24 heads 8 position rotary }}");
        assert_eq!(
            codes(rotary_needs_even_head_size, &bad),
            ["lra::rule::rotary-even-head-size"]
        );
        let good = format!("{T} model transformer {{ d_model 32 heads 8 position rotary }}");
        assert!(codes(rotary_needs_even_head_size, &good).is_empty());
        // Sinusoidal positions plus rotary attention rotate pairs too.
        let both =
            format!("{T} model transformer {{ d_model 24 heads 8 position sinusoidal_rotary }}");
        assert_eq!(
            codes(rotary_needs_even_head_size, &both),
            ["lra::rule::rotary-even-head-size"]
        );
        let added = format!("{T} model transformer {{ d_model 24 heads 8 position sinusoidal }}");
        assert!(codes(rotary_needs_even_head_size, &added).is_empty());
    }

    #[test]
    fn window_longer_than_input_warns() {
        let bad = format!("{T} model transformer {{ attention local {{ window 4096 }} }}");
        assert_eq!(
            codes(local_window_within_max_len, &bad),
            ["lra::rule::window-covers-input"]
        );
        let good = format!("{T} model transformer {{ attention local {{ window 512 }} }}");
        assert!(codes(local_window_within_max_len, &good).is_empty());
    }

    #[test]
    fn s5_blocks_divide_state() {
        let bad = format!("{T} model s5 {{ d_state 64 blocks 5 }}");
        assert_eq!(
            codes(s5_blocks_divide_d_state, &bad),
            ["lra::rule::s5-blocks-divide-d-state"]
        );
        assert!(codes(
            s5_blocks_divide_d_state,
            &format!("{T} model s5 {{ blocks 8 }}")
        )
        .is_empty());
    }

    #[test]
    fn s5_conjugate_symmetry_needs_even_blocks() {
        let bad = format!("{T} model s5 {{ d_state 12 blocks 4 }}");
        assert_eq!(
            codes(s5_conj_sym_even_blocks, &bad),
            ["lra::rule::s5-conj-sym-even-blocks"]
        );
        for good in [
            "d_state 12 blocks 4 conj_sym false",
            "d_state 12 blocks 3",
            "d_state 12 blocks 5",
        ] {
            let text = format!("{T} model s5 {{ {good} }}");
            assert!(codes(s5_conj_sym_even_blocks, &text).is_empty(), "{good}");
        }
    }

    #[test]
    fn legs_needs_an_even_state_size() {
        for kind in ["s4", "s4d"] {
            let bad = format!("{T} model {kind} {{ d_state 7 init legs }}");
            assert_eq!(
                codes(legs_even_d_state, &bad),
                ["lra::rule::legs-even-d-state"],
                "{kind}"
            );
            for good in ["d_state 8 init legs", "d_state 7 init lin"] {
                let text = format!("{T} model {kind} {{ {good} }}");
                assert!(codes(legs_even_d_state, &text).is_empty(), "{kind} {good}");
            }
        }
    }

    #[test]
    fn nplr_needs_the_legs_initialisation() {
        for init in ["lin", "inv"] {
            let bad = format!("{T} model s4 {{ mode nplr init {init} }}");
            assert_eq!(
                codes(nplr_needs_legs, &bad),
                ["lra::rule::nplr-needs-legs"],
                "{init}"
            );
            let diag = format!("{T} model s4 {{ mode diag init {init} }}");
            assert!(codes(nplr_needs_legs, &diag).is_empty(), "{init}");
        }
        // The S4 default is mode nplr: an init lin alone is refused too.
        let implicit = format!("{T} model s4 {{ init lin }}");
        assert_eq!(
            codes(nplr_needs_legs, &implicit),
            ["lra::rule::nplr-needs-legs"]
        );
        let legs = format!("{T} model s4 {{ mode nplr init legs }}");
        assert!(codes(nplr_needs_legs, &legs).is_empty());
    }

    #[test]
    fn lru_ring_is_ordered() {
        let bad = format!("{T} model lru {{ r_min 0.99 r_max 0.9 }}");
        assert_eq!(
            codes(lru_radius_order, &bad),
            ["lra::rule::lru-radius-order"]
        );
        assert!(codes(lru_radius_order, &format!("{T} model lru {{ }}")).is_empty());
    }

    #[test]
    fn dt_range_is_ordered() {
        let bad = format!("{T} model s4d {{ dt_min 0.5 }}");
        assert_eq!(codes(dt_order, &bad), ["lra::rule::dt-order"]);
        assert!(codes(dt_order, &format!("{T} model s4d {{ }}")).is_empty());
        assert!(codes(dt_order, &format!("{T} model transformer {{ }}")).is_empty());
    }

    #[test]
    fn causal_first_pooling_warns() {
        let bad = format!("{T} model s4d {{ bidirectional false pool first }}");
        assert_eq!(
            codes(causal_pool_first, &bad),
            ["lra::rule::causal-pool-first"]
        );
        assert!(codes(
            causal_pool_first,
            &format!("{T} model s4d {{ pool first }}")
        )
        .is_empty());
    }
}
