//! Standard output that reports a failed write as an error instead of panicking as `print!`
//! does: `eie-compress simulate ... | head` closes the pipe early, and main treats a closed
//! pipe as the reader being done (exit 0, nothing printed), as ripgrep does.

use std::fmt;
use std::io::{self, Write};

use anyhow::Context;

/// Writes `args` to standard output.
pub fn write(args: fmt::Arguments) -> anyhow::Result<()> {
    io::stdout()
        .lock()
        .write_fmt(args)
        .context("writing to standard output")
}

/// Whether `e` is standard output's reader having gone (a closed pipe).
pub fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `print!` that returns the write's error from the enclosing function (`?`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))?
    };
}

/// `println!` that returns the write's error from the enclosing function (`?`).
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))?
    };
}
