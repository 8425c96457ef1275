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
        remedies_text(.remedies)
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
        remedies: Vec<Remedy>,
    },
    /// Layers that do not fit the per-PE SRAMs (the first few listed in the message).
    #[error(
        "the model does not fit the per-PE SRAMs ({} KiB Spmat, {} KiB pointers; --allow-overflow writes it anyway): {}",
        .spmat_bytes / 1024,
        .pointer_bytes / 1024,
        list_overflows(.overflows)
    )]
    Capacity {
        /// Spmat SRAM per PE, in bytes.
        spmat_bytes: u64,
        /// Pointer SRAM per PE, in bytes.
        pointer_bytes: u64,
        /// Every overflow found (of every layer of a run).
        overflows: Vec<Overflow>,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// ---- the details the fitting errors carry ---------------------------------------------

/// A fix for a pointer that does not fit its width, each verified by counting entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// This many PEs.
    Pes(usize),
    /// 32-bit pointers.
    WidePointers,
    /// Column batches of this many columns.
    ColumnBatch(usize),
}

impl std::fmt::Display for Remedy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Named as the command line spells them: these are what a user types next.
        match self {
            Self::Pes(n) => write!(f, "--pes {n}"),
            Self::WidePointers => f.write_str("--pointer-bits 32"),
            Self::ColumnBatch(c) => write!(f, "column batches (--column-batch {c})"),
        }
    }
}

/// The remedies of a pointer overflow, as one clause.
fn remedies_text(remedies: &[Remedy]) -> String {
    if remedies.is_empty() {
        "no PE count, pointer width or column batch fits it".into()
    } else {
        let all: Vec<String> = remedies.iter().map(Remedy::to_string).collect();
        format!("{} would fit it", all.join(", or "))
    }
}

/// Which memory overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// The sparse-matrix SRAM.
    Spmat,
    /// The column-pointer SRAM.
    Pointers,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Memory::Spmat => "Spmat",
            Memory::Pointers => "pointer",
        })
    }
}

/// One layer's overflow of one memory: the worst PE, and what would fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    /// Layer name.
    pub layer: String,
    /// The memory that overflows.
    pub memory: Memory,
    /// The PE that needs the most.
    pub pe: usize,
    /// Bytes that PE needs.
    pub needed: u64,
    /// Bytes the memory holds.
    pub capacity: u64,
    /// How many PEs overflow.
    pub pes_over: usize,
    /// PEs in the layer.
    pub pes: usize,
    /// A PE count that fits the layer in both memories (verified by counting its entries),
    /// or None when no count of PEs can (pointers grow with columns, not rows).
    pub fitting_pes: Option<usize>,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let over = self.needed - self.capacity;
        write!(
            f,
            "layer \"{}\": PE {} needs {} B of {} SRAM, {} B ({:.1}%) over its {} B ({} of {} PEs overflow); ",
            self.layer,
            self.pe,
            self.needed,
            self.memory,
            over,
            100.0 * over as f64 / self.capacity as f64,
            self.capacity,
            self.pes_over,
            self.pes,
        )?;
        match (self.fitting_pes, self.memory) {
            (Some(n), _) => write!(f, "{n} PEs would fit it"),
            (None, Memory::Pointers) => write!(
                f,
                "no PE count fits it: every PE stores cols + 1 pointers (split the layer into column batches, --column-batch, or enlarge the pointer SRAM)"
            ),
            (None, Memory::Spmat) => {
                write!(f, "no PE count fits it (its densest rows alone overflow)")
            }
        }
    }
}

/// The first few of `overflows`, in one line, and how many more there are.
fn list_overflows(overflows: &[Overflow]) -> String {
    const SHOWN: usize = 8;
    let mut out: Vec<String> = overflows
        .iter()
        .take(SHOWN)
        .map(|o| o.to_string())
        .collect();
    if overflows.len() > SHOWN {
        out.push(format!("and {} more", overflows.len() - SHOWN));
    }
    out.join("; ")
}
