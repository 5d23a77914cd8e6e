//! The Slurm executor's settings, as a batch file's `executor: { kind: slurm, … }` gives them.
//! Time limits and memory sizes are checked when read, in Slurm's own formats, so a typo is
//! reported at the batch file rather than by `sbatch` after half the stages are submitted.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Seconds before the time limit at which Slurm sends USR1 (`--signal=B:USR1@120`): time for
/// the worker to finish its step, write a checkpoint and requeue itself.
pub(crate) const CHECKPOINT_SIGNAL_LEAD_S: u64 = 120;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmOptions {
    /// `--partition`; absent: the cluster's default partition.
    pub partition: Option<String>,
    /// `--account` charged for the jobs.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// `--time` of each array task (one point), such as "12:00:00" or "2-00:00:00".
    pub time: Option<TimeLimit>,
    /// `--cpus-per-task`: the threads one point trains with.
    pub cpus: Option<NonZeroU32>,
    /// `--mem` per task, such as "32G".
    pub mem: Option<Memory>,
    /// GPUs per task (`--gres=gpu:N`); absent or 0: none.
    pub gpus: Option<u32>,
    /// Array tasks of one array running at once (`--array=…%N`); absent: no limit.
    pub parallel: Option<NonZeroU32>,
    /// More `#SBATCH` options, each as sbatch takes it: `["--constraint=a100", "--nice=10"]`.
    #[serde(default)]
    pub sbatch_args: Vec<SbatchArg>,
}

impl SlurmOptions {
    /// The options of a batch file's `executor: { kind: slurm, … }` mapping, or what is
    /// wrong with them (an unknown key, a bad value, a time limit too short).
    pub(crate) fn from_executor(value: &serde_yaml::Value) -> Result<Self, String> {
        let mut value = value.clone();
        if let serde_yaml::Value::Mapping(mapping) = &mut value {
            mapping.remove("kind");
        }
        let options: SlurmOptions = serde_yaml::from_value(value).map_err(|e| e.to_string())?;
        if let Some(problem) = options.problems().into_iter().next() {
            return Err(format!("{} ({})", problem.message, problem.help));
        }
        Ok(options)
    }

    /// The problems sbatch would only find after submission, with what to write instead:
    /// a time limit too short for the checkpoint signal.
    pub fn problems(&self) -> Vec<OptionProblem> {
        let mut problems = Vec::new();
        if let Some(time) = &self.time {
            if let Some(seconds) = time.seconds() {
                if seconds <= CHECKPOINT_SIGNAL_LEAD_S {
                    problems.push(OptionProblem {
                        field: "time",
                        message: format!(
                            "time limit {time} leaves no time to train: lra's workers are told \
                             to checkpoint {CHECKPOINT_SIGNAL_LEAD_S} s before the limit"
                        ),
                        help: "give each task more than 2 minutes, such as \"1:00:00\"".into(),
                    });
                }
            }
        }
        problems
    }
}

/// A setting Slurm would accept but that cannot work, named by its key under `executor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionProblem {
    pub field: &'static str,
    pub message: String,
    pub help: String,
}

/// A time limit in one of sbatch's formats: `minutes`, `minutes:seconds`,
/// `hours:minutes:seconds`, `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`,
/// or `UNLIMITED`/`INFINITE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeLimit {
    text: String,
    /// `None` for an unlimited time.
    seconds: Option<u64>,
}

impl TimeLimit {
    pub fn seconds(&self) -> Option<u64> {
        self.seconds
    }
}

impl FromStr for TimeLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{text}` is not a Slurm time limit: write hours:minutes:seconds (\"12:00:00\"), \
                 days-hours:minutes:seconds (\"2-00:00:00\"), or minutes (\"90\")"
            )
        };
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("unlimited") || trimmed.eq_ignore_ascii_case("infinite") {
            return Ok(TimeLimit {
                text: trimmed.to_string(),
                seconds: None,
            });
        }
        let number = |part: &str| -> Result<u64, String> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let (days, clock) = match trimmed.split_once('-') {
            Some((days, clock)) => (Some(number(days)?), clock),
            None => (None, trimmed),
        };
        let parts = clock
            .split(':')
            .map(number)
            .collect::<Result<Vec<_>, _>>()?;
        let seconds = match (days, parts.as_slice()) {
            (None, [m]) => m * 60,
            (None, [m, s]) => m * 60 + s,
            (None, [h, m, s]) => h * 3600 + m * 60 + s,
            (Some(d), [h]) => d * 86_400 + h * 3600,
            (Some(d), [h, m]) => d * 86_400 + h * 3600 + m * 60,
            (Some(d), [h, m, s]) => d * 86_400 + h * 3600 + m * 60 + s,
            _ => return Err(bad()),
        };
        if seconds == 0 {
            return Err(format!(
                "`{text}` is a time limit of zero: give each task time to train, such as \"12:00:00\""
            ));
        }
        Ok(TimeLimit {
            text: trimmed.to_string(),
            seconds: Some(seconds),
        })
    }
}

impl TryFrom<String> for TimeLimit {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<TimeLimit> for String {
    fn from(time: TimeLimit) -> String {
        time.text
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A memory size as sbatch's `--mem` takes it: a whole number with an optional unit K, M, G or
/// T (no unit: megabytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Memory(String);

impl FromStr for Memory {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let digits = trimmed.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &trimmed[digits.len()..];
        let valid_unit = matches!(
            unit.to_ascii_uppercase().as_str(),
            "" | "K" | "M" | "G" | "T" | "KB" | "MB" | "GB" | "TB"
        );
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !valid_unit {
            return Err(format!(
                "`{text}` is not a Slurm memory size: write a whole number with a unit K, M, G \
                 or T, such as \"32G\" or \"500M\""
            ));
        }
        if digits.bytes().all(|b| b == b'0') {
            return Err(format!(
                "`{text}` asks for no memory; Slurm reads `--mem=0` as \"all of the node's \
                 memory\": write the size a task needs, such as \"32G\""
            ));
        }
        Ok(Memory(trimmed.to_string()))
    }
}

impl TryFrom<String> for Memory {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Memory> for String {
    fn from(memory: Memory) -> String {
        memory.0
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One extra sbatch option, written as its own `#SBATCH` line. Options lra sets itself
/// (the array, signal, output and job name) are refused, since a second value would silently
/// win over lra's and break requeueing or the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SbatchArg(String);

/// Options the rendered script sets; an extra argument may not override them.
const OWNED_OPTIONS: &[&str] = &[
    "--array",
    "--signal",
    "--requeue",
    "--no-requeue",
    "--output",
    "--error",
    "--open-mode",
    "--job-name",
    "--parsable",
    "--dependency",
];

impl FromStr for SbatchArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if !trimmed.starts_with("--") || trimmed.len() == 2 {
            return Err(format!(
                "`{text}` is not a long sbatch option: write it as sbatch takes it, such as \
                 \"--constraint=a100\""
            ));
        }
        if trimmed.contains(['\n', '\r']) {
            return Err(format!(
                "`{text}` spans several lines: give one option per list item"
            ));
        }
        let name = trimmed.split(['=', ' ']).next().unwrap_or(trimmed);
        if OWNED_OPTIONS.contains(&name) {
            return Err(format!(
                "`{name}` is set by lra itself (job arrays, checkpoint signal, logs): remove it \
                 from sbatch_args; use `parallel` for the array's limit and `time` for the \
                 time limit"
            ));
        }
        Ok(SbatchArg(trimmed.to_string()))
    }
}

impl TryFrom<String> for SbatchArg {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<SbatchArg> for String {
    fn from(arg: SbatchArg) -> String {
        arg.0
    }
}

impl fmt::Display for SbatchArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_in_every_sbatch_format() {
        let seconds = |t: &str| t.parse::<TimeLimit>().unwrap().seconds();
        assert_eq!(seconds("90"), Some(5400));
        assert_eq!(seconds("90:30"), Some(5430));
        assert_eq!(seconds("12:00:00"), Some(43_200));
        assert_eq!(seconds("2-12"), Some(216_000));
        assert_eq!(seconds("1-00:30"), Some(88_200));
        assert_eq!(seconds("1-00:00:01"), Some(86_401));
        assert_eq!(seconds("UNLIMITED"), None);
    }

    #[test]
    fn bad_time_limits_say_which_formats_work() {
        for bad in ["12h", "1:2:3:4", "", "-1", "1-", "a:00", "0", "00:00:00"] {
            let error = bad.parse::<TimeLimit>().unwrap_err();
            assert!(error.contains(&format!("`{bad}`")), "{error}");
        }
        let error = "12h".parse::<TimeLimit>().unwrap_err();
        assert!(error.contains("\"12:00:00\""), "{error}");
    }

    #[test]
    fn memory_sizes() {
        for good in ["32G", "500M", "1024", "2T", "64gb"] {
            assert!(good.parse::<Memory>().is_ok(), "{good}");
        }
        for bad in ["32 GB", "G", "1.5G", "32X", "0", "0G", "-1G"] {
            let error = bad.parse::<Memory>().unwrap_err();
            assert!(error.contains("32G"), "{bad}: {error}");
        }
    }

    #[test]
    fn extra_args_must_be_long_options_lra_does_not_set() {
        assert!("--constraint=a100".parse::<SbatchArg>().is_ok());
        assert!("-C a100".parse::<SbatchArg>().unwrap_err().contains("long"));
        let owned = "--array=0-3".parse::<SbatchArg>().unwrap_err();
        assert!(owned.contains("`--array` is set by lra"), "{owned}");
        assert!("--signal=USR2@60".parse::<SbatchArg>().is_err());
    }

    #[test]
    fn yaml_with_unknown_keys_or_bad_values_is_refused() {
        let options: SlurmOptions = serde_yaml::from_str(
            "{ partition: gpu, time: \"12:00:00\", cpus: 8, mem: 32G, gpus: 1, parallel: 16 }",
        )
        .unwrap();
        assert_eq!(options.time.unwrap().seconds(), Some(43_200));
        assert_eq!(options.parallel.map(NonZeroU32::get), Some(16));

        let unknown = serde_yaml::from_str::<SlurmOptions>("{ partiton: gpu }").unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `partiton`"),
            "{unknown}"
        );
        let bad_time = serde_yaml::from_str::<SlurmOptions>("{ time: 12h }").unwrap_err();
        assert!(
            bad_time.to_string().contains("not a Slurm time limit"),
            "{bad_time}"
        );
        let zero = serde_yaml::from_str::<SlurmOptions>("{ parallel: 0 }").unwrap_err();
        assert!(zero.to_string().contains("nonzero"), "{zero}");
    }

    #[test]
    fn options_from_a_batch_files_executor_mapping() {
        let value: serde_yaml::Value =
            serde_yaml::from_str("{ kind: slurm, partition: gpu, mem: 8G }").unwrap();
        let options = SlurmOptions::from_executor(&value).unwrap();
        assert_eq!(options.partition.as_deref(), Some("gpu"));
        let bad: serde_yaml::Value = serde_yaml::from_str("{ kind: slurm, gpu: 1 }").unwrap();
        let error = SlurmOptions::from_executor(&bad).unwrap_err();
        assert!(error.contains("unknown field `gpu`"), "{error}");
        let short: serde_yaml::Value =
            serde_yaml::from_str("{ kind: slurm, time: \"1\" }").unwrap();
        assert!(SlurmOptions::from_executor(&short)
            .unwrap_err()
            .contains("more than 2 minutes"));
    }

    #[test]
    fn a_time_limit_shorter_than_the_signal_lead_is_a_problem() {
        let short: SlurmOptions = serde_yaml::from_str("{ time: \"2\" }").unwrap();
        let problems = short.problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "time");
        let long: SlurmOptions = serde_yaml::from_str("{ time: \"3\" }").unwrap();
        assert!(long.problems().is_empty());
    }
}
