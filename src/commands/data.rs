//! `lra data gen|stats|show`.

use std::path::PathBuf;
use std::time::Instant;

use clap::builder::TypedValueParser;
use clap::{Args, Subcommand};

use crate::data::detect::config_for;
use crate::data::gen::listops::ListOpsGen;
use crate::data::gen::pathfinder::{self, PathfinderParams};
use crate::data::store::Inputs;
use crate::data::{load, show, stats};
use crate::spec::{Difficulty, TaskKind};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate a data set in its release format (ListOps, Pathfinder).
    Gen(GenArgs),
    /// Counts per split, label balance, length histogram and vocabulary size of a data folder.
    Stats(StatsArgs),
    /// Draw image samples as a PNG grid, or print text samples.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct GenArgs {
    #[command(subcommand)]
    pub what: GenCommand,
}

#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// LRA ListOps: basic_{train,val,test}.tsv.
    Listops(ListOpsArgs),
    /// Pathfinder / Path-X: curv_*/imgs/<b>/sample_<i>.png + metadata/<b>.npy.
    Pathfinder(PathfinderArgs),
}

#[derive(Debug, Args)]
pub struct ListOpsArgs {
    #[arg(long, default_value = "data/listops")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 96_000)]
    pub train: usize,
    #[arg(long, default_value_t = 2_000)]
    pub val: usize,
    #[arg(long, default_value_t = 2_000)]
    pub test: usize,
    /// Lengths must be greater than this.
    #[arg(long, default_value_t = 500)]
    pub min_len: usize,
    /// Lengths must be less than this.
    #[arg(long, default_value_t = 2000)]
    pub max_len: usize,
    /// Deepest nesting of operators; the root is at depth 1.
    #[arg(long, default_value_t = 10)]
    pub max_depth: usize,
    /// Most arguments of one operator (2 to 10).
    #[arg(long, default_value_t = 10)]
    pub max_args: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct PathfinderArgs {
    /// Output folder [default: data/pathfinder<resolution>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 32, value_parser = clap::builder::PossibleValuesParser::new(["16", "32", "64", "128", "256"]).map(|s| s.parse::<usize>().expect("listed")))]
    pub resolution: usize,
    #[arg(long, value_enum, default_value_t = Difficulty::Hard)]
    pub difficulty: Difficulty,
    /// Number of images.
    #[arg(long, default_value_t = 20_000)]
    pub n: usize,
    /// Images per `imgs/<b>` folder and metadata file.
    #[arg(long, default_value_t = 1_000)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    pub path: PathBuf,
    /// The task, when it cannot be told from the files.
    #[arg(long, value_enum)]
    pub task: Option<TaskKind>,
    /// Pathfinder difficulty folder to read [default: the hardest present].
    #[arg(long, value_enum)]
    pub difficulty: Option<Difficulty>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub path: PathBuf,
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// PNG file for image samples.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub task: Option<TaskKind>,
    #[arg(long, value_enum)]
    pub difficulty: Option<Difficulty>,
}

pub fn run(cmd: DataCommand) -> miette::Result<()> {
    match cmd {
        DataCommand::Gen(GenArgs {
            what: GenCommand::Listops(a),
        }) => gen_listops(a),
        DataCommand::Gen(GenArgs {
            what: GenCommand::Pathfinder(a),
        }) => gen_pathfinder(a),
        DataCommand::Stats(a) => {
            let cfg = config_for(&a.path, a.task, a.difficulty)?;
            let ds = load(&cfg, None)?;
            println!(
                "{} ({:?}) at {}",
                cfg.task.title(),
                ds.input,
                a.path.display()
            );
            print!("{}", stats::describe(&ds));
            Ok(())
        }
        DataCommand::Show(a) => {
            let cfg = config_for(&a.path, a.task, a.difficulty)?;
            let ds = load(&cfg, None)?;
            match (&ds.train.examples.inputs, a.out) {
                (Inputs::Pixels(_), Some(out)) => {
                    let labels = show::image_grid(&ds.train, a.n, 4, &out)?;
                    let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
                    println!(
                        "wrote {} ({} images, labels in grid order: {})",
                        out.display(),
                        labels.len(),
                        labels.join(" ")
                    );
                }
                (Inputs::Pixels(_), None) => {
                    return Err(miette::miette!(
                        help = "add --out samples.png",
                        "image samples need a PNG file to draw into"
                    ))
                }
                _ => {
                    for line in show::text_samples(&ds.train, &ds.vocab, a.n) {
                        println!("{line}");
                    }
                }
            }
            Ok(())
        }
    }
}

fn gen_listops(a: ListOpsArgs) -> miette::Result<()> {
    let gen = ListOpsGen {
        train: a.train,
        val: a.val,
        test: a.test,
        min_len: a.min_len,
        max_len: a.max_len,
        max_depth: a.max_depth,
        max_args: a.max_args,
        seed: a.seed,
    };
    if let Err(why) = gen.check() {
        return Err(miette::miette!(
            help = "lengths are kept when min-len < length < max-len; an operator has 2 to \
                    max-args arguments and nests at most max-depth levels",
            "cannot generate ListOps: {why}"
        ));
    }
    let start = Instant::now();
    let [train, val, test] = gen.write(&a.out)?;
    let secs = start.elapsed().as_secs_f64();
    let total = train + val + test;
    println!(
        "wrote {train} / {val} / {test} expressions to {} in {secs:.1} s ({:.0} per second)",
        a.out.display(),
        total as f64 / secs
    );
    Ok(())
}

fn gen_pathfinder(a: PathfinderArgs) -> miette::Result<()> {
    let params = PathfinderParams::lra(a.resolution, a.difficulty)?;
    let out = a
        .out
        .unwrap_or_else(|| PathBuf::from(format!("data/pathfinder{}", a.resolution)));
    let start = Instant::now();
    let dir = pathfinder::write(&params, a.difficulty, &out, a.n, a.batch_size, a.seed)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wrote {} images to {} in {secs:.1} s ({:.0} per second)",
        a.n,
        dir.display(),
        a.n as f64 / secs
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Lra {
        #[command(subcommand)]
        data: DataCommand,
    }

    fn parse(args: &[&str]) -> DataCommand {
        Lra::try_parse_from(std::iter::once("lra").chain(args.iter().copied()))
            .unwrap()
            .data
    }

    #[test]
    fn gen_has_lra_defaults() {
        let DataCommand::Gen(GenArgs {
            what: GenCommand::Listops(a),
        }) = parse(&["gen", "listops"])
        else {
            panic!()
        };
        assert_eq!(a.out, PathBuf::from("data/listops"));
        assert_eq!(
            (a.train, a.val, a.test, a.min_len, a.max_len),
            (96_000, 2_000, 2_000, 500, 2000)
        );
        let DataCommand::Gen(GenArgs {
            what: GenCommand::Pathfinder(p),
        }) = parse(&[
            "gen",
            "pathfinder",
            "--resolution",
            "128",
            "--difficulty",
            "easy",
        ])
        else {
            panic!()
        };
        assert_eq!(
            (p.resolution, p.difficulty, p.out),
            (128, Difficulty::Easy, None)
        );
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        let try_parse = |args: &[&str]| {
            Lra::try_parse_from(std::iter::once("lra").chain(args.iter().copied())).is_err()
        };
        assert!(try_parse(&["gen", "pathfinder", "--resolution", "48"]));
        assert!(try_parse(&["gen", "pathfinder", "--difficulty", "extreme"]));
        assert!(try_parse(&["stats"]));
    }
}
