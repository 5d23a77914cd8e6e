//! Resolved tree → typed [`ExperimentSpec`]. Runs only on experiments without errors, so every
//! value is present and well-typed: each word is parsed by its enum's exhaustive `from_name`
//! (no fallback over names) and every field reads the value the schema and the defaults gave
//! it (no default of its own, so `lra explain` shows every value used). A `None` here means a
//! gap between the schema, the defaults and this lowering: [`build`] reports it as an internal
//! error naming the field, never as a silently dropped experiment.

use std::path::PathBuf;

use super::derive::is_causal;
use super::resolved::{RSection, ResolvedExperiment};
use crate::named::Named;
use crate::spec::*;
use crate::syntax::ast::ValueKind;

/// The field (as a dotted path) that the lowering could not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap(pub String);

type Built<T> = Result<T, Gap>;

/// Lowers one checked experiment, or names the first field it could not read.
pub fn build(x: &ResolvedExperiment) -> Built<ExperimentSpec> {
    let root = Reader::root(&x.root);
    let task = task(&root.section("task")?)?;
    Ok(ExperimentSpec {
        name: x.name.clone(),
        seed: root.int("seed")? as u64,
        device: device(&root)?,
        threads: root.optional("threads", Reader::usize)?,
        out: PathBuf::from(root.string("out")?),
        model: model(&root.section("model")?)?,
        pretrain: match root.optional_section("pretrain") {
            Some(p) => Some(pretrain(&p)?),
            None => None,
        },
        finetune: phase(&root.section("finetune")?)?,
        task,
    })
}

/// Reads typed values from a resolved section; a missing or mistyped value is a [`Gap`] at
/// the field's dotted path.
struct Reader<'a> {
    section: &'a RSection,
    path: String,
}

impl<'a> Reader<'a> {
    fn root(section: &'a RSection) -> Self {
        Reader {
            section,
            path: String::new(),
        }
    }

    fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn gap<T>(&self, name: &str, value: Option<T>) -> Built<T> {
        value.ok_or_else(|| Gap(self.path_of(name)))
    }

    fn section(&self, name: &str) -> Built<Reader<'a>> {
        let section = self.gap(name, self.section.section(name))?;
        Ok(Reader {
            section,
            path: self.path_of(name),
        })
    }

    fn optional_section(&self, name: &str) -> Option<Reader<'a>> {
        self.section(name).ok()
    }

    /// A field the schema lets a spec leave unset (it has no default): `None` when absent.
    fn optional<T>(&self, name: &str, read: impl Fn(&Self, &str) -> Built<T>) -> Built<Option<T>> {
        match self.section.get(name) {
            None => Ok(None),
            Some(_) => read(self, name).map(Some),
        }
    }

    fn int(&self, name: &str) -> Built<i64> {
        self.gap(name, self.section.int(name))
    }

    fn usize(&self, name: &str) -> Built<usize> {
        self.gap(name, self.section.usize(name))
    }

    fn float(&self, name: &str) -> Built<f64> {
        self.gap(name, self.section.float(name))
    }

    fn bool(&self, name: &str) -> Built<bool> {
        self.gap(name, self.section.bool(name))
    }

    fn string(&self, name: &str) -> Built<&'a str> {
        self.gap(name, self.section.string(name))
    }

    fn value(&self, name: &str) -> Built<&'a ValueKind> {
        self.gap(name, self.section.get(name).map(|f| &f.value))
    }

    /// An enumerated field, parsed by its enum's own words.
    fn word<T: Named>(&self, name: &str) -> Built<T> {
        self.gap(name, self.section.ident(name).and_then(T::from_word))
    }

    /// The section's kind, parsed by its enum's own words.
    fn kind<T: Named>(&self) -> Built<T> {
        let name = format!("{}.kind", self.path);
        self.section
            .kind_name()
            .and_then(T::from_word)
            .ok_or(Gap(name))
    }
}

fn device(root: &Reader) -> Built<Device> {
    let name = root.string_or_ident("device")?;
    let parsed = match name {
        "cpu" => Some(Device::Cpu),
        "cuda" => Some(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|i| i.parse().ok())
            .map(Device::Cuda),
    };
    root.gap("device", parsed)
}

impl Reader<'_> {
    fn string_or_ident(&self, name: &str) -> Built<&str> {
        let value = match self.section.get(name).map(|f| &f.value) {
            Some(ValueKind::Ident(s) | ValueKind::Str(s)) => Some(s.as_str()),
            _ => None,
        };
        self.gap(name, value)
    }
}

fn task(t: &Reader) -> Built<TaskSpec> {
    let kind: TaskKind = t.kind()?;
    let pixels = matches!(
        kind,
        TaskKind::Image | TaskKind::Pathfinder | TaskKind::PathX
    );
    let text = matches!(kind, TaskKind::Text | TaskKind::Retrieval);
    let pathfinder = matches!(kind, TaskKind::Pathfinder | TaskKind::PathX);
    // Kind-specific fields are read for their kinds only, where the defaults always set them.
    Ok(TaskSpec {
        kind,
        data: PathBuf::from(t.string("data")?),
        max_len: t.usize("max_len")?,
        n_classes: kind.n_classes(),
        train_fraction: t.optional("train_fraction", Reader::float)?,
        train_limit: t.optional("train_limit", Reader::usize)?,
        tokenizer: lift(text, || t.word("tokenizer"))?,
        min_freq: lift(text, || t.usize("min_freq"))?,
        interaction: lift(kind == TaskKind::Retrieval, || t.word("interaction"))?,
        encoding: lift(pixels, || t.word("encoding"))?,
        val_fraction: lift(pixels, || t.float("val_fraction"))?,
        // Path-X is Pathfinder at 128 pixels: the kind fixes it, the schema offers no field.
        resolution: match kind {
            TaskKind::PathX => Some(128),
            _ => lift(
                matches!(kind, TaskKind::Image | TaskKind::Pathfinder),
                || t.usize("resolution"),
            )?,
        },
        difficulty: lift(pathfinder, || {
            let name = t.string_or_ident("difficulty")?;
            t.gap("difficulty", Difficulty::from_name(name))
        })?,
        generate: match t.optional_section("generate") {
            Some(g) => Some(generate(kind, &g)?),
            None => None,
        },
    })
}

/// `read()` when the field applies to the kind, else `None`.
fn lift<T>(applies: bool, read: impl FnOnce() -> Built<T>) -> Built<Option<T>> {
    if applies {
        read().map(Some)
    } else {
        Ok(None)
    }
}

/// The generator settings, every size from the schema's defaults (the LRA release's).
fn generate(kind: TaskKind, g: &Reader) -> Built<Generate> {
    let seed = g.int("seed")? as u64;
    match kind {
        TaskKind::ListOps => Ok(Generate::ListOps {
            train: g.usize("train")?,
            val: g.usize("val")?,
            test: g.usize("test")?,
            min_length: g.usize("min_length")?,
            max_length: g.usize("max_length")?,
            seed,
        }),
        TaskKind::Pathfinder | TaskKind::PathX => Ok(Generate::Pathfinder {
            n: g.usize("n")?,
            seed,
        }),
        TaskKind::Text | TaskKind::Retrieval | TaskKind::Image => Err(Gap(format!(
            "{}: `generate` for task {kind} (the schema offers it for listops and pathfinder)",
            g.path
        ))),
    }
}

fn ssm_group(m: &Reader) -> Built<SsmGroup> {
    Ok(SsmGroup {
        lr: m.float("ssm_lr")?,
        weight_decay: m.float("ssm_weight_decay")?,
    })
}

fn glu(m: &Reader) -> Built<bool> {
    Ok(match m.word::<Post>("post")? {
        Post::Glu => true,
        Post::None => false,
    })
}

/// S4 (with its `mode`) and S4D (diagonal by definition: it has no `mode` field).
fn ssm(m: &Reader, mode: S4Mode) -> Built<SsmSpec> {
    Ok(SsmSpec {
        d_state: m.usize("d_state")?,
        mode,
        init: m.word("init")?,
        dt_min: m.float("dt_min")?,
        dt_max: m.float("dt_max")?,
        channels: m.usize("channels")?,
        activation: m.word("activation")?,
        glu: glu(m)?,
        ssm: ssm_group(m)?,
    })
}

fn transformer(m: &Reader) -> Built<TransformerSpec> {
    let attention = m.section("attention")?;
    Ok(TransformerSpec {
        heads: m.usize("heads")?,
        ffn: m.usize("ffn")?,
        activation: m.word("activation")?,
        position: m.word("position")?,
        attention: match attention.kind::<AttentionKind>()? {
            AttentionKind::Full => Attention::Full,
            AttentionKind::Local => Attention::Local {
                window: attention.usize("window")?,
            },
        },
    })
}

fn model(m: &Reader) -> Built<ModelSpec> {
    let kind: ModelKind = m.kind()?;
    let layer = match kind {
        ModelKind::Transformer => LayerSpec::Transformer(transformer(m)?),
        ModelKind::S4 => LayerSpec::S4(ssm(m, m.word("mode")?)?),
        ModelKind::S4d => LayerSpec::S4d(ssm(m, S4Mode::Diag)?),
        ModelKind::Dlr => LayerSpec::Dlr(DlrSpec {
            d_state: m.usize("d_state")?,
            dt_min: m.float("dt_min")?,
            dt_max: m.float("dt_max")?,
            activation: m.word("activation")?,
            glu: glu(m)?,
            ssm: ssm_group(m)?,
        }),
        ModelKind::S5 => LayerSpec::S5(S5Spec {
            d_state: m.usize("d_state")?,
            blocks: m.usize("blocks")?,
            conj_sym: m.bool("conj_sym")?,
            clip_eigs: m.bool("clip_eigs")?,
            dt_min: m.float("dt_min")?,
            dt_max: m.float("dt_max")?,
            activation: m.word("activation")?,
            glu: glu(m)?,
            ssm: ssm_group(m)?,
        }),
        ModelKind::Lru => LayerSpec::Lru(LruSpec {
            d_state: m.usize("d_state")?,
            r_min: m.float("r_min")?,
            r_max: m.float("r_max")?,
            max_phase: m.float("max_phase")?,
            activation: m.word("activation")?,
            glu: glu(m)?,
            ssm: ssm_group(m)?,
        }),
        ModelKind::Mega => LayerSpec::Mega(MegaSpec {
            d_attin: m.usize("d_attin")?,
            d_attout: m.usize("d_attout")?,
            ema_dims: m.usize("ema_dims")?,
            // Unset: attention over the whole input (the reference's `chunk_size -1`).
            chunk: m.optional("chunk", Reader::usize)?,
            attention_activation: m.word("attention_activation")?,
            ffn_expand: m.usize("ffn_expand")?,
            attention_dropout: m.float("attention_dropout")?,
            ssm: ssm_group(m)?,
        }),
    };
    Ok(ModelSpec {
        kind,
        layers: m.usize("layers")?,
        d_model: m.usize("d_model")?,
        dropout: m.float("dropout")?,
        norm: m.word("norm")?,
        norm_kind: m.word("norm_kind")?,
        pool: m.word("pool")?,
        bidirectional: !is_causal(m.section),
        layer,
    })
}

fn pretrain(p: &Reader) -> Built<PretrainSpec> {
    Ok(PretrainSpec {
        objective: match p.kind::<ObjectiveKind>()? {
            ObjectiveKind::Masked => Objective::Masked {
                rate: p.float("rate")?,
                span: p.optional("span", Reader::usize)?,
            },
            ObjectiveKind::Causal => Objective::Causal,
        },
        loss: p.word("loss")?,
        phase: phase(p)?,
    })
}

fn pair(p: &Reader, name: &str) -> Built<(f64, f64)> {
    let ValueKind::Tuple(items) = p.value(name)? else {
        return Err(Gap(p.path_of(name)));
    };
    let number = |i: usize| items.get(i).and_then(|v| super::typecheck::number(&v.kind));
    p.gap(name, number(0).zip(number(1)))
}

/// `best SPLIT.METRIC` or `last`; `None` when the metric is not `split.metric` of known words.
pub(crate) fn select(value: &ValueKind) -> Option<Select> {
    match value {
        ValueKind::Best(metric) => {
            let (split, name) = metric.split_once('.')?;
            Some(Select::Best {
                split: Split::from_name(split)?,
                metric: Metric::from_name(name)?,
            })
        }
        ValueKind::Ident(word) if word == "last" => Some(Select::Last),
        _ => None,
    }
}

fn warmup(schedule: &Reader) -> Built<Warmup> {
    match schedule.value("warmup")? {
        ValueKind::Percent(p) => Ok(Warmup::Percent(*p)),
        ValueKind::Int(n) => Ok(Warmup::Steps(*n as usize)),
        _ => Err(Gap(schedule.path_of("warmup"))),
    }
}

fn optimizer(o: &Reader) -> Built<Optimizer> {
    Ok(match o.kind::<OptimizerKind>()? {
        OptimizerKind::Adam => Optimizer::Adam {
            lr: o.float("lr")?,
            betas: pair(o, "betas")?,
            eps: o.float("eps")?,
        },
        OptimizerKind::AdamW => Optimizer::AdamW {
            lr: o.float("lr")?,
            weight_decay: o.float("weight_decay")?,
            betas: pair(o, "betas")?,
            eps: o.float("eps")?,
        },
    })
}

fn schedule(s: &Reader) -> Built<Schedule> {
    let kind: ScheduleKind = s.kind()?;
    Ok(Schedule {
        kind,
        warmup: warmup(s)?,
        // A constant schedule never decays, so it has no `min_lr` field.
        min_lr: match kind {
            ScheduleKind::Constant => 0.0,
            ScheduleKind::Cosine | ScheduleKind::Linear => s.float("min_lr")?,
        },
    })
}

fn phase(p: &Reader) -> Built<PhaseSpec> {
    // The rule `steps-epochs-exclusive` admits exactly one of the two.
    let budget = match (
        p.optional("epochs", Reader::usize)?,
        p.optional("steps", Reader::usize)?,
    ) {
        (Some(e), None) => Budget::Epochs(e),
        (None, Some(s)) => Budget::Steps(s),
        _ => return Err(Gap(p.path_of("epochs"))),
    };
    Ok(PhaseSpec {
        budget,
        batch: p.usize("batch")?,
        optimizer: optimizer(&p.section("optimizer")?)?,
        schedule: schedule(&p.section("schedule")?)?,
        clip: p.optional("clip", Reader::float)?,
        select: p.gap("select", select(p.value("select")?))?,
        patience: p.optional("patience", Reader::usize)?,
        eval_every: p.optional("eval_every", Reader::usize)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::rules::test_support::resolve;

    /// A value the lowering needs but the resolved tree lacks is named by its dotted path
    /// (reported as lra::internal::lowering), never replaced by a default.
    #[test]
    fn a_missing_value_is_a_gap_at_its_path() {
        let mut x =
            resolve("experiment \"t\" { task listops { } model s4d { } finetune { epochs 1 } }");
        assert!(build(&x).is_ok());
        let model = x.root.sections.get_mut("model").unwrap();
        model.fields.remove("init");
        assert_eq!(build(&x).unwrap_err(), Gap("model.init".into()));
        let finetune = x.root.sections.get_mut("finetune").unwrap();
        finetune
            .sections
            .get_mut("optimizer")
            .unwrap()
            .fields
            .remove("lr");
        x.root.sections.get_mut("model").unwrap().fields.clear();
        assert!(build(&x).unwrap_err().0.starts_with("model."));
    }
}
