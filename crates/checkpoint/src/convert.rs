//! Element conversions between the float dtypes and f32. F32, F16 and BF16 convert exactly;
//! F64 rounds to the nearest f32 (a value beyond f32's range reads as infinite, which every
//! reader of weights refuses by name).

use safetensors::Dtype;

/// Bytes per element of the float dtypes this crate converts (None for others).
pub fn float_width(dtype: Dtype) -> Option<usize> {
    match dtype {
        Dtype::F64 => Some(8),
        Dtype::F32 => Some(4),
        Dtype::F16 | Dtype::BF16 => Some(2),
        _ => None,
    }
}

/// Appends the f32 values of little-endian `bytes` of a float `dtype`.
pub(crate) fn decode_into(dtype: Dtype, bytes: &[u8], out: &mut Vec<f32>) {
    let width = float_width(dtype).expect("callers check float_width first");
    let at = out.len();
    out.resize(at + bytes.len() / width, 0.0);
    decode_to(dtype, bytes, &mut out[at..]);
}

/// Decodes little-endian `bytes` of a float `dtype` into `out` (lengths must agree).
/// Written for speed: F16 goes through `half`'s slice conversion (SIMD where the CPU has it;
/// converting one value at a time would check for it every time), BF16 is a shift.
pub(crate) fn decode_to(dtype: Dtype, bytes: &[u8], out: &mut [f32]) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    match dtype {
        Dtype::F64 => out
            .iter_mut()
            .zip(bytes.chunks_exact(8))
            .for_each(|(o, c)| *o = f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32),
        Dtype::F32 => out
            .iter_mut()
            .zip(bytes.chunks_exact(4))
            .for_each(|(o, c)| *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        Dtype::F16 => {
            let mut bits = [0u16; 1024];
            for (o, b) in out.chunks_mut(1024).zip(bytes.chunks(2048)) {
                let bits = &mut bits[..o.len()];
                for (x, c) in bits.iter_mut().zip(b.chunks_exact(2)) {
                    *x = u16::from_le_bytes([c[0], c[1]]);
                }
                bits.reinterpret_cast::<half::f16>().convert_to_f32_slice(o);
            }
        }
        Dtype::BF16 => out
            .iter_mut()
            .zip(bytes.chunks_exact(2))
            .for_each(|(o, c)| {
                *o = half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32()
            }),
        _ => unreachable!("callers check float_width first"),
    }
}

/// Little-endian bytes of `values` in a float `dtype` (round to nearest even for F16 and
/// BF16; exact for F64).
///
/// # Panics
/// If `dtype` is not F64, F32, F16 or BF16.
pub fn encode(dtype: Dtype, values: &[f32]) -> Vec<u8> {
    match dtype {
        Dtype::F64 => values
            .iter()
            .flat_map(|&v| f64::from(v).to_le_bytes())
            .collect(),
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect(),
        Dtype::BF16 => values
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect(),
        other => panic!("encode: {other:?} is not a float dtype"),
    }
}

/// [`encode`] into a reused buffer (cleared first).
///
/// # Panics
/// If `dtype` is not F64, F32, F16 or BF16.
pub fn encode_into(dtype: Dtype, values: &[f32], out: &mut Vec<u8>) {
    let width =
        float_width(dtype).unwrap_or_else(|| panic!("encode: {dtype:?} is not a float dtype"));
    out.clear();
    out.resize(values.len() * width, 0);
    match dtype {
        Dtype::F64 => out
            .chunks_exact_mut(8)
            .zip(values)
            .for_each(|(o, &v)| o.copy_from_slice(&f64::from(v).to_le_bytes())),
        Dtype::F32 => out
            .chunks_exact_mut(4)
            .zip(values)
            .for_each(|(o, v)| o.copy_from_slice(&v.to_le_bytes())),
        Dtype::F16 => out
            .chunks_exact_mut(2)
            .zip(values)
            .for_each(|(o, &v)| o.copy_from_slice(&half::f16::from_f32(v).to_le_bytes())),
        _ => out
            .chunks_exact_mut(2)
            .zip(values)
            .for_each(|(o, &v)| o.copy_from_slice(&half::bf16::from_f32(v).to_le_bytes())),
    }
}

/// `v` rounded to the nearest value a float `dtype` can hold (identity for F32 and F64).
pub fn round_to(dtype: Dtype, v: f32) -> f32 {
    match dtype {
        Dtype::F16 => half::f16::from_f32(v).to_f32(),
        Dtype::BF16 => half::bf16::from_f32(v).to_f32(),
        _ => v,
    }
}

/// Little-endian bytes of f32 values.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    encode(Dtype::F32, values)
}
