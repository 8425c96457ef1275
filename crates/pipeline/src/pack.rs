//! `pack`: tensors that are already pruned and weight-shared, packed as they are: zeros are
//! pruned positions, a tensor's distinct non-zero values are its codebook.

use std::collections::BTreeMap;
use std::path::Path;

use eie_checkpoint::Checkpoint;
use eie_format::{BundleMeta, CodeMatrix, Codebook, PackedLayer};
use eie_images::Fit;

use crate::compress::{PackedWriter, source_info};
use crate::error::{Error, Result};
use crate::observer::Observer;

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
    /// How layers are fitted to the hardware.
    pub fit: Fit,
    /// The tool's version.
    pub tool_version: &'a str,
    /// Settings to record in the bundle.
    pub provenance: BTreeMap<String, String>,
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
    let hash = ck.spawn_sha256();
    let mut out = PackedWriter::create(dir, job.fit.pointer_bits)?;
    // Every layer's SRAM overflows, listed together before the run fails (or warned of).
    let mut overflows = Vec::new();
    observer.start("pack", job.names.len() as u64);
    for name in job.names {
        observer.step(name);
        let layer = pack_tensor(ck, name, job.code_bits, job.index_bits, job.pes)?;
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
        settings: job.provenance.clone(),
    };
    let files = out.finish(&meta, dir)?;
    Ok(Packed { meta, files })
}

/// One tensor as it is: zeros are pruned positions, its distinct non-zero values are its
/// codebook (ascending), which must fit 2^code_bits - 1 entries.
pub fn pack_tensor(
    ck: &Checkpoint,
    name: &str,
    code_bits: u8,
    index_bits: u8,
    pes: usize,
) -> Result<PackedLayer> {
    let m = ck.read_matrix(name)?;
    let codebook = match Codebook::from_distinct_values(code_bits, m.data.iter().copied()) {
        Ok(book) => book,
        Err(eie_format::Error::TooManyValues { max, .. }) => {
            return Err(Error::Plan {
                reason: format!(
                    "tensor \"{name}\" has more than {max} distinct non-zero values, so it needs weight sharing: use `eie-compress compress`, which prunes and clusters it (or raise --code-bits)"
                ),
            });
        }
        Err(e) => {
            return Err(Error::Plan {
                reason: format!("tensor \"{name}\": {e}"),
            });
        }
    };
    let codes = m
        .data
        .iter()
        .map(|&v| {
            codebook
                .code_of(v)
                .expect("every value is in its own codebook")
        })
        .collect();
    let matrix = CodeMatrix::new(m.rows, m.cols, codes)?;
    Ok(PackedLayer::encode(
        name, &matrix, codebook, pes, index_bits,
    )?)
}
