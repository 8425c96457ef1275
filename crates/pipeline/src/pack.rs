//! `pack`: tensors that are already pruned and weight-shared, packed as they are: zeros are
//! pruned positions, a tensor's distinct non-zero values are its codebook.

use std::path::Path;

use eie_checkpoint::{Checkpoint, check_finite};
use eie_format::{BundleMeta, CodeMatrix, Codebook, PackedLayer};
use eie_images::Fit;

use crate::compress::{PackedWriter, source_info};
use crate::error::{Error, Result};
use crate::observer::Observer;
use crate::plan::{BiasPlan, paired_bias};
use crate::provenance::Provenance;

/// A pack run, resolved.
#[derive(Debug, Clone)]
pub struct PackJob<'a> {
    /// The tensors, in order.
    pub names: &'a [String],
    /// Bits of a code: a tensor may hold at most 2^B - 1 distinct non-zero values.
    pub code_bits: u8,
    /// Bits of a relative row index.
    pub index_bits: u8,
    /// Processing elements.
    pub pes: usize,
    /// Fold each weight's `NAME.bias` in as its last column, as `compress` does: the weight's
    /// and the bias's distinct non-zero values together are the codebook, and when they do
    /// not fit it that is an error.
    pub fold_bias: bool,
    /// How layers are fitted to the hardware.
    pub fit: Fit,
    /// The tool's version.
    pub tool_version: &'a str,
    /// What the bundle records about how it was made.
    pub provenance: Provenance,
}

/// What a pack run wrote.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The bundle's metadata.
    pub meta: BundleMeta,
    /// Image files written.
    pub files: usize,
}

/// Packs every tensor of `job` into `dir` (a staging folder): images, manifest and
/// `model.eie`.
pub fn pack(ck: &Checkpoint, job: &PackJob, dir: &Path, observer: &dyn Observer) -> Result<Packed> {
    // Every bias paired before any work (headers only).
    let mut biases = Vec::with_capacity(job.names.len());
    for name in job.names {
        let rows = ck
            .info(name)
            .map_or(0, |i| i.shape.first().copied().unwrap_or(0));
        biases.push(if job.fold_bias {
            paired_bias(ck.header(), name, rows)?
        } else {
            None
        });
    }
    let hash = ck.spawn_sha256();
    let mut out = PackedWriter::create(dir, job.fit.pointer_bits)?;
    // Every layer's SRAM overflows, listed together before the run fails (or warned of).
    let mut overflows = Vec::new();
    observer.start("pack", job.names.len() as u64);
    for (name, bias) in job.names.iter().zip(&biases) {
        observer.step(name);
        let layer = pack_tensor(
            ck,
            name,
            bias.as_ref(),
            job.code_bits,
            job.index_bits,
            job.pes,
        )?;
        let placed = job.fit.place_all(layer)?;
        if job.fit.allow_overflow {
            for o in &placed.overflows {
                observer.warn(&o.to_string());
            }
        }
        overflows.extend(placed.overflows.iter().cloned());
        out.push(&placed.parts)?;
        observer.advance();
    }
    observer.finish();
    job.fit.check_overflows(overflows)?;
    let meta = BundleMeta {
        tool_version: job.tool_version.to_string(),
        source: source_info(ck.path(), hash.wait()?),
        pointer_bits: job.fit.pointer_bits,
        settings: job.provenance.settings(),
    };
    let files = out.finish(&meta, dir)?;
    Ok(Packed { meta, files })
}

/// One tensor as it is: zeros are pruned positions, its distinct non-zero values are its
/// codebook (ascending), which must fit 2^code_bits - 1 entries. With `bias`, the bias is the
/// last column, and the codebook holds the distinct non-zero values of both.
pub fn pack_tensor(
    ck: &Checkpoint,
    name: &str,
    bias: Option<&BiasPlan>,
    code_bits: u8,
    index_bits: u8,
    pes: usize,
) -> Result<PackedLayer> {
    let m = ck.read_matrix(name)?;
    let bias_values = match bias {
        Some(b) => {
            let v = ck.read_f32(&b.name)?;
            check_finite(&b.name, &v, 1)?;
            v
        }
        None => Vec::new(),
    };
    let values = m.data.iter().chain(&bias_values).copied();
    let codebook = match Codebook::from_distinct_values(code_bits, values) {
        Ok(book) => book,
        Err(eie_format::Error::TooManyValues { max, .. }) => {
            let reason = match bias {
                Some(b) => format!(
                    "tensor \"{name}\" and its bias \"{}\" have more than {max} distinct non-zero values together, so the bias cannot share the weight's codebook: use `eie-compress compress`, which clusters weights and bias together, or --no-bias-column to pack the weight alone and leave the bias to the host",
                    b.name
                ),
                None => format!(
                    "tensor \"{name}\" has more than {max} distinct non-zero values, so it needs weight sharing: use `eie-compress compress`, which prunes and clusters it (or raise --code-bits)"
                ),
            };
            return Err(Error::Plan { reason });
        }
        Err(e) => {
            return Err(Error::Plan {
                reason: format!("tensor \"{name}\": {e}"),
            });
        }
    };
    let code = |v: f32| {
        codebook
            .code_of(v)
            .expect("every value is in its own codebook")
    };
    let cols = m.cols + usize::from(bias.is_some());
    let mut codes = Vec::with_capacity(m.rows * cols);
    // Row by row: the row's codes, then its bias's (a [rows, 0] weight has only the bias).
    let mut bias_codes = bias_values.iter().map(|&v| code(v));
    for r in 0..m.rows {
        let row = &m.data[r * m.cols..(r + 1) * m.cols];
        codes.extend(row.iter().map(|&v| code(v)));
        codes.extend(bias_codes.next());
    }
    let matrix = CodeMatrix::new(m.rows, cols, codes)?;
    let layer = PackedLayer::encode(name, &matrix, codebook, pes, index_bits)?;
    Ok(match bias {
        Some(b) => layer.with_bias(b.name.clone())?,
        None => layer,
    })
}
