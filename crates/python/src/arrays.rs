//! Values across the boundary: Python's arrays (numpy, or anything with the array protocol,
//! such as a PyTorch tensor) in, numpy arrays out, and a mapping of named arrays written as
//! the safetensors file the commands read; reports as dicts.

use std::collections::BTreeMap;
use std::path::Path;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMapping};
use safetensors::Dtype;

use crate::error;

/// `x` as contiguous float32 vectors: a 1-D array is one vector, a 2-D array one per row.
pub fn vectors(py: Python<'_>, x: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Vec<f32>>> {
    let numpy = py.import("numpy")?;
    refuse_masked(&numpy, x, what)?;
    let not_numbers = |e: PyErr| error::new(format!("{what}: not an array of numbers ({e})"));
    // Converted once; its kind checked, then made float32 (no copy when it is already).
    let x = numpy.call_method1("asarray", (x,)).map_err(not_numbers)?;
    let kind: String = x.getattr("dtype")?.getattr("kind")?.extract()?;
    // Booleans, integers and floats; numpy would parse strings and drop imaginary parts.
    if !"biuf".contains(kind.as_str()) || kind.len() != 1 {
        return Err(error::new(format!(
            "{what}: an array of numbers was expected, not one of numpy kind {kind:?}"
        )));
    }
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("dtype", "float32")?;
    let array = numpy
        .call_method("ascontiguousarray", (&x,), Some(&kwargs))
        .map_err(not_numbers)?;
    let array = array.cast_into::<numpy::PyArrayDyn<f32>>()?;
    let ro = array.readonly();
    let view = ro.as_array();
    match view.ndim() {
        1 => Ok(vec![view.iter().copied().collect()]),
        2 => Ok(view
            .outer_iter()
            .map(|row| row.iter().copied().collect())
            .collect()),
        n => Err(error::new(format!(
            "{what}: a vector or a matrix of vectors (one per row) was expected, not an array of {n} dimensions"
        ))),
    }
}

/// Refuses a masked array: its values under the mask would be taken as they are.
fn refuse_masked(numpy: &Bound<'_, PyModule>, x: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    let masked = numpy.getattr("ma")?.getattr("MaskedArray")?;
    if x.is_instance(&masked)? {
        return Err(error::new(format!(
            "{what}: a masked array; fill it first (x.filled(0)): the values under its mask would be used"
        )));
    }
    Ok(())
}

/// A 1-D numpy array of `values`.
pub fn array1<'py, T: numpy::Element>(py: Python<'py>, values: Vec<T>) -> Bound<'py, PyArray1<T>> {
    values.into_pyarray(py)
}

/// A 2-D numpy array of `rows` rows of `cols` values each (row-major `values`).
pub fn array2<'py, T: numpy::Element>(
    py: Python<'py>,
    values: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    array1(py, values).reshape([rows, cols])
}

/// The safetensors dtype of a numpy dtype string (`<f4`, `|u1`, ...), little-endian only.
fn dtype_of(code: &str) -> Option<Dtype> {
    Some(match code {
        "<f4" => Dtype::F32,
        "<f2" => Dtype::F16,
        "<f8" => Dtype::F64,
        "<i8" => Dtype::I64,
        "<i4" => Dtype::I32,
        "<i2" => Dtype::I16,
        "|i1" => Dtype::I8,
        "<u8" => Dtype::U64,
        "<u4" => Dtype::U32,
        "<u2" => Dtype::U16,
        "|u1" => Dtype::U8,
        "|b1" => Dtype::BOOL,
        _ => return None,
    })
}

/// One tensor of a mapping, as numpy holds it.
struct Tensor<'py> {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    array: Bound<'py, numpy::PyUntypedArray>,
}

/// Writes the mapping `tensors` (name to array: numpy arrays, PyTorch tensors on the CPU, or
/// anything numpy takes) as the safetensors file `path`, in the mapping's order, every
/// tensor's bytes as numpy stores them.
pub fn write_safetensors(
    py: Python<'_>,
    tensors: &Bound<'_, PyMapping>,
    path: &Path,
) -> PyResult<()> {
    let numpy = py.import("numpy")?;
    let mut all: Vec<Tensor> = Vec::new();
    for item in tensors.items()?.iter() {
        let (key, value): (Bound<PyAny>, Bound<PyAny>) = item.extract()?;
        let name: String = key.extract().map_err(|_| {
            error::new(format!(
                "a tensor's name must be a string, not {}",
                key.get_type().name().map_or("?".into(), |n| n.to_string())
            ))
        })?;
        refuse_masked(&numpy, &value, &format!("tensor {name}"))?;
        let array = numpy
            .call_method1("ascontiguousarray", (&value,))
            .map_err(|e| {
                error::new(format!(
                    "tensor {name}: numpy cannot read it ({e}); give CPU tensors of float32, float16 or float64 (a bfloat16 tensor: .float())"
                ))
            })?
            .cast_into::<numpy::PyUntypedArray>()?;
        let code: String = array.getattr("dtype")?.getattr("str")?.extract()?;
        let Some(dtype) = dtype_of(&code) else {
            return Err(error::new(format!(
                "tensor {name}: numpy dtype {code} has no safetensors equivalent here (little-endian floats, integers and booleans)"
            )));
        };
        all.push(Tensor {
            name,
            dtype,
            shape: array.shape().to_vec(),
            array,
        });
    }
    let declared: Vec<(String, Dtype, Vec<usize>)> = all
        .iter()
        .map(|t| (t.name.clone(), t.dtype, t.shape.clone()))
        .collect();
    let mut writer =
        eie_checkpoint::Writer::create(path, &BTreeMap::new(), &declared).map_err(error::from)?;
    for t in &all {
        // One tensor's bytes at a time: a large state_dict is never copied whole.
        let bytes = t.array.call_method0("tobytes")?.cast_into::<PyBytes>()?;
        writer.write_tensor(bytes.as_bytes()).map_err(error::from)?;
    }
    writer.finish().map_err(error::from)?;
    Ok(())
}

/// A dict from JSON text.
pub fn json_dict<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}
