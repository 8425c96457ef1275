//! What a command may take of memory, estimated before any work from the headers, the model
//! description, the dataset's shape and the options, and refused past `--max-memory`
//! (docs/reliability.md, "Budgets").

use crate::error::{Error, Result};

/// The memory a command may take unless told otherwise: 4 GiB.
pub const DEFAULT_MAX_MEMORY: u64 = 4 << 30;

/// A size as text: bytes, or a number with `K`, `M`, `G` or `T` (binary: `1K` = 1024), such as
/// `512M` or `16G`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let (number, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("\"{text}\": expected a size such as 512M or 16G")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)
        .ok_or_else(|| format!("\"{text}\": expected a size such as 512M or 16G"))?;
    let bytes = n * (1u64 << shift) as f64;
    if bytes >= u64::MAX as f64 {
        return Err(format!("\"{text}\" is too large"));
    }
    Ok(bytes.max(1.0) as u64)
}

/// A size in binary units, as messages show it.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

/// The weights and the values a sample produces of an MLP of layers `(rows, inputs)`: its
/// input, every layer's outputs and their ReLU.
pub(crate) fn mlp_footprint(layers: impl IntoIterator<Item = (usize, usize)>) -> (u64, u64) {
    let (mut weights, mut values) = (0u64, 0u64);
    for (i, (rows, inputs)) in layers.into_iter().enumerate() {
        weights += (rows as u64) * (inputs as u64 + 1);
        values += 2 * rows as u64 + if i == 0 { inputs as u64 } else { 0 };
    }
    (weights, values)
}

/// What the program takes before any work (its code, its libraries, its first buffers).
const PROGRAM: u64 = 16 << 20;

/// The program's part's name.
const PROGRAM_PART: &str = "the program";

/// What each part of a command's work takes of memory, the program itself included.
#[derive(Debug)]
pub(crate) struct Estimate {
    parts: Vec<(String, u64)>,
}

impl Default for Estimate {
    fn default() -> Self {
        Self {
            parts: vec![(PROGRAM_PART.into(), PROGRAM)],
        }
    }
}

impl Estimate {
    /// Nothing yet, not even the program: an estimate of one part alone.
    pub(crate) fn part() -> Self {
        Self { parts: Vec::new() }
    }

    /// `bytes` more, for `what`.
    pub(crate) fn add(&mut self, what: impl Into<String>, bytes: u64) -> &mut Self {
        self.parts.push((what.into(), bytes));
        self
    }

    /// Every part of `other` but the program (counted once).
    pub(crate) fn extend(&mut self, other: Estimate) -> &mut Self {
        self.parts
            .extend(other.parts.into_iter().filter(|(w, _)| w != PROGRAM_PART));
        self
    }

    /// `samples` samples of `width` inputs each, as f32.
    pub(crate) fn samples(&mut self, samples: usize, width: usize) -> &mut Self {
        let bytes = (samples as u64)
            .saturating_mul(width as u64)
            .saturating_mul(4);
        self.add(format!("{samples} samples of {width} inputs"), bytes)
    }

    /// Training a network of `weights` weights whose forward pass produces `values` values a
    /// sample, in batches of `batch` (at most the samples trained on): burn's parameters, their gradients and Adam's two
    /// moments, the network as plain data and its copies in and out of burn (7 f32 each), and
    /// a batch's activations and their gradients, kept for the backward pass (4 each).
    pub(crate) fn training(&mut self, weights: u64, values: u64, batch: usize) -> &mut Self {
        self.add(
            format!("training {weights} weights"),
            weights.saturating_mul(28),
        )
        .add(
            format!("a batch of {batch} samples' activations"),
            values.saturating_mul(batch as u64).saturating_mul(16),
        )
    }

    /// Running a network of `weights` weights on `samples` samples in float: the plain network
    /// and burn's (3 f32 a weight with a copy between them), and a batch of up to 1000
    /// samples' activations (2 f32 each).
    pub(crate) fn inference(&mut self, weights: u64, values: u64, samples: usize) -> &mut Self {
        self.add(
            format!("a network of {weights} weights"),
            weights.saturating_mul(12),
        )
        .add(
            "a batch's activations",
            values
                .saturating_mul(samples.min(1000) as u64)
                .saturating_mul(8),
        )
    }

    /// A packed model whose `model.eie` is `len` bytes: the file's bytes and the layers
    /// decoded from them, as many again (codes, indices and pointers are fixed-width on disk
    /// and in memory).
    pub(crate) fn packed_model(&mut self, len: u64) -> &mut Self {
        self.add(
            format!("model.eie ({}) read and decoded", human(len)),
            len.saturating_mul(2),
        )
    }

    /// `threads` layers of `rows` x `cols` holding `nonzeros` weights packed at once for
    /// `pes` PEs with `index_bits`-bit indices, as `sweep` and `bench-paper` re-pack them:
    /// each its pointers (4 bytes per PE per column), its streams (2 bytes an entry, padding
    /// at most one entry per 2^bits rows of a PE's column), the encoder's slots (8 bytes a
    /// weight) and the timing model's queues (8 bytes per PE per slot of a `fifo`-deep queue);
    /// and each thread's encoder cursors (8 bytes a column).
    pub(crate) fn packing(
        &mut self,
        name: &str,
        (rows, cols, nonzeros): (usize, usize, u64),
        (pes, index_bits): (usize, u8),
        fifo: usize,
        threads: usize,
    ) -> &mut Self {
        let (rows, cols, pes, threads) = (rows as u64, cols as u64, pes as u64, threads as u64);
        let padding = cols
            .saturating_mul(pes)
            .saturating_mul(rows.div_ceil(pes.max(1)) >> index_bits);
        let entries = nonzeros.saturating_add(padding);
        let one = (cols + 1)
            .saturating_mul(pes)
            .saturating_mul(4)
            .saturating_add(entries.saturating_mul(2))
            .saturating_add(nonzeros.saturating_mul(8))
            .saturating_add(pes.saturating_mul(8 * fifo as u64 + 128));
        let cursors = (cols + 1).saturating_mul(8).saturating_mul(threads);
        let what = match threads {
            1 => format!("{name} packed for {pes} PEs"),
            _ => format!("{name} packed for {pes} PEs, {threads} at once"),
        };
        self.add(what, one.saturating_mul(threads).saturating_add(cursors))
    }

    /// Every part of `other` too.
    pub(crate) fn include(&mut self, other: Estimate) -> &mut Self {
        self.parts.extend(other.parts);
        self
    }

    /// The parts together.
    pub(crate) fn total(&self) -> u64 {
        self.parts.iter().fold(0u64, |a, p| a.saturating_add(p.1))
    }

    /// Refused when the parts add up to more than `max`, naming the total, the largest part and
    /// the limit.
    pub(crate) fn check(&self, max: u64) -> Result<()> {
        let total = self.total();
        if total <= max {
            return Ok(());
        }
        let (what, bytes) = self
            .parts
            .iter()
            .max_by_key(|p| p.1)
            .expect("a total over the limit has parts");
        Err(Error::Memory {
            estimate: human(total),
            largest: format!("{what}: {}", human(*bytes)),
            limit: human(max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units_and_show_back() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("100"), Ok(100));
        for bad in ["", "G", "-1G", "0", "4X", "inf", "1e30T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(human(4 << 30), "4.0 GiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(7), "7 B");
    }

    /// The packing estimate is an upper bound of what a packed layer holds (pointers, codes,
    /// indices), padding included, at few PEs (much padding) and many (many pointers).
    #[test]
    fn a_packing_estimate_covers_the_packed_layer() {
        for (rows, cols, density, pes, bits) in [
            (300, 200, 0.02, 1, 2),
            (300, 200, 0.5, 4, 4),
            (64, 1000, 0.1, 64, 1),
            (1000, 50, 0.01, 3, 8),
        ] {
            let (codes, book) = eie_simulate::workload::random_layer(rows, cols, density, 4, 7);
            let nonzeros = codes.len() as u64;
            let layer =
                eie_format::PackedLayer::encode_sparse("l", &codes, book, pes, bits).unwrap();
            let held: u64 = layer
                .streams()
                .iter()
                .map(|s| (s.codes().len() + s.z().len() + 4 * s.ptr().len()) as u64)
                .sum();
            let mut e = Estimate::part();
            e.packing("l", (rows, cols, nonzeros), (pes, bits), 8, 1);
            assert!(
                e.total() >= held,
                "{rows}x{cols} at {density} on {pes} PEs, {bits}-bit: {} < {held}",
                e.total()
            );
            // Not a blind bound either: within 4x of what is held plus the encoder's slots.
            assert!(
                e.total() <= 4 * (held + 8 * nonzeros) + 8 * 1024,
                "{}",
                e.total()
            );
        }
    }

    #[test]
    fn an_estimate_over_the_limit_names_its_largest_part() {
        // A whole command's estimate counts the program.
        let whole = Estimate::default().check(1 << 20).unwrap_err().to_string();
        assert!(whole.contains("the program: 16.0 MiB"), "{whole}");
        let mut e = Estimate::part();
        e.add("small", 10).add("large", 100);
        e.check(110).unwrap();
        let msg = e.check(100).unwrap_err().to_string();
        assert!(
            msg.contains("110 B") && msg.contains("large: 100 B"),
            "{msg}"
        );
    }
}
