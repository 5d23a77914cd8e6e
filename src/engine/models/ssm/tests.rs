use dfdx::prelude::*;

use super::*;
use crate::engine::layers::mega::chunked_attention::AttentionFunction;
use crate::engine::models::SequenceClassifier;
use crate::engine::optim::{Optimizer, OptimizerConfig};
use crate::engine::params::ParamGrads;
use crate::engine::step::optimise;

const VOCAB: usize = 8;

fn s4d(bidirectional: bool) -> SsmKind {
    SsmKind::S4d(S4dConfig {
        d_state: 8,
        init: crate::engine::layers::ssm::s4d::S4dInit::Lin,
        dt_min: 1e-3,
        dt_max: 1e-1,
        channels: 1,
        bidirectional,
    })
}

fn dlr(bidirectional: bool) -> SsmKind {
    SsmKind::Dlr(DlrConfig {
        d_state: 8,
        dt_min: 1e-3,
        dt_max: 1e-1,
        channels: 1,
        bidirectional,
    })
}

fn lru(bidirectional: bool) -> SsmKind {
    SsmKind::Lru(LruConfig {
        d_state: 8,
        r_min: 0.9,
        r_max: 0.999,
        max_phase: std::f64::consts::TAU,
        bidirectional,
    })
}

fn s5(bidirectional: bool) -> SsmKind {
    SsmKind::S5(S5Config {
        d_state: 8,
        blocks: 2,
        conj_sym: true,
        clip_eigs: !bidirectional,
        dt_min: 1e-3,
        dt_max: 1e-1,
        bidirectional,
    })
}

/// A small MEGA: z = 8 and v = 12 (values wider than queries and keys, and not a multiple),
/// built for inputs up to the longest of these tests (Path-X's 16,384 positions).
fn mega(bidirectional: bool, attention: AttentionFunction, chunk: Option<usize>) -> SsmKind {
    SsmKind::Mega(MegaConfig {
        d_attin: 8,
        d_attout: 12,
        ema_dims: 3,
        chunk,
        attention,
        ffn_expand: 2,
        bidirectional,
        attention_dropout: 0.0,
        max_len: 16_384,
    })
}

fn config(kind: SsmKind) -> SsmConfig {
    SsmConfig {
        input: InputKind::Tokens { vocab: VOCAB },
        d_model: 16,
        layers: 2,
        dropout: 0.0,
        norm: NormPlacement::Pre,
        norm_kind: crate::engine::layers::norm::NormKind::Layer,
        pool: PoolKind::Mean,
        n_classes: 2,
        two_tower: false,
        kind,
        activation: Activation::Gelu,
        glu: true,
        ssm_lr: 1e-3,
        ssm_weight_decay: 0.0,
    }
}

fn kinds() -> Vec<SsmKind> {
    vec![
        s4d(true),
        s4d(false),
        lru(true),
        lru(false),
        s5(true),
        s5(false),
        mega(true, AttentionFunction::Softmax, None),
        mega(false, AttentionFunction::Laplace, Some(5)),
    ]
}

fn encode(model: &SsmModel, store: &ParamStore<Cpu>, ids: &[usize], lengths: &[usize]) -> Vec<f32> {
    let inputs = Inputs::tokens(ids, lengths);
    model
        .encode::<Cpu, NoneTape>(store, &inputs, false)
        .unwrap()
        .as_vec()
}

#[test]
fn parameter_count_matches_the_configuration() {
    for kind in kinds() {
        for (glu, norm, channels) in [
            (true, NormPlacement::Pre, 1),
            (false, NormPlacement::Post, 2),
        ] {
            let kind = match kind.clone() {
                SsmKind::S4d(c) => SsmKind::S4d(S4dConfig { channels, ..c }),
                other => other,
            };
            let cfg = SsmConfig {
                glu,
                norm,
                two_tower: !glu,
                ..config(kind)
            };
            let mut store = ParamStore::new(Cpu::default(), 0);
            let model = SsmModel::build(cfg.clone(), &mut store).unwrap();
            assert_eq!(
                model.parameter_count(&store),
                cfg.parameter_count(),
                "{cfg:?}"
            );
            assert_eq!(store.parameter_count(), cfg.parameter_count());
        }
    }
}

#[test]
fn ssm_parameters_have_their_own_group_and_dotted_names() {
    let mut store = ParamStore::new(Cpu::default(), 0);
    SsmModel::build(config(s4d(true)), &mut store).unwrap();
    let group_of = |name: &str| {
        let id = store
            .find(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        store.group(store.param(id).group).clone()
    };
    for name in [
        "layers.0.ssm.log_dt",
        "layers.1.ssm.log_A_real",
        "layers.0.ssm.A_imag",
    ] {
        let group = group_of(name);
        assert_eq!(
            (group.lr, group.weight_decay),
            (Some(1e-3), Some(0.0)),
            "{name}"
        );
    }
    assert_eq!(group_of("layers.0.ssm.C").lr, None);
    for name in [
        "layers.0.ssm.D",
        "layers.0.ssm.output.weight",
        "layers.0.norm.weight",
    ] {
        assert!(store.find(name).is_some(), "{name}");
    }
    let mut store = ParamStore::new(Cpu::default(), 0);
    SsmModel::build(config(lru(true)), &mut store).unwrap();
    for name in [
        "layers.0.ssm.nu_log",
        "layers.0.ssm.reverse.theta_log",
        "layers.1.ssm.B",
    ] {
        let id = store
            .find(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        assert_eq!(store.group(store.param(id).group).lr, Some(1e-3), "{name}");
    }
    let mut store = ParamStore::new(Cpu::default(), 0);
    SsmModel::build(config(s5(true)), &mut store).unwrap();
    for (name, ssm) in [
        ("layers.0.ssm.Lambda_re", true),
        ("layers.0.ssm.Lambda_im", true),
        ("layers.1.ssm.log_dt", true),
        ("layers.0.ssm.B", true),
        ("layers.0.ssm.C", false),
        ("layers.0.ssm.reverse.C", false),
        ("layers.0.ssm.D", false),
    ] {
        let id = store
            .find(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        let lr = store.group(store.param(id).group).lr;
        assert_eq!(lr, ssm.then_some(1e-3), "{name}");
    }
    let mut store = ParamStore::new(Cpu::default(), 0);
    SsmModel::build(
        config(mega(true, AttentionFunction::Softmax, None)),
        &mut store,
    )
    .unwrap();
    let group_of = |name: &str| {
        let id = store
            .find(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        store.group(store.param(id).group).clone()
    };
    for name in ["alpha", "delta", "beta", "eta", "omega"] {
        let group = group_of(&format!("layers.1.attn.ema.{name}"));
        assert_eq!(
            (group.lr, group.weight_decay),
            (Some(1e-3), Some(0.0)),
            "{name}"
        );
    }
    for name in [
        "layers.0.attn.mixed.weight",
        "layers.0.attn.value.weight",
        "layers.0.ffn.up.weight",
    ] {
        assert_eq!(group_of(name).lr, None, "{name}");
    }
    for name in [
        "layers.0.attn.norm.weight",
        "layers.0.ffn_norm.weight",
        "layers.0.attn.qk_offset",
    ] {
        assert!(store.find(name).is_some(), "{name}");
    }
}

#[test]
fn initialisation_follows_the_papers() {
    let mut store = ParamStore::new(Cpu::default(), 0);
    SsmModel::build(config(s4d(false)), &mut store).unwrap();
    let values = |name: &str| store.values(store.find(name).unwrap());
    let dt: Vec<f32> = values("layers.0.ssm.log_dt")
        .iter()
        .map(|v| v.exp())
        .collect();
    assert!(dt.iter().all(|&d| (1e-3..=1e-1).contains(&d)), "{dt:?}");
    let a_imag = values("layers.0.ssm.A_imag");
    assert!((a_imag[3] - 3.0 * std::f32::consts::PI).abs() < 1e-5);
    let mut store = ParamStore::new(Cpu::default(), 1);
    SsmModel::build(config(lru(false)), &mut store).unwrap();
    let values = |name: &str| store.values(store.find(name).unwrap());
    let (nu, gamma) = (
        values("layers.0.ssm.nu_log"),
        values("layers.0.ssm.gamma_log"),
    );
    for (nu, gamma) in nu.iter().zip(&gamma) {
        let modulus = (-nu.exp()).exp();
        assert!((0.9..=0.999 + 1e-6).contains(&modulus), "|λ| = {modulus}");
        assert!((gamma.exp() - (1.0 - modulus * modulus).sqrt()).abs() < 1e-5);
    }
}

/// The logits of a batch of two and the parameters' gradients of its cross-entropy with
/// classes 0 and 1.
fn logits_and_gradients(
    model: &SsmModel,
    store: &ParamStore<Cpu>,
    inputs: &Inputs<'_>,
    train: bool,
) -> (Vec<f32>, ParamGrads<Cpu>) {
    let logits = model
        .logits::<Cpu, OwnedTape<f32, Cpu>>(store, inputs, train)
        .unwrap();
    let values = logits.as_vec();
    let mut grads = Cpu::cross_entropy(logits, &[0, 1], &[1.0, 1.0])
        .unwrap()
        .backward();
    (values, store.gradients(&mut grads).unwrap())
}

#[test]
fn every_parameter_gets_a_gradient() {
    // Catches the dfdx trap of an op on a parameter that never meets the traced tensor.
    let seq = 12;
    let ids: Vec<usize> = (0..2 * seq).map(|i| (i * 3 + 1) % VOCAB).collect();
    let lengths = [seq, seq - 3];
    for kind in kinds() {
        let mut store = ParamStore::new(Cpu::default(), 0);
        let model = SsmModel::build(config(kind.clone()), &mut store).unwrap();
        let inputs = Inputs::tokens(&ids, &lengths);
        let (_, grads) = logits_and_gradients(&model, &store, &inputs, true);
        for ((_, param), grad) in store.iter().zip(grads.to_host()) {
            let grad = grad
                .as_ref()
                .unwrap_or_else(|| panic!("{} unused", param.name));
            assert!(
                grad.iter().any(|g| g.abs() > 0.0),
                "{kind:?}: {} has a zero gradient",
                param.name
            );
        }
    }
}

#[test]
fn a_causal_model_ignores_later_inputs() {
    let (seq, t) = (24, 11);
    let ids: Vec<usize> = (0..seq).map(|i| (i * 5 + 1) % VOCAB).collect();
    let mut changed = ids.clone();
    changed[t + 1..]
        .iter_mut()
        .for_each(|v| *v = (*v + 3) % VOCAB);
    for kind in [
        s4d(false),
        lru(false),
        s5(false),
        mega(false, AttentionFunction::Softmax, Some(8)),
        mega(false, AttentionFunction::Laplace, None),
    ] {
        let mut store = ParamStore::new(Cpu::default(), 0);
        let model = SsmModel::build(config(kind), &mut store).unwrap();
        let (a, b) = (
            encode(&model, &store, &ids, &[seq]),
            encode(&model, &store, &changed, &[seq]),
        );
        let d = 16;
        for i in 0..(t + 1) * d {
            assert!(
                (a[i] - b[i]).abs() < 1e-5,
                "position {}: {} vs {}",
                i / d,
                a[i],
                b[i]
            );
        }
        assert!((0..seq * d).any(|i| (a[i] - b[i]).abs() > 1e-4));
    }
}

#[test]
fn padding_does_not_change_the_true_positions() {
    let ids: Vec<usize> = (0..10).map(|i| (i * 3 + 2) % VOCAB).collect();
    let mut padded = ids.clone();
    padded.extend([5, 6, 7, 1, 2, 3]);
    for kind in kinds() {
        let mut store = ParamStore::new(Cpu::default(), 0);
        let model = SsmModel::build(config(kind), &mut store).unwrap();
        let a = encode(&model, &store, &ids, &[10]);
        let b = encode(&model, &store, &padded, &[10]);
        for (i, (x, y)) in a.iter().zip(&b[..a.len()]).enumerate() {
            assert!((x - y).abs() < 1e-4, "element {i}: {x} vs {y}");
        }
    }
}

/// Logits and gradients of a whole model of `kind` on the CPU kernels and on the composed ops
/// the GPU runs, over a padded batch, agree.
fn assert_fused_and_composed_agree(kind: SsmKind) {
    let seq = 14;
    let ids: Vec<usize> = (0..2 * seq).map(|i| (i * 7 + 3) % VOCAB).collect();
    let lengths = [seq, 9];
    let mut store = ParamStore::new(Cpu::default(), 3);
    let model = SsmModel::build(config(kind.clone()), &mut store).unwrap();
    let inputs = Inputs::tokens(&ids, &lengths);
    let run = || {
        let (logits, grads) = logits_and_gradients(&model, &store, &inputs, false);
        let flat: Vec<f32> = grads.to_host().into_iter().flatten().flatten().collect();
        (logits, flat)
    };
    let (fused, fused_grads) = run();
    let (composed, composed_grads) = crate::engine::ops::with_composed_ops(run);
    let close = |a: &[f32], b: &[f32], what: &str| {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-3 * (1.0 + y.abs()),
                "{kind:?} {what}[{i}]: {x} vs {y}"
            );
        }
    };
    close(&fused, &composed, "logits");
    close(&fused_grads, &composed_grads, "gradients");
}

#[test]
fn mega_fused_and_composed_forms_agree_with_gradients() {
    // The CPU kernels (EMA convolution, fused MEGA attention) against the composed ops the
    // GPU runs (EMA scan, materialised attention), through whole MEGA blocks with padding.
    for kind in [
        mega(true, AttentionFunction::Softmax, Some(4)),
        mega(false, AttentionFunction::Laplace, None),
    ] {
        assert_fused_and_composed_agree(kind);
    }
}

#[test]
fn diagonal_kinds_fused_and_composed_forms_agree_with_gradients() {
    // The Vandermonde convolutions (S4D, and DLR's with one λ for every channel) and the
    // sequential complex scan (LRU, S5) against their composed forms (parallel scans).
    for kind in [
        s4d(true),
        s4d(false),
        dlr(true),
        dlr(false),
        lru(true),
        s5(false),
    ] {
        assert_fused_and_composed_agree(kind);
    }
}

/// Tokens that carry the label at the start of a long-range example.
const LABEL_SPAN: usize = 64;
const FILLER: usize = 2;

/// The label is decided by the first tokens (token 0 or 1, `LABEL_SPAN` times); the rest of
/// the long sequence is a filler token, so only a memory of the start can tell the classes
/// apart at the last position.
fn long_range_batch(batch: usize, seq: usize, seed: usize) -> (Vec<usize>, Vec<usize>) {
    let mut state = (seed as u64).wrapping_mul(6_364_136_223_846_793_005) ^ 0x2545_f491;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let mut ids = Vec::with_capacity(batch * seq);
    let mut labels = Vec::with_capacity(batch);
    for _ in 0..batch {
        let label = next() % 2;
        labels.push(label);
        ids.extend(std::iter::repeat_n(label, LABEL_SPAN));
        ids.extend(std::iter::repeat_n(FILLER, seq - LABEL_SPAN));
    }
    (ids, labels)
}

/// Accuracy on held-out batches after `steps` AdamW steps on the long-range toy.
fn learn_long_range(kind: SsmKind, seq: usize, steps: usize) -> f32 {
    let cfg = SsmConfig {
        pool: PoolKind::Last,
        ..config(kind)
    };
    let mut store = ParamStore::new(Cpu::default(), 0);
    let model = SsmModel::build(cfg, &mut store).unwrap();
    let mut optimizer = Optimizer::new(OptimizerConfig::adamw(1e-2), &store).unwrap();
    let batch = 16;
    let lengths = vec![seq; batch];
    for step in 0..steps {
        let (ids, labels) = long_range_batch(batch, seq, step);
        let inputs = Inputs::tokens(&ids, &lengths);
        let logits = model
            .logits::<Cpu, OwnedTape<f32, Cpu>>(&store, &inputs, true)
            .unwrap();
        let loss = Cpu::cross_entropy(logits, &labels, &vec![1.0; batch]).unwrap();
        optimise(loss, &mut store, &mut optimizer, 1.0, Some(1.0)).unwrap();
    }
    let (mut correct, mut total) = (0, 0);
    for seed in 0..4 {
        let (ids, labels) = long_range_batch(batch, seq, 10_000 + seed);
        let inputs = Inputs::tokens(&ids, &lengths);
        let logits = model
            .logits::<Cpu, NoneTape>(&store, &inputs, false)
            .unwrap()
            .as_vec();
        for (b, &label) in labels.iter().enumerate() {
            let row = &logits[b * 2..b * 2 + 2];
            correct += usize::from((row[1] > row[0]) == (label == 1));
            total += 1;
        }
    }
    correct as f32 / total as f32
}

#[test]
#[ignore = "trains three models on 1,024-long sequences: ~15 s with --release, minutes in debug"]
fn s4d_lru_and_s5_learn_a_long_range_dependency() {
    // The ring is set for the length, as the LRU paper does per task: |λ| ≥ 0.99 keeps
    // λ^1000 ≥ 4·10⁻⁵ for every state.
    let long_lru = match lru(false) {
        SsmKind::Lru(c) => SsmKind::Lru(LruConfig { r_min: 0.99, ..c }),
        other => other,
    };
    for kind in [s4d(false), long_lru, s5(false)] {
        let accuracy = learn_long_range(kind.clone(), 1024, 100);
        assert!(accuracy >= 0.8, "{kind:?}: accuracy {accuracy}");
    }
}

#[test]
fn path_x_length_trains_at_batch_one() {
    // 16,384 positions: an L×L buffer would be 1 GiB per channel; the FFT convolution and the
    // scan keep memory linear in L.
    let seq = 16_384;
    for kind in [
        s4d(true),
        lru(true),
        s5(true),
        mega(true, AttentionFunction::Softmax, Some(1024)),
        mega(false, AttentionFunction::Laplace, Some(1024)),
    ] {
        let cfg = SsmConfig {
            d_model: 8,
            layers: 1,
            ..config(kind)
        };
        let mut store = ParamStore::new(Cpu::default(), 0);
        let model = SsmModel::build(cfg, &mut store).unwrap();
        let ids: Vec<usize> = (0..seq).map(|i| (i * 5 + i / 7) % VOCAB).collect();
        let lengths = [seq];
        let inputs = Inputs::tokens(&ids, &lengths);
        let logits = model
            .logits::<Cpu, OwnedTape<f32, Cpu>>(&store, &inputs, true)
            .unwrap();
        let loss = Cpu::cross_entropy(logits, &[1], &[1.0]).unwrap();
        let mut optimizer = Optimizer::new(OptimizerConfig::adamw(1e-3), &store).unwrap();
        let report = optimise(loss, &mut store, &mut optimizer, 1.0, None).unwrap();
        assert!(
            report.loss.is_finite() && report.grad_norm > 0.0,
            "{report:?}"
        );
    }
}
