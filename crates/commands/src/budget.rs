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

/// What each part of a command's work takes of memory, the program itself included.
#[derive(Debug)]
pub(crate) struct Estimate {
    parts: Vec<(String, u64)>,
}

impl Default for Estimate {
    fn default() -> Self {
        Self {
            parts: vec![("the program".into(), PROGRAM)],
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

    /// Refused when the parts add up to more than `max`, naming the total, the largest part and
    /// the limit.
    pub(crate) fn check(&self, max: u64) -> Result<()> {
        let total = self.parts.iter().fold(0u64, |a, p| a.saturating_add(p.1));
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
