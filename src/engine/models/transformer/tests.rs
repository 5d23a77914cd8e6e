use dfdx::prelude::*;

use super::*;
use super::{Transformer, TransformerConfig};
use crate::engine::layers::activation::Activation;
use crate::engine::layers::encoder::InputData;
use crate::engine::layers::norm::NormKind;
use crate::engine::models::SequenceClassifier;
use crate::engine::optim::{Optimizer, OptimizerConfig};
use crate::engine::step::optimise;

fn config() -> TransformerConfig {
    TransformerConfig {
        input: InputKind::Tokens { vocab: 12 },
        max_len: 16,
        d_model: 16,
        layers: 2,
        heads: 2,
        ffn: 32,
        activation: Activation::Gelu,
        dropout: 0.0,
        norm: NormPlacement::Pre,
        norm_kind: NormKind::Layer,
        position: PositionKind::Sinusoidal,
        attention: AttentionKind::Full,
        pool: PoolKind::Mean,
        n_classes: 3,
        two_tower: false,
    }
}

fn tokens(batch: usize, seq: usize, seed: usize) -> Vec<usize> {
    (0..batch * seq)
        .map(|i| (i * 7 + seed * 3 + i / 5) % 12)
        .collect()
}

#[test]
fn parameter_count_matches_the_configuration() {
    let variants = [
        config(),
        TransformerConfig {
            position: PositionKind::Learned,
            norm: NormPlacement::Post,
            ..config()
        },
        TransformerConfig {
            input: InputKind::Continuous { channels: 2 },
            two_tower: true,
            ..config()
        },
        TransformerConfig {
            norm_kind: NormKind::Batch,
            norm: NormPlacement::Post,
            ..config()
        },
        TransformerConfig {
            position: PositionKind::Rotary,
            attention: AttentionKind::Causal,
            ..config()
        },
        TransformerConfig {
            position: PositionKind::SinusoidalRotary,
            ..config()
        },
    ];
    for cfg in variants {
        let mut store = ParamStore::new(Cpu::default(), 0);
        let model = Transformer::build(cfg.clone(), &mut store).unwrap();
        assert_eq!(
            model.parameter_count(&store),
            cfg.parameter_count(),
            "{cfg:?}"
        );
        assert_eq!(store.parameter_count(), cfg.parameter_count());
    }
    // 2 layers × (4·(16·16 + 16) + (16·32 + 32) + (32·16 + 16) + 2·2·16) + 12·16 + 2·16 + head.
    let head = (16 * 16 + 16) + (16 * 3 + 3);
    assert_eq!(
        config().parameter_count(),
        2 * (4 * 272 + 544 + 528 + 64) + 192 + 32 + head
    );
}

#[test]
fn invalid_configurations_are_rejected() {
    let mut store = ParamStore::new(Cpu::default(), 0);
    let bad = [
        TransformerConfig {
            heads: 3,
            ..config()
        },
        TransformerConfig {
            position: PositionKind::Rotary,
            d_model: 6,
            heads: 2,
            ..config()
        },
        TransformerConfig {
            attention: AttentionKind::Local {
                window: 0,
                causal: false,
            },
            ..config()
        },
    ];
    for cfg in bad {
        assert!(matches!(
            Transformer::build(cfg, &mut store),
            Err(EngineError::InvalidConfig(_))
        ));
    }
}

/// Every parameter receives a non-zero gradient: none is lost to an op applied before the
/// tape (the dfdx `retaped` trap), for every position kind and both norm placements.
#[test]
fn every_parameter_gets_a_gradient() {
    for (position, norm, norm_kind) in [
        (PositionKind::Learned, NormPlacement::Pre, NormKind::Layer),
        (PositionKind::Rotary, NormPlacement::Post, NormKind::Layer),
        (
            PositionKind::SinusoidalRotary,
            NormPlacement::Pre,
            NormKind::Layer,
        ),
        (
            PositionKind::Sinusoidal,
            NormPlacement::Pre,
            NormKind::Layer,
        ),
        (
            PositionKind::Sinusoidal,
            NormPlacement::Post,
            NormKind::Batch,
        ),
    ] {
        let cfg = TransformerConfig {
            position,
            norm,
            norm_kind,
            pool: PoolKind::Max,
            ..config()
        };
        let mut store = ParamStore::new(Cpu::default(), 1);
        let model = Transformer::build(cfg, &mut store).unwrap();
        let ids = tokens(2, 8, 0);
        let inputs = Inputs::tokens(&ids, &[8, 5]);
        let logits = model
            .logits::<Cpu, OwnedTape<f32, Cpu>>(&store, &inputs, true)
            .unwrap();
        let loss = Cpu::cross_entropy(logits, &[0, 2], &[1.0, 1.0]).unwrap();
        let mut grads = loss.backward();
        let param_grads = store.gradients(&mut grads).unwrap();
        for ((_, p), g) in store.iter().zip(param_grads.to_host()) {
            let g = g
                .as_ref()
                .unwrap_or_else(|| panic!("{} has no gradient", p.name));
            assert!(
                g.iter().any(|&x| x != 0.0),
                "{} has a zero gradient ({position:?}, {norm:?})",
                p.name
            );
        }
    }
}

/// Changing the padding of an example changes nothing, for every attention pattern and pool.
#[test]
fn padding_does_not_leak() {
    let patterns = [
        (AttentionKind::Full, PoolKind::Mean),
        (AttentionKind::Causal, PoolKind::Last),
        (
            AttentionKind::Local {
                window: 4,
                causal: false,
            },
            PoolKind::Max,
        ),
    ];
    for (attention, pool) in patterns {
        let cfg = TransformerConfig {
            attention,
            pool,
            ..config()
        };
        let mut store = ParamStore::new(Cpu::default(), 2);
        let model = Transformer::build(cfg, &mut store).unwrap();
        let mut ids = tokens(1, 12, 1);
        let run = |ids: &[usize]| {
            let inputs = Inputs::tokens(ids, &[7]);
            model
                .logits::<Cpu, NoneTape>(&store, &inputs, false)
                .unwrap()
                .as_vec()
        };
        let before = run(&ids);
        ids[7..].iter_mut().for_each(|t| *t = (*t + 5) % 12);
        let after = run(&ids);
        for (a, b) in before.iter().zip(&after) {
            assert!(
                (a - b).abs() < 1e-5,
                "{attention:?} {pool:?}: {before:?} vs {after:?}"
            );
        }
    }
}

#[test]
fn dropout_is_active_only_in_training() {
    let cfg = TransformerConfig {
        dropout: 0.5,
        ..config()
    };
    let mut store = ParamStore::new(Cpu::default(), 3);
    let model = Transformer::build(cfg, &mut store).unwrap();
    let ids = tokens(2, 8, 2);
    let inputs = Inputs::tokens(&ids, &[8, 8]);
    let run = |train| {
        model
            .logits::<Cpu, NoneTape>(&store, &inputs, train)
            .unwrap()
            .as_vec()
    };
    assert_eq!(run(false), run(false));
    assert_ne!(run(true), run(true));
}

/// A few AdamW steps fit a tiny task: the class is the first token mod 3.
#[test]
fn training_reduces_the_loss() {
    let mut store = ParamStore::new(Cpu::default(), 4);
    let model = Transformer::build(config(), &mut store).unwrap();
    let mut optimizer = Optimizer::new(OptimizerConfig::adamw(3e-3), &store).unwrap();
    let ids = tokens(8, 6, 3);
    let targets: Vec<usize> = ids.chunks(6).map(|row| row[0] % 3).collect();
    let lengths = [6usize; 8];
    let inputs = Inputs::tokens(&ids, &lengths);
    let mut losses = Vec::new();
    for _ in 0..40 {
        let logits = model
            .logits::<Cpu, OwnedTape<f32, Cpu>>(&store, &inputs, true)
            .unwrap();
        let loss = Cpu::cross_entropy(logits, &targets, &[1.0; 8]).unwrap();
        losses.push(
            optimise(loss, &mut store, &mut optimizer, 1.0, Some(1.0))
                .unwrap()
                .loss,
        );
    }
    assert!(losses[39] < 0.5 * losses[0], "{losses:?}");
}

#[test]
fn two_towers_classify_pairs() {
    let cfg = TransformerConfig {
        two_tower: true,
        ..config()
    };
    let mut store = ParamStore::new(Cpu::default(), 5);
    let model = Transformer::build(cfg, &mut store).unwrap();
    let (a, b) = (tokens(2, 8, 1), tokens(2, 8, 2));
    let first = Inputs::tokens(&a, &[8, 3]);
    let second = Inputs::tokens(&b, &[5, 8]);
    let logits = model
        .pair_logits::<Cpu, NoneTape>(&store, &first, &second, false)
        .unwrap();
    assert_eq!(*logits.shape(), (2, 3));
    let swapped = model
        .pair_logits::<Cpu, NoneTape>(&store, &second, &first, false)
        .unwrap();
    assert_ne!(
        logits.as_vec(),
        swapped.as_vec(),
        "u − v makes the features order-sensitive"
    );
    assert!(model
        .logits::<Cpu, NoneTape>(&store, &first, false)
        .is_err());
}

#[test]
fn continuous_inputs_are_encoded_linearly() {
    let cfg = TransformerConfig {
        input: InputKind::Continuous { channels: 1 },
        ..config()
    };
    let mut store = ParamStore::new(Cpu::default(), 6);
    let model = Transformer::build(cfg, &mut store).unwrap();
    let values: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
    let inputs = Inputs {
        batch: 2,
        seq: 8,
        lengths: &[8, 8],
        data: InputData::Continuous(&values),
    };
    let logits = model
        .logits::<Cpu, NoneTape>(&store, &inputs, false)
        .unwrap();
    assert_eq!(*logits.shape(), (2, 3));
    let tokens_instead = Inputs {
        data: InputData::Tokens(&[0; 16]),
        ..inputs
    };
    assert!(model
        .logits::<Cpu, NoneTape>(&store, &tokens_instead, false)
        .is_err());
}

/// Masked self-pretraining: the loss counts masked positions only, and training lowers it.
#[test]
fn masked_pretraining_learns_and_ignores_unmasked_positions() {
    use crate::engine::layers::heads::PredictionHead;
    use crate::engine::layers::Scope;
    const MASK: usize = 11;
    let mut store = ParamStore::new(Cpu::default(), 7);
    let model = Transformer::build(config(), &mut store).unwrap();
    let head = PredictionHead::build(Scope::root(&mut store).sub("pretrain_head"), 16, 12).unwrap();
    assert!(store.find("pretrain_head.out.weight").is_some());
    let (batch, seq) = (4, 8);
    // Sequences of a repeated token, the second half of each example masked.
    let original: Vec<usize> = (0..batch * seq).map(|i| (i / seq) * 2 + 1).collect();
    let masked: Vec<usize> = original
        .iter()
        .enumerate()
        .map(|(i, &t)| if i % seq >= 4 { MASK } else { t })
        .collect();
    let weights: Vec<f32> = (0..batch * seq)
        .map(|i| if i % seq >= 4 { 1.0 } else { 0.0 })
        .collect();
    let lengths = [seq; 4];
    let inputs = Inputs::tokens(&masked, &lengths);
    let loss_with = |store: &ParamStore<Cpu>, targets: &[usize]| {
        let outputs = model
            .position_outputs::<Cpu, NoneTape>(store, &head, &inputs, false)
            .unwrap();
        Cpu::cross_entropy(outputs, targets, &weights)
            .unwrap()
            .as_vec()[0]
    };
    let mut shuffled = original.clone();
    for (i, t) in shuffled.iter_mut().enumerate() {
        if i % seq < 4 {
            *t = (*t + 3) % 12;
        }
    }
    assert_eq!(loss_with(&store, &original), loss_with(&store, &shuffled));
    let mut optimizer = Optimizer::new(OptimizerConfig::adamw(3e-3), &store).unwrap();
    let first = loss_with(&store, &original);
    for _ in 0..30 {
        let outputs = model
            .position_outputs::<Cpu, OwnedTape<f32, Cpu>>(&store, &head, &inputs, true)
            .unwrap();
        let loss = Cpu::cross_entropy(outputs, &original, &weights).unwrap();
        optimise(loss, &mut store, &mut optimizer, 1.0, Some(1.0)).unwrap();
    }
    assert!(loss_with(&store, &original) < 0.5 * first);
}

/// A checkpoint restores the model's function exactly; fine-tuning loads it without the
/// pretraining head.
#[test]
fn checkpoints_restore_the_model() {
    use crate::engine::checkpoint::{load, save, LoadFilter};
    use crate::engine::layers::heads::PredictionHead;
    use crate::engine::layers::Scope;
    let mut store = ParamStore::new(Cpu::default(), 8);
    let model = Transformer::build(config(), &mut store).unwrap();
    PredictionHead::build(Scope::root(&mut store).sub("pretrain_head"), 16, 12).unwrap();
    let ids = tokens(2, 8, 4);
    let inputs = Inputs::tokens(&ids, &[8, 6]);
    let before = model
        .logits::<Cpu, NoneTape>(&store, &inputs, false)
        .unwrap()
        .as_vec();
    let dir = std::env::temp_dir().join(format!("lra-engine-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pretrained.safetensors");
    save(&path, &store, None).unwrap();

    let mut fresh = ParamStore::new(Cpu::default(), 9);
    let fresh_model = Transformer::build(config(), &mut fresh).unwrap();
    assert_ne!(
        fresh_model
            .logits::<Cpu, NoneTape>(&fresh, &inputs, false)
            .unwrap()
            .as_vec(),
        before
    );
    load(&path, &mut fresh, None, LoadFilter::All).unwrap();
    assert_eq!(
        fresh_model
            .logits::<Cpu, NoneTape>(&fresh, &inputs, false)
            .unwrap()
            .as_vec(),
        before
    );

    // A fine-tuning store has no pretraining head and a fresh classifier head.
    let mut finetune = ParamStore::new(Cpu::default(), 10);
    Transformer::build(config(), &mut finetune).unwrap();
    let head_weight = finetune.find("head.out.weight").unwrap();
    let fresh_head = finetune.values(head_weight);
    load(&path, &mut finetune, None, LoadFilter::Except(&["head."])).unwrap();
    assert_eq!(finetune.values(head_weight), fresh_head);
    let first_layer = finetune.find("layers.0.attn.q.weight").unwrap();
    assert_eq!(
        finetune.values(first_layer),
        store.values(store.find("layers.0.attn.q.weight").unwrap())
    );
}

/// The whole model on the fused CPU kernels agrees with the composed ops (the CUDA code path):
/// logits and every parameter's gradient, with rotary positions, causal attention, padding,
/// post-norm and max pooling.
#[test]
fn fused_and_composed_models_agree() {
    use crate::engine::ops::with_composed_ops;
    let cfg = TransformerConfig {
        position: PositionKind::Rotary,
        attention: AttentionKind::Causal,
        norm: NormPlacement::Post,
        pool: PoolKind::Max,
        ..config()
    };
    let mut store = ParamStore::new(Cpu::default(), 13);
    let model = Transformer::build(cfg, &mut store).unwrap();
    let ids = tokens(3, 10, 5);
    let inputs = Inputs::tokens(&ids, &[10, 4, 7]);
    let run = || {
        let logits = model
            .logits::<Cpu, OwnedTape<f32, Cpu>>(&store, &inputs, true)
            .unwrap();
        let values = logits.as_vec();
        let loss = Cpu::cross_entropy(logits, &[0, 1, 2], &[1.0, 0.5, 1.0]).unwrap();
        let mut grads = loss.backward();
        (values, store.gradients(&mut grads).unwrap())
    };
    let (fused_logits, fused_grads) = run();
    let (composed_logits, composed_grads) = with_composed_ops(run);
    crate::engine::ops::gradcheck::assert_close(&fused_logits, &composed_logits, 1e-4, "logits");
    for ((_, p), (f, c)) in store
        .iter()
        .zip(fused_grads.to_host().iter().zip(&composed_grads.to_host()))
    {
        crate::engine::ops::gradcheck::assert_close(
            f.as_ref().unwrap(),
            c.as_ref().unwrap(),
            1e-3,
            &p.name,
        );
    }
}

/// Trains a one-layer Transformer with `position` to output, at every position, the token just
/// left of it (random tokens, fresh each step), and returns the accuracy on fresh sequences.
/// Only a model that knows relative order can do it: without positions attention is
/// permutation-invariant and stays near chance.
fn left_neighbour_accuracy(position: PositionKind, steps: usize) -> f64 {
    use crate::engine::layers::heads::PredictionHead;
    use crate::engine::layers::Scope;
    use rand::{Rng, SeedableRng};
    const VOCAB: usize = 10;
    let (batch, seq) = (16, 16);
    let cfg = TransformerConfig {
        input: InputKind::Tokens { vocab: VOCAB },
        max_len: seq,
        d_model: 32,
        layers: 1,
        heads: 2,
        ffn: 64,
        position,
        ..config()
    };
    let mut store = ParamStore::new(Cpu::default(), 3);
    let model = Transformer::build(cfg, &mut store).unwrap();
    let head =
        PredictionHead::build(Scope::root(&mut store).sub("pretrain_head"), 32, VOCAB).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut draw = || -> (Vec<usize>, Vec<usize>) {
        let ids: Vec<usize> = (0..batch * seq).map(|_| rng.gen_range(0..VOCAB)).collect();
        let targets = (0..batch * seq)
            .map(|i| if i % seq == 0 { 0 } else { ids[i - 1] })
            .collect();
        (ids, targets)
    };
    // The first position has no left neighbour.
    let weights: Vec<f32> = (0..batch * seq)
        .map(|i| if i % seq == 0 { 0.0 } else { 1.0 })
        .collect();
    let lengths = [seq; 16];
    let mut optimizer = Optimizer::new(OptimizerConfig::adamw(3e-3), &store).unwrap();
    for _ in 0..steps {
        let (ids, targets) = draw();
        let inputs = Inputs::tokens(&ids, &lengths);
        let outputs = model
            .position_outputs::<Cpu, OwnedTape<f32, Cpu>>(&store, &head, &inputs, true)
            .unwrap();
        let loss = Cpu::cross_entropy(outputs, &targets, &weights).unwrap();
        optimise(loss, &mut store, &mut optimizer, 1.0, Some(1.0)).unwrap();
    }
    let (ids, targets) = draw();
    let inputs = Inputs::tokens(&ids, &lengths);
    let outputs = model
        .position_outputs::<Cpu, NoneTape>(&store, &head, &inputs, false)
        .unwrap()
        .as_vec();
    let predicted = crate::train::eval::argmax_rows(&outputs, VOCAB);
    let (right, counted) = (0..batch * seq)
        .filter(|i| i % seq != 0)
        .fold((0, 0), |(r, n), i| {
            (r + (predicted[i] == targets[i]) as usize, n + 1)
        });
    right as f64 / counted as f64
}

/// Rotary positions (the SPT paper's Transformer) learn a purely relative, local rule within
/// a few hundred steps, as sinusoidal ones do; without positions the model cannot. (The
/// question of why a *pretrained* rotary Transformer fine-tunes worse than a sinusoidal one
/// on the quickstart's Pathfinder: this rules out a rotary implementation that cannot express
/// or learn relative position.)
#[test]
fn rotary_positions_learn_the_left_neighbour() {
    let rotary = left_neighbour_accuracy(PositionKind::Rotary, 200);
    let sinusoidal = left_neighbour_accuracy(PositionKind::Sinusoidal, 200);
    let none = left_neighbour_accuracy(PositionKind::None, 200);
    assert!(rotary > 0.9, "rotary {rotary}");
    assert!(sinusoidal > 0.9, "sinusoidal {sinusoidal}");
    // Without order the best guess is the most frequent other token of the sequence (≈ 0.27
    // for 16 draws from 10 tokens).
    assert!(none < 0.5, "no positions {none}");
}

/// `sinusoidal_rotary` is the SPT paper's rotary Transformer: the sinusoidal table is added to
/// the encoded input (its model's `position` encoder) and every attention layer rotates its
/// queries and keys per head (its `rotary: true`). `rotary` alone adds nothing; `sinusoidal`
/// alone rotates nothing.
#[test]
fn sinusoidal_rotary_adds_the_table_and_rotates_queries_and_keys() {
    let build = |position| {
        let mut store = ParamStore::new(Cpu::default(), 0);
        let model = Transformer::build(
            TransformerConfig {
                position,
                ..config()
            },
            &mut store,
        )
        .unwrap();
        let adds = matches!(model.positions, AddedPositions::Sinusoidal { .. });
        let rotates = model.blocks.iter().all(|b| match &b.mixer.layer {
            Mixer::Attention(a) => a.rotary.is_some(),
            _ => false,
        });
        (adds, rotates)
    };
    assert_eq!(build(PositionKind::SinusoidalRotary), (true, true));
    assert_eq!(build(PositionKind::Rotary), (false, true));
    assert_eq!(build(PositionKind::Sinusoidal), (true, false));
    // Same weights (same seed): the three encodings give three different representations.
    let encode = |position| {
        let mut store = ParamStore::new(Cpu::default(), 0);
        let model = Transformer::build(
            TransformerConfig {
                position,
                ..config()
            },
            &mut store,
        )
        .unwrap();
        let ids = tokens(2, 8, 1);
        let lengths = [8, 8];
        model
            .encode::<Cpu, NoneTape>(&store, &Inputs::tokens(&ids, &lengths), false)
            .unwrap()
            .as_vec()
    };
    let (both, rotary, sinusoidal) = (
        encode(PositionKind::SinusoidalRotary),
        encode(PositionKind::Rotary),
        encode(PositionKind::Sinusoidal),
    );
    let differ = |a: &[f32], b: &[f32]| a.iter().zip(b).any(|(x, y)| (x - y).abs() > 1e-4);
    assert!(differ(&both, &rotary) && differ(&both, &sinusoidal));
}
