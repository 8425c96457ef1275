//! Progress on stderr: the pipeline's [`Observer`] as progress bars, drawn only when stderr
//! is a terminal and `--quiet` is not given, and notes and warnings as lines.

use std::io::IsTerminal;
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
            errln!("{line}");
        }
    }

    fn warn(&self, message: &str) {
        errln!("warning: {message}");
    }
}
