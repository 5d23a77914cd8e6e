//! What may be written where: every section, kind and field of the language
//! (docs/LANGUAGE.md), with types and ranges. The words of enumerated values and kinds come
//! from the spec's enums ([`crate::named_enum!`]), so the schema offers exactly what the
//! lowering builds. Defaults live in `defaults.rs`; cross-field rules in `rules/`.

use crate::spec::{
    Activation, AttentionFunction, AttentionKind, Encoding, Interaction, Loss, ModelKind, NormKind,
    NormPlacement, ObjectiveKind, OptimizerKind, PoolKind, PositionKind, Post, S4Mode,
    ScheduleKind, SsmInit, TaskKind, Tokenizer,
};

/// The type of a field's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ty {
    Int {
        min: i64,
        max: i64,
    },
    /// One of a few integers (`resolution 32 | 64 | 128 | 256`).
    IntOneOf(&'static [i64]),
    /// A number in [min, max], or with an open end where the model needs one (an LRU radius
    /// must stay below 1).
    Float {
        min: f64,
        max: f64,
        min_open: bool,
        max_open: bool,
    },
    Bool,
    Str,
    Enum(&'static [&'static str]),
    /// `(0.9, 0.98)`
    FloatPair,
    /// A step count or a percentage of the phase (`warmup 2_000`, `warmup 5%`).
    StepsOrPercent,
    /// `best val.accuracy` | `last`
    Select,
    /// `cpu` | `cuda` | `cuda:N`
    Device,
}

impl Ty {
    /// "an integer from 1 to 128", for messages.
    pub fn describe(&self) -> String {
        match self {
            Ty::Int { min, max } if *max == i64::MAX => format!("an integer ≥ {min}"),
            Ty::Int { min, max } => format!("an integer from {min} to {max}"),
            Ty::IntOneOf(options) => format!(
                "one of {}",
                options
                    .iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ty::Float { min, max, .. } if max.is_infinite() => format!("a number ≥ {min}"),
            Ty::Float {
                min,
                max,
                min_open,
                max_open,
            } => match (min_open, max_open) {
                (false, false) => format!("a number from {min} to {max}"),
                (true, false) => format!("a number above {min}, at most {max}"),
                (false, true) => format!("a number from {min} to below {max}"),
                (true, true) => format!("a number strictly between {min} and {max}"),
            },
            Ty::Bool => "`true` or `false`".into(),
            Ty::Str => "a string".into(),
            Ty::Enum(options) => format!("one of {}", ticked(options)),
            Ty::FloatPair => "a pair of numbers such as `(0.9, 0.98)`".into(),
            Ty::StepsOrPercent => "a step count or a percentage such as `5%`".into(),
            Ty::Select => "`best METRIC` (e.g. `best val.accuracy`) or `last`".into(),
            Ty::Device => "`cpu`, `cuda` or `cuda:N`".into(),
        }
    }
}

pub(crate) fn ticked(options: &[&str]) -> String {
    let ticked: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
    match ticked.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {}", rest.join(", "), last),
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: Ty,
    pub doc: &'static str,
}

/// One kind of a section (`transformer` of `model`), with the fields and nested sections only
/// it accepts.
#[derive(Debug)]
pub struct KindDef {
    pub name: &'static str,
    pub fields: &'static [FieldDef],
    pub sections: &'static [&'static SectionDef],
}

#[derive(Debug)]
pub struct SectionDef {
    pub name: &'static str,
    /// Empty for kind-less sections (`finetune`, `experiment`).
    pub kinds: &'static [KindDef],
    /// Fields every kind accepts.
    pub common: &'static [FieldDef],
    pub sections: &'static [&'static SectionDef],
    /// The kind when none is written (`attention` ⇒ `full`); `None` makes the kind required.
    pub default_kind: Option<&'static str>,
}

impl SectionDef {
    pub fn kind(&self, name: &str) -> Option<&'static KindDef> {
        self.kinds.iter().find(|k| k.name == name)
    }

    pub(crate) fn kind_names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.name).collect()
    }

    /// The field `name` for `kind` (common fields first).
    pub fn field(&self, kind: Option<&KindDef>, name: &str) -> Option<&'static FieldDef> {
        self.common
            .iter()
            .chain(kind.map_or(&[][..], |k| k.fields))
            .find(|f| f.name == name)
    }

    pub fn section(&self, kind: Option<&KindDef>, name: &str) -> Option<&'static SectionDef> {
        self.sections
            .iter()
            .chain(kind.map_or(&[][..], |k| k.sections))
            .find(|s| s.name == name)
            .copied()
    }

    /// Every field and section name valid for `kind`, for "did you mean".
    pub fn names(&self, kind: Option<&KindDef>) -> Vec<&'static str> {
        let fields = self
            .common
            .iter()
            .chain(kind.map_or(&[][..], |k| k.fields))
            .map(|f| f.name);
        let sections = self
            .sections
            .iter()
            .chain(kind.map_or(&[][..], |k| k.sections))
            .map(|s| s.name);
        fields.chain(sections).collect()
    }

    /// The kinds (other than `kind`) that accept a field or section called `name`.
    pub(crate) fn kinds_accepting(&self, name: &str) -> Vec<&'static str> {
        self.kinds
            .iter()
            .filter(|k| {
                k.fields.iter().any(|f| f.name == name) || k.sections.iter().any(|s| s.name == name)
            })
            .map(|k| k.name)
            .collect()
    }
}

const fn int(min: i64, max: i64) -> Ty {
    Ty::Int { min, max }
}
const POSITIVE: Ty = int(1, i64::MAX);
const fn float(min: f64, max: f64) -> Ty {
    Ty::Float {
        min,
        max,
        min_open: false,
        max_open: false,
    }
}
/// [min, max)
const fn float_below(min: f64, max: f64) -> Ty {
    Ty::Float {
        min,
        max,
        min_open: false,
        max_open: true,
    }
}
/// (min, max]
const fn float_above(min: f64, max: f64) -> Ty {
    Ty::Float {
        min,
        max,
        min_open: true,
        max_open: false,
    }
}
const fn f(name: &'static str, ty: Ty, doc: &'static str) -> FieldDef {
    FieldDef { name, ty, doc }
}

// ── experiment ────────────────────────────────────────────────────────────────────────────

pub static EXPERIMENT: SectionDef = SectionDef {
    name: "experiment",
    kinds: &[],
    common: &[
        f(
            "seed",
            int(0, u32::MAX as i64),
            "random seed of everything in the run",
        ),
        f("device", Ty::Device, "where to train: cpu, cuda or cuda:N"),
        f(
            "threads",
            int(1, 1024),
            "CPU worker threads (default: every core)",
        ),
        f("out", Ty::Str, "the runs folder"),
    ],
    sections: &[&TASK, &MODEL, &PRETRAIN, &FINETUNE],
    default_kind: None,
};

// ── task ──────────────────────────────────────────────────────────────────────────────────

const TOKENIZER: FieldDef = f(
    "tokenizer",
    Ty::Enum(Tokenizer::NAMES),
    "one token per character or per byte",
);
const MIN_FREQ: FieldDef = f(
    "min_freq",
    POSITIVE,
    "keep characters seen at least this often in training",
);
const ENCODING: FieldDef = f(
    "encoding",
    Ty::Enum(Encoding::NAMES),
    "pixels as 256 tokens or as normalised values",
);
const VAL_FRACTION: FieldDef = f(
    "val_fraction",
    float(0.0, 0.5),
    "validation carved from training",
);
const DIFFICULTY: FieldDef = f(
    "difficulty",
    Ty::Enum(&["easy", "medium", "hard"]),
    "contour length 6, 9 or 14",
);

/// `generate { … }`: how `lra run` makes a missing data folder (the `lra data gen` settings).
pub static GENERATE_LISTOPS: SectionDef = SectionDef {
    name: "generate",
    kinds: &[],
    common: &[
        f("train", POSITIVE, "training examples"),
        f("val", POSITIVE, "validation examples"),
        f("test", POSITIVE, "test examples"),
        f(
            "min_length",
            int(1, 1 << 20),
            "shortest expression, exclusive (LRA: 500)",
        ),
        f(
            "max_length",
            int(2, 1 << 20),
            "longest expression, exclusive (LRA: 2000)",
        ),
        f("seed", int(0, u32::MAX as i64), "generator seed"),
    ],
    sections: &[],
    default_kind: None,
};

pub static GENERATE_PATHFINDER: SectionDef = SectionDef {
    name: "generate",
    kinds: &[],
    common: &[
        f("n", POSITIVE, "images"),
        f("seed", int(0, u32::MAX as i64), "generator seed"),
    ],
    sections: &[],
    default_kind: None,
};

pub static TASK: SectionDef = SectionDef {
    name: "task",
    kinds: &[
        KindDef {
            name: TaskKind::ListOps.name(),
            fields: &[],
            sections: &[&GENERATE_LISTOPS],
        },
        KindDef {
            name: TaskKind::Text.name(),
            fields: &[TOKENIZER, MIN_FREQ],
            sections: &[],
        },
        KindDef {
            name: TaskKind::Retrieval.name(),
            fields: &[
                TOKENIZER,
                MIN_FREQ,
                f(
                    "interaction",
                    Ty::Enum(Interaction::NAMES),
                    "[u, v, u−v, u·v] features of the two documents",
                ),
            ],
            sections: &[],
        },
        KindDef {
            name: TaskKind::Image.name(),
            fields: &[
                ENCODING,
                VAL_FRACTION,
                f(
                    "resolution",
                    Ty::IntOneOf(&[8, 16, 32]),
                    "image side: 32 is the release; 16 and 8 average 2×2 and 4×4 pixel blocks",
                ),
            ],
            sections: &[],
        },
        KindDef {
            name: TaskKind::Pathfinder.name(),
            fields: &[
                ENCODING,
                VAL_FRACTION,
                f(
                    "resolution",
                    Ty::IntOneOf(&[16, 32, 64, 128, 256]),
                    "image side in pixels",
                ),
                DIFFICULTY,
            ],
            sections: &[&GENERATE_PATHFINDER],
        },
        KindDef {
            name: TaskKind::PathX.name(),
            fields: &[ENCODING, VAL_FRACTION, DIFFICULTY],
            sections: &[&GENERATE_PATHFINDER],
        },
    ],
    common: &[
        f(
            "data",
            Ty::Str,
            "the data folder (relative to the working directory)",
        ),
        f(
            "max_len",
            int(1, 1 << 20),
            "longest input; longer ones are truncated",
        ),
        f(
            "train_fraction",
            float(0.0, 1.0),
            "train on this fraction of the training split",
        ),
        f(
            "train_limit",
            POSITIVE,
            "train on at most this many examples",
        ),
    ],
    sections: &[],
    default_kind: None,
};

// ── model ─────────────────────────────────────────────────────────────────────────────────

const ACTIVATION: FieldDef = f(
    "activation",
    Ty::Enum(Activation::NAMES),
    "non-linearity after the sequence layer",
);
const BIDIRECTIONAL: FieldDef = f(
    "bidirectional",
    Ty::Bool,
    "run the layer both ways (false: causal)",
);
const D_STATE: FieldDef = f("d_state", int(1, 4096), "state size N");
/// S4 and S4D store one mode of each conjugate pair: N/2 of them, so at least one.
const D_STATE_PAIRS: FieldDef = f(
    "d_state",
    int(2, 4096),
    "state size N, both halves of each conjugate pair (N/2 modes are stored)",
);
const DT_MIN: FieldDef = f("dt_min", float(1e-8, 10.0), "smallest initial step size Δ");
const DT_MAX: FieldDef = f("dt_max", float(1e-8, 10.0), "largest initial step size Δ");
const POST: FieldDef = f(
    "post",
    Ty::Enum(Post::NAMES),
    "output projection after the SSM",
);
const SSM_LR: FieldDef = f(
    "ssm_lr",
    float(0.0, 10.0),
    "learning rate of the SSM parameters (A, B, Δ)",
);
const SSM_WD: FieldDef = f(
    "ssm_weight_decay",
    float(0.0, 10.0),
    "weight decay of the SSM parameters",
);

pub static ATTENTION: SectionDef = SectionDef {
    name: "attention",
    kinds: &[
        KindDef {
            name: AttentionKind::Full.name(),
            fields: &[],
            sections: &[],
        },
        KindDef {
            name: AttentionKind::Local.name(),
            fields: &[f(
                "window",
                POSITIVE,
                "block length; each block sees itself and its neighbours",
            )],
            sections: &[],
        },
    ],
    common: &[],
    sections: &[],
    default_kind: Some(AttentionKind::Full.name()),
};

pub static MODEL: SectionDef = SectionDef {
    name: "model",
    kinds: &[
        KindDef {
            name: ModelKind::Transformer.name(),
            fields: &[
                f("heads", int(1, 1024), "attention heads"),
                f("ffn", POSITIVE, "feed-forward width"),
                ACTIVATION,
                f(
                    "position",
                    Ty::Enum(PositionKind::NAMES),
                    "position encoding",
                ),
                f(
                    "causal",
                    Ty::Bool,
                    "causal attention (needed for causal pretraining)",
                ),
            ],
            sections: &[&ATTENTION],
        },
        KindDef {
            name: ModelKind::S4.name(),
            fields: &[
                D_STATE_PAIRS,
                f(
                    "mode",
                    Ty::Enum(S4Mode::NAMES),
                    "normal-plus-low-rank or diagonal A",
                ),
                f("init", Ty::Enum(SsmInit::NAMES), "initialisation of A"),
                DT_MIN,
                DT_MAX,
                f("channels", int(1, 64), "independent SSM copies per feature"),
                ACTIVATION,
                POST,
                SSM_LR,
                SSM_WD,
                BIDIRECTIONAL,
            ],
            sections: &[],
        },
        KindDef {
            name: ModelKind::S4d.name(),
            fields: &[
                D_STATE_PAIRS,
                f(
                    "init",
                    Ty::Enum(SsmInit::NAMES),
                    "S4D-Lin, S4D-Inv or diagonalised LegS",
                ),
                DT_MIN,
                DT_MAX,
                f("channels", int(1, 64), "independent SSM copies per feature"),
                ACTIVATION,
                POST,
                SSM_LR,
                SSM_WD,
                BIDIRECTIONAL,
            ],
            sections: &[],
        },
        KindDef {
            name: ModelKind::Dlr.name(),
            fields: &[
                D_STATE,
                DT_MIN,
                DT_MAX,
                ACTIVATION,
                POST,
                SSM_LR,
                SSM_WD,
                BIDIRECTIONAL,
            ],
            sections: &[],
        },
        KindDef {
            name: ModelKind::S5.name(),
            fields: &[
                D_STATE,
                f(
                    "blocks",
                    int(1, 1024),
                    "HiPPO-N blocks on the diagonal of the initial A",
                ),
                f(
                    "conj_sym",
                    Ty::Bool,
                    "keep half of the conjugate-pair eigenvalues",
                ),
                f(
                    "clip_eigs",
                    Ty::Bool,
                    "keep eigenvalues' real parts negative",
                ),
                DT_MIN,
                DT_MAX,
                ACTIVATION,
                POST,
                SSM_LR,
                SSM_WD,
                BIDIRECTIONAL,
            ],
            sections: &[],
        },
        KindDef {
            name: ModelKind::Lru.name(),
            fields: &[
                D_STATE,
                f(
                    "r_min",
                    float_below(0.0, 1.0),
                    "smallest eigenvalue modulus at init",
                ),
                f(
                    "r_max",
                    float_below(0.0, 1.0),
                    "largest eigenvalue modulus at init",
                ),
                f(
                    "max_phase",
                    // θ is parametrised as exp(log θ) (LRU, eq. 6): a phase range of 0 has no log.
                    float_above(0.0, std::f64::consts::TAU),
                    "largest eigenvalue phase at init",
                ),
                ACTIVATION,
                POST,
                SSM_LR,
                SSM_WD,
                BIDIRECTIONAL,
            ],
            sections: &[],
        },
        KindDef {
            name: ModelKind::Mega.name(),
            fields: &[
                f("d_attin", POSITIVE, "query/key width z"),
                f("d_attout", POSITIVE, "value width v"),
                f("ema_dims", int(1, 256), "EMA dimensions h per feature"),
                f(
                    "chunk",
                    POSITIVE,
                    "attention chunk length (default: whole sequence)",
                ),
                f(
                    "attention_activation",
                    Ty::Enum(AttentionFunction::NAMES),
                    "attention non-linearity",
                ),
                f(
                    "ffn_expand",
                    POSITIVE,
                    "feed-forward width as a multiple of d_model",
                ),
                f(
                    "attention_dropout",
                    float(0.0, 0.99),
                    "dropout rate of the attention weights (training only)",
                ),
                SSM_LR,
                SSM_WD,
                BIDIRECTIONAL,
            ],
            sections: &[],
        },
    ],
    common: &[
        f("layers", int(1, 256), "stacked blocks"),
        f("d_model", int(1, 65_536), "model width"),
        f("dropout", float(0.0, 0.99), "dropout rate (training only)"),
        f(
            "norm",
            Ty::Enum(NormPlacement::NAMES),
            "normalisation before or after each block",
        ),
        f(
            "norm_kind",
            Ty::Enum(NormKind::NAMES),
            "layer or batch normalisation",
        ),
        f(
            "pool",
            Ty::Enum(PoolKind::NAMES),
            "how a sequence becomes one vector",
        ),
    ],
    sections: &[],
    default_kind: None,
};

// ── phases ────────────────────────────────────────────────────────────────────────────────

const BETAS: FieldDef = f("betas", Ty::FloatPair, "Adam's moment decay rates (β1, β2)");
const EPS: FieldDef = f("eps", float(0.0, 1.0), "Adam's ε");
const LR: FieldDef = f("lr", float(0.0, 10.0), "peak learning rate");

pub static OPTIMIZER: SectionDef = SectionDef {
    name: "optimizer",
    kinds: &[
        KindDef {
            name: OptimizerKind::AdamW.name(),
            fields: &[
                LR,
                f("weight_decay", float(0.0, 10.0), "decoupled weight decay"),
                BETAS,
                EPS,
            ],
            sections: &[],
        },
        KindDef {
            name: OptimizerKind::Adam.name(),
            fields: &[LR, BETAS, EPS],
            sections: &[],
        },
    ],
    common: &[],
    sections: &[],
    default_kind: Some(OptimizerKind::AdamW.name()),
};

const WARMUP: FieldDef = f(
    "warmup",
    Ty::StepsOrPercent,
    "linear warm-up, in steps or % of the phase",
);
const MIN_LR: FieldDef = f(
    "min_lr",
    float(0.0, 10.0),
    "learning rate at the end of a decay",
);

pub static SCHEDULE: SectionDef = SectionDef {
    name: "schedule",
    kinds: &[
        KindDef {
            name: ScheduleKind::Constant.name(),
            fields: &[WARMUP],
            sections: &[],
        },
        KindDef {
            name: ScheduleKind::Cosine.name(),
            fields: &[WARMUP, MIN_LR],
            sections: &[],
        },
        KindDef {
            name: ScheduleKind::Linear.name(),
            fields: &[WARMUP, MIN_LR],
            sections: &[],
        },
    ],
    common: &[],
    sections: &[],
    default_kind: Some(ScheduleKind::Constant.name()),
};

const EPOCHS: FieldDef = f("epochs", POSITIVE, "passes over the training split");
const STEPS: FieldDef = f("steps", POSITIVE, "optimiser steps (instead of epochs)");
const BATCH: FieldDef = f("batch", int(1, 1 << 16), "examples per step");
const CLIP: FieldDef = f(
    "clip",
    float(0.0, f64::INFINITY),
    "clip gradients to this global norm",
);
const SELECT: FieldDef = f(
    "select",
    Ty::Select,
    "which checkpoint is kept: `best METRIC` or `last`",
);
const PATIENCE: FieldDef = f(
    "patience",
    POSITIVE,
    "stop after this many evaluations without improvement",
);
const EVAL_EVERY: FieldDef = f(
    "eval_every",
    POSITIVE,
    "validate every this many steps (default: every epoch)",
);
const PHASE_FIELDS: &[FieldDef] = &[EPOCHS, STEPS, BATCH, CLIP, SELECT, PATIENCE, EVAL_EVERY];

pub static FINETUNE: SectionDef = SectionDef {
    name: "finetune",
    kinds: &[],
    common: PHASE_FIELDS,
    sections: &[&OPTIMIZER, &SCHEDULE],
    default_kind: None,
};

pub static PRETRAIN: SectionDef = SectionDef {
    name: "pretrain",
    kinds: &[
        KindDef {
            name: ObjectiveKind::Masked.name(),
            fields: &[
                f("rate", float(0.0, 1.0), "masking probability per position"),
                f("span", POSITIVE, "mask spans of this many positions"),
            ],
            sections: &[],
        },
        KindDef {
            name: ObjectiveKind::Causal.name(),
            fields: &[],
            sections: &[],
        },
    ],
    common: &[
        f(
            "loss",
            Ty::Enum(Loss::NAMES),
            "cross-entropy over tokens or L1 on pixel values",
        ),
        EPOCHS,
        STEPS,
        BATCH,
        CLIP,
        SELECT,
        PATIENCE,
        EVAL_EVERY,
    ],
    sections: &[&OPTIMIZER, &SCHEDULE],
    default_kind: None,
};

/// Sections that may be named as presets at the top level of a file.
pub(crate) fn preset_section(name: &str) -> Option<&'static SectionDef> {
    [
        &TASK, &MODEL, &PRETRAIN, &FINETUNE, &OPTIMIZER, &SCHEDULE, &ATTENTION,
    ]
    .into_iter()
    .find(|s| s.name == name)
}

pub(crate) const PRESET_SECTIONS: &[&str] = &[
    "task",
    "model",
    "pretrain",
    "finetune",
    "optimizer",
    "schedule",
    "attention",
];
