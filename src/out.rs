//! Standard output and standard error without `print!`'s panic: `eie-compress simulate ... |
//! head` closes the pipe early. A closed standard output means its reader is done, not that
//! the command failed: what is left of the output is dropped and the command goes on (the
//! files it writes, its checks and its exit status are what they would have been), as
//! `cmd > /dev/null` would. Any other failure to write standard output is an error.
//! Standard error has nowhere to report its own failures, so they are dropped.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

/// Set once standard output's reader has gone.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to standard output; after a closed pipe, nothing.
pub fn write(args: fmt::Arguments) -> anyhow::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    match io::stdout().lock().write_fmt(args) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other.context("writing to standard output"),
    }
}

/// Writes `args` to standard error, ignoring a failure (there is nowhere to report it).
pub fn write_err(args: fmt::Arguments) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// `print!` that returns a failed write's error from the enclosing function (`?`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))?
    };
}

/// `println!` that returns a failed write's error from the enclosing function (`?`).
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `eprintln!` that does not panic when standard error is closed.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}
