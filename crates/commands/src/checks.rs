//! Checks that need no file: what the command line's parser checks of a flag's value, checked
//! again here for every other caller of the library, whose requests are plain data.

use eie_format::MAX_PES;
use eie_images::{Fit, MAX_SRAM_BYTES};

use crate::error::{Error, Result};
use crate::inputs::{InputRequest, Source};

fn refuse(option: &str, reason: String) -> Result<()> {
    Err(Error::Option {
        option: option.to_string(),
        reason,
    })
}

/// A PE count in 1..=[`MAX_PES`].
pub(crate) fn pes(pes: u32) -> Result<()> {
    if pes == 0 || pes as usize > MAX_PES {
        return refuse("--pes", format!("{pes} PEs: expected 1..={MAX_PES}"));
    }
    Ok(())
}

/// The SRAM sizes and the pointer width a model is fitted to: 16- or 32-bit pointers, and
/// whole KiB from 1 KiB to 1 TiB (a bundle records KiB).
pub(crate) fn fit(fit: &Fit) -> Result<()> {
    if ![16, 32].contains(&fit.pointer_bits) {
        return refuse(
            "--pointer-bits",
            format!("{}: expected 16 or 32", fit.pointer_bits),
        );
    }
    for (option, bytes) in [
        ("--spmat-kib", fit.capacity.spmat_bytes),
        ("--pointer-kib", fit.capacity.pointer_bytes),
    ] {
        if bytes % 1024 != 0 || !(1024..=MAX_SRAM_BYTES).contains(&bytes) {
            return refuse(
                option,
                format!(
                    "{bytes} bytes: expected a whole number of KiB in 1..={}",
                    MAX_SRAM_BYTES / 1024
                ),
            );
        }
    }
    Ok(())
}

/// Generated activations' density in [0, 1].
pub(crate) fn inputs(input: &InputRequest) -> Result<()> {
    if let Source::Generated { density, .. } = input.source {
        eie_simulate::workload::check_act_density(density)?;
    }
    Ok(())
}
