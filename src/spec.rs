//! The resolved, typed experiment: what `check` produces and everything downstream consumes.
//! A `Spec` that exists is valid; no later phase re-validates user input.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Every experiment of one checked file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    pub source: PathBuf,
    pub experiments: Vec<ExperimentSpec>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

crate::named_enum! {
    pub enum TaskKind {
        ListOps = "listops",
        Text = "text",
        Retrieval = "retrieval",
        Image = "image",
        Pathfinder = "pathfinder",
        PathX = "pathx",
    }
}

impl TaskKind {
    /// The task's name as the papers write it (a table's column title).
    pub fn title(self) -> &'static str {
        match self {
            TaskKind::ListOps => "ListOps",
            TaskKind::Text => "Text",
            TaskKind::Retrieval => "Retrieval",
            TaskKind::Image => "Image",
            TaskKind::Pathfinder => "Pathfinder",
            TaskKind::PathX => "Path-X",
        }
    }

    /// Number of classes (docs/METHOD.md, "The tasks and their release formats").
    pub fn n_classes(self) -> usize {
        match self {
            TaskKind::ListOps | TaskKind::Image => 10,
            TaskKind::Text | TaskKind::Retrieval | TaskKind::Pathfinder | TaskKind::PathX => 2,
        }
    }
}

crate::named_enum! {
    pub enum Tokenizer {
        /// One token per character, vocabulary of characters seen `min_freq` times in training.
        Char = "char",
        /// One token per UTF-8 byte (LRA's own Text code).
        Byte = "byte",
    }
}

crate::named_enum! {
    pub enum Encoding {
        /// Pixels as 256 tokens (LRA).
        Tokens = "tokens",
        /// Pixels as normalised real values with a linear encoder (S4).
        Continuous = "continuous",
    }
}

crate::named_enum! {
    /// How retrieval's classifier combines the two pooled documents u and v. LRA's
    /// reference also has a plain `[u, v]`; the engine builds only the NLI features, so the
    /// language offers only them.
    pub enum Interaction {
        /// `[u, v, u − v, u · v]`
        Nli = "nli",
    }
}

crate::named_enum! {
    /// Pathfinder's difficulty: the length of the contours in paddles.
    pub enum Difficulty {
        /// Contour length 6 (`curv_baseline`).
        Easy = "easy",
        /// Contour length 9 (`curv_contour_length_9`).
        Medium = "medium",
        /// Contour length 14 (`curv_contour_length_14`).
        Hard = "hard",
    }
}

impl Difficulty {
    pub(crate) fn contour_length(self) -> usize {
        match self {
            Difficulty::Easy => 6,
            Difficulty::Medium => 9,
            Difficulty::Hard => 14,
        }
    }

    /// The folder name the Pathfinder release uses for this difficulty.
    pub fn folder(self) -> &'static str {
        match self {
            Difficulty::Easy => "curv_baseline",
            Difficulty::Medium => "curv_contour_length_9",
            Difficulty::Hard => "curv_contour_length_14",
        }
    }

    /// The hardest difficulty a resolution's canvas has room for (LRA's settings at 32 to 256
    /// pixels fit every contour; lra's own 16-pixel canvas fits the six-paddle ones only);
    /// `None` for a resolution without settings.
    pub(crate) fn hardest_at(resolution: usize) -> Option<Difficulty> {
        match resolution {
            16 => Some(Difficulty::Easy),
            32 | 64 | 128 | 256 => Some(Difficulty::Hard),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

    /// Token vocabulary size, nominal where it depends on the data (docs/METHOD.md,
    /// "Tokenizers"): every vocabulary holds `<pad> <unk> <eos> <mask>`.
    pub(crate) fn nominal_vocab(&self) -> usize {
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

crate::named_enum! {
    pub enum ModelKind {
        Transformer = "transformer",
        S4 = "s4",
        S4d = "s4d",
        Dlr = "dlr",
        S5 = "s5",
        Lru = "lru",
        Mega = "mega",
    }
}

crate::named_enum! {
    /// Where the norm sits in a residual block.
    pub enum NormPlacement {
        /// x + f(norm(x)) (Xiong et al. 2020); the model adds a final norm.
        Pre = "pre",
        /// norm(x + f(x)) (Vaswani et al. 2017).
        Post = "post",
    }
}

crate::named_enum! {
    /// Which normalisation a model uses: layer norm, or batch norm (as S4 on ListOps).
    pub enum NormKind {
        Layer = "layer",
        Batch = "batch",
    }
}

crate::named_enum! {
    /// How a sequence of representations becomes one vector for the classifier.
    pub enum PoolKind {
        Mean = "mean",
        Max = "max",
        Last = "last",
        First = "first",
    }
}

crate::named_enum! {
    /// What follows a state-space layer: a GLU output projection, or nothing.
    pub(crate) enum Post {
        Glu = "glu",
        None = "none",
    }
}

crate::named_enum! {
    pub enum Activation {
        Gelu = "gelu",
        Relu = "relu",
        Silu = "silu",
        None = "none",
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub layers: usize,
    pub d_model: usize,
    pub dropout: f64,
    pub norm: NormPlacement,
    pub norm_kind: NormKind,
    pub pool: PoolKind,
    /// Whether position t may see inputs after t (transformer: `causal false`; state-space
    /// kinds: `bidirectional true`).
    pub bidirectional: bool,
    pub layer: LayerSpec,
}

/// The kind-specific part of a model: one sequence layer per kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LayerSpec {
    Transformer(TransformerSpec),
    S4(SsmSpec),
    S4d(SsmSpec),
    Dlr(DlrSpec),
    S5(S5Spec),
    Lru(LruSpec),
    Mega(MegaSpec),
}

crate::named_enum! {
    /// The kinds of an `attention` section.
    pub enum AttentionKind {
        Full = "full",
        Local = "local",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Attention {
    Full,
    /// Non-overlapping blocks of `window` that see themselves and their neighbours.
    Local {
        window: usize,
    },
}

crate::named_enum! {
    /// The Transformer's position encoding.
    pub enum PositionKind {
        None = "none",
        Learned = "learned",
        Sinusoidal = "sinusoidal",
        /// Rotary embeddings of queries and keys only (RoFormer: no absolute positions).
        Rotary = "rotary",
        /// Sinusoidal positions added to the input *and* rotary queries and keys: the SPT
        /// paper's rotary Transformer, whose model adds sinusoidal positions whatever its
        /// attention does (docs/ROTARY.md).
        SinusoidalRotary = "sinusoidal_rotary",
    }
}

impl PositionKind {
    /// Whether attention rotates queries and keys by their positions.
    pub(crate) fn rotates(self) -> bool {
        matches!(self, PositionKind::Rotary | PositionKind::SinusoidalRotary)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TransformerSpec {
    pub heads: usize,
    pub ffn: usize,
    pub activation: Activation,
    pub position: PositionKind,
    pub attention: Attention,
}

crate::named_enum! {
    /// The structure of S4's state matrix A.
    pub enum S4Mode {
        /// A = Λ − P P*.
        Nplr = "nplr",
        /// A = Λ.
        Diag = "diag",
    }
}

crate::named_enum! {
    /// The initial eigenvalues (and, for S4, B and P): HiPPO-LegS (S4; diagonalised for
    /// S4D-LegS), or S4D-Lin and S4D-Inv (Gu, Gupta, Goel & Ré 2022, §4.1).
    pub enum SsmInit {
        Legs = "legs",
        Lin = "lin",
        Inv = "inv",
    }
}

/// The learning-rate group of state-space parameters (A, B, dt), as in the S4 paper.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct SsmGroup {
    pub lr: f64,
    pub weight_decay: f64,
}

/// S4 and S4D: a diagonal (S4: plus low-rank) state matrix from a chosen initialisation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SsmSpec {
    pub d_state: usize,
    /// S4 chooses; S4D is diagonal by definition.
    pub mode: S4Mode,
    pub init: SsmInit,
    pub dt_min: f64,
    pub dt_max: f64,
    pub channels: usize,
    pub activation: Activation,
    pub glu: bool,
    pub ssm: SsmGroup,
}

/// DLR (Gupta, Mehta & Berant 2022): a diagonal linear RNN with its eigenvalues drawn on a
/// ring, so there is no initialisation or mode to choose, and one output channel per feature.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DlrSpec {
    pub d_state: usize,
    pub dt_min: f64,
    pub dt_max: f64,
    pub activation: Activation,
    pub glu: bool,
    pub ssm: SsmGroup,
}

impl DlrSpec {
    /// Output channels per feature: the language offers no `channels` field for DLR.
    pub(crate) const CHANNELS: usize = 1;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LruSpec {
    pub d_state: usize,
    pub r_min: f64,
    pub r_max: f64,
    pub max_phase: f64,
    pub activation: Activation,
    pub glu: bool,
    pub ssm: SsmGroup,
}

crate::named_enum! {
    /// MEGA's attention function f of f(scores)·V.
    pub enum AttentionFunction {
        Softmax = "softmax",
        Laplace = "laplace",
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MegaSpec {
    pub d_attin: usize,
    pub d_attout: usize,
    pub ema_dims: usize,
    /// Attention chunk length; `None` attends over the whole sequence.
    pub chunk: Option<usize>,
    pub attention_activation: AttentionFunction,
    pub ffn_expand: usize,
    /// Dropout rate of the attention weights, in training.
    pub attention_dropout: f64,
    pub ssm: SsmGroup,
}

crate::named_enum! {
    pub enum Loss {
        Ce = "ce",
        L1 = "l1",
    }
}

crate::named_enum! {
    /// The kinds of a `pretrain` section.
    pub(crate) enum ObjectiveKind {
        Masked = "masked",
        Causal = "causal",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Objective {
    /// Bernoulli masking at `rate`; spans of `span` positions when given.
    Masked { rate: f64, span: Option<usize> },
    /// Next-token prediction.
    Causal,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PretrainSpec {
    pub objective: Objective,
    pub loss: Loss,
    pub phase: PhaseSpec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "unit", content = "count")]
pub enum Budget {
    Epochs(usize),
    Steps(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
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

crate::named_enum! {
    /// The kinds of an `optimizer` section.
    pub enum OptimizerKind {
        AdamW = "adamw",
        Adam = "adam",
    }
}

impl Optimizer {
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::AdamW { lr, .. } | Optimizer::Adam { lr, .. } => *lr,
        }
    }
}

crate::named_enum! {
    /// The learning-rate schedule after warm-up.
    pub enum ScheduleKind {
        Constant = "constant",
        Cosine = "cosine",
        Linear = "linear",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub warmup: Warmup,
    pub min_lr: f64,
}

crate::named_enum! {
    pub enum Split {
        Train = "train",
        Val = "val",
    }
}

crate::named_enum! {
    /// What an evaluation measures, as `select best SPLIT.METRIC` names it.
    pub enum Metric {
        /// Classification accuracy, or the share of exactly predicted tokens in pretraining.
        Accuracy = "accuracy",
        Loss = "loss",
        /// Mean absolute error of L1 pretraining.
        Mae = "mae",
        /// R² of L1 pretraining's predictions.
        R2 = "r2",
    }
}

impl Metric {
    /// Whether a larger value is better.
    pub(crate) fn higher_is_better(self) -> bool {
        match self {
            Metric::Accuracy | Metric::R2 => true,
            Metric::Loss | Metric::Mae => false,
        }
    }

    /// The metrics a phase reports: L1 pretraining reports MAE and R² instead of accuracy.
    pub fn reported(l1: bool) -> &'static [Metric] {
        if l1 {
            &[Metric::Loss, Metric::Mae, Metric::R2]
        } else {
            &[Metric::Accuracy, Metric::Loss]
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Select {
    /// The checkpoint with the best value of a metric (`val.accuracy`).
    Best {
        split: Split,
        metric: Metric,
    },
    Last,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
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
