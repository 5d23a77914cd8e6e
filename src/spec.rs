//! The resolved, typed experiment: what `check` produces and everything downstream consumes.
//! A `Spec` that exists is valid; no later phase re-validates user input.

use std::path::PathBuf;

use serde::Serialize;

/// Every experiment of one checked file.
#[derive(Clone, Debug, Serialize)]
pub struct Spec {
    pub source: PathBuf,
    pub experiments: Vec<ExperimentSpec>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExperimentSpec {
    pub name: String,
    pub seed: u64,
    pub device: Device,
    /// Worker threads; `None` uses every core.
    pub threads: Option<usize>,
    /// Runs folder.
    pub out: PathBuf,
    pub task: TaskSpec,
    pub model: ModelSpec,
    pub pretrain: Option<PretrainSpec>,
    pub finetune: PhaseSpec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "index")]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(0) => f.write_str("cuda"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    ListOps,
    Text,
    Retrieval,
    Image,
    Pathfinder,
    PathX,
}

impl TaskKind {
    pub const ALL: [TaskKind; 6] = [
        TaskKind::ListOps,
        TaskKind::Text,
        TaskKind::Retrieval,
        TaskKind::Image,
        TaskKind::Pathfinder,
        TaskKind::PathX,
    ];

    /// The name used in `.lra` files.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::ListOps => "listops",
            TaskKind::Text => "text",
            TaskKind::Retrieval => "retrieval",
            TaskKind::Image => "image",
            TaskKind::Pathfinder => "pathfinder",
            TaskKind::PathX => "pathx",
        }
    }

    pub fn from_name(name: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Number of classes (REFERENCE.md, "The tasks").
    pub fn n_classes(self) -> usize {
        match self {
            TaskKind::ListOps | TaskKind::Image => 10,
            _ => 2,
        }
    }

    /// Training examples in the LRA release, for cost figures given in epochs.
    pub fn release_train_size(self) -> usize {
        match self {
            TaskKind::ListOps => 96_000,
            TaskKind::Text => 25_000,
            TaskKind::Retrieval => 147_086,
            TaskKind::Image => 45_000,
            TaskKind::Pathfinder | TaskKind::PathX => 160_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokenizer {
    Char,
    Byte,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Tokens,
    Continuous,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interaction {
    /// `[u, v, u − v, u · v]`
    Nli,
    /// `[u, v]`
    Concat,
}

/// Pathfinder's contour length (easy 6, medium 9, hard 14): the data layer's own type.
pub use crate::data::Difficulty;

#[derive(Clone, Debug, Serialize)]
pub struct TaskSpec {
    pub kind: TaskKind,
    pub data: PathBuf,
    pub max_len: usize,
    pub n_classes: usize,
    pub train_fraction: Option<f64>,
    pub train_limit: Option<usize>,
    /// Text and retrieval.
    pub tokenizer: Option<Tokenizer>,
    pub min_freq: Option<usize>,
    /// Retrieval.
    pub interaction: Option<Interaction>,
    /// Image, pathfinder, pathx.
    pub encoding: Option<Encoding>,
    pub val_fraction: Option<f64>,
    pub resolution: Option<usize>,
    pub difficulty: Option<Difficulty>,
    /// How to make the data folder when it is missing (ListOps and Pathfinder).
    pub generate: Option<Generate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Generate {
    ListOps {
        train: usize,
        val: usize,
        test: usize,
        /// Exclusive bounds on the expression length.
        min_length: usize,
        max_length: usize,
        seed: u64,
    },
    Pathfinder {
        n: usize,
        seed: u64,
    },
}

impl TaskSpec {
    /// Whether inputs are continuous pixel values (a linear encoder) rather than token ids.
    pub fn is_continuous(&self) -> bool {
        self.encoding == Some(Encoding::Continuous)
    }

    /// Token vocabulary size, nominal where it depends on the data (REFERENCE.md,
    /// "Tokenization"): every vocabulary holds `<pad> <unk> <eos> <mask>`.
    pub fn nominal_vocab(&self) -> usize {
        match self.kind {
            TaskKind::ListOps => 19,
            TaskKind::Text | TaskKind::Retrieval if self.tokenizer == Some(Tokenizer::Byte) => 260,
            TaskKind::Text => 136,
            TaskKind::Retrieval => 98,
            TaskKind::Image | TaskKind::Pathfinder | TaskKind::PathX => 260,
        }
    }

    /// Sequences per example: retrieval pairs two documents.
    pub fn documents(&self) -> usize {
        if self.kind == TaskKind::Retrieval {
            2
        } else {
            1
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Transformer,
    S4,
    S4d,
    Dlr,
    S5,
    Lru,
    Mega,
}

impl ModelKind {
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Transformer,
        ModelKind::S4,
        ModelKind::S4d,
        ModelKind::Dlr,
        ModelKind::S5,
        ModelKind::Lru,
        ModelKind::Mega,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Transformer => "transformer",
            ModelKind::S4 => "s4",
            ModelKind::S4d => "s4d",
            ModelKind::Dlr => "dlr",
            ModelKind::S5 => "s5",
            ModelKind::Lru => "lru",
            ModelKind::Mega => "mega",
        }
    }

    pub fn from_name(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|m| m.name() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NormPlace {
    Pre,
    Post,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    Layer,
    Batch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    Mean,
    Max,
    Last,
    First,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Gelu,
    Relu,
    Silu,
    None,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub layers: usize,
    pub d_model: usize,
    pub dropout: f64,
    pub norm: NormPlace,
    pub norm_kind: NormKind,
    pub pool: Pool,
    /// Whether position t may see inputs after t (transformer: `causal false`; state-space
    /// kinds: `bidirectional true`).
    pub bidirectional: bool,
    pub layer: LayerSpec,
}

impl ModelSpec {
    pub fn is_causal(&self) -> bool {
        !self.bidirectional
    }
}

/// The kind-specific part of a model: one sequence layer per kind.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LayerSpec {
    Transformer(TransformerSpec),
    S4(SsmSpec),
    S4d(SsmSpec),
    Dlr(SsmSpec),
    S5(S5Spec),
    Lru(LruSpec),
    Mega(MegaSpec),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Attention {
    Full,
    /// Non-overlapping blocks of `window` that see themselves and their neighbours.
    Local {
        window: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    None,
    Learned,
    Sinusoidal,
    Rotary,
}

#[derive(Clone, Debug, Serialize)]
pub struct TransformerSpec {
    pub heads: usize,
    pub ffn: usize,
    pub activation: Activation,
    pub position: Position,
    pub attention: Attention,
}

impl TransformerSpec {
    pub fn head_dim(&self, d_model: usize) -> usize {
        d_model / self.heads
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SsmMode {
    Nplr,
    Diag,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SsmInit {
    Legs,
    Lin,
    Inv,
    Fourier,
}

/// The learning-rate group of state-space parameters (A, B, dt), as in the S4 paper.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SsmGroup {
    pub lr: f64,
    pub weight_decay: f64,
}

/// S4, S4D and DLR share one parametrisation of a diagonal (plus low-rank for S4) SSM.
#[derive(Clone, Debug, Serialize)]
pub struct SsmSpec {
    pub d_state: usize,
    pub mode: SsmMode,
    pub init: SsmInit,
    pub dt_min: f64,
    pub dt_max: f64,
    pub channels: usize,
    pub activation: Activation,
    pub glu: bool,
    pub ssm: SsmGroup,
}

#[derive(Clone, Debug, Serialize)]
pub struct S5Spec {
    pub d_state: usize,
    pub blocks: usize,
    pub conj_sym: bool,
    pub clip_eigs: bool,
    pub dt_min: f64,
    pub dt_max: f64,
    pub activation: Activation,
    pub glu: bool,
    pub ssm: SsmGroup,
}

#[derive(Clone, Debug, Serialize)]
pub struct LruSpec {
    pub d_state: usize,
    pub r_min: f64,
    pub r_max: f64,
    pub max_phase: f64,
    pub activation: Activation,
    pub glu: bool,
    pub ssm: SsmGroup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionActivation {
    Softmax,
    Laplace,
}

#[derive(Clone, Debug, Serialize)]
pub struct MegaSpec {
    pub d_attin: usize,
    pub d_attout: usize,
    pub ema_dims: usize,
    /// Attention chunk length; `None` attends over the whole sequence.
    pub chunk: Option<usize>,
    pub attention_activation: AttentionActivation,
    pub ffn_expand: usize,
    /// Dropout rate of the attention weights, in training.
    pub attention_dropout: f64,
    pub ssm: SsmGroup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    Ce,
    L1,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Objective {
    /// Bernoulli masking at `rate`; spans of `span` positions when given.
    Masked { rate: f64, span: Option<usize> },
    /// Next-token prediction.
    Causal,
}

#[derive(Clone, Debug, Serialize)]
pub struct PretrainSpec {
    pub objective: Objective,
    pub loss: Loss,
    pub phase: PhaseSpec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "unit", content = "count")]
pub enum Budget {
    Epochs(usize),
    Steps(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Optimizer {
    AdamW {
        lr: f64,
        weight_decay: f64,
        betas: (f64, f64),
        eps: f64,
    },
    Adam {
        lr: f64,
        betas: (f64, f64),
        eps: f64,
    },
}

impl Optimizer {
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::AdamW { lr, .. } | Optimizer::Adam { lr, .. } => *lr,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Constant,
    Cosine,
    Linear,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "unit", content = "value")]
pub enum Warmup {
    Steps(usize),
    /// A percentage of the phase's steps.
    Percent(f64),
}

impl Warmup {
    /// Warm-up steps for a phase of `total` steps.
    pub fn steps(self, total: usize) -> usize {
        match self {
            Warmup::Steps(n) => n,
            Warmup::Percent(p) => ((p / 100.0) * total as f64).round() as usize,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub warmup: Warmup,
    pub min_lr: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Select {
    /// The checkpoint with the best value of a metric (`val.accuracy`; lower is better for
    /// `loss` and `mae`).
    Best {
        split: Split,
        metric: String,
    },
    Last,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseSpec {
    pub budget: Budget,
    pub batch: usize,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub clip: Option<f64>,
    pub select: Select,
    pub patience: Option<usize>,
    /// Validate every this many steps; `None`: once per epoch.
    pub eval_every: Option<usize>,
}
