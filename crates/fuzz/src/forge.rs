//! Forging `model.eie` files as a hostile user would: edit the payload, then recompute the
//! header's length and SHA-256 so that the checksum is valid and only the lie remains (the
//! tests' regression cases, the hostile corpus and the `bundle` target use it). The offsets
//! are those of a well-formed bundle, as this tool writes them.

use sha2::{Digest, Sha256};

/// The header's length (docs/format.md).
const HEADER: usize = eie_format::HEADER_LEN;

/// Recomputes the payload's checksum (and length) after an edit.
pub fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    let len = (bytes.len() - HEADER) as u64;
    bytes[16..24].copy_from_slice(&len.to_le_bytes());
    let digest = Sha256::digest(&bytes[HEADER..]);
    bytes[24..56].copy_from_slice(&digest);
    bytes
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Skips a length-prefixed string at `at`.
fn string(b: &[u8], at: usize) -> usize {
    at + 8 + u64_at(b, at) as usize
}

/// The offset of the layer count, after the metadata.
pub fn layer_count_at(b: &[u8]) -> usize {
    let mut p = string(b, string(b, HEADER));
    p += if b[p] == 1 { 33 } else { 1 };
    p += 1; // pointer bits
    let settings = u64_at(b, p);
    p += 8;
    for _ in 0..settings {
        p = string(b, string(b, p));
    }
    p
}

/// The offset of the first layer's `rows` field.
pub fn first_rows_at(b: &[u8]) -> usize {
    let mut p = string(b, layer_count_at(b) + 8);
    p = if b[p] == 1 { string(b, p + 1) } else { p + 1 };
    p + if b[p] == 1 { 17 } else { 1 }
}

/// The offset of the first layer's first PE's codes length.
pub fn first_codes_len_at(b: &[u8]) -> usize {
    let mut p = first_rows_at(b) + 8 + 8 + 1 + 1 + 4 + 1;
    p += 8 + 4 * u64_at(b, p) as usize; // codebook values
    p += 8 + 2 * u64_at(b, p) as usize; // codebook fixed
    p + 8 // past the PE count
}

/// `bytes` with the u64 at `at` set to `value`, resealed.
pub fn with_u64(bytes: &[u8], at: usize, value: u64) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + 8].copy_from_slice(&value.to_le_bytes());
    reseal(b)
}

/// `bytes` with the first occurrence of `from` in the payload replaced by `to` (same
/// length), resealed.
pub fn replaced(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes[HEADER..]
        .windows(from.len())
        .position(|w| w == from)
        .expect("the bytes to replace")
        + HEADER;
    let mut b = bytes.to_vec();
    b[at..at + to.len()].copy_from_slice(to);
    reseal(b)
}
