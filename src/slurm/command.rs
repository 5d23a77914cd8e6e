//! Runs one of Slurm's commands and returns what it printed, turning "not installed" and
//! "refused" into errors that name the command.

use std::io::ErrorKind;
use std::process::{Command, Output};

use super::error::{Result, SlurmError};

/// A Slurm command line, kept as words so errors can show it as a user would type it.
pub(crate) struct SlurmCommand {
    program: &'static str,
    args: Vec<String>,
}

impl SlurmCommand {
    pub fn new(program: &'static str) -> Self {
        SlurmCommand {
            program,
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The command as a shell line (quoted where needed), for messages.
    pub fn display(&self) -> String {
        std::iter::once(self.program.to_string())
            .chain(self.args.iter().map(|a| quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs it to the end; a missing program is [`SlurmError::NotInstalled`].
    pub fn output(&self) -> Result<Output> {
        Command::new(self.program)
            .args(&self.args)
            .output()
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => SlurmError::NotInstalled {
                    tool: self.program.to_string(),
                },
                _ => SlurmError::CommandFailed {
                    command: self.display(),
                    stderr: e.to_string(),
                },
            })
    }

    /// Runs it and returns its standard output; a non-zero exit is
    /// [`SlurmError::CommandFailed`] with its standard error.
    pub fn stdout(&self) -> Result<String> {
        let output = self.output()?;
        if !output.status.success() {
            return Err(SlurmError::CommandFailed {
                command: self.display(),
                stderr: stderr_text(&output),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// `word` as a shell reads it back: as it is when every character is safe (shlex would
/// quote `--array=0-3`, which is safe, for `=`), else quoted by shlex.
fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| word.to_string())
}

/// Standard error of a finished command, trimmed; its exit status when it printed nothing.
pub(crate) fn stderr_text(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if text.is_empty() {
        format!("it exited with {} and printed nothing", output.status)
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_words_with_spaces() {
        let command = SlurmCommand::new("sbatch")
            .arg("--parsable")
            .arg("my script.sbatch");
        assert_eq!(command.display(), "sbatch --parsable 'my script.sbatch'");
    }

    #[test]
    fn a_missing_program_is_not_installed() {
        // No Slurm command is named this; the error must say which tool is missing.
        let missing = SlurmCommand {
            program: "lra-no-such-slurm-tool",
            args: vec![],
        };
        match missing.output() {
            Err(SlurmError::NotInstalled { tool }) => assert_eq!(tool, "lra-no-such-slurm-tool"),
            other => panic!("expected NotInstalled, got {other:?}"),
        }
    }
}
