//! Errors across the boundary: every failure of the tool is an `eie_compress.EieError`
//! carrying the one-line message the command line prints after `error: `.

use pyo3::PyErr;

pyo3::create_exception!(
    eie_compress,
    EieError,
    pyo3::exceptions::PyException,
    "A request the tool refused or a run that failed: the message names the option, file, layer or tensor at fault and what was expected, as the command line's error does."
);

/// The exception for a message of our own.
pub fn new(message: impl Into<String>) -> PyErr {
    EieError::new_err(message.into())
}

/// The exception for a library error: its one-line message.
pub fn from<E: std::error::Error + 'static>(e: E) -> PyErr {
    EieError::new_err(eie_commands::one_line(&e))
}
