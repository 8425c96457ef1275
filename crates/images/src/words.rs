//! Word-level encodings of the three image kinds: Spmat entries packed into 64-bit words,
//! column pointers and codebook values, as little-endian binary and as `$readmemh` text.

use crate::error::{Error, Result};

/// Width of a Spmat SRAM word (the paper's 64-bit line).
pub const SPMAT_WORD_BITS: u32 = 64;
/// Width of a codebook word (16-bit fixed point).
pub const CODEBOOK_WORD_BITS: u32 = 16;

/// Entries that fit one Spmat word: floor(64 / (code_bits + index_bits)); an entry never
/// straddles two words, and the high bits a word has left over are zero.
pub fn entries_per_word(entry_bits: u32) -> usize {
    (SPMAT_WORD_BITS / entry_bits) as usize
}

/// Packs (code, z) entries into Spmat words: entry k of a word sits at bits
/// [k * e, (k + 1) * e) with e = code_bits + index_bits, the code in its low `code_bits` bits
/// and z above. Slots after the last entry are zero.
pub fn pack_spmat(codes: &[u8], z: &[u8], code_bits: u8, index_bits: u8) -> Vec<u64> {
    let entry_bits = code_bits as u32 + index_bits as u32;
    let per_word = entries_per_word(entry_bits);
    codes
        .chunks(per_word)
        .zip(z.chunks(per_word))
        .map(|(cs, zs)| {
            cs.iter()
                .zip(zs)
                .enumerate()
                .fold(0u64, |word, (k, (&c, &zz))| {
                    let entry = c as u64 | (zz as u64) << code_bits;
                    word | entry << (k as u32 * entry_bits)
                })
        })
        .collect()
}

/// Unpacks `count` entries from Spmat words: the inverse of [`pack_spmat`]. Fails if the
/// word count is not exactly what `count` entries need, or a slot past the last entry, or a
/// word's unused high bits, are not zero.
pub fn unpack_spmat(
    words: &[u64],
    count: usize,
    code_bits: u8,
    index_bits: u8,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let entry_bits = code_bits as u32 + index_bits as u32;
    if !(1..=8).contains(&code_bits) || !(1..=8).contains(&index_bits) {
        return Err(format!(
            "{code_bits}-bit codes and {index_bits}-bit indices, expected 1..=8 each"
        ));
    }
    let per_word = entries_per_word(entry_bits);
    let needed = count.div_ceil(per_word);
    if words.len() != needed {
        return Err(format!(
            "{} words, {count} entries need {needed}",
            words.len()
        ));
    }
    let entry_mask = (1u64 << entry_bits) - 1;
    let code_mask = (1u64 << code_bits) - 1;
    let mut codes = Vec::with_capacity(count);
    let mut z = Vec::with_capacity(count);
    for (w, &word) in words.iter().enumerate() {
        let in_word = per_word.min(count - w * per_word);
        let used_bits = in_word as u32 * entry_bits;
        if used_bits < 64 && word >> used_bits != 0 {
            return Err(format!(
                "word {w} has non-zero bits above its {in_word} entries"
            ));
        }
        for k in 0..in_word {
            let entry = (word >> (k as u32 * entry_bits)) & entry_mask;
            codes.push((entry & code_mask) as u8);
            z.push((entry >> code_bits) as u8);
        }
    }
    Ok((codes, z))
}

/// Little-endian bytes of words `word_bits` wide (8, 16, 32 or 64).
pub fn to_le_bytes(words: &[u64], word_bits: u32) -> Vec<u8> {
    let width = (word_bits / 8) as usize;
    let mut out = Vec::with_capacity(words.len() * width);
    for w in words {
        out.extend_from_slice(&w.to_le_bytes()[..width]);
    }
    out
}

/// Words back from little-endian bytes; the length must be a whole number of words.
pub fn from_le_bytes(bytes: &[u8], word_bits: u32) -> Result<Vec<u64>, String> {
    let width = (word_bits / 8) as usize;
    if !bytes.len().is_multiple_of(width) {
        return Err(format!(
            "{} bytes is not a whole number of {word_bits}-bit words",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks(width)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..width].copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect())
}

/// `$readmemh` text: one word per line, `word_bits / 4` lowercase hex digits, no prefix, no
/// comments, `\n` after every line.
pub fn to_hex(words: &[u64], word_bits: u32) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (word_bits / 4) as usize;
    let mut out = vec![0u8; words.len() * (digits + 1)];
    // Digit by digit into a buffer: formatting machinery per word would dominate the time
    // of writing a large model's images.
    for (line, &w) in out.chunks_exact_mut(digits + 1).zip(words) {
        for (k, d) in line[..digits].iter_mut().enumerate() {
            *d = DIGITS[((w >> (4 * (digits - 1 - k))) & 0xf) as usize];
        }
        line[digits] = b'\n';
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Words back from `$readmemh` text as [`to_hex`] writes it (every line exactly
/// `word_bits / 4` hex digits).
pub fn from_hex(text: &str, word_bits: u32) -> Result<Vec<u64>, String> {
    let digits = (word_bits / 4) as usize;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the last line does not end with \\n".into());
    }
    text.split_terminator('\n')
        .enumerate()
        .map(|(i, line)| {
            if line.len() != digits || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "line {} is {line:?}, expected {digits} hex digits",
                    i + 1
                ));
            }
            u64::from_str_radix(line, 16).map_err(|e| format!("line {}: {e}", i + 1))
        })
        .collect()
}

/// Codebook words: the 16-bit two's-complement fixed-point values.
pub fn codebook_words(fixed: &[i16]) -> Vec<u64> {
    fixed.iter().map(|&v| v as u16 as u64).collect()
}

pub(crate) fn image_err(file: &str, reason: String) -> Error {
    Error::Image {
        file: file.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn four_four_entries_are_bytes_in_order() {
        // code in the low nibble, z in the high nibble, first entry in the lowest byte.
        let words = pack_spmat(&[1, 2, 0, 3], &[2, 0, 15, 2], 4, 4);
        assert_eq!(words, vec![0x0000_0000_23f0_0221]);
        assert_eq!(
            to_le_bytes(&words, 64),
            vec![0x21, 0x02, 0xf0, 0x23, 0, 0, 0, 0]
        );
        assert_eq!(to_hex(&words, 64), "0000000023f00221\n");
    }

    #[test]
    fn uneven_entry_widths_leave_the_top_bits_zero() {
        // 3 + 4 = 7-bit entries: 9 per word, bit 63 unused.
        assert_eq!(entries_per_word(7), 9);
        let codes = vec![7u8; 10];
        let z = vec![15u8; 10];
        let words = pack_spmat(&codes, &z, 3, 4);
        assert_eq!(words.len(), 2);
        assert_eq!(words[0] >> 63, 0);
        assert_eq!(words[1], 0x7f);
        assert_eq!(unpack_spmat(&words, 10, 3, 4).unwrap(), (codes, z));
        // Garbage above the last entry is refused.
        assert!(unpack_spmat(&[0x7f | 1 << 40], 1, 3, 4).is_err());
        assert!(unpack_spmat(&[0x7f | 1 << 63, 0x7f], 10, 3, 4).is_err());
        assert!(unpack_spmat(&words, 9, 3, 4).is_err());
    }

    #[test]
    fn hex_rejects_malformed_lines() {
        assert_eq!(from_hex("00ff\nffff\n", 16).unwrap(), vec![0xff, 0xffff]);
        assert!(from_hex("0ff\n", 16).is_err());
        assert!(from_hex("00fg\n", 16).is_err());
        assert!(from_hex("+0ff\n", 16).is_err());
        assert!(from_hex("00ff\r\n", 16).is_err(), "CRLF is not the format");
        assert!(from_hex("00ff", 16).is_err(), "every line ends with \\n");
        assert_eq!(from_hex("", 16).unwrap(), Vec::<u64>::new());
        assert!(
            unpack_spmat(&[0], 1, 4, 200).is_err(),
            "widths are checked, not divided by"
        );
        assert!(from_le_bytes(&[1, 2, 3], 16).is_err());
    }

    #[test]
    fn codebook_words_are_twos_complement() {
        assert_eq!(
            codebook_words(&[0, 1, -1, i16::MIN]),
            vec![0, 1, 0xffff, 0x8000]
        );
        assert_eq!(to_le_bytes(&codebook_words(&[-2]), 16), vec![0xfe, 0xff]);
    }

    proptest! {
        #[test]
        fn spmat_round_trip(
            code_bits in 1u8..=8, index_bits in 1u8..=8,
            raw in prop::collection::vec((any::<u8>(), any::<u8>()), 0..200),
        ) {
            let codes: Vec<u8> = raw.iter().map(|&(c, _)| (c as u16 & ((1 << code_bits) - 1)) as u8).collect();
            let z: Vec<u8> = raw.iter().map(|&(_, z)| (z as u16 & ((1 << index_bits) - 1)) as u8).collect();
            let words = pack_spmat(&codes, &z, code_bits, index_bits);
            prop_assert_eq!(words.len(), codes.len().div_ceil(entries_per_word((code_bits + index_bits) as u32)));
            let back = unpack_spmat(&words, codes.len(), code_bits, index_bits).unwrap();
            prop_assert_eq!(back, (codes, z));
            prop_assert_eq!(from_le_bytes(&to_le_bytes(&words, 64), 64).unwrap(), words.clone());
            prop_assert_eq!(from_hex(&to_hex(&words, 64), 64).unwrap(), words);
        }

        #[test]
        fn narrow_word_round_trip(values in prop::collection::vec(any::<u32>(), 0..50), wide in any::<bool>()) {
            let bits = if wide { 32 } else { 16 };
            let words: Vec<u64> = values.iter().map(|&v| if wide { v as u64 } else { (v & 0xffff) as u64 }).collect();
            prop_assert_eq!(from_le_bytes(&to_le_bytes(&words, bits), bits).unwrap(), words.clone());
            prop_assert_eq!(from_hex(&to_hex(&words, bits), bits).unwrap(), words);
        }
    }
}
