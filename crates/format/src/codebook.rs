//! The shared-weight table: 2^code_bits entries, code 0 is the value zero.

use crate::error::{Error, Result};

/// Smallest code width the format supports.
pub const MIN_CODE_BITS: u8 = 1;
/// Largest code width the format supports.
pub const MAX_CODE_BITS: u8 = 8;
/// Largest fractional-bit count a codebook's fixed-point values use.
///
/// Small weights get more fractional bits so that their 16 bits are not wasted on leading
/// zeros; 30 keeps a product of two 16-bit values and its shift comfortably inside 64 bits.
pub const MAX_FRAC_BITS: u8 = 30;

/// A layer's codebook: the float value of every code and its 16-bit fixed-point image.
///
/// Invariants (checked by every constructor): the table has exactly 2^code_bits entries;
/// entry 0 is 0.0; entries 1..len are the finite values the layer's codes refer to; entries
/// from len on are unused and hold 0.0; `fixed[c] == round(values[c] * 2^frac_bits)`
/// (half away from zero) and every fixed value fits an `i16`; `frac_bits` is the largest
/// count in 0..=[`MAX_FRAC_BITS`] for which that holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    code_bits: u8,
    len: usize,
    values: Vec<f32>,
    frac_bits: u8,
    fixed: Vec<i16>,
}

impl Codebook {
    /// A codebook whose codes 1, 2, ... take `nonzero` in the order given.
    ///
    /// Fewer values than the table holds is fine (the rest of the table is unused); more is
    /// [`Error::TooManyValues`]. Values must be finite and fit 16-bit fixed point.
    pub fn new(code_bits: u8, nonzero: &[f32]) -> Result<Self> {
        check_code_bits(code_bits)?;
        let capacity = 1usize << code_bits;
        if nonzero.len() > capacity - 1 {
            return Err(Error::TooManyValues {
                got: nonzero.len(),
                code_bits,
                max: capacity - 1,
            });
        }
        for (i, &v) in nonzero.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::NonFiniteValue {
                    code: i + 1,
                    value: v,
                });
            }
            // A shared value of zero would make a stored entry a pruned weight, and two equal
            // values two encodings of the same weights: code 0 is the only zero, codes differ.
            if v == 0.0 {
                return Err(Error::InvalidCodebook {
                    reason: format!("code {} is zero; only code 0 may be", i + 1),
                });
            }
            if let Some(d) = nonzero[..i].iter().position(|&u| u == v) {
                return Err(Error::InvalidCodebook {
                    reason: format!("codes {} and {} share the value {v}", d + 1, i + 1),
                });
            }
        }
        let mut values = vec![0.0f32; capacity];
        values[1..=nonzero.len()].copy_from_slice(nonzero);
        let frac_bits = choose_frac_bits(&values)?;
        let fixed = values
            .iter()
            .map(|&v| to_fixed(v, frac_bits) as i16)
            .collect();
        Ok(Self {
            code_bits,
            len: nonzero.len() + 1,
            values,
            frac_bits,
            fixed,
        })
    }

    /// The exact codebook of a tensor that already holds few distinct values: every distinct
    /// non-zero value (`-0.0` counts as zero) gets a code, in ascending order of value.
    pub fn from_distinct_values(
        code_bits: u8,
        values: impl IntoIterator<Item = f32>,
    ) -> Result<Self> {
        check_code_bits(code_bits)?;
        let mut distinct: Vec<f32> = Vec::new();
        for v in values {
            if v == 0.0 {
                continue;
            }
            if !v.is_finite() {
                return Err(Error::InvalidCodebook {
                    reason: format!("a value to share is not finite ({v})"),
                });
            }
            // Sorted insert: a tensor with more distinct values than the table holds is
            // rejected as soon as it shows one too many, without collecting them all.
            match distinct.binary_search_by(|x| x.total_cmp(&v)) {
                Ok(_) => {}
                Err(at) => {
                    if distinct.len() == (1usize << code_bits) - 1 {
                        return Err(Error::TooManyValues {
                            got: distinct.len() + 1,
                            code_bits,
                            max: distinct.len(),
                        });
                    }
                    distinct.insert(at, v);
                }
            }
        }
        Self::new(code_bits, &distinct)
    }

    /// Rebuilds a codebook from its stored parts, checking every invariant (used by the
    /// bundle loader: the stored fixed-point values and fraction must be the ones the rule
    /// gives, so a file cannot disagree with itself).
    pub fn from_parts(
        code_bits: u8,
        len: usize,
        values: &[f32],
        frac_bits: u8,
        fixed: &[i16],
    ) -> Result<Self> {
        check_code_bits(code_bits)?;
        let capacity = 1usize << code_bits;
        let invalid = |reason: String| Err(Error::InvalidCodebook { reason });
        if values.len() != capacity || fixed.len() != capacity {
            return invalid(format!(
                "{} values and {} fixed-point values for {code_bits}-bit codes, expected {capacity} of each",
                values.len(),
                fixed.len()
            ));
        }
        if len == 0 || len > capacity {
            return invalid(format!("{len} defined entries, expected 1..={capacity}"));
        }
        if values[0].to_bits() != 0 {
            return invalid(format!("code 0 must be 0.0, found {}", values[0]));
        }
        if let Some(c) = (len..capacity).find(|&c| values[c].to_bits() != 0) {
            return invalid(format!("unused code {c} holds {}, expected 0.0", values[c]));
        }
        let book = Self::new(code_bits, &values[1..len])?;
        if book.frac_bits != frac_bits {
            return invalid(format!(
                "{frac_bits} fractional bits stored, the values need {}",
                book.frac_bits
            ));
        }
        if let Some(c) = (0..capacity).find(|&c| book.fixed[c] != fixed[c]) {
            return invalid(format!(
                "fixed-point value of code {c} is {}, expected {}",
                fixed[c], book.fixed[c]
            ));
        }
        Ok(book)
    }

    /// Width of a code in bits.
    pub fn code_bits(&self) -> u8 {
        self.code_bits
    }

    /// Number of defined entries, code 0 included (so 1 + the number of shared values).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: code 0 is always defined.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Size of the table, 2^code_bits.
    pub fn capacity(&self) -> usize {
        self.values.len()
    }

    /// Float value of every table entry, in code order (unused entries are 0.0).
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Float value of `code` (0.0 for unused codes).
    pub fn value(&self, code: u8) -> f32 {
        self.values.get(code as usize).copied().unwrap_or(0.0)
    }

    /// The defined non-zero values, codes 1..len.
    pub fn shared_values(&self) -> &[f32] {
        &self.values[1..self.len]
    }

    /// Number of fractional bits of the fixed-point values.
    pub fn frac_bits(&self) -> u8 {
        self.frac_bits
    }

    /// 16-bit fixed-point value of every table entry, in code order.
    pub fn fixed(&self) -> &[i16] {
        &self.fixed
    }

    /// Largest |value - fixed * 2^-frac_bits| over the table: the error fixed point adds.
    pub fn max_fixed_error(&self) -> f64 {
        let scale = (-(self.frac_bits as f64)).exp2();
        self.values
            .iter()
            .zip(&self.fixed)
            .map(|(&v, &q)| (v as f64 - q as f64 * scale).abs())
            .fold(0.0, f64::max)
    }

    /// The code whose value is exactly `value`, if any (0 for zero, including -0.0).
    pub fn code_of(&self, value: f32) -> Option<u8> {
        if value == 0.0 {
            return Some(0);
        }
        self.shared_values()
            .iter()
            .position(|&v| v == value)
            .map(|i| (i + 1) as u8)
    }
}

fn check_code_bits(code_bits: u8) -> Result<()> {
    if !(MIN_CODE_BITS..=MAX_CODE_BITS).contains(&code_bits) {
        return Err(Error::BitWidth {
            what: "code bits",
            got: code_bits as u32,
            min: MIN_CODE_BITS as u32,
            max: MAX_CODE_BITS as u32,
        });
    }
    Ok(())
}

/// `value * 2^frac_bits`, rounded half away from zero, not saturated.
pub fn to_fixed(value: f32, frac_bits: u8) -> i64 {
    (value as f64 * (frac_bits as f64).exp2()).round() as i64
}

/// The largest fractional-bit count in 0..=[`MAX_FRAC_BITS`] at which every value rounds
/// into an `i16`.
pub fn choose_frac_bits(values: &[f32]) -> Result<u8> {
    let fits = |f: u8| {
        values.iter().all(|&v| {
            let q = to_fixed(v, f);
            (i16::MIN as i64..=i16::MAX as i64).contains(&q)
        })
    };
    match (0..=MAX_FRAC_BITS).rev().find(|&f| fits(f)) {
        Some(f) => Ok(f),
        None => {
            let (code, &value) = values
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap_or((0, &0.0));
            Err(Error::ValueOutOfRange { code, value })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_zero_is_zero_and_table_is_full_size() {
        let book = Codebook::new(4, &[-0.5, 0.25, 1.0]).unwrap();
        assert_eq!(book.capacity(), 16);
        assert_eq!(book.len(), 4);
        assert_eq!(book.values()[0], 0.0);
        assert_eq!(&book.values()[1..4], &[-0.5, 0.25, 1.0]);
        assert!(book.values()[4..].iter().all(|&v| v == 0.0));
        assert_eq!(book.fixed()[0], 0);
    }

    #[test]
    fn frac_bits_is_the_largest_that_fits() {
        // 1.0 * 2^15 = 32768 overflows i16, so 14 fractional bits; -1.0 alone fits 15.
        assert_eq!(Codebook::new(4, &[1.0]).unwrap().frac_bits(), 14);
        assert_eq!(Codebook::new(4, &[-1.0]).unwrap().frac_bits(), 15);
        // 0.01 * 2^21 = 20971.5 fits, 2^22 does not.
        let book = Codebook::new(4, &[0.01]).unwrap();
        assert_eq!(book.frac_bits(), 21);
        assert_eq!(book.fixed()[1], 20972);
        assert!(book.max_fixed_error() <= 0.5 * (-21f64).exp2());
        // An empty codebook takes the cap.
        assert_eq!(Codebook::new(2, &[]).unwrap().frac_bits(), MAX_FRAC_BITS);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(to_fixed(0.5, 0), 1);
        assert_eq!(to_fixed(-0.5, 0), -1);
        assert_eq!(to_fixed(2.5, 0), 3);
    }

    #[test]
    fn out_of_range_and_non_finite_values_are_errors() {
        assert!(matches!(
            Codebook::new(4, &[40000.0]),
            Err(Error::ValueOutOfRange { code: 1, .. })
        ));
        assert!(matches!(
            Codebook::new(4, &[1.0, f32::NAN]),
            Err(Error::NonFiniteValue { code: 2, .. })
        ));
        assert!(matches!(Codebook::new(0, &[]), Err(Error::BitWidth { .. })));
        assert!(matches!(Codebook::new(9, &[]), Err(Error::BitWidth { .. })));
        assert!(matches!(
            Codebook::new(1, &[1.0, 2.0]),
            Err(Error::TooManyValues { max: 1, .. })
        ));
    }

    #[test]
    fn distinct_values_are_sorted_and_zero_is_skipped() {
        let book = Codebook::from_distinct_values(2, [0.5, -0.0, 0.0, -1.0, 0.5, 2.0]).unwrap();
        assert_eq!(book.shared_values(), &[-1.0, 0.5, 2.0]);
        assert_eq!(book.code_of(0.5), Some(2));
        assert_eq!(book.code_of(-0.0), Some(0));
        assert_eq!(book.code_of(3.0), None);
        let err = Codebook::from_distinct_values(2, [1.0, 2.0, 3.0, 4.0]).unwrap_err();
        assert!(
            matches!(err, Error::TooManyValues { got: 4, max: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn zero_and_repeated_shared_values_are_refused() {
        for values in [&[0.5, 0.0][..], &[-0.0], &[0.25, 0.5, 0.25]] {
            let err = Codebook::new(4, values).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCodebook { .. }),
                "{values:?}: {err}"
            );
        }
    }

    #[test]
    fn from_parts_rejects_inconsistent_tables() {
        let book = Codebook::new(2, &[0.5, -0.25]).unwrap();
        let ok = Codebook::from_parts(2, book.len(), book.values(), book.frac_bits(), book.fixed())
            .unwrap();
        assert_eq!(ok, book);
        let mut fixed = book.fixed().to_vec();
        fixed[1] += 1;
        assert!(Codebook::from_parts(2, 3, book.values(), book.frac_bits(), &fixed).is_err());
        assert!(
            Codebook::from_parts(2, 3, book.values(), book.frac_bits() - 1, book.fixed()).is_err()
        );
        let mut values = book.values().to_vec();
        values[0] = 1.0;
        assert!(Codebook::from_parts(2, 3, &values, book.frac_bits(), book.fixed()).is_err());
        let mut values = book.values().to_vec();
        values[3] = 1.0;
        assert!(Codebook::from_parts(2, 3, &values, book.frac_bits(), book.fixed()).is_err());
        assert!(Codebook::from_parts(2, 5, book.values(), book.frac_bits(), book.fixed()).is_err());
        assert!(
            Codebook::from_parts(2, 3, &book.values()[..3], book.frac_bits(), book.fixed())
                .is_err()
        );
    }
}
