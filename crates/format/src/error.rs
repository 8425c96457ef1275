//! The crate's one error type.

/// Everything that can go wrong building, encoding, validating or loading packed layers and
/// bundles. Messages are short, lowercase and name the layer, PE or field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- parameters -------------------------------------------------------------------
    /// A bit width (code bits, index bits, pointer bits) outside its allowed range.
    #[error("{what} must be in {min}..={max}, got {got}")]
    BitWidth {
        /// Which width: "code bits", "index bits", ...
        what: &'static str,
        /// The value given.
        got: u32,
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
    },
    /// The number of processing elements was zero.
    #[error("the number of PEs must be at least 1")]
    ZeroPes,
    /// A code matrix whose buffer length is not rows x cols.
    #[error("code matrix of {rows} x {cols} needs {expected} codes, got {got}")]
    MatrixSize {
        /// Rows of the matrix.
        rows: usize,
        /// Columns of the matrix.
        cols: usize,
        /// rows x cols (saturated on overflow).
        expected: usize,
        /// Length of the buffer given.
        got: usize,
    },

    // ---- codebook ---------------------------------------------------------------------
    /// More non-zero values than a codebook of this width holds (code 0 is reserved for 0).
    #[error("{got} distinct non-zero values do not fit a {code_bits}-bit codebook (at most {max})")]
    TooManyValues {
        /// Number of non-zero values offered.
        got: usize,
        /// Code width.
        code_bits: u8,
        /// 2^code_bits - 1.
        max: usize,
    },
    /// A codebook value that is NaN or infinite.
    #[error("codebook value for code {code} is not finite ({value})")]
    NonFiniteValue {
        /// Code of the value.
        code: usize,
        /// The value.
        value: f32,
    },
    /// A codebook value too large for 16-bit fixed point with zero fractional bits.
    #[error("codebook value {value} (code {code}) does not fit 16-bit fixed point")]
    ValueOutOfRange {
        /// Code of the value.
        code: usize,
        /// The value.
        value: f32,
    },
    /// A codebook that breaks a structural rule (code 0 not zero, wrong length, ...).
    #[error("invalid codebook: {reason}")]
    InvalidCodebook {
        /// What is wrong.
        reason: String,
    },
    /// A code in a code matrix that the codebook does not define.
    #[error(
        "layer \"{layer}\": code {code} at row {row}, column {col} is outside the codebook ({len} entries)"
    )]
    CodeOutsideCodebook {
        /// Layer name.
        layer: String,
        /// Row of the code.
        row: usize,
        /// Column of the code.
        col: usize,
        /// The code.
        code: u8,
        /// Number of defined codebook entries.
        len: usize,
    },

    // ---- packed layers and streams ------------------------------------------------------
    /// Sparse codes that break their rules (positions increasing and inside the matrix, one
    /// non-zero code each).
    #[error("sparse codes of {rows} x {cols}: {reason}")]
    InvalidSparse {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// What is wrong.
        reason: String,
    },
    /// A layer whose geometry or metadata is inconsistent.
    #[error("layer \"{layer}\": {reason}")]
    InvalidLayer {
        /// Layer name.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// One PE's streams break the format's rules.
    #[error("layer \"{layer}\" PE {pe}: {reason}")]
    InvalidStream {
        /// Layer name.
        layer: String,
        /// PE index.
        pe: usize,
        /// What is wrong, naming the column or entry where relevant.
        reason: String,
    },
    /// A column pointer that does not fit the pointer width of the images.
    #[error("layer \"{layer}\" PE {pe}: column pointer {value} does not fit {pointer_bits}-bit pointers (at most {}); use more PEs or wider pointers", max_pointer(*.pointer_bits))]
    PointerOverflow {
        /// Layer name.
        layer: String,
        /// PE index.
        pe: usize,
        /// The pointer value (the PE's entry count).
        value: u64,
        /// Pointer width.
        pointer_bits: u8,
    },
    /// A PE holds more entries than a 32-bit column pointer can count.
    #[error("layer \"{layer}\" PE {pe}: {entries} entries exceed the 32-bit pointer range")]
    TooManyEntries {
        /// Layer name.
        layer: String,
        /// PE index.
        pe: usize,
        /// Entries the PE would hold.
        entries: u64,
    },

    // ---- bundle -----------------------------------------------------------------------
    /// The file does not start with the bundle's magic bytes.
    #[error("not an EIE bundle: magic bytes {found:02x?}, expected {expected:02x?}")]
    BadMagic {
        /// The first bytes found.
        found: Vec<u8>,
        /// The magic bytes expected.
        expected: Vec<u8>,
    },
    /// A bundle written in a format version this build does not read.
    #[error(
        "bundle format version {found} is not supported (this build reads version {supported}); re-pack the model with this version"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The bundle is shorter than its header says.
    #[error("bundle truncated: {expected} bytes expected, {got} present")]
    Truncated {
        /// Bytes the header announces (header included).
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// Bytes after the end of the payload.
    #[error("bundle has {extra} unexpected bytes after its payload")]
    TrailingBytes {
        /// Number of extra bytes.
        extra: u64,
    },
    /// The payload's SHA-256 does not match the header.
    #[error(
        "bundle checksum mismatch (sha256 {found}, header says {expected}): the file is corrupted"
    )]
    ChecksumMismatch {
        /// Hex digest recorded in the header.
        expected: String,
        /// Hex digest of the payload as read.
        found: String,
    },
    /// The payload passed the checksum but is not a valid encoding.
    #[error("bundle payload does not decode: {reason}")]
    Decode {
        /// The decoder's message.
        reason: String,
    },
    /// Serialising the payload failed.
    #[error("bundle payload does not encode: {reason}")]
    Encode {
        /// The encoder's message.
        reason: String,
    },
    /// Reading or writing a bundle file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Bundle-level metadata that breaks a rule (duplicate layer names, bad pointer width...).
    #[error("invalid bundle: {reason}")]
    InvalidBundle {
        /// What is wrong.
        reason: String,
    },
}

/// Largest value a `bits`-bit pointer holds.
pub fn max_pointer(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
