//! The reference implementation: the one deliberate second implementation of the format and
//! the arithmetic. It decodes the memory images' bytes itself (little-endian words, entry bit
//! fields, relative row indices, pointers) into a dense integer matrix, then computes a plain
//! integer matrix-vector product with ndarray, row by row, following docs/fixed-point.md.
//! It shares no code with the functional model or the format crate's decoder, so the two
//! agreeing bit for bit (the property tests) checks both, and the images along the way.

use eie_images::{Encoding, FileKind, ImageSet, LayerManifest};
use ndarray::{Array1, Array2};

/// One layer decoded from its images: 16-bit weights, dense.
#[derive(Debug, Clone)]
pub struct RefLayer {
    /// Layer name.
    pub name: String,
    /// rows x cols fixed-point weights (0 where pruned); the bias column last, if any.
    pub weights: Array2<i16>,
    /// Whether the last column is a folded bias.
    pub has_bias: bool,
    /// Fractional bits of the codebook.
    pub frac_w: u8,
}

fn le_words(bytes: &[u8], width: usize) -> Vec<u64> {
    bytes
        .chunks(width)
        .map(|c| c.iter().rev().fold(0u64, |acc, &b| (acc << 8) | b as u64))
        .collect()
}

fn binary<'a>(
    images: &'a ImageSet,
    lm: &LayerManifest,
    kind: FileKind,
    pe: Option<usize>,
) -> &'a [u8] {
    let entry = lm
        .files
        .iter()
        .find(|f| f.kind == kind && f.pe == pe && f.encoding == Encoding::Binary)
        .expect("the manifest names every image");
    &images
        .files
        .iter()
        .find(|f| f.path == entry.path)
        .expect("rendered with the manifest")
        .bytes
}

/// Decodes every layer of rendered images; the parts of a layer stored in column batches
/// are put side by side.
pub fn decode(images: &ImageSet) -> Vec<RefLayer> {
    let manifest = &images.manifest;
    let mut out: Vec<RefLayer> = Vec::new();
    for lm in &manifest.layers {
        let (first, total) = lm
            .part
            .as_ref()
            .map_or((0, lm.cols), |p| (p.first_col, p.total_cols));
        if first == 0 {
            out.push(RefLayer {
                name: lm.name.clone(),
                weights: Array2::zeros((lm.rows, total)),
                has_bias: lm.bias.is_some(),
                frac_w: lm.codebook_frac_bits,
            });
        }
        let layer = out
            .last_mut()
            .expect("a part follows its layer's first part");
        let book: Vec<i16> = le_words(binary(images, lm, FileKind::Codebook, None), 2)
            .iter()
            .map(|&w| w as u16 as i16)
            .collect();
        let entry_bits = (lm.code_bits + lm.index_bits) as u32;
        let per_word = 64 / entry_bits;
        for pe in 0..lm.pes {
            let ptr = le_words(
                binary(images, lm, FileKind::Pointers, Some(pe)),
                manifest.pointer_bits as usize / 8,
            );
            let words = le_words(binary(images, lm, FileKind::Spmat, Some(pe)), 8);
            for col in 0..lm.cols {
                let mut row: i64 = -1;
                for e in ptr[col]..ptr[col + 1] {
                    let word = words[(e / per_word as u64) as usize];
                    let field = (word >> ((e % per_word as u64) as u32 * entry_bits))
                        & ((1u64 << entry_bits) - 1);
                    let code = field & ((1u64 << lm.code_bits) - 1);
                    let z = field >> lm.code_bits;
                    row += z as i64 + 1;
                    if code != 0 {
                        let global = pe + row as usize * lm.pes;
                        layer.weights[[global, first + col]] = book[code as usize];
                    }
                }
            }
        }
    }
    out
}

/// Rounds `x / 2^s` to nearest, ties up (s > 0), by floor division; exact scaling for s <= 0.
fn scale(x: i128, s: i32) -> i128 {
    if s > 0 {
        let d = 1i128 << s;
        (x + d / 2).div_euclid(d)
    } else {
        x * (1i128 << (-s))
    }
}

fn clamp(x: i128, bits: u32) -> i128 {
    let max = (1i128 << (bits - 1)) - 1;
    let min = -(1i128 << (bits - 1));
    if x > max {
        max
    } else if x < min {
        min
    } else {
        x
    }
}

/// One layer: outputs (16-bit, `f_out`) and accumulators before write-back, for `input`
/// (16-bit, `f_in`, the layer's inputs without the bias column).
pub fn layer(
    l: &RefLayer,
    input: &[i16],
    f_in: u8,
    f_out: u8,
    acc_bits: u8,
    relu: bool,
) -> (Vec<i16>, Vec<i64>) {
    let cols = l.weights.ncols();
    let mut a: Array1<i128> = Array1::zeros(cols);
    for (j, &v) in input.iter().enumerate() {
        a[j] = v as i128;
    }
    if l.has_bias {
        a[cols - 1] = 1i128 << f_in;
    }
    let guard = (acc_bits as i32 - 16) / 2;
    let f_acc = f_out as i32 + guard;
    let shift = f_in as i32 + l.frac_w as i32 - f_acc;
    let mut outputs = Vec::with_capacity(l.weights.nrows());
    let mut accumulators = Vec::with_capacity(l.weights.nrows());
    for row in l.weights.rows() {
        let mut acc: i128 = 0;
        for (j, &w) in row.iter().enumerate() {
            if a[j] != 0 && w != 0 {
                acc = clamp(acc + scale(a[j] * w as i128, shift), acc_bits as u32);
            }
        }
        accumulators.push(acc as i64);
        let b = clamp(scale(acc, guard), 16) as i16;
        outputs.push(if relu && b < 0 { 0 } else { b });
    }
    (outputs, accumulators)
}
