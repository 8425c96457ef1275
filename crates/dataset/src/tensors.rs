//! A dataset in one safetensors file: `inputs` `[samples, ...]` (F64, F32, F16, BF16 or U8; the
//! dimensions after the first are a sample's shape) and `labels` `[samples]` (any integer
//! type); metadata `eie.form` = `image` or `sequence` says how the samples present themselves
//! (default: as stored, [`crate::Form::Plain`]).

use std::path::Path;

use eie_checkpoint::{Checkpoint, Dtype};

use crate::error::{Error, Result};
use crate::{Form, Raw, SampleRange};

/// Name of the inputs tensor.
pub const INPUTS: &str = "inputs";
/// Name of the labels tensor.
pub const LABELS: &str = "labels";
/// The metadata key that declares the samples' form.
pub const FORM_KEY: &str = "eie.form";

/// The samples and the inputs per sample of a safetensors dataset, from its header.
pub(crate) fn peek(path: &Path) -> Result<(usize, usize)> {
    let ck = Checkpoint::open(path)?;
    let Some(x) = ck.info(INPUTS).filter(|x| !x.shape.is_empty()) else {
        return Err(Error::Tensor {
            path: path.to_path_buf(),
            tensor: INPUTS.to_string(),
            reason: format!("missing or empty (the file holds {})", ck.available()),
        });
    };
    let width = x.shape[1..]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    Ok((x.shape[0], width.unwrap_or(usize::MAX)))
}

pub(crate) fn load(path: &Path, range: SampleRange, name: &str) -> Result<Raw> {
    let ck = Checkpoint::open(path)?;
    let bad = |tensor: &str, reason: String| Error::Tensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        reason,
    };
    let info = |tensor: &str| {
        ck.info(tensor).ok_or_else(|| {
            bad(
                tensor,
                format!("missing (the file holds {})", ck.available()),
            )
        })
    };
    let (x, y) = (info(INPUTS)?, info(LABELS)?);
    if x.shape.len() < 2 {
        return Err(bad(
            INPUTS,
            format!("shape {:?}, expected [samples, inputs, ...]", x.shape),
        ));
    }
    let [total] = y.shape[..] else {
        return Err(bad(
            LABELS,
            format!("shape {:?}, expected [samples]", y.shape),
        ));
    };
    if x.shape[0] != total {
        return Err(bad(
            INPUTS,
            format!(
                "{} samples, but \"{LABELS}\" has {total} labels",
                x.shape[0]
            ),
        ));
    }
    let width = x.shape[1..]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(INPUTS, format!("shape {:?} overflows", x.shape)))?;
    let form = match ck.metadata().get(FORM_KEY).map(String::as_str) {
        None | Some("plain") => Form::Plain,
        Some("image") => Form::Image,
        Some("sequence") => Form::Sequence,
        Some(other) => {
            return Err(Error::Input {
                path: path.to_path_buf(),
                reason: format!(
                    "metadata {FORM_KEY} = \"{other}\", expected image, sequence or plain"
                ),
            });
        }
    };
    let r = range.resolve(total, name)?;

    // Only the range's samples are read (and converted), whatever the tensor's size.
    let values = r.start * width..r.end * width;
    let (inputs, integer_max) = if x.is_float() {
        let mut inputs = vec![0f32; values.len()];
        let reader = ck.reader(INPUTS)?;
        // In blocks: the reader's buffer holds one block's bytes, not the range's.
        for (k, block) in inputs.chunks_mut(1 << 20).enumerate() {
            reader.read(values.start + (k << 20), block)?;
        }
        (inputs, None)
    } else if x.dtype == Dtype::U8 {
        let mut inputs = Vec::with_capacity(values.len());
        ck.stream_raw_part(INPUTS, values, &mut |chunk| {
            inputs.extend(chunk.iter().map(|&b| b as f32));
            Ok(())
        })?;
        (inputs, Some(255.0))
    } else {
        return Err(bad(
            INPUTS,
            format!("dtype {:?}, expected F64, F32, F16, BF16 or U8", x.dtype),
        ));
    };

    let size = match y.dtype {
        Dtype::U8 | Dtype::I8 => 1,
        Dtype::U16 | Dtype::I16 => 2,
        Dtype::U32 | Dtype::I32 => 4,
        Dtype::U64 | Dtype::I64 => 8,
        other => {
            return Err(bad(
                LABELS,
                format!("dtype {other:?}, expected an integer type (I64, I32, U8, ...)"),
            ));
        }
    };
    let mut raw = Vec::with_capacity(r.len() * size);
    ck.stream_raw_part(LABELS, r.start * size..r.end * size, &mut |chunk| {
        raw.extend_from_slice(chunk);
        Ok(())
    })?;
    let mut labels = Vec::with_capacity(r.len());
    for i in r.clone() {
        let b = &raw[(i - r.start) * size..(i - r.start + 1) * size];
        let v: i128 = match y.dtype {
            Dtype::U8 => b[0] as i128,
            Dtype::I8 => b[0] as i8 as i128,
            Dtype::U16 => u16::from_le_bytes([b[0], b[1]]) as i128,
            Dtype::I16 => i16::from_le_bytes([b[0], b[1]]) as i128,
            Dtype::U32 => u32::from_le_bytes(b.try_into().expect("4 bytes")) as i128,
            Dtype::I32 => i32::from_le_bytes(b.try_into().expect("4 bytes")) as i128,
            Dtype::U64 => u64::from_le_bytes(b.try_into().expect("8 bytes")) as i128,
            _ => i64::from_le_bytes(b.try_into().expect("8 bytes")) as i128,
        };
        let Ok(v) = u32::try_from(v) else {
            return Err(Error::Label {
                dataset: name.to_string(),
                index: i,
                label: v.to_string(),
            });
        };
        labels.push(v);
    }
    Ok(Raw {
        total,
        width,
        shape: x.shape[1..].to_vec(),
        form,
        integer_max,
        classes: None,
        inputs,
        labels,
    })
}
