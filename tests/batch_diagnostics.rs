//! Snapshot tests of a batch file's diagnostics: one bad batch per file under `batches/bad/`,
//! each mistake at its line in the YAML (or at the spec's span and the YAML line that set the
//! value, labelled with the point).

mod common;

use common::{context, relative};
use lra::batch::plan::plan;

fn diagnostics_of(path: &std::path::Path) -> (bool, String) {
    let planned = plan(relative(path), &context(), None).expect("the batch file is readable");
    (planned.plan.is_some(), planned.diagnostics.render(false))
}

#[test]
fn bad_batches_render_their_diagnostics() {
    insta::glob!("batches/bad/*.yaml", |path| {
        let (planned, rendered) = diagnostics_of(path);
        assert!(!planned, "{} must not yield a plan", path.display());
        assert!(
            rendered.contains("lra::batch::") || rendered.contains("lra::"),
            "{rendered}"
        );
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn every_mistake_of_a_file_is_reported_at_once() {
    let (_, rendered) = diagnostics_of(std::path::Path::new("tests/batches/bad/wrong-type.yaml"));
    assert_eq!(
        rendered.matches("lra::batch::wrong-type").count(),
        4,
        "two bad seeds, a scalar axis and a list for `set`: {rendered}"
    );
}

#[test]
fn a_rule_broken_by_a_point_points_at_the_yaml_line_and_names_the_point() {
    let (_, rendered) = diagnostics_of(std::path::Path::new("tests/batches/bad/point-rule.yaml"));
    assert!(
        rendered.contains("lra::rule::heads-divide-d-model"),
        "{rendered}"
    );
    assert!(
        rendered.contains("point-rule.yaml:7"),
        "the YAML line: {rendered}"
    );
    assert!(rendered.contains("tiny.lra"), "the spec: {rendered}");
    assert!(
        rendered.contains("seed 0, model.d_model 15"),
        "the point: {rendered}"
    );
    assert!(
        rendered.contains("the same in 1 more point"),
        "seed 1 breaks it too: {rendered}"
    );
}
