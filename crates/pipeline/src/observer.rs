//! Progress without printing: the pipeline tells an [`Observer`] what it is doing, and the
//! caller decides what to show (the command-line tool draws progress bars).

/// Told about the pipeline's progress. Every method does nothing by default.
pub trait Observer: Sync {
    /// A phase of `steps` steps starts ("compress", one step per layer).
    fn start(&self, _phase: &str, _steps: u64) {}
    /// The next step of the phase starts, on `item` (a layer's name).
    fn step(&self, _item: &str) {}
    /// The step is done.
    fn advance(&self) {}
    /// The phase is over.
    fn finish(&self) {}
    /// A line worth reading while a long run goes on (retraining's epochs).
    fn note(&self, _line: &str) {}
    /// Something the user should know about the result (an SRAM overflow written anyway).
    fn warn(&self, _message: &str) {}
}

/// An observer that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}
