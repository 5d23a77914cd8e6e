//! docs/LANGUAGE.md documents the language the schema defines: every section, kind, field and
//! enumerated word of the schema is named there (in backticks), so a field added to the schema
//! without its documentation fails here.

use lra::check::schema::{
    SectionDef, Ty, ATTENTION, EXPERIMENT, FINETUNE, GENERATE_LISTOPS, GENERATE_PATHFINDER, MODEL,
    OPTIMIZER, PRETRAIN, SCHEDULE, TASK,
};

fn words(section: &SectionDef) -> Vec<String> {
    let mut names = vec![section.name.to_string()];
    let kinds = section.kinds.iter();
    let fields = section
        .common
        .iter()
        .chain(kinds.clone().flat_map(|k| k.fields.iter()));
    for field in fields {
        names.push(field.name.to_string());
        if let Ty::Enum(values) = field.ty {
            names.extend(values.iter().map(|v| v.to_string()));
        }
    }
    names.extend(kinds.map(|k| k.name.to_string()));
    names
}

#[test]
fn the_language_reference_names_every_section_field_and_word() {
    let reference = std::fs::read_to_string("docs/LANGUAGE.md").expect("docs/LANGUAGE.md");
    let sections = [
        &EXPERIMENT,
        &TASK,
        &GENERATE_LISTOPS,
        &GENERATE_PATHFINDER,
        &MODEL,
        &ATTENTION,
        &PRETRAIN,
        &FINETUNE,
        &OPTIMIZER,
        &SCHEDULE,
    ];
    // Every word written in code spans (`task listops`, `init legs`).
    let documented: std::collections::HashSet<&str> = reference
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|code| code.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .collect();
    let missing: Vec<String> = sections
        .iter()
        .flat_map(|s| words(s))
        .filter(|w| !documented.contains(w.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/LANGUAGE.md does not mention {missing:?}"
    );
}
