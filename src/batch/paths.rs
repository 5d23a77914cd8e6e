//! The dotted paths a batch may set: every field and section of the language as `lra explain`
//! names them (`model.d_model`, `finetune.optimizer.lr`, `pretrain`), read from the schema so
//! a batch offers exactly what a spec file may write.

use std::collections::BTreeMap;

use crate::check::schema::{FieldDef, SectionDef, EXPERIMENT};

/// What a dotted path names.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// A field; the same name may have a different type in different kinds (the first is
    /// kept: the checker types the value again against the point's own kind).
    Field(&'static FieldDef),
    /// A section: its value is a kind or preset name (`model: s4d`), or for `pretrain` also
    /// `none` (no pretraining) and `keep`.
    Section(&'static SectionDef),
}

/// Every path of the language, sorted.
pub fn all() -> &'static BTreeMap<String, Target> {
    static PATHS: std::sync::OnceLock<BTreeMap<String, Target>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        let mut paths = BTreeMap::new();
        walk(&EXPERIMENT, "", &mut paths);
        paths
    })
}

fn walk(section: &'static SectionDef, prefix: &str, out: &mut BTreeMap<String, Target>) {
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let kind_fields = section.kinds.iter().flat_map(|k| k.fields);
    for field in section.common.iter().chain(kind_fields) {
        out.entry(join(field.name)).or_insert(Target::Field(field));
    }
    let kind_sections = section.kinds.iter().flat_map(|k| k.sections.iter());
    for child in section.sections.iter().chain(kind_sections) {
        let path = join(child.name);
        if !out.contains_key(&path) {
            out.insert(path.clone(), Target::Section(child));
            walk(child, &path, out);
        }
    }
}

/// The path written in a batch file, or the closest known path as a suggestion.
pub fn lookup(path: &str) -> Result<Target, Option<String>> {
    all()
        .get(path)
        .copied()
        .ok_or_else(|| crate::check::error::suggest(path, all().keys().map(String::as_str)))
}

/// The path that picks whether a point self-pretrains.
pub const PRETRAIN: &str = "pretrain";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_of_explain_are_known() {
        for path in [
            "seed",
            "model",
            "model.d_model",
            "model.d_state",
            "model.position",
            "model.attention.window",
            "finetune.optimizer.lr",
            "finetune.epochs",
            "pretrain",
            "pretrain.rate",
            "task.data",
        ] {
            assert!(lookup(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn a_misspelt_path_gets_a_suggestion() {
        assert_eq!(
            lookup("model.dmodel").err(),
            Some(Some("model.d_model".to_string()))
        );
        assert_eq!(
            lookup("finetune.optimiser.lr").err(),
            Some(Some("finetune.optimizer.lr".to_string()))
        );
    }
}
