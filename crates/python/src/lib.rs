//! The Python package `eie_compress`: thin PyO3 bindings over the commands library
//! (`eie-commands`). Every call builds the command's request from its keyword arguments
//! (named as the command line's flags and recipe keys), runs it with the GIL released, and
//! returns its report as Python values and numpy arrays; the only logic here is converting
//! values across the boundary. docs/python.md is the guide; `eie_compress.pyi` the types.

#![deny(missing_docs)]

mod args;
mod arrays;
mod error;
mod model;
mod runs;

use std::path::PathBuf;

use eie_commands::{compress as compress_cmd, eval, pack as pack_cmd};
use eie_progress::Progress;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};

use crate::args::Options;
use crate::arrays::json_dict;
use crate::error::EieError;
use crate::model::{Compressed, Layer};
use crate::runs::{LayerRun, Simulation, Testbench};

/// A checkpoint given as a path, or as a mapping of named arrays written into a temporary
/// folder (kept as long as the model made from it: `eval` of that model reads it).
fn checkpoint(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    owned: &mut Vec<tempfile::TempDir>,
) -> PyResult<PathBuf> {
    if let Ok(path) = model.extract::<PathBuf>() {
        return Ok(path);
    }
    let Ok(tensors) = model.cast::<PyMapping>() else {
        return Err(error::new(format!(
            "the model must be a path or a mapping of tensor names to arrays (a state_dict), not {}",
            model.get_type().name()?
        )));
    };
    let dir = temporary()?;
    let path = dir.path().join("state_dict.safetensors");
    arrays::write_safetensors(py, tensors, &path)?;
    owned.push(dir);
    Ok(path)
}

/// A new temporary folder.
fn temporary() -> PyResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("eie-compress-")
        .tempdir()
        .map_err(|e| error::new(format!("cannot create a temporary folder: {e}")))
}

/// The checkpoint and the output folder of a `compress` or `pack` call: `model` as
/// [`checkpoint`] takes it, and `out`, or a new folder inside a temporary one; with the
/// temporary folders, which the result owns.
fn paths(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    out: Option<PathBuf>,
) -> PyResult<(PathBuf, PathBuf, Vec<tempfile::TempDir>)> {
    let mut owned = Vec::new();
    let path = checkpoint(py, model, &mut owned)?;
    let out = match out {
        Some(out) => out,
        None => {
            let dir = temporary()?;
            let out = dir.path().join("model");
            owned.push(dir);
            out
        }
    };
    Ok((path, out, owned))
}

/// Prunes, weight-shares and packs `model` (a `.safetensors` path, a sharded checkpoint's
/// index, a Hugging Face folder, or a state_dict) as `eie-compress compress` does, into
/// `out` (default: a temporary folder the result owns; `Compressed.save` copies it).
#[pyfunction]
#[pyo3(signature = (model, out=None, *, force=false, quiet=false, **kwargs))]
fn compress(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    out: Option<PathBuf>,
    force: bool,
    quiet: bool,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Compressed> {
    let mut o = Options::new("compress", kwargs)?;
    // Every keyword is taken and checked before a state_dict is written out.
    let mut r = compress_cmd::Request::new(PathBuf::new(), PathBuf::new());
    r.force = force;
    let packing = o.packing()?;
    (r.layers, r.fold_bias, r.fit) = (packing.layers, packing.fold_bias, packing.fit);
    r.pes = packing.pes.unwrap_or(r.pes);
    r.arch = o.text("arch")?;
    r.recipe = o.path("recipe")?;
    r.conv_on_eie = o.flag("conv_on_eie")?.unwrap_or(false);
    let scale = o.scaling()?;
    let max_memory = o.max_memory()?;
    let spec = o.parsed("dataset")?;
    r.data = o.dataset(spec, scale, max_memory)?;
    r.eval_range = o.parsed("eval_range")?;
    if r.eval_range.is_some() && r.data.is_none() {
        return Err(error::new(
            "compress: eval_range applies to a dataset: give dataset too",
        ));
    }
    r.act_frac = o.act_frac()?;
    r.arith = o.arith()?;
    r.retrain = o.flag("retrain")?.unwrap_or(false);
    r.teacher = o.path("teacher")?;
    r.calibration = o.calibration(scale, max_memory)?;
    r.settings = o.knobs(eie_pipeline::LAYER_KNOBS)?;
    r.run = o.knobs(eie_pipeline::RUN_KNOBS)?;
    r.retraining = o.knobs(eie_evaluate::RETRAIN_KNOBS)?;
    o.finish()?;
    let (path, out, owned) = paths(py, model, out)?;
    (r.model, r.out) = (path.clone(), out.clone());
    let progress = Progress::new(quiet);
    py.detach(|| r.resolve()?.run(&progress))
        .map_err(error::from)?;
    Compressed::load(&out, Some(path), owned)
}

/// Loads an output folder of `compress` or `pack` (or a `model.eie`).
#[pyfunction]
fn load(path: PathBuf) -> PyResult<Compressed> {
    Compressed::load(&path, None, Vec::new())
}

/// Packs tensors that are already pruned and weight-shared (a path or a mapping of named
/// arrays), as `eie-compress pack` does, into `out` (default: a temporary folder).
#[pyfunction]
#[pyo3(signature = (tensors, out=None, *, force=false, quiet=false, **kwargs))]
fn pack(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    out: Option<PathBuf>,
    force: bool,
    quiet: bool,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Compressed> {
    let mut o = Options::new("pack", kwargs)?;
    let mut r = pack_cmd::Request::new(PathBuf::new(), PathBuf::new());
    r.force = force;
    let packing = o.packing()?;
    (r.layers, r.fold_bias, r.fit) = (packing.layers, packing.fold_bias, packing.fit);
    r.pes = packing.pes.unwrap_or(r.pes);
    r.widths = o.knobs(eie_pipeline::LAYER_KNOBS)?;
    o.finish()?;
    let (path, out, owned) = paths(py, tensors, out)?;
    (r.model, r.out) = (path.clone(), out.clone());
    let progress = Progress::new(quiet);
    py.detach(|| r.run(&progress)).map_err(error::from)?;
    Compressed::load(&out, Some(path), owned)
}

/// Measures top-1 accuracy (a language model's perplexity) of `model` (a checkpoint path,
/// a state_dict, or a `Compressed` made by `compress`: then also every stage of it, down to
/// the bit-exact model on its images), on `dataset` (a specification such as
/// `"mnist:DIR"`) or on the arrays `inputs` (one sample per row) and `labels`. Returns
/// the report `eval --json` prints.
#[pyfunction]
#[pyo3(name = "eval", signature = (model, dataset=None, *, inputs=None, labels=None, **kwargs))]
fn eval_(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    dataset: Option<&str>,
    inputs: Option<&Bound<'_, PyAny>>,
    labels: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let mut owned = Vec::new();
    let mut o = Options::new("eval", kwargs)?;
    let (checkpoint_path, dir) = match model.cast::<Compressed>() {
        Ok(c) => {
            let c = c.get();
            c.unchanged()?;
            let source = c.source().ok_or_else(|| {
                error::new(
                    "this Compressed was loaded, not made by compress(): give eval the checkpoint and the folder, eval(checkpoint, compressed=path)",
                )
            })?;
            (source.to_path_buf(), Some(c.model.given.clone()))
        }
        Err(_) => (checkpoint(py, model, &mut owned)?, o.path("compressed")?),
    };
    let spec = match (dataset, inputs, labels) {
        (Some(d), None, None) => d
            .parse::<eie_dataset::Spec>()
            .map_err(|e| error::new(format!("eval: dataset {d:?}: {e}")))?,
        (None, Some(x), Some(y)) => {
            let tmp = temporary()?;
            let path = tmp.path().join("dataset.safetensors");
            let d = PyDict::new(py);
            d.set_item("inputs", x)?;
            d.set_item("labels", y)?;
            arrays::write_safetensors(py, d.as_mapping(), &path)?;
            owned.push(tmp);
            eie_dataset::Spec::Safetensors { path }
        }
        _ => {
            return Err(error::new(
                "eval takes a dataset specification, or inputs and labels as arrays (both), not a mix",
            ));
        }
    };
    let scale = o.scaling()?;
    let max_memory = o.max_memory()?;
    let data = o
        .dataset(Some(spec), scale, max_memory)?
        .expect("a dataset was given");
    let arith = o.arith()?;
    let timing = o.timing()?;
    let r = eval::Request {
        model: checkpoint_path,
        dir,
        data,
        arch: o.text("arch")?,
        layers: o.texts("layers")?,
        act_frac: o.act_frac()?,
        arith,
        timing,
        energy: eie_commands::EnergyTable {
            file: o.path("energy_table")?,
        },
        context: o.int("context")?,
        stride: o.int("stride")?,
    };
    o.finish()?;
    let report = py.detach(|| r.run()).map_err(error::from)?;
    let json = serde_json::to_string(&report).map_err(error::from)?;
    drop(owned);
    Ok(json_dict(py, &json)?.unbind())
}

/// The package `eie_compress`.
#[pymodule(name = "eie_compress")]
fn eie_python(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("EieError", m.py().get_type::<EieError>())?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(pack, m)?)?;
    m.add_function(wrap_pyfunction!(eval_, m)?)?;
    m.add_class::<Compressed>()?;
    m.add_class::<Layer>()?;
    m.add_class::<Simulation>()?;
    m.add_class::<LayerRun>()?;
    m.add_class::<Testbench>()?;
    Ok(())
}
