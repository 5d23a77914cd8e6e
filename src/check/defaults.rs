//! Built-in defaults per section and kind (docs/LANGUAGE.md: the task preset first, then the
//! model kind). Values that depend on other fields are set afterwards by `derive.rs`.

use super::resolved::{Origin, RSection};
use super::schema::{self, SectionDef};
use crate::diagnostic::Span;
use crate::spec::{
    Activation, AttentionFunction, Encoding, Interaction, ModelKind, PositionKind, Post, S4Mode,
    SsmInit, TaskKind, Tokenizer,
};
use crate::syntax::ast::Value;
use crate::syntax::ast::ValueKind::{self, *};

fn s(text: &str) -> ValueKind {
    Str(text.to_string())
}
fn id(text: &str) -> ValueKind {
    Ident(text.to_string())
}

/// The built-in defaults of `section` of kind `kind` (None for kind-less sections).
pub(crate) fn defaults(section: &str, kind: Option<&str>) -> Vec<(&'static str, ValueKind)> {
    match (section, kind) {
        ("experiment", _) => vec![("seed", Int(0)), ("device", id("cpu")), ("out", s("runs"))],
        ("task", Some(task)) => TaskKind::from_name(task).map_or_else(Vec::new, task_defaults),
        ("model", Some(model)) => {
            let mut d = vec![
                ("layers", Int(4)),
                ("d_model", Int(128)),
                ("dropout", Float(0.0)),
                ("norm", id("pre")),
                ("norm_kind", id("layer")),
                ("pool", id("mean")),
            ];
            d.extend(ModelKind::from_name(model).map_or_else(Vec::new, model_defaults));
            d
        }
        ("attention", Some("local")) => vec![("window", Int(4096))],
        // A kind-less section whose fields depend on the task: see `generate_defaults`.
        ("generate", None) => vec![("seed", Int(0))],
        ("pretrain", Some(kind)) => {
            let mut d = phase_defaults();
            d.push(("loss", id("ce")));
            // The SPT paper keeps the pretraining checkpoint with the best validation metric.
            d.push(("select", Best("val.loss".into())));
            if kind == "masked" {
                d.push(("rate", Float(0.15)));
            }
            d
        }
        ("finetune", _) => {
            let mut d = phase_defaults();
            d.push(("select", Best("val.accuracy".into())));
            d
        }
        ("optimizer", Some("adamw")) => vec![
            ("lr", Float(1e-3)),
            ("weight_decay", Float(0.01)),
            ("betas", pair(0.9, 0.999)),
            ("eps", Float(1e-8)),
        ],
        ("optimizer", Some("adam")) => {
            vec![
                ("lr", Float(1e-3)),
                ("betas", pair(0.9, 0.999)),
                ("eps", Float(1e-8)),
            ]
        }
        ("schedule", Some("constant")) => vec![("warmup", Int(0))],
        ("schedule", Some(_)) => vec![("warmup", Int(0)), ("min_lr", Float(0.0))],
        _ => vec![],
    }
}

/// A built-in tuple value; its items were never written, so their spans are synthetic.
fn pair(a: f64, b: f64) -> ValueKind {
    let item = |x| Value {
        kind: Float(x),
        span: Span::synthetic(),
    };
    Tuple(vec![item(a), item(b)])
}

fn phase_defaults() -> Vec<(&'static str, ValueKind)> {
    vec![("batch", Int(32))]
}

fn task_defaults(task: TaskKind) -> Vec<(&'static str, ValueKind)> {
    // The LRA release's folders and lengths and the reference tokenizers (docs/METHOD.md,
    // "Tasks" and "Tokenizers").
    match task {
        TaskKind::ListOps => vec![("data", s("data/listops")), ("max_len", Int(2048))],
        TaskKind::Text => vec![
            ("data", s("data/imdb")),
            ("max_len", Int(4096)),
            ("tokenizer", id(Tokenizer::Char.name())),
            ("min_freq", Int(15)),
        ],
        TaskKind::Retrieval => vec![
            ("data", s("data/retrieval")),
            ("max_len", Int(4000)),
            ("tokenizer", id(Tokenizer::Char.name())),
            ("min_freq", Int(1)),
            ("interaction", id(Interaction::Nli.name())),
        ],
        TaskKind::Image => vec![
            ("data", s("data/cifar10")),
            ("max_len", Int(1024)),
            ("encoding", id(Encoding::Tokens.name())),
            ("val_fraction", Float(0.1)),
            ("resolution", Int(32)),
        ],
        TaskKind::Pathfinder => vec![
            ("data", s("data/pathfinder32")),
            ("max_len", Int(1024)),
            ("encoding", id(Encoding::Tokens.name())),
            ("val_fraction", Float(0.1)),
            ("resolution", Int(32)),
            ("difficulty", id("hard")),
        ],
        TaskKind::PathX => vec![
            ("data", s("data/pathfinder128")),
            ("max_len", Int(16384)),
            ("encoding", id(Encoding::Tokens.name())),
            ("val_fraction", Float(0.1)),
            ("difficulty", id("hard")),
        ],
    }
}

fn model_defaults(model: ModelKind) -> Vec<(&'static str, ValueKind)> {
    let ssm_group = [("ssm_lr", Float(1e-3)), ("ssm_weight_decay", Float(0.0))];
    let ssm_common = [
        ("dt_min", Float(1e-3)),
        ("dt_max", Float(1e-1)),
        ("activation", id(Activation::Gelu.name())),
        ("post", id(Post::Glu.name())),
        ("bidirectional", Bool(true)),
    ];
    let own: Vec<(&'static str, ValueKind)> = match model {
        ModelKind::Transformer => {
            return vec![
                ("heads", Int(4)),
                ("ffn", Int(512)),
                ("activation", id(Activation::Gelu.name())),
                ("position", id(PositionKind::Sinusoidal.name())),
                ("causal", Bool(false)),
            ]
        }
        ModelKind::S4 => vec![
            ("d_state", Int(64)),
            ("mode", id(S4Mode::Nplr.name())),
            ("init", id(SsmInit::Legs.name())),
            ("channels", Int(1)),
        ],
        ModelKind::S4d => vec![
            ("d_state", Int(64)),
            ("init", id(SsmInit::Lin.name())),
            ("channels", Int(1)),
        ],
        ModelKind::Dlr => vec![("d_state", Int(64))],
        ModelKind::S5 => vec![
            ("d_state", Int(64)),
            ("blocks", Int(4)),
            ("conj_sym", Bool(true)),
            ("clip_eigs", Bool(false)),
        ],
        ModelKind::Lru => {
            return [
                ("d_state", Int(64)),
                ("r_min", Float(0.9)),
                ("r_max", Float(0.999)),
                ("max_phase", Float(std::f64::consts::TAU)),
                ("activation", id(Activation::Gelu.name())),
                ("post", id(Post::Glu.name())),
                ("bidirectional", Bool(true)),
            ]
            .into_iter()
            .chain(ssm_group)
            .collect();
        }
        ModelKind::Mega => {
            return [
                ("d_attin", Int(64)),
                ("d_attout", Int(256)),
                ("ema_dims", Int(16)),
                (
                    "attention_activation",
                    id(AttentionFunction::Softmax.name()),
                ),
                ("ffn_expand", Int(2)),
                // The reference's LRA commands (facebookresearch/mega, README.lra.md) all
                // pass `--attention-dropout 0.0`, whatever their `--dropout`.
                ("attention_dropout", Float(0.0)),
                ("bidirectional", Bool(true)),
            ]
            .into_iter()
            .chain(ssm_group)
            .collect();
        }
    };
    own.into_iter().chain(ssm_common).chain(ssm_group).collect()
}

/// The sizes of a `generate` section: the LRA release's (docs/METHOD.md, "The tasks and their release formats").
fn generate_defaults(def: &'static SectionDef) -> Vec<(&'static str, ValueKind)> {
    if std::ptr::eq(def, &schema::GENERATE_LISTOPS) {
        vec![
            ("train", Int(96_000)),
            ("val", Int(2_000)),
            ("test", Int(2_000)),
            ("min_length", Int(500)),
            ("max_length", Int(2_000)),
        ]
    } else if std::ptr::eq(def, &schema::GENERATE_PATHFINDER) {
        // The size of LRA's Pathfinder release per difficulty.
        vec![("n", Int(200_000))]
    } else {
        vec![]
    }
}

/// Fills a fresh section with its defaults, and creates its nested sections that have a
/// default kind (`optimizer adamw`, `schedule constant`, `attention full`).
pub(crate) fn fill(section: &mut RSection) {
    for (name, value) in defaults(section.def.name, section.kind_name()) {
        section.set(name, value, Origin::Default);
    }
    for (name, value) in generate_defaults(section.def) {
        section.set(name, value, Origin::Default);
    }
    let nested: Vec<&'static SectionDef> = section
        .def
        .sections
        .iter()
        .chain(section.kind.map_or(&[][..], |k| k.sections))
        .copied()
        .collect();
    for def in nested {
        if let Some(kind) = def.default_kind.and_then(|k| def.kind(k)) {
            let mut child = RSection::new(def, Some(kind), section.span);
            fill(&mut child);
            section.sections.insert(def.name, child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::schema::{KindDef, EXPERIMENT};
    use crate::check::typecheck::check_value;

    /// Every default names a field its section (and kind) declares, and is a value of that
    /// field's declared type and range: the schema stays the one declaration of each field.
    #[test]
    fn every_default_is_a_valid_value_of_a_declared_field() {
        fn walk(def: &'static SectionDef, checked: &mut usize) {
            let kinds: Vec<Option<&'static KindDef>> = if def.kinds.is_empty() {
                vec![None]
            } else {
                def.kinds.iter().map(Some).collect()
            };
            for kind in kinds {
                let values = defaults(def.name, kind.map(|k| k.name))
                    .into_iter()
                    .chain(generate_defaults(def));
                for (name, value) in values {
                    let field = def.field(kind, name).unwrap_or_else(|| {
                        panic!(
                            "default `{name}` of {} {:?} is not a field",
                            def.name,
                            kind.map(|k| k.name)
                        )
                    });
                    let written = Value {
                        kind: value,
                        span: Span::synthetic(),
                    };
                    if let Err(e) = check_value(field, &written) {
                        panic!("default `{name}` of {}: {e:?}", def.name);
                    }
                    *checked += 1;
                }
                let nested = def
                    .sections
                    .iter()
                    .chain(kind.map_or(&[][..], |k| k.sections));
                for child in nested {
                    walk(child, checked);
                }
            }
        }
        let mut checked = 0;
        walk(&EXPERIMENT, &mut checked);
        assert!(checked > 50, "only {checked} defaults found");
    }
}
