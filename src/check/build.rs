//! Resolved tree → typed [`ExperimentSpec`]. Runs only on experiments without errors, so every
//! value is present and well-typed; `None` would mean a schema/default gap, never user input.

use std::path::PathBuf;

use super::derive::is_causal;
use super::resolved::{RSection, ResolvedExperiment};
use crate::spec::*;
use crate::syntax::ast::ValueKind;

pub fn build(x: &ResolvedExperiment) -> Option<ExperimentSpec> {
    let root = &x.root;
    let task = task(x.task()?)?;
    Some(ExperimentSpec {
        name: x.name.clone(),
        seed: root.int("seed")? as u64,
        device: device(root.ident("device")?)?,
        threads: root.usize("threads"),
        out: PathBuf::from(root.string("out")?),
        model: model(x.model()?)?,
        pretrain: match x.pretrain() {
            Some(p) => Some(pretrain(p)?),
            None => None,
        },
        finetune: phase(x.finetune()?)?,
        task,
    })
}

fn device(name: &str) -> Option<Device> {
    match name {
        "cpu" => Some(Device::Cpu),
        "cuda" => Some(Device::Cuda(0)),
        other => other.strip_prefix("cuda:")?.parse().ok().map(Device::Cuda),
    }
}

fn task(t: &RSection) -> Option<TaskSpec> {
    let kind = TaskKind::from_name(t.kind_name()?)?;
    Some(TaskSpec {
        kind,
        data: PathBuf::from(t.string("data")?),
        max_len: t.usize("max_len")?,
        n_classes: kind.n_classes(),
        train_fraction: t.float("train_fraction"),
        train_limit: t.usize("train_limit"),
        tokenizer: t.ident("tokenizer").map(|s| match s {
            "byte" => Tokenizer::Byte,
            _ => Tokenizer::Char,
        }),
        min_freq: t.usize("min_freq"),
        interaction: t.ident("interaction").map(|s| match s {
            "concat" => Interaction::Concat,
            _ => Interaction::Nli,
        }),
        encoding: t.ident("encoding").map(|s| match s {
            "continuous" => Encoding::Continuous,
            _ => Encoding::Tokens,
        }),
        val_fraction: t.float("val_fraction"),
        resolution: match kind {
            TaskKind::PathX => Some(128),
            _ => t.usize("resolution"),
        },
        // The schema admits only the three names.
        difficulty: t.ident("difficulty").and_then(Difficulty::from_name),
        generate: match t.section("generate") {
            Some(g) => Some(generate(kind, g)?),
            None => None,
        },
    })
}

/// The generator settings; unset sizes take the LRA release's.
fn generate(kind: TaskKind, g: &RSection) -> Option<Generate> {
    let seed = g.int("seed")? as u64;
    Some(match kind {
        TaskKind::ListOps => Generate::ListOps {
            train: g.usize("train").unwrap_or(96_000),
            val: g.usize("val").unwrap_or(2_000),
            test: g.usize("test").unwrap_or(2_000),
            min_length: g.usize("min_length").unwrap_or(500),
            max_length: g.usize("max_length").unwrap_or(2_000),
            seed,
        },
        _ => Generate::Pathfinder {
            n: g.usize("n").unwrap_or(200_000),
            seed,
        },
    })
}

fn activation(m: &RSection) -> Option<Activation> {
    Some(match m.ident("activation")? {
        "gelu" => Activation::Gelu,
        "relu" => Activation::Relu,
        "silu" => Activation::Silu,
        _ => Activation::None,
    })
}

fn ssm_group(m: &RSection) -> Option<SsmGroup> {
    Some(SsmGroup {
        lr: m.float("ssm_lr")?,
        weight_decay: m.float("ssm_weight_decay")?,
    })
}

fn glu(m: &RSection) -> Option<bool> {
    Some(m.ident("post")? == "glu")
}

fn ssm(m: &RSection) -> Option<SsmSpec> {
    Some(SsmSpec {
        d_state: m.usize("d_state")?,
        mode: match m.ident("mode") {
            Some("nplr") => SsmMode::Nplr,
            _ => SsmMode::Diag,
        },
        init: match m.ident("init").unwrap_or("lin") {
            "legs" => SsmInit::Legs,
            "inv" => SsmInit::Inv,
            "fourier" => SsmInit::Fourier,
            _ => SsmInit::Lin,
        },
        dt_min: m.float("dt_min")?,
        dt_max: m.float("dt_max")?,
        channels: m.usize("channels").unwrap_or(1),
        activation: activation(m)?,
        glu: glu(m)?,
        ssm: ssm_group(m)?,
    })
}

fn model(m: &RSection) -> Option<ModelSpec> {
    let kind = ModelKind::from_name(m.kind_name()?)?;
    let layer = match kind {
        ModelKind::Transformer => {
            let attention = m.section("attention")?;
            LayerSpec::Transformer(TransformerSpec {
                heads: m.usize("heads")?,
                ffn: m.usize("ffn")?,
                activation: activation(m)?,
                position: match m.ident("position")? {
                    "none" => Position::None,
                    "learned" => Position::Learned,
                    "rotary" => Position::Rotary,
                    _ => Position::Sinusoidal,
                },
                attention: match attention.kind_name()? {
                    "local" => Attention::Local {
                        window: attention.usize("window")?,
                    },
                    _ => Attention::Full,
                },
            })
        }
        ModelKind::S4 => LayerSpec::S4(ssm(m)?),
        ModelKind::S4d => LayerSpec::S4d(ssm(m)?),
        ModelKind::Dlr => LayerSpec::Dlr(ssm(m)?),
        ModelKind::S5 => LayerSpec::S5(S5Spec {
            d_state: m.usize("d_state")?,
            blocks: m.usize("blocks")?,
            conj_sym: m.bool("conj_sym")?,
            clip_eigs: m.bool("clip_eigs")?,
            dt_min: m.float("dt_min")?,
            dt_max: m.float("dt_max")?,
            activation: activation(m)?,
            glu: glu(m)?,
            ssm: ssm_group(m)?,
        }),
        ModelKind::Lru => LayerSpec::Lru(LruSpec {
            d_state: m.usize("d_state")?,
            r_min: m.float("r_min")?,
            r_max: m.float("r_max")?,
            max_phase: m.float("max_phase")?,
            activation: activation(m)?,
            glu: glu(m)?,
            ssm: ssm_group(m)?,
        }),
        ModelKind::Mega => LayerSpec::Mega(MegaSpec {
            d_attin: m.usize("d_attin")?,
            d_attout: m.usize("d_attout")?,
            ema_dims: m.usize("ema_dims")?,
            chunk: m.usize("chunk"),
            attention_activation: match m.ident("attention_activation")? {
                "laplace" => AttentionActivation::Laplace,
                _ => AttentionActivation::Softmax,
            },
            ffn_expand: m.usize("ffn_expand")?,
            attention_dropout: m.float("attention_dropout")?,
            ssm: ssm_group(m)?,
        }),
    };
    Some(ModelSpec {
        kind,
        layers: m.usize("layers")?,
        d_model: m.usize("d_model")?,
        dropout: m.float("dropout")?,
        norm: match m.ident("norm")? {
            "post" => NormPlace::Post,
            _ => NormPlace::Pre,
        },
        norm_kind: match m.ident("norm_kind")? {
            "batch" => NormKind::Batch,
            _ => NormKind::Layer,
        },
        pool: match m.ident("pool")? {
            "max" => Pool::Max,
            "last" => Pool::Last,
            "first" => Pool::First,
            _ => Pool::Mean,
        },
        bidirectional: !is_causal(m),
        layer,
    })
}

fn pretrain(p: &RSection) -> Option<PretrainSpec> {
    Some(PretrainSpec {
        objective: match p.kind_name()? {
            "masked" => Objective::Masked {
                rate: p.float("rate")?,
                span: p.usize("span"),
            },
            _ => Objective::Causal,
        },
        loss: match p.ident("loss")? {
            "l1" => Loss::L1,
            _ => Loss::Ce,
        },
        phase: phase(p)?,
    })
}

fn pair(value: &ValueKind) -> Option<(f64, f64)> {
    let ValueKind::Tuple(items) = value else {
        return None;
    };
    let number = |v: &crate::syntax::ast::Value| super::typecheck::number(&v.kind);
    Some((number(items.first()?)?, number(items.get(1)?)?))
}

pub fn select(value: &ValueKind) -> Option<Select> {
    match value {
        ValueKind::Best(metric) => {
            let (split, name) = metric.split_once('.')?;
            Some(Select::Best {
                split: match split {
                    "train" => Split::Train,
                    _ => Split::Val,
                },
                metric: name.to_string(),
            })
        }
        _ => Some(Select::Last),
    }
}

fn phase(p: &RSection) -> Option<PhaseSpec> {
    let optimizer = p.section("optimizer")?;
    let schedule = p.section("schedule")?;
    let budget = match (p.usize("epochs"), p.usize("steps")) {
        (Some(e), None) => Budget::Epochs(e),
        (None, Some(s)) => Budget::Steps(s),
        _ => return None,
    };
    Some(PhaseSpec {
        budget,
        batch: p.usize("batch")?,
        optimizer: match optimizer.kind_name()? {
            "adam" => Optimizer::Adam {
                lr: optimizer.float("lr")?,
                betas: pair(&optimizer.get("betas")?.value)?,
                eps: optimizer.float("eps")?,
            },
            _ => Optimizer::AdamW {
                lr: optimizer.float("lr")?,
                weight_decay: optimizer.float("weight_decay")?,
                betas: pair(&optimizer.get("betas")?.value)?,
                eps: optimizer.float("eps")?,
            },
        },
        schedule: Schedule {
            kind: match schedule.kind_name()? {
                "cosine" => ScheduleKind::Cosine,
                "linear" => ScheduleKind::Linear,
                _ => ScheduleKind::Constant,
            },
            warmup: match schedule.get("warmup")?.value {
                ValueKind::Percent(p) => Warmup::Percent(p),
                ValueKind::Int(n) => Warmup::Steps(n as usize),
                _ => return None,
            },
            min_lr: schedule.float("min_lr").unwrap_or(0.0),
        },
        clip: p.float("clip"),
        select: select(&p.get("select")?.value)?,
        patience: p.usize("patience"),
        eval_every: p.usize("eval_every"),
    })
}
