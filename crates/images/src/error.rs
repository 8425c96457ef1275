//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong rendering, checking or reading memory images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layer or bundle that breaks the format's rules.
    #[error(transparent)]
    Format(#[from] eie_format::Error),
    /// Reading a file failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing a file or creating a folder failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `manifest.json` is not valid JSON of the expected shape, or describes itself
    /// inconsistently.
    #[error("manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An image file whose SHA-256 differs from the manifest's.
    #[error("image {file}: sha256 is {found}, the manifest says {expected}")]
    Checksum {
        /// Path relative to the images' root.
        file: String,
        /// Digest in the manifest.
        expected: String,
        /// Digest of the file as read.
        found: String,
    },
    /// An image file whose contents do not match its manifest entry or its twin.
    #[error("image {file}: {reason}")]
    Image {
        /// Path relative to the images' root.
        file: String,
        /// What is wrong.
        reason: String,
    },

    // ---- fitting layers to the hardware -------------------------------------------------
    /// A layer whose pointer array alone overflows the pointer SRAM, at any PE count.
    #[error(
        "layer \"{layer}\": every PE stores {pointers} pointers ({needed} B), over its {capacity} B pointer SRAM, at any PE count; use column batches (--column-batch), a larger --pointer-kib, or --allow-overflow"
    )]
    PointerSram {
        /// Layer name.
        layer: String,
        /// Pointers per PE (columns + 1).
        pointers: u64,
        /// Bytes they take.
        needed: u64,
        /// Bytes of the pointer SRAM.
        capacity: u64,
    },
    /// A column pointer that does not fit the pointer width, with the changes that would fit.
    #[error(
        "layer \"{layer}\" PE {pe}: column pointer {value} does not fit {pointer_bits}-bit pointers (at most {}); use more PEs or wider pointers: {}",
        eie_format::max_pointer(*.pointer_bits),
        crate::fit::remedies_text(.remedies)
    )]
    PointerOverflow {
        /// Layer name.
        layer: String,
        /// The first PE that overflows.
        pe: usize,
        /// Its pointer value (its entry count).
        value: u64,
        /// The pointer width.
        pointer_bits: u8,
        /// What would fit, each verified.
        remedies: Vec<crate::fit::Remedy>,
    },
    /// Layers that do not fit the per-PE SRAMs (the first few listed in the message).
    #[error(
        "the model does not fit the per-PE SRAMs ({} KiB Spmat, {} KiB pointers; --allow-overflow writes it anyway): {}",
        .spmat_bytes / 1024,
        .pointer_bytes / 1024,
        crate::capacity::list_overflows(.overflows)
    )]
    Capacity {
        /// Spmat SRAM per PE, in bytes.
        spmat_bytes: u64,
        /// Pointer SRAM per PE, in bytes.
        pointer_bytes: u64,
        /// Every overflow found (of every layer of a run).
        overflows: Vec<crate::capacity::Overflow>,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
