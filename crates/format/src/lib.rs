#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod bundle;
mod codebook;
mod error;
pub mod files;
mod layer;
mod matrix;
mod sparse;
mod streams;
pub mod text;

#[cfg(test)]
mod testutil;

pub use bundle::{
    BUNDLE_FILE, Bundle, BundleMeta, BundleWriter, FORMAT_VERSION, HEADER_LEN, MAGIC, POINTER_BITS,
    SourceInfo, hex,
};
pub use codebook::{
    Codebook, MAX_CODE_BITS, MAX_FRAC_BITS, MIN_CODE_BITS, choose_frac_bits, to_fixed,
};
pub use error::{Error, Result, max_pointer};
pub use layer::{
    MAX_DIM, MAX_NAME, MAX_PARTS, MAX_PES, MAX_WEIGHTS, PackedLayer, Span, bad_name, over_limits,
    too_many_parts,
};
pub use matrix::CodeMatrix;
pub use sparse::SparseCodes;
pub use streams::{
    MAX_INDEX_BITS, MIN_INDEX_BITS, PeStreams, encode, entry_counts, max_z, slice_rows,
};
pub use text::shown;
