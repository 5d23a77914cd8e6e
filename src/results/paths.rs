//! The resolved spec as flat `dotted.path → value` pairs, named as `lra explain` prints them
//! (`model.d_model`, `pretrain.rate`, `finetune.optimizer.lr`). The run folder keeps the
//! resolved spec as serde writes it (`spec.json`); its shape follows the Rust types
//! (`model.layer.heads`, `pretrain.phase.batch`), so this module maps it back to the language's
//! names. The report's `--by`/`--where`, the index's `spec_values` table and `--diff` all use
//! [`spec_paths`], and a batch's overrides can too.

use serde_json::Value;

use crate::check::schema::{SectionDef, EXPERIMENT};

/// Keys of the serialised spec that are Rust structure, not language sections: their fields
/// belong to the enclosing section.
const TRANSPARENT: [&str; 3] = ["layer", "objective", "phase"];

/// Keys that are not fields of the language (the experiment's name is its identity).
const SKIPPED: [&str; 1] = ["name"];

/// Sections whose serialised `kind` is only Rust's variant tag (which task's generator), not
/// a kind the language writes: `generate { n 6_000 }`.
const KINDLESS: [&str; 1] = ["generate"];

/// Every field of a resolved experiment (`spec.json`) with its value, sorted by path. A
/// section with a kind is a path whose value is the kind (`model → transformer`); absent
/// optional fields and sections are absent, and so are values the Rust types hold for every
/// kind but the language gives only some (a DLR model has no `mode`): the paths are the
/// language's, checked against its schema.
pub fn spec_paths(spec: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Value::Object(map) = spec {
        for (key, value) in map {
            if !SKIPPED.contains(&key.as_str()) {
                flatten_field("", key, value, &mut out);
            }
        }
    }
    let flat = out.clone();
    out.retain(|(path, _)| in_language(path, &flat));
    out.sort();
    out
}

/// Whether `path` names a field or section of the language for the kinds in `flat` (the
/// value at a section's path is its kind).
fn in_language(path: &str, flat: &[(String, String)]) -> bool {
    let kind_at = |prefix: &str| {
        flat.iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, v)| v.as_str())
    };
    let mut section: &SectionDef = &EXPERIMENT;
    let mut prefix = String::new();
    let names: Vec<&str> = path.split('.').collect();
    for (i, name) in names.iter().enumerate() {
        let kind = kind_at(&prefix).and_then(|k| section.kind(k));
        if let Some(child) = section.section(kind, name) {
            section = child;
            prefix = join(&prefix, name);
            continue;
        }
        return i + 1 == names.len() && section.field(kind, name).is_some();
    }
    true
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn push(out: &mut Vec<(String, String)>, path: String, value: String) {
    if !out.iter().any(|(p, _)| *p == path) {
        out.push((path, value));
    }
}

/// One key of a section: a field, a nested section, or one of the serialised forms that the
/// language writes differently.
fn flatten_field(prefix: &str, key: &str, value: &Value, out: &mut Vec<(String, String)>) {
    if value.is_null() {
        return;
    }
    if TRANSPARENT.contains(&key) {
        flatten_section(prefix, value, out);
        return;
    }
    let path = join(prefix, key);
    match (key, value) {
        // `epochs 20` or `steps 500`
        ("budget", Value::Object(m)) => {
            if let (Some(Value::String(unit)), Some(count)) = (m.get("unit"), m.get("count")) {
                push(out, join(prefix, unit), scalar(count));
            }
        }
        // `warmup 5%` or `warmup 2000`
        ("warmup", Value::Object(m)) => {
            let amount = m.get("value").map(scalar).unwrap_or_default();
            let text = match m.get("unit").and_then(Value::as_str) {
                Some("percent") => format!("{amount}%"),
                _ => amount,
            };
            push(out, path, text);
        }
        // `select best val.accuracy` or `select last`
        ("select", Value::Object(m)) => {
            let words: Vec<String> = ["kind", "split"]
                .iter()
                .filter_map(|k| m.get(*k).map(scalar))
                .collect();
            let text = match m.get("metric") {
                Some(metric) => format!("{}.{}", words.join(" "), scalar(metric)),
                None => words.join(" "),
            };
            push(out, path, text);
        }
        // `device cpu`, `device cuda:1`
        ("device", Value::Object(m)) => {
            let kind = m.get("kind").map(scalar).unwrap_or_default();
            let text = match m.get("index").and_then(Value::as_u64) {
                Some(0) | None => kind,
                Some(i) => format!("{kind}:{i}"),
            };
            push(out, path, text);
        }
        // A Transformer says `causal true`; state-space models say `bidirectional false`.
        ("bidirectional", Value::Bool(both_ways)) if is_transformer(prefix, out) => {
            push(out, join(prefix, "causal"), (!both_ways).to_string());
        }
        // `post glu | none`
        ("glu", Value::Bool(glu)) => {
            let text = if *glu { "glu" } else { "none" };
            push(out, join(prefix, "post"), text.to_string());
        }
        // `ssm_lr`, `ssm_weight_decay`: the state-space parameters' own group
        ("ssm", Value::Object(m)) => {
            for (name, v) in m {
                push(out, join(prefix, &format!("ssm_{name}")), scalar(v));
            }
        }
        (_, Value::Object(m)) if KINDLESS.contains(&key) => {
            for (name, v) in m.iter().filter(|(k, _)| *k != "kind") {
                flatten_field(&path, name, v, out);
            }
        }
        (_, Value::Object(_)) => flatten_section(&path, value, out),
        _ => push(out, path, scalar(value)),
    }
}

/// Whether the section at `prefix` is a Transformer model (its kind is pushed before its
/// fields).
fn is_transformer(prefix: &str, out: &[(String, String)]) -> bool {
    out.iter()
        .any(|(path, value)| path == prefix && value == "transformer")
}

/// A section: its kind (if any) is the section's own value, then its fields.
fn flatten_section(path: &str, value: &Value, out: &mut Vec<(String, String)>) {
    let Value::Object(map) = value else {
        return;
    };
    if let Some(kind) = map.get("kind") {
        push(out, path.to_string(), scalar(kind));
    }
    for (key, v) in map.iter().filter(|(k, _)| *k != "kind") {
        flatten_field(path, key, v, out);
    }
}

/// A leaf as the language writes it: strings bare, tuples `(a, b)`.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(scalar).collect();
            format!("({})", parts.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(json: &str) -> Vec<(String, String)> {
        spec_paths(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn layer_and_phase_fields_belong_to_their_section() {
        let got = paths(
            r#"{"name":"x","seed":1,"model":{"kind":"transformer","d_model":64,
                "layer":{"kind":"transformer","heads":4,"attention":{"kind":"local","window":8}}},
                "pretrain":{"objective":{"kind":"masked","rate":0.5,"span":null},"loss":"ce",
                "phase":{"budget":{"unit":"epochs","count":16},"batch":32,
                "schedule":{"kind":"cosine","warmup":{"unit":"percent","value":5.0},"min_lr":0.0},
                "select":{"kind":"best","split":"val","metric":"accuracy"}}}}"#,
        );
        let want = [
            ("seed", "1"),
            ("model", "transformer"),
            ("model.d_model", "64"),
            ("model.heads", "4"),
            ("model.attention", "local"),
            ("model.attention.window", "8"),
            ("pretrain", "masked"),
            ("pretrain.rate", "0.5"),
            ("pretrain.loss", "ce"),
            ("pretrain.epochs", "16"),
            ("pretrain.batch", "32"),
            ("pretrain.schedule", "cosine"),
            ("pretrain.schedule.warmup", "5.0%"),
            ("pretrain.schedule.min_lr", "0.0"),
            ("pretrain.select", "best val.accuracy"),
        ];
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn renamed_fields_use_the_language_names() {
        let got = paths(
            r#"{"device":{"kind":"cuda","index":1},"model":{"kind":"s4d","bidirectional":true,"layer":{"kind":"s4d","glu":true,
                "ssm":{"lr":0.001,"weight_decay":0.0}}},"finetune":{"optimizer":{"kind":"adamw","betas":[0.9,0.98]}}}"#,
        );
        let get = |p: &str| got.iter().find(|(k, _)| k == p).map(|(_, v)| v.as_str());
        assert_eq!(get("device"), Some("cuda:1"));
        assert_eq!(get("model"), Some("s4d"));
        assert_eq!(get("model.post"), Some("glu"));
        assert_eq!(get("model.ssm_lr"), Some("0.001"));
        assert_eq!(get("model.ssm_weight_decay"), Some("0.0"));
        assert_eq!(get("finetune.optimizer.betas"), Some("(0.9, 0.98)"));
        assert_eq!(get("model.bidirectional"), Some("true"));
    }

    #[test]
    fn a_transformer_is_causal_and_a_generator_has_no_kind() {
        let got = paths(
            r#"{"model":{"kind":"transformer","bidirectional":false},
                "task":{"kind":"listops","generate":{"kind":"listops","train":64}}}"#,
        );
        let get = |p: &str| got.iter().find(|(k, _)| k == p).map(|(_, v)| v.as_str());
        assert_eq!(get("model.causal"), Some("true"));
        assert_eq!(get("model.bidirectional"), None);
        assert_eq!(get("task.generate"), None);
        assert_eq!(get("task.generate.train"), Some("64"));
    }
}
