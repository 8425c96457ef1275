//! The fixed-point primitives of docs/fixed-point.md: formats, rounding, saturation, input
//! quantization and calibration.

use crate::error::{Error, Result};

/// Largest fraction of an activation: the bias column's constant 1 must be a 16-bit value.
pub const MAX_ACT_FRAC: u8 = 14;

/// The arithmetic's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arith {
    /// Accumulator width W, an even number in 16..=62 (default 32).
    pub acc_bits: u8,
    /// Apply ReLU on the last layer's write-back too (default: its outputs are logits).
    pub relu_last: bool,
}

impl Default for Arith {
    fn default() -> Self {
        Self {
            acc_bits: 32,
            relu_last: false,
        }
    }
}

impl Arith {
    /// Checks the accumulator width.
    pub fn validate(&self) -> Result<()> {
        if !(16..=62).contains(&self.acc_bits) || !self.acc_bits.is_multiple_of(2) {
            return Err(Error::Parameter {
                what: "the accumulator width",
                expected: "an even number of bits in 16..=62",
                got: self.acc_bits.to_string(),
            });
        }
        Ok(())
    }

    /// Fractional bits the accumulator has beyond the output's: (W - 16) / 2.
    pub fn guard_bits(&self) -> u32 {
        (self.acc_bits as u32 - 16) / 2
    }
}

/// `x x 2^-s` rounded to nearest, ties towards +infinity (s > 0); `x x 2^-s` exactly for s <= 0.
pub fn round_shift(x: i128, s: i32) -> i128 {
    if s > 0 {
        (x + (1i128 << (s - 1))) >> s
    } else {
        x << (-s)
    }
}

/// `x` clamped to a signed `bits`-bit range.
pub fn saturate(x: i128, bits: u32) -> i128 {
    let hi = (1i128 << (bits - 1)) - 1;
    x.clamp(-hi - 1, hi)
}

/// A float as a 16-bit Q value with `frac` fractional bits: rounded half away from zero,
/// saturated.
pub fn to_q16(x: f32, frac: u8) -> i16 {
    saturate((x as f64 * (frac as f64).exp2()).round() as i128, 16) as i16
}

/// A 16-bit Q value as a float.
pub fn from_q16(q: i16, frac: u8) -> f32 {
    (q as f64 * (-(frac as f64)).exp2()) as f32
}

/// Quantizes an input vector; NaN and infinite values are errors.
pub fn quantize(x: &[f32], frac: u8) -> Result<Vec<i16>> {
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteInput {
            index,
            value: x[index],
        });
    }
    Ok(x.iter().map(|&v| to_q16(v, frac)).collect())
}

/// The largest fraction in 0..=14 at which `max_abs` fits 16 bits (14 when it is 0).
pub fn fraction_for(max_abs: f64) -> u8 {
    (0..=MAX_ACT_FRAC)
        .rev()
        .find(|&f| (max_abs * (f as f64).exp2()).round() <= i16::MAX as f64)
        .unwrap_or(0)
}

/// Checks given activation fractions: one per boundary (layers + 1), each in 0..=14.
pub fn check_fractions(fracs: &[u8], layers: usize) -> Result<()> {
    if fracs.len() != layers + 1 {
        return Err(Error::Fractions {
            expected: layers + 1,
            got: fracs.len(),
        });
    }
    if let Some(&f) = fracs.iter().find(|&&f| f > MAX_ACT_FRAC) {
        return Err(Error::Parameter {
            what: "an activation fraction",
            expected: "in 0..=14",
            got: f.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up_and_shifts_are_exact_leftwards() {
        assert_eq!(round_shift(5, 1), 3); // 2.5 -> 3
        assert_eq!(round_shift(-5, 1), -2); // -2.5 -> -2 (towards +infinity)
        assert_eq!(round_shift(7, 2), 2); // 1.75 -> 2
        assert_eq!(round_shift(-7, 2), -2);
        assert_eq!(round_shift(3, 0), 3);
        assert_eq!(round_shift(3, -4), 48);
    }

    #[test]
    fn saturation_and_q16() {
        assert_eq!(saturate(40000, 16), 32767);
        assert_eq!(saturate(-40000, 16), -32768);
        assert_eq!(to_q16(1.0, 14), 16384);
        assert_eq!(to_q16(-2.5, 14), -32768);
        assert_eq!(to_q16(0.5 / 16384.0, 14), 1); // half a step rounds away from zero
        assert_eq!(from_q16(-8192, 14), -0.5);
        assert!(quantize(&[0.0, f32::NAN], 8).is_err());
    }

    #[test]
    fn fractions() {
        assert_eq!(fraction_for(0.0), 14);
        assert_eq!(fraction_for(1.0), 14);
        assert_eq!(fraction_for(2.0), 13);
        assert_eq!(fraction_for(100.0), 8); // 100 x 2^8 = 25600; 2^9 would overflow
        assert_eq!(fraction_for(1e9), 0);
        assert!(check_fractions(&[14, 15], 1).is_err());
        assert!(check_fractions(&[14], 1).is_err());
        assert!(
            Arith {
                acc_bits: 33,
                relu_last: false
            }
            .validate()
            .is_err()
        );
        assert!(
            Arith {
                acc_bits: 64,
                relu_last: false
            }
            .validate()
            .is_err()
        );
        assert_eq!(Arith::default().guard_bits(), 8);
    }
}
