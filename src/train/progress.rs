//! Progress bars: live on a terminal, hidden otherwise, and log lines printed through them so
//! they never garble the bar.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Progress {
    bar: ProgressBar,
    /// Print log lines to stderr ourselves when the bar is hidden.
    visible: bool,
}

impl Progress {
    /// A bar labelled `label`; drawn among `others` when other runs are in flight.
    pub fn new(
        label: &str,
        total: u64,
        done: u64,
        quiet: bool,
        others: Option<&MultiProgress>,
    ) -> Self {
        let visible = !quiet && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if visible {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {msg} (ETA {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.set_position(done);
        let bar = match others {
            Some(others) if visible => others.add(bar),
            _ => bar,
        };
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar, visible }
    }

    pub fn step(&self, loss: f64, accuracy: f64, tokens_per_s: f64) {
        self.bar.set_message(format!(
            "loss {loss:.4} acc {:.1}% {:.0} tok/s",
            accuracy * 100.0,
            tokens_per_s
        ));
        self.bar.inc(1);
    }

    /// A log line above the bar.
    pub fn println(&self, line: &str, quiet: bool) {
        if self.visible {
            self.bar.println(line);
        } else if !quiet {
            eprintln!("{line}");
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
