//! IDX files (LeCun's format of the MNIST family): a 4-byte magic `0 0 TYPE RANK`, `RANK`
//! big-endian u32 dimensions, then the elements, big-endian, row-major. Gzip-compressed
//! files (the usual `.gz` downloads) are recognised by their own magic, not by their name.

use std::io::{BufRead, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::{Raw, SampleRange};

/// An element type of the IDX format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxType {
    /// 0x08.
    U8,
    /// 0x09.
    I8,
    /// 0x0B.
    I16,
    /// 0x0C.
    I32,
    /// 0x0D.
    F32,
    /// 0x0E.
    F64,
}

impl IdxType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x08 => Self::U8,
            0x09 => Self::I8,
            0x0B => Self::I16,
            0x0C => Self::I32,
            0x0D => Self::F32,
            0x0E => Self::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// The largest value of an integer type; `None` for floats.
    pub fn integer_max(self) -> Option<f32> {
        match self {
            Self::U8 => Some(255.0),
            Self::I8 => Some(127.0),
            Self::I16 => Some(32767.0),
            Self::I32 => Some(2147483647.0),
            Self::F32 | Self::F64 => None,
        }
    }
}

/// An IDX file, validated whole, and the (big-endian) data of some of its samples (all of
/// them, read with [`read_idx`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// Element type.
    pub dtype: IdxType,
    /// The file's dimensions, the first one counting samples.
    pub dims: Vec<usize>,
    /// The first sample held.
    pub first: usize,
    data: Vec<u8>,
}

impl IdxArray {
    /// Elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Element `i` of the samples held (counted from [`IdxArray::first`]'s first element) as
    /// a number.
    pub fn get(&self, i: usize) -> f64 {
        let s = self.dtype.size();
        let b = &self.data[i * s..(i + 1) * s];
        match self.dtype {
            IdxType::U8 => b[0] as f64,
            IdxType::I8 => b[0] as i8 as f64,
            IdxType::I16 => i16::from_be_bytes([b[0], b[1]]) as f64,
            IdxType::I32 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
            IdxType::F32 => f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
            IdxType::F64 => f64::from_be_bytes(b.try_into().expect("8 bytes")),
        }
    }
}

/// The largest decompressed IDX file read (4 GiB).
pub const MAX_DECOMPRESSED: u64 = 4 << 30;

/// Reads and validates an IDX file (gzip or raw): every dimension and the data length are
/// checked, with checked arithmetic, before anything is returned.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    read_idx_samples(path, |dims| Ok(0..dims[0]))
}

/// [`read_idx`], keeping only the samples `keep` picks from the file's dimensions (it may
/// refuse them): the whole file is validated (a raw one's size against its header, its other
/// samples passed over unread; a gzip one read through once), and memory holds the samples
/// kept.
pub fn read_idx_samples(
    path: &Path,
    keep: impl FnOnce(&[usize]) -> Result<std::ops::Range<usize>>,
) -> Result<IdxArray> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let bad = |reason: String| Error::Idx {
        path: path.to_path_buf(),
        reason,
    };
    // A FIFO or device (/dev/zero) would block or never end: regular files only, and no
    // larger than the largest decompressed set.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::other("not a regular file")));
    }
    if meta.len() > MAX_DECOMPRESSED {
        return Err(bad(format!(
            "{} bytes, over the {MAX_DECOMPRESSED} an IDX file may have",
            meta.len()
        )));
    }
    // Streamed, never read whole: the header is checked against the file's size (raw) or
    // bounds the decompression (gzip) before the data is read.
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let gzip = file.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        // Decompressed no further than the header inside says (plus one byte, to see that
        // nothing follows): a small hostile file cannot expand past its own claim.
        let mut gz = flate2::bufread::GzDecoder::new(file);
        let parsed = parse(&mut gz, None, keep, &bad, |gz, n| {
            std::io::copy(&mut gz.take(n), &mut std::io::sink())
        })?;
        let rest = std::io::copy(&mut gz.into_inner(), &mut std::io::sink()).map_err(io)?;
        if rest > 0 {
            return Err(bad(format!(
                "{rest} bytes after the end of the gzip stream"
            )));
        }
        Ok(parsed)
    } else {
        // Its size was checked against the header: other samples are passed over unread.
        parse(&mut file, Some(meta.len()), keep, &bad, |f, n| {
            f.seek_relative(n as i64).map(|()| n)
        })
    }
}

/// Reads one IDX array from `r`: the header, then exactly the bytes its dimensions describe,
/// refusing fewer or more, keeping those of the samples `keep` picks and passing over the
/// others with `skip` (which returns how many it passed). `total`, when known, is the whole
/// input's size, checked against the header before the data is read; then the bytes after
/// the samples kept are not read.
fn parse<R: Read>(
    r: &mut R,
    total: Option<u64>,
    keep: impl FnOnce(&[usize]) -> Result<std::ops::Range<usize>>,
    bad: &dyn Fn(String) -> Error,
    skip: impl Fn(&mut R, u64) -> std::io::Result<u64>,
) -> Result<IdxArray> {
    let inflate = |e: std::io::Error| bad(format!("the gzip stream does not decompress: {e}"));
    let mut magic = [0u8; 4];
    let got = read_up_to(r, &mut magic).map_err(inflate)?;
    if got < 4 {
        return Err(bad(format!("{got} bytes, shorter than the 4-byte magic")));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(format!(
            "magic {:02x} {:02x} {:02x} {:02x}, expected 00 00 TYPE RANK",
            magic[0], magic[1], magic[2], magic[3]
        )));
    }
    let dtype = IdxType::from_code(magic[2]).ok_or_else(|| {
        bad(format!(
            "element type 0x{:02x}, expected 0x08 (u8), 0x09, 0x0B, 0x0C, 0x0D or 0x0E",
            magic[2]
        ))
    })?;
    let rank = magic[3] as usize;
    if rank == 0 {
        return Err(bad("rank 0, expected at least one dimension".into()));
    }
    let header = 4 + 4 * rank;
    let mut raw = vec![0u8; 4 * rank];
    let got = read_up_to(r, &mut raw).map_err(inflate)?;
    if got < raw.len() {
        return Err(bad(format!(
            "{} bytes, shorter than the header of {rank} dimensions ({header} bytes)",
            4 + got
        )));
    }
    let dims: Vec<usize> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .filter(|&n| n as u64 <= MAX_DECOMPRESSED)
        .ok_or_else(|| {
            bad(format!(
                "dimensions {dims:?} describe more than the {} GiB an IDX file may hold",
                MAX_DECOMPRESSED >> 30
            ))
        })?;
    if let Some(total) = total {
        let found = total - header as u64;
        if found < expected as u64 {
            return Err(bad(format!(
                "short data: dimensions {dims:?} need {expected} bytes after the header, found {found}"
            )));
        }
        if found > expected as u64 {
            return Err(bad(format!(
                "{} bytes past the end of the data that dimensions {dims:?} describe",
                found - expected as u64
            )));
        }
    }
    let rows = keep(&dims)?;
    if rows.start > rows.end || rows.end > dims[0] {
        return Err(bad(format!(
            "samples {rows:?} asked for, of {} in the file",
            dims[0]
        )));
    }
    // Bytes of one sample: the data's length over the samples (none: every sample is empty).
    let row = expected.checked_div(dims[0]).unwrap_or(0);
    let (before, kept) = ((rows.start * row) as u64, (rows.len() * row) as u64);
    let skipped = skip(r, before).map_err(inflate)?;
    let mut data = Vec::new();
    r.take(kept).read_to_end(&mut data).map_err(inflate)?;
    let rest = expected as u64 - before - kept;
    let after = match total {
        Some(_) => rest,
        // Read to one byte past the end, to see that nothing follows.
        None => std::io::copy(&mut r.take(rest + 1), &mut std::io::sink()).map_err(inflate)?,
    };
    let found = skipped + data.len() as u64 + after;
    if found < expected as u64 {
        return Err(bad(format!(
            "short data: dimensions {dims:?} need {expected} bytes after the header, found {found}"
        )));
    }
    if found > expected as u64 {
        return Err(bad(format!(
            "more data than the dimensions {dims:?} describe ({expected} bytes after the header)"
        )));
    }
    Ok(IdxArray {
        dtype,
        dims,
        first: rows.start,
        data,
    })
}

/// Fills as much of `buf` as `r` has; the count read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Samples `range` of an images file and a labels file, reading no other sample into
/// memory.
pub(crate) fn load_pair(
    images_path: &Path,
    labels_path: &Path,
    range: SampleRange,
    name: &str,
) -> Result<Raw> {
    let mut total = 0;
    let images = read_idx_samples(images_path, |dims| {
        total = dims[0];
        range.resolve(total, name)
    })?;
    let labels = read_idx_samples(labels_path, |dims| {
        if dims.len() != 1 {
            return Err(Error::Idx {
                path: labels_path.to_path_buf(),
                reason: format!("labels have dimensions {dims:?}, expected one (samples)"),
            });
        }
        if dims[0] != total {
            return Err(Error::Pairing {
                images: images_path.to_path_buf(),
                labels: labels_path.to_path_buf(),
                reason: format!("{total} images but {} labels", dims[0]),
            });
        }
        range.resolve(total, name)
    })?;
    if labels.dtype.integer_max().is_none() {
        return Err(Error::Idx {
            path: labels_path.to_path_buf(),
            reason: format!(
                "labels of type {:?}, expected an integer type",
                labels.dtype
            ),
        });
    }
    // Cannot overflow when there are samples (the data length bounds it); checked for none.
    let width = images.dims[1..]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::Idx {
            path: images_path.to_path_buf(),
            reason: format!("dimensions {:?} overflow", images.dims),
        })?;
    let r = range.resolve(total, name)?;
    let inputs: Vec<f32> = (0..r.len() * width).map(|i| images.get(i) as f32).collect();
    let mut out = Vec::with_capacity(r.len());
    for i in r.clone() {
        let l = labels.get(i - r.start);
        if l < 0.0 || l > u32::MAX as f64 {
            return Err(Error::Label {
                dataset: name.to_string(),
                index: i,
                label: l.to_string(),
            });
        }
        out.push(l as u32);
    }
    Ok(Raw {
        total,
        width,
        shape: images.dims[1..].to_vec(),
        form: crate::Form::Plain,
        integer_max: images.dtype.integer_max(),
        classes: None,
        inputs,
        labels: out,
    })
}
