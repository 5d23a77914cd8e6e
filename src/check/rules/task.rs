//! Rules about the task and the world it reads from.

use std::path::Path;

use super::Context;
use crate::check::resolved::ResolvedExperiment;
use crate::diagnostic::Diagnostic;
use crate::spec::Difficulty;

/// The longest input each task has (docs/METHOD.md, "The tasks"); image-like tasks have exactly
/// this length.
pub(crate) fn task_length(task: &str, resolution: Option<i64>) -> Option<i64> {
    match task {
        "listops" => Some(2048),
        "text" => Some(4096),
        "retrieval" => Some(4000),
        "image" | "pathfinder" => resolution.map(|r| r * r),
        "pathx" => Some(16384),
        _ => None,
    }
}

pub(crate) fn max_len_within_task(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(task) = x.task() else {
        return vec![];
    };
    let (Some(kind), Some(max_len)) = (task.kind_name(), task.int("max_len")) else {
        return vec![];
    };
    let Some(length) = task_length(kind, task.int("resolution")) else {
        return vec![];
    };
    let image_like = matches!(kind, "image" | "pathfinder" | "pathx");
    if max_len > length {
        vec![Diagnostic::error(
            "lra::rule::max-len-beyond-task",
            format!("max_len {max_len} is longer than any {kind} input ({length})"),
        )
        .label(task.span_of("max_len"), format!("at most {length}"))
        .secondary(task.written_span("resolution"), "sets the image size")
        .help(format!(
            "set `max_len {length}`: padding beyond the task's length only costs time"
        ))]
    } else if image_like && max_len < length {
        vec![Diagnostic::warning(
            "lra::rule::max-len-truncates-images",
            format!("max_len {max_len} cuts every {kind} image ({length} pixels)"),
        )
        .label(
            task.span_of("max_len"),
            format!("images have {length} pixels"),
        )
        .help(format!(
            "the lower rows of each image are dropped; remove max_len to use {length}"
        ))]
    } else {
        vec![]
    }
}

/// Retrieval pools each document on its own and compares the two summaries: a summary must
/// see the whole document.
pub(crate) fn retrieval_two_tower(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let (Some(task), Some(model)) = (x.task(), x.model()) else {
        return vec![];
    };
    if !task.is_kind("retrieval") || model.ident("pool") != Some("first") {
        return vec![];
    }
    vec![Diagnostic::error(
        "lra::rule::retrieval-two-tower",
        "retrieval needs two-tower pooling, and `pool first` summarises a document by one character",
    )
    .label(model.span_of("pool"), "a single position, not a document summary")
    .secondary(task.written_span("interaction").or(Some(task.span)), "two documents pooled separately")
    .help("use `pool mean` (or `pool last` for causal models): each document is pooled over its own length, then compared")]
}

pub(crate) fn train_subset_exclusive(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(task) = x.task() else {
        return vec![];
    };
    let (Some(fraction), Some(limit)) = (
        task.written_span("train_fraction"),
        task.written_span("train_limit"),
    ) else {
        return vec![];
    };
    vec![Diagnostic::error(
        "lra::rule::train-subset-exclusive",
        "`train_fraction` and `train_limit` both choose the training subset",
    )
    .label(limit, "second choice")
    .secondary(Some(fraction), "first choice")
    .help("keep one of them")]
}

/// A missing data folder is a warning at check time (an error at run time), with the command
/// that makes it.
pub(crate) fn data_folder_exists(x: &ResolvedExperiment, context: &Context) -> Vec<Diagnostic> {
    if !context.check_data {
        return vec![];
    }
    let Some(task) = x.task() else {
        return vec![];
    };
    let (Some(kind), Some(data)) = (task.kind_name(), task.string("data")) else {
        return vec![];
    };
    if Path::new(data).is_dir() || task.section("generate").is_some() {
        return vec![];
    }
    let make = match kind {
        "listops" => format!("make it with `lra data gen listops --out {data}`"),
        "pathfinder" | "pathx" => {
            let resolution = task.int("resolution").unwrap_or(128);
            let difficulty = task.ident("difficulty").unwrap_or("hard");
            format!("make it with `lra data gen pathfinder --out {data} --resolution {resolution} --difficulty {difficulty} --n 20000`")
        }
        "text" => "point `data` at an aclImdb folder, or at a folder with `train.tsv`/`test.tsv` (`label<TAB>text`)".into(),
        "retrieval" => "point `data` at a folder with `*.train.tsv`, `*.eval.tsv`, `*.test.tsv` (`label id1 id2 text1 text2`)".into(),
        _ => "point `data` at CIFAR-10 (binary batches, or `train|test/<class>/*.png`)".into(),
    };
    vec![Diagnostic::warning(
        "lra::data-missing",
        format!("data folder `{data}` does not exist (yet)"),
    )
    .label(task.span_of("data"), "not found")
    .help(format!("`lra run` needs it: {make}"))]
}

/// ListOps keeps expressions strictly between the two lengths.
pub(crate) fn generate_lengths_ordered(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(g) = x.task().and_then(|t| t.section("generate")) else {
        return vec![];
    };
    let (Some(low), Some(high)) = (g.int("min_length"), g.int("max_length")) else {
        return vec![];
    };
    if high > low + 1 {
        return vec![];
    }
    vec![Diagnostic::error(
        "lra::rule::generate-lengths",
        format!("no expression is longer than {low} and shorter than {high}"),
    )
    .label(g.span_of("max_length"), format!("max_length {high}"))
    .secondary(g.written_span("min_length"), format!("min_length {low}"))
    .help("the bounds are exclusive: make max_length at least min_length + 2")]
}

/// Small Pathfinder canvases have no room for long target snakes (the generator would find
/// none): refuse the pairing here rather than at generation time.
pub(crate) fn pathfinder_difficulty_fits(x: &ResolvedExperiment, _: &Context) -> Vec<Diagnostic> {
    let Some(task) = x.task().filter(|t| t.is_kind("pathfinder")) else {
        return vec![];
    };
    let (Some(resolution), Some(difficulty)) = (task.int("resolution"), task.ident("difficulty"))
    else {
        return vec![];
    };
    let (Some(hardest), Some(asked)) = (
        Difficulty::hardest_at(resolution as usize),
        Difficulty::from_name(difficulty),
    ) else {
        return vec![];
    };
    if asked.contour_length() <= hardest.contour_length() {
        return vec![];
    }
    vec![Diagnostic::error(
        "lra::rule::pathfinder-difficulty-fits",
        format!(
            "{difficulty} contours ({} paddles) do not fit a {resolution}x{resolution} Pathfinder",
            asked.contour_length()
        ),
    )
    .label(
        task.span_of("resolution"),
        format!(
            "{resolution}x{resolution} fits {} contours at most",
            hardest.name()
        ),
    )
    .secondary(
        task.written_span("difficulty"),
        format!("difficulty {difficulty}"),
    )
    .help(format!(
        "write `difficulty {}`, or a resolution of 32 or more",
        hardest.name()
    ))]
}

pub(crate) fn cuda_available(x: &ResolvedExperiment, context: &Context) -> Vec<Diagnostic> {
    let Some(device) = x.root.ident("device") else {
        return vec![];
    };
    if context.cuda_built || !device.starts_with("cuda") {
        return vec![];
    }
    vec![Diagnostic::warning(
        "lra::cuda-not-built",
        "this lra was built without CUDA support",
    )
    .label(x.root.span_of("device"), "needs the `cuda` feature")
    .help("rebuild with `cargo build --release --features cuda` on a machine with the CUDA toolkit, or use `device cpu`")]
}

/// A `cuda` device on a machine whose driver shows no GPU of that index. A warning, not an
/// error: the spec is fine and runs where the GPU is (a Slurm node, say).
pub(crate) fn gpu_present(x: &ResolvedExperiment, context: &Context) -> Vec<Diagnostic> {
    let (Some(device), Some(gpus)) = (x.root.ident("device"), context.gpus) else {
        return vec![];
    };
    let ordinal = match device.strip_prefix("cuda") {
        Some("") => 0,
        Some(index) => match index
            .strip_prefix(':')
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) => i,
            None => return vec![],
        },
        None => return vec![],
    };
    if ordinal < gpus {
        return vec![];
    }
    let (message, label) = match gpus {
        0 => (
            "this machine has no GPU".to_string(),
            "asks for a GPU; `nvidia-smi` shows none here".to_string(),
        ),
        n => (
            format!("this machine has no GPU {ordinal}"),
            format!(
                "`nvidia-smi` shows {n} GPU{} here, numbered from 0",
                if n == 1 { "" } else { "s" }
            ),
        ),
    };
    vec![Diagnostic::warning("lra::rule::no-gpu", message)
        .label(x.root.span_of("device"), label)
        .help("run it where the GPU is (`lra run` fails without one), or write `device cpu`")]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{codes, context, resolve};
    use super::*;

    const M: &str = "model transformer { } finetune { epochs 1 }";

    #[test]
    fn max_len_is_checked_against_the_task() {
        let long = format!("{M} task listops {{ max_len 4096 }}");
        assert_eq!(
            codes(max_len_within_task, &long),
            ["lra::rule::max-len-beyond-task"]
        );
        let cut = format!("{M} task image {{ max_len 512 }}");
        assert_eq!(
            codes(max_len_within_task, &cut),
            ["lra::rule::max-len-truncates-images"]
        );
        let px = format!("{M} task pathfinder {{ resolution 64 }}");
        assert!(codes(max_len_within_task, &px).is_empty());
    }

    #[test]
    fn retrieval_refuses_first_pooling() {
        let bad = "task retrieval { } model s4d { pool first } finetune { epochs 1 }";
        assert_eq!(
            codes(retrieval_two_tower, bad),
            ["lra::rule::retrieval-two-tower"]
        );
        let good = "task retrieval { } model s4d { } finetune { epochs 1 }";
        assert!(codes(retrieval_two_tower, good).is_empty());
    }

    #[test]
    fn train_subsets_are_exclusive() {
        let bad = format!("{M} task text {{ train_fraction 0.5 train_limit 100 }}");
        assert_eq!(
            codes(train_subset_exclusive, &bad),
            ["lra::rule::train-subset-exclusive"]
        );
        assert!(codes(
            train_subset_exclusive,
            &format!("{M} task text {{ train_limit 100 }}")
        )
        .is_empty());
    }

    #[test]
    fn missing_data_folder_warns_with_the_command() {
        let x = resolve(&format!(
            "experiment \"t\" {{ {M} task listops {{ data \"/nonexistent/lo\" }} }}"
        ));
        let mut ctx = context();
        ctx.check_data = true;
        let d = data_folder_exists(&x, &ctx);
        assert_eq!(d.len(), 1);
        assert!(!d[0].is_error());
        assert!(d[0]
            .help
            .as_ref()
            .unwrap()
            .contains("lra data gen listops --out /nonexistent/lo"));
        let here = resolve(&format!(
            "experiment \"t\" {{ {M} task listops {{ data \".\" }} }}"
        ));
        assert!(data_folder_exists(&here, &ctx).is_empty());
    }

    #[test]
    fn generated_lengths_leave_room() {
        let bad = format!("{M} task listops {{ generate {{ min_length 10 max_length 11 }} }}");
        assert_eq!(
            codes(generate_lengths_ordered, &bad),
            ["lra::rule::generate-lengths"]
        );
        let ok = format!("{M} task listops {{ generate {{ min_length 10 max_length 50 }} }}");
        assert!(codes(generate_lengths_ordered, &ok).is_empty());
    }

    #[test]
    fn small_pathfinder_takes_easy_contours_only() {
        let hard = format!("{M} task pathfinder {{ resolution 16 }}");
        assert_eq!(
            codes(pathfinder_difficulty_fits, &hard),
            ["lra::rule::pathfinder-difficulty-fits"]
        );
        let medium = format!("{M} task pathfinder {{ resolution 16  difficulty medium }}");
        assert_eq!(codes(pathfinder_difficulty_fits, &medium).len(), 1);
        for ok in [
            "resolution 16  difficulty easy",
            "resolution 32  difficulty hard",
        ] {
            let spec = format!("{M} task pathfinder {{ {ok} }}");
            assert!(codes(pathfinder_difficulty_fits, &spec).is_empty(), "{ok}");
        }
    }

    #[test]
    fn cuda_on_a_machine_without_that_gpu_warns() {
        let on = |device: &str, gpus: Option<usize>| {
            let x = resolve(&format!(
                "experiment \"t\" {{ device {device} {M} task listops {{ }} }}"
            ));
            let ctx = Context { gpus, ..context() };
            gpu_present(&x, &ctx)
                .into_iter()
                .map(|d| d.message)
                .collect::<Vec<_>>()
        };
        assert_eq!(on("cuda", Some(0)), ["this machine has no GPU"]);
        assert_eq!(on("cuda:2", Some(2)), ["this machine has no GPU 2"]);
        assert!(on("cuda:1", Some(2)).is_empty());
        assert!(on("cuda", Some(1)).is_empty());
        assert!(on("cpu", Some(0)).is_empty());
        assert!(on("cuda", None).is_empty(), "nobody looked");
    }

    #[test]
    fn cuda_without_the_feature_warns() {
        let x = resolve(&format!(
            "experiment \"t\" {{ device cuda {M} task listops {{ }} }}"
        ));
        assert_eq!(cuda_available(&x, &context()).len(), 1);
        let mut ctx = context();
        ctx.cuda_built = true;
        assert!(cuda_available(&x, &ctx).is_empty());
    }
}
