//! Progress on stderr: the pipeline's [`Observer`] as progress bars, drawn only when stderr
//! is a terminal and the caller is not quiet, and notes and warnings as lines. The command
//! line and the Python package show progress through this one type.

#![deny(missing_docs)]

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use eie_pipeline::Observer;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shows the pipeline's progress where someone can see it.
pub struct Progress {
    visible: bool,
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    /// Progress shown unless `quiet` (`--quiet`; bars only on a terminal, warnings always).
    pub fn new(quiet: bool) -> Self {
        Self {
            visible: !quiet && std::io::stderr().is_terminal(),
            quiet,
            bar: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().expect("not poisoned").as_ref() {
            f(bar);
        }
    }
}

impl Observer for Progress {
    fn start(&self, phase: &str, steps: u64) {
        let target = if self.visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(steps), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(phase.to_string());
        if let Some(old) = self.bar.lock().expect("not poisoned").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn step(&self, item: &str) {
        self.with_bar(|b| b.set_message(item.to_string()));
    }

    fn advance(&self) {
        self.with_bar(|b| b.inc(1));
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("not poisoned").take() {
            bar.finish_and_clear();
        }
    }

    /// A line of progress on stderr (training's epochs), unless `--quiet`: long runs are
    /// followed in logs too, not only on terminals.
    fn note(&self, line: &str) {
        if !self.quiet {
            line_to_stderr(format_args!("{line}"));
        }
    }

    fn warn(&self, message: &str) {
        line_to_stderr(format_args!("warning: {message}"));
    }
}

/// Writes a line to standard error, ignoring a failure (there is nowhere to report it).
fn line_to_stderr(args: std::fmt::Arguments) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}
