//! What a run will cost, from the [`Spec`](crate::spec) alone: parameters, FLOPs per training
//! step and peak training memory. `check` prints these before anything runs, and the memory
//! rule compares the peak with the machine. The parameter count is the engine's own, from the
//! model configuration `lra run` builds ([`model_config`]); the FLOPs and memory formulas, and
//! what each term counts, are in `docs/ESTIMATES.md`.

use serde::Serialize;

use crate::engine::layers::linear::Linear;
use crate::spec::*;
use crate::train::compile::{model_config, DataShape, Role};
use crate::train::objective::Corruption;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Cost {
    /// Trainable parameters of the fine-tuning model (encoder, layers, final norm, head).
    pub params: u64,
    /// Parameters of the pretraining model (the prediction head replaces the classifier).
    pub pretrain_params: Option<u64>,
    /// Floating-point operations of one fine-tuning step (forward, backward, optimiser).
    pub flops_per_step: f64,
    /// Estimated peak memory of fine-tuning, in bytes.
    pub peak_bytes: u64,
    /// The part of `peak_bytes` that attention score matrices take (composed attention only).
    pub attention_bytes: u64,
}

const F32: u64 = 4;
/// Runtime, allocator and data-loader overhead on top of tensors.
const OVERHEAD_BYTES: u64 = 200 << 20;

/// The cost of `x` with a vocabulary of `vocab` tokens (`None`: the task's nominal size).
pub fn estimate(x: &ExperimentSpec, vocab: Option<usize>) -> Cost {
    let vocab = vocab.unwrap_or_else(|| x.task.nominal_vocab());
    let m = &x.model;
    let finetune = model_config(x, DataShape::with_vocab(x, Role::Finetune, vocab));
    let params = finetune.parameter_count() as u64;
    // Pretraining builds the same model on its own inputs and swaps the classifier for a
    // per-position prediction head.
    let pretrain_params = x.pretrain.as_ref().map(|p| {
        let role = Role::Pretrain(Corruption::from(p.objective));
        let config = model_config(x, DataShape::with_vocab(x, role, vocab));
        let head = Linear::parameter_count(m.d_model, prediction_classes(x, p, vocab));
        (config.parameter_count() - config.classifier_parameter_count() + head) as u64
    });
    let tokens = (x.finetune.batch * x.task.documents() * x.task.max_len) as f64;
    let head_flops = 2.0 * x.finetune.batch as f64 * finetune.classifier_parameter_count() as f64;
    let forward = tokens * m.layers as f64 * layer_flops_per_token(x) + head_flops;
    let flops_per_step = 3.0 * forward + 10.0 * params as f64;
    let (activations, attention_bytes) = activation_bytes(x);
    let peak_bytes = 4 * F32 * params + activations + OVERHEAD_BYTES;
    Cost {
        params,
        pretrain_params,
        flops_per_step,
        peak_bytes,
        attention_bytes,
    }
}

/// Classes of the per-position prediction head of pretraining.
fn prediction_classes(x: &ExperimentSpec, p: &PretrainSpec, vocab: usize) -> usize {
    match (p.loss, x.task.is_continuous()) {
        (Loss::L1, _) => 1,
        (Loss::Ce, true) => 256,
        (Loss::Ce, false) => vocab,
    }
}

/// Positions each query attends to.
fn attended(x: &ExperimentSpec, window: Option<usize>) -> f64 {
    let l = x.task.max_len as f64;
    let span = match window {
        // A block sees itself and its two neighbours.
        Some(w) => (3 * w).min(x.task.max_len) as f64,
        None => l,
    };
    if x.model.bidirectional {
        span
    } else {
        span / 2.0
    }
}

fn log2(n: usize) -> f64 {
    (n.max(2) as f64).log2()
}

/// Forward FLOPs of one block per input position.
fn layer_flops_per_token(x: &ExperimentSpec) -> f64 {
    let m = &x.model;
    let d = m.d_model as f64;
    let l = x.task.max_len;
    let dirs = if m.bidirectional { 2.0 } else { 1.0 };
    // An FFT convolution of length L costs three FFTs of length 2L, ≈ 5·n·log2 n each.
    let fft_conv = 3.0 * 5.0 * 2.0 * log2(2 * l);
    let glu = |glu: bool| if glu { 4.0 * d * d } else { 2.0 * d * d };
    let vandermonde = |modes: f64, c: f64| 8.0 * modes * c * dirs * d;
    match &m.layer {
        LayerSpec::Transformer(t) => {
            let window = match t.attention {
                Attention::Full => None,
                Attention::Local { window } => Some(window),
            };
            8.0 * d * d + 4.0 * d * t.ffn as f64 + 4.0 * attended(x, window) * d
        }
        LayerSpec::S4d(s) | LayerSpec::S4(s) => {
            let (c, modes) = (s.channels as f64, s.d_state as f64 / 2.0);
            // Kernel generation amortised over the sequence: S4D's Vandermonde product (≈ 8
            // FLOPs per complex multiply-add and mode; S4D and S4 keep one of each conjugate
            // pair); S4's Cauchy kernel over ≈ L/2 bins, two terms of ≈ 10 FLOPs per mode and
            // source (C̃B and, in NPLR mode, C̃P, P*B, P*P), plus the inverse FFT. Then the
            // convolution per channel and direction.
            let kernel = match (&m.layer, s.mode) {
                (LayerSpec::S4(_), mode) => {
                    let sources = match mode {
                        S4Mode::Nplr => 2.0 * c * dirs + 2.0,
                        S4Mode::Diag => c * dirs,
                    };
                    10.0 * sources * modes * d + c * dirs * d * 5.0 * log2(l)
                }
                _ => vandermonde(modes, c),
            };
            kernel + c * dirs * d * fft_conv + glu(s.glu)
        }
        LayerSpec::Dlr(s) => {
            // DLR's N states are all kept, each a Vandermonde mode.
            let c = DlrSpec::CHANNELS as f64;
            vandermonde(s.d_state as f64, c) + c * dirs * d * fft_conv + glu(s.glu)
        }
        LayerSpec::S5(s) => {
            let p = s.d_state as f64;
            8.0 * p * d * (1.0 + dirs) + 8.0 * p * log2(l) + glu(s.glu)
        }
        LayerSpec::Lru(s) => {
            let n = s.d_state as f64;
            dirs * (8.0 * n * d * 2.0 + 8.0 * n * log2(l)) + glu(s.glu)
        }
        LayerSpec::Mega(s) => {
            let (z, v, h) = (s.d_attin as f64, s.d_attout as f64, s.ema_dims as f64);
            let span = match s.chunk {
                Some(c) => c.min(l) as f64,
                None => attended(x, None),
            };
            let ema = dirs * h * d * (fft_conv + 2.0);
            let projections = 2.0 * d * (z + v + 2.0 * d) + 2.0 * d * v + 2.0 * v * d;
            let attention = 2.0 * span * (z + v);
            let ffn = 4.0 * d * s.ffn_expand as f64 * d;
            ema + projections + attention + ffn
        }
    }
}

/// Activation memory kept for the backward pass, and the part of it that is attention scores.
fn activation_bytes(x: &ExperimentSpec) -> (u64, u64) {
    let m = &x.model;
    let d = m.d_model as u64;
    let tokens = (x.finetune.batch * x.task.documents() * x.task.max_len) as u64;
    // Norm input/output, SSM output per channel and direction, activation, GLU halves, and
    // the FFT buffers of the convolution (2L complex per channel).
    let convolution_activations = |channels: usize| {
        let c = (channels * if m.bidirectional { 2 } else { 1 }) as u64;
        6 * d + 2 * c * d + 4 * c * d
    };
    let (per_token, attention) = match &m.layer {
        LayerSpec::Transformer(t) => {
            // Two norms' inputs and outputs, Q, K, V, the attention output and projection, the
            // residual, and the feed-forward's hidden pre- and post-activation.
            let stored = 10 * d + 2 * t.ffn as u64;
            let heads = t.heads as u64;
            let attention = match (x.device, t.attention) {
                // The fused CPU kernel keeps only each row's max and normaliser.
                (Device::Cpu, _) => 2 * heads,
                // Composed attention (CUDA) materialises scores and probabilities.
                (Device::Cuda(_), Attention::Full) => 2 * heads * x.task.max_len as u64,
                (Device::Cuda(_), Attention::Local { window }) => {
                    2 * heads * (3 * window).min(x.task.max_len) as u64
                }
            };
            (stored, attention)
        }
        LayerSpec::S4d(SsmSpec { channels, .. }) | LayerSpec::S4(SsmSpec { channels, .. }) => {
            (convolution_activations(*channels), 0)
        }
        LayerSpec::Dlr(_) => (convolution_activations(DlrSpec::CHANNELS), 0),
        LayerSpec::S5(s) => (6 * d + 2 * s.d_state as u64 * 2, 0),
        LayerSpec::Lru(s) => (6 * d + 2 * s.d_state as u64 * 2, 0),
        LayerSpec::Mega(s) => {
            let (z, v, h) = (s.d_attin as u64, s.d_attout as u64, s.ema_dims as u64);
            let span = s.chunk.unwrap_or(x.task.max_len).min(x.task.max_len) as u64;
            let attention = match x.device {
                // The fused kernel keeps each softmax row's log-sum-exp and regenerates the
                // dropout mask; the scores are recomputed in the backward pass.
                Device::Cpu => 1,
                // Composed attention (CUDA) materialises, per chunk: the scores, the biased
                // (and masked) scores, the weights and, with dropout, the dropped weights.
                Device::Cuda(_) => {
                    let dropped = u64::from(s.attention_dropout > 0.0);
                    (3 + dropped) * span
                }
            };
            (
                8 * d + 2 * h * d + 2 * z + 3 * v + 2 * s.ffn_expand as u64 * d,
                attention,
            )
        }
    };
    let layers = m.layers as u64;
    let attention_bytes = F32 * tokens * layers * attention;
    (
        F32 * tokens * layers * per_token + attention_bytes,
        attention_bytes,
    )
}

/// `12.3M`, `4.5G`: figures as `check` prints them.
pub fn human(x: f64) -> String {
    let (value, unit) = if x >= 1e21 {
        (x / 1e21, "Z")
    } else if x >= 1e18 {
        (x / 1e18, "E")
    } else if x >= 1e15 {
        (x / 1e15, "P")
    } else if x >= 1e12 {
        (x / 1e12, "T")
    } else if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        return format!("{x:.0}");
    };
    format!("{value:.1}{unit}")
}

/// Bytes as `1.2 GiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check_source, Context};

    fn spec(body: &str) -> ExperimentSpec {
        let context = Context {
            machine_memory: 1 << 40,
            gpu_memory: None,
            check_data: false,
            cuda_built: false,
            gpus: None,
        };
        let text = format!("experiment \"t\" {{ {body} }}");
        let checked = check_source(std::path::Path::new("t.lra"), text, &context);
        checked.spec.expect("clean spec").experiments.remove(0)
    }

    #[test]
    fn transformer_parameters_match_a_hand_count() {
        let x = spec("task listops { max_len 64 } model transformer { layers 2 d_model 8 heads 2 ffn 16 } finetune { epochs 1 batch 4 }");
        // Embedding 19·8 = 152. Per block: two norms 2·16, Q K V O 4·(64 + 8) = 288, FFN
        // (8·16 + 16) + (16·8 + 8) = 280: 600, twice = 1200. Final norm 16. Head
        // (8·8 + 8) + (8·10 + 10) = 162.
        assert_eq!(estimate(&x, None).params, 152 + 1200 + 16 + 162);
        // A learned position table adds max_len × d_model.
        let learned = spec("task listops { max_len 64 } model transformer { layers 2 d_model 8 heads 2 ffn 16 position learned } finetune { epochs 1 }");
        assert_eq!(estimate(&learned, None).params, 1530 + 64 * 8);
    }

    #[test]
    fn transformer_flops_match_a_hand_count() {
        let x = spec("task listops { max_len 64 } model transformer { layers 2 d_model 8 heads 2 ffn 16 } finetune { epochs 1 batch 4 }");
        let (d, f, l, b) = (8.0, 16.0, 64.0, 4.0);
        // Per position and block: projections 2·4d², feed-forward 2·2·d·f, attention 2·2·L·d.
        let forward = b * l * 2.0 * (8.0 * d * d + 4.0 * d * f + 4.0 * l * d) + 2.0 * b * 162.0;
        let cost = estimate(&x, None);
        assert_eq!(cost.flops_per_step, 3.0 * forward + 10.0 * 1530.0);
    }

    #[test]
    fn s4d_parameters_match_a_hand_count() {
        let x = spec(
            "task listops { } model s4d { layers 1 d_model 4 d_state 8 } finetune { epochs 1 }",
        );
        // Embedding 19·4 = 76. Block: norm 8; log Δ 4, A 2·4·4 = 32, C (2 directions) 2·4·4·2
        // = 64, D 4; GLU output (4·8 + 8) = 40: 152. Final norm 8. Head (4·4 + 4) + (4·10 +
        // 10) = 70.
        assert_eq!(estimate(&x, None).params, 76 + 152 + 8 + 70);
        let causal = spec("task listops { } model s4d { layers 1 d_model 4 d_state 8 bidirectional false } finetune { epochs 1 }");
        assert_eq!(estimate(&causal, None).params, 306 - 32);
    }

    #[test]
    fn pretraining_swaps_the_head_and_adds_the_mask_channel() {
        let x = spec("task image { encoding continuous } model s4d { layers 1 d_model 4 d_state 8 } pretrain masked { loss l1 epochs 1 } finetune { epochs 1 }");
        let cost = estimate(&x, None);
        // Fine-tuning encoder: Linear(1, 4) = 8; pretraining: Linear(2, 4) = 12. Heads: the
        // classifier (4·4 + 4) + (4·10 + 10) = 70 becomes a per-position Linear(4, 1) = 5.
        assert_eq!(cost.pretrain_params.unwrap(), cost.params - 70 + 5 + 4);
    }

    #[test]
    fn fused_attention_memory_is_linear_in_length_and_composed_is_quadratic() {
        let cpu = spec("task pathx { } model transformer { layers 1 d_model 64 heads 4 } finetune { epochs 1 batch 1 }");
        let cuda = spec("device cuda task pathx { } model transformer { layers 1 d_model 64 heads 4 } finetune { epochs 1 batch 1 }");
        assert_eq!(estimate(&cpu, None).attention_bytes, 4 * 16384 * 2 * 4);
        assert_eq!(
            estimate(&cuda, None).attention_bytes,
            4 * 16384 * 2 * 4 * 16384
        );
    }
}
