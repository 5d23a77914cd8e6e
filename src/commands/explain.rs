//! `lra explain FILE [--json]`: the resolved spec, each value with its origin.

use std::fmt::Write;
use std::path::Path;

use super::{machine, print_diagnostics, EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use crate::check::resolved::RSection;
use crate::check::{self, Checked};
use crate::diagnostic::SourceMap;

pub fn run(file: &Path, json: bool) -> u8 {
    let context = machine::context(false);
    let checked = match check::check(file, &context) {
        Ok(checked) => checked,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return EXIT_USAGE;
        }
    };
    print_diagnostics(&checked);
    if checked.has_errors() {
        return EXIT_ERRORS;
    }
    if json {
        println!("{}", to_json(&checked));
    } else {
        print!("{}", to_text(&checked));
    }
    EXIT_OK
}

/// The resolved tree as indented text: `key value    origin`.
pub(crate) fn to_text(checked: &Checked) -> String {
    let mut out = String::new();
    for x in &checked.experiments {
        let _ = writeln!(out, "experiment \"{}\"", x.name);
        section_text(&checked.sources, &x.root, 1, &mut out);
        out.push('\n');
    }
    out
}

/// Fields and sections in schema order, so the output reads like a spec.
fn ordered_fields(section: &RSection) -> Vec<&'static str> {
    let kind_fields = section.kind.map_or(&[][..], |k| k.fields);
    section
        .def
        .common
        .iter()
        .chain(kind_fields)
        .map(|f| f.name)
        .filter(|name| section.get(name).is_some())
        .collect()
}

fn ordered_sections(section: &RSection) -> Vec<&RSection> {
    let kind_sections = section.kind.map_or(&[][..], |k| k.sections);
    section
        .def
        .sections
        .iter()
        .chain(kind_sections)
        .filter_map(|def| section.section(def.name))
        .collect()
}

fn section_text(sources: &SourceMap, section: &RSection, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    for name in ordered_fields(section) {
        let field = &section.fields[name];
        let line = format!("{indent}{name} {}", field.value);
        let _ = writeln!(out, "{line:<48} {}", field.origin.describe(sources));
    }
    for child in ordered_sections(section) {
        let header = match child.kind_name() {
            Some(kind) => format!("{indent}{} {kind}", child.def.name),
            None => format!("{indent}{}", child.def.name),
        };
        let _ = writeln!(out, "{header:<48} {}", child.kind_origin.describe(sources));
        section_text(sources, child, depth + 1, out);
    }
}

/// `{"spec": …, "origins": [{"experiment", "path", "value", "origin"}]}`
pub fn to_json(checked: &Checked) -> String {
    let mut origins = Vec::new();
    for x in &checked.experiments {
        section_json(&checked.sources, &x.name, &x.root, "", &mut origins);
    }
    let value = serde_json::json!({ "spec": checked.spec, "origins": origins });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn section_json(
    sources: &SourceMap,
    experiment: &str,
    section: &RSection,
    prefix: &str,
    out: &mut Vec<serde_json::Value>,
) {
    let path = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    for name in ordered_fields(section) {
        let field = &section.fields[name];
        out.push(serde_json::json!({
            "experiment": experiment,
            "path": path(name),
            "value": field.value.to_string(),
            "origin": field.origin.describe(sources),
        }));
    }
    for child in ordered_sections(section) {
        let child_path = path(child.def.name);
        out.push(serde_json::json!({
            "experiment": experiment,
            "path": child_path,
            "value": child.kind_name(),
            "origin": child.kind_origin.describe(sources),
        }));
        section_json(sources, experiment, child, &child_path, out);
    }
}
