//! `Compressed`: a packed model (an output folder of `compress` or `pack`) loaded once, its
//! report, its layers' arrays, and the runs a notebook or a testbench makes on it.

use std::path::{Path, PathBuf};

use eie_commands::inputs::{InputRequest, Source};
use eie_commands::{NoCharts, PackedModel, page, simulate};
use eie_simulate::LayerView;
use numpy::{PyArray1, PyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args::Options;
use crate::arrays::{array1, array2, json_dict, vectors};
use crate::error;
use crate::runs::{LayerRun, Simulation, Testbench};

/// A packed model: an output folder of `compress` or `pack`, loaded and validated once.
#[pyclass(module = "eie_compress", frozen)]
pub struct Compressed {
    pub(crate) model: PackedModel,
    /// `report.json`'s text, when the folder has one.
    report: Option<String>,
    /// The checkpoint it was made from, when known (what `eval` compares it with).
    source: Option<PathBuf>,
    /// Temporary folders it owns (its output when no `out` was given, a checkpoint written
    /// from arrays): removed with it.
    _owned: Vec<tempfile::TempDir>,
    /// Its `model.eie`'s size and modification time when loaded: the calls that read the
    /// folder again (`save`, `eval`) refuse a folder another run has written since.
    stamp: Option<(u64, std::time::SystemTime)>,
}

/// A file's size and modification time.
fn stamp_of(file: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(file).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

impl Compressed {
    /// Loads the output folder (or `model.eie`) at `path`.
    pub(crate) fn load(
        path: &Path,
        source: Option<PathBuf>,
        owned: Vec<tempfile::TempDir>,
    ) -> PyResult<Self> {
        let mut model = PackedModel::load(path).map_err(error::from)?;
        // Absolute, so a later chdir changes nothing the model refers to.
        let absolute = |p: &Path| {
            std::fs::canonicalize(p)
                .map_err(|e| error::new(format!("cannot resolve {}: {e}", p.display())))
        };
        model.given = absolute(&model.given)?;
        model.file = absolute(&model.file)?;
        let path = model.given.clone();
        let report_file = path.join(eie_pipeline::output::REPORT_FILE);
        let report =
            match model.is_folder() && report_file.is_file() {
                true => Some(std::fs::read_to_string(&report_file).map_err(|e| {
                    error::new(format!("cannot read {}: {e}", report_file.display()))
                })?),
                false => None,
            };
        let stamp = stamp_of(&model.file);
        Ok(Self {
            model,
            report,
            source,
            _owned: owned,
            stamp,
        })
    }

    /// Refuses a folder whose `model.eie` another run has replaced since it was loaded: what
    /// is on disk is no longer this model.
    pub(crate) fn unchanged(&self) -> PyResult<()> {
        if stamp_of(&self.model.file) != self.stamp {
            return Err(error::new(format!(
                "{} changed on disk after it was loaded (another run wrote there): load it again",
                self.model.file.display()
            )));
        }
        Ok(())
    }

    /// The checkpoint it was made from.
    pub(crate) fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    fn views(&self) -> PyResult<Vec<LayerView<'_>>> {
        self.model.views(None).map_err(error::from)
    }

    fn view(&self, name: &str) -> PyResult<(usize, LayerView<'_>)> {
        let views = self.views()?;
        let at = views.iter().position(|v| v.name() == name);
        match at {
            Some(i) => Ok((i, views[i])),
            // The library's message, which lists the layers.
            None => Err(
                match eie_commands::packed::select_views(&self.model.bundle, Some(name)) {
                    Err(e) => error::from(e),
                    Ok(_) => error::new(format!("no layer {name:?}")),
                },
            ),
        }
    }

    /// The inputs: `x`, a `dataset` (`range`, `scale`, `mean`, `std`), or one generated
    /// vector (`act_density`, `seed`); the activation fractions given; the memory the work
    /// may take (`max_memory`).
    fn input(
        &self,
        py: Python<'_>,
        x: Option<&Bound<'_, PyAny>>,
        o: &mut Options,
    ) -> PyResult<(InputRequest, u64)> {
        let density = o.float("act_density")?;
        let seed = o.int::<u64>("seed")?;
        let scale = o.scaling()?;
        let max_memory = o.max_memory()?;
        let spec = o.parsed("dataset")?;
        let dataset = o.dataset(spec, scale, max_memory)?;
        let generated = density.is_some() || seed.is_some();
        let source = match (x, dataset) {
            (Some(_), Some(_)) => {
                return Err(error::new("give x or a dataset, not both"));
            }
            (Some(_), None) | (None, Some(_)) if generated => {
                return Err(error::new(
                    "act_density and seed make a generated input: give them without x or a dataset",
                ));
            }
            (Some(x), None) => Source::Vectors(vectors(py, x, "x")?),
            (None, Some(d)) => Source::Dataset(d),
            (None, None) => Source::Generated {
                density: density.unwrap_or(1.0),
                seed: seed.unwrap_or(0),
            },
        };
        let input = InputRequest {
            source,
            act_frac: o.act_frac()?,
        };
        Ok((input, max_memory))
    }
}

#[pymethods]
impl Compressed {
    /// The folder (or `model.eie`) it was loaded from.
    #[getter]
    fn path(&self) -> PathBuf {
        self.model.given.clone()
    }

    /// `report.json` as a dict (what `compress --json` prints), or None for a folder
    /// without one (`pack`'s).
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.report.as_deref().map(|t| json_dict(py, t)).transpose()
    }

    /// The settings `model.eie` records (how it was made, its input scaling).
    #[getter]
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.model.settings() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// The PEs it is packed for.
    #[getter]
    fn pes(&self) -> PyResult<usize> {
        Ok(self.views()?[0].pes())
    }

    /// Its layers, in order.
    #[getter]
    fn layers(slf: &Bound<'_, Self>) -> PyResult<Vec<Layer>> {
        let n = slf.get().views()?.len();
        Ok((0..n)
            .map(|index| Layer {
                model: slf.clone().unbind(),
                index,
            })
            .collect())
    }

    /// The layer called `name`.
    fn layer(slf: &Bound<'_, Self>, name: &str) -> PyResult<Layer> {
        let (index, _) = slf.get().view(name)?;
        Ok(Layer {
            model: slf.clone().unbind(),
            index,
        })
    }

    /// Runs the bit-exact functional model and the timing model, as `simulate` does, on `x`
    /// (a vector or one vector per row) or on one generated vector.
    #[pyo3(signature = (x=None, **kwargs))]
    fn simulate(
        &self,
        py: Python<'_>,
        x: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Simulation> {
        let mut o = Options::new("simulate", kwargs)?;
        let mut request = simulate::Request::new(self.model.given.clone());
        (request.input, request.max_memory) = self.input(py, x, &mut o)?;
        request.layer = o.text("layer")?;
        request.arith = o.arith()?;
        request.timing = o.timing()?;
        request.cpu = o.flag("cpu")?.unwrap_or(false);
        request.energy.file = o.path("energy_table")?;
        o.finish()?;
        let model = &self.model;
        let report = py
            .detach(|| request.run_on(model, &NoCharts))
            .map_err(error::from)?;
        Simulation::new(py, report)
    }

    /// The HTML report, as `eie-compress report` writes it: the page of report.json with a
    /// simulation on `x`, a dataset or one generated vector, and with `checkpoint` and a
    /// dataset, eval's accuracy. Written to `out`, by default `NAME-report.html` beside the
    /// folder (never inside it); returns the page's path.
    #[pyo3(signature = (out=None, x=None, *, force=false, checkpoint=None, **kwargs))]
    fn report_html(
        &self,
        py: Python<'_>,
        out: Option<PathBuf>,
        x: Option<&Bound<'_, PyAny>>,
        force: bool,
        checkpoint: Option<PathBuf>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PathBuf> {
        self.unchanged()?;
        if out.is_none() && !self._owned.is_empty() {
            // Beside a temporary folder, the page would go with it.
            return Err(error::new(
                "this model lives in a temporary folder, removed with it: give out, the page's path",
            ));
        }
        let mut o = Options::new("report_html", kwargs)?;
        let mut request = page::Request::new(self.model.given.clone());
        (request.input, request.max_memory) = self.input(py, x, &mut o)?;
        request.arith = o.arith()?;
        request.timing = o.timing()?;
        request.energy.file = o.path("energy_table")?;
        o.finish()?;
        request.output = out;
        request.force = force;
        request.checkpoint = checkpoint;
        let done = py.detach(|| request.run()).map_err(error::from)?;
        Ok(PathBuf::from(done.output))
    }

    /// One layer alone, as `simulate --layer NAME` runs it, on the vector `x`: its quantized
    /// input, fractions, accumulators per PE, outputs and timing.
    #[pyo3(signature = (name, x, **kwargs))]
    fn run_layer(
        &self,
        py: Python<'_>,
        name: &str,
        x: &Bound<'_, PyAny>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<LayerRun> {
        let mut o = Options::new("run_layer", kwargs)?;
        let act_frac = o.act_frac()?;
        let arith = o.arith()?;
        let params = o.timing()?;
        o.finish()?;
        let xs = vectors(py, x, "x")?;
        if xs.len() != 1 {
            return Err(error::new(format!(
                "run_layer takes one vector, not {}",
                xs.len()
            )));
        }
        let (_, view) = self.view(name)?;
        let input = InputRequest {
            source: Source::Vectors(xs),
            act_frac,
        };
        let settings = self.model.settings();
        let run = py.detach(|| -> eie_commands::Result<_> {
            params.validate()?;
            arith.validate()?;
            // One layer is a chain of one: its fractions given or calibrated on x.
            let (_, mut runs) = input.runs(&[view], settings, &params, arith)?;
            Ok(runs.swap_remove(0))
        });
        LayerRun::new(py, &run.map_err(error::from)?)
    }

    /// What the reference RTL is checked against, as `rtl-check` plans it: the design's
    /// parameters and descriptors, and every layer's run on `x` (or a generated vector) on
    /// the functional and timing models. Where a testbench of one's own starts
    /// (rtl/cocotb).
    #[pyo3(signature = (x=None, **kwargs))]
    fn testbench(
        &self,
        py: Python<'_>,
        x: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Testbench> {
        let mut o = Options::new("testbench", kwargs)?;
        let (input, _) = self.input(py, x, &mut o)?;
        let request = eie_commands::rtl_check::Request {
            dir: self.model.given.clone(),
            simulator: eie_rtl::Simulator::Iverilog,
            work: None,
            host_load: false,
            input,
            timing: o.timing()?,
            arith: o.arith()?,
        };
        o.finish()?;
        let model = &self.model;
        let planned = py.detach(|| request.plan(model)).map_err(error::from)?;
        Testbench::new(py, &planned)
    }

    /// Copies the folder into `dir` as a run writes one: checked, staged and published at
    /// once, never over an input, and over an earlier output of this tool only with
    /// `force`. Returns the folder.
    #[pyo3(signature = (dir, *, force=false))]
    fn save(&self, py: Python<'_>, dir: PathBuf, force: bool) -> PyResult<PathBuf> {
        self.unchanged()?;
        let model = &self.model;
        py.detach(|| eie_commands::packed::copy_output(model, &dir, force))
            .map_err(error::from)?;
        Ok(dir)
    }

    fn __repr__(&self) -> String {
        let views = self.model.views(None).unwrap_or_default();
        format!(
            "Compressed({:?}, {} layers on {} PEs)",
            self.model.given.display().to_string(),
            views.len(),
            views.first().map_or(0, |v| v.pes())
        )
    }
}

/// One layer of a [`Compressed`] model: its shape, codebook and every PE's arrays.
#[pyclass(module = "eie_compress", frozen)]
pub struct Layer {
    model: Py<Compressed>,
    index: usize,
}

impl Layer {
    fn with<T>(&self, py: Python<'_>, f: impl FnOnce(LayerView) -> PyResult<T>) -> PyResult<T> {
        let model = self.model.bind(py).get();
        let views = model.views()?;
        f(views[self.index])
    }

    /// The part holding column batch `part` (0 when the layer is not split).
    fn part<T>(
        &self,
        py: Python<'_>,
        pe: usize,
        part: usize,
        f: impl FnOnce(&eie_format::PeStreams) -> T,
    ) -> PyResult<T> {
        self.with(py, |v| {
            let parts = v.parts();
            let p = parts.get(part).ok_or_else(|| {
                error::new(format!(
                    "layer {} has {} column batches; part {part} is not one",
                    v.name(),
                    parts.len()
                ))
            })?;
            let s = p.streams().get(pe).ok_or_else(|| {
                error::new(format!(
                    "layer {} is packed for {} PEs; PE {pe} is not one",
                    v.name(),
                    v.pes()
                ))
            })?;
            Ok(f(s))
        })
    }
}

#[pymethods]
impl Layer {
    /// The layer's name.
    #[getter]
    fn name(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |v| Ok(v.name().to_string()))
    }

    /// Output rows.
    #[getter]
    fn rows(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |v| Ok(v.rows()))
    }

    /// Columns, the folded bias column included.
    #[getter]
    fn cols(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |v| Ok(v.cols()))
    }

    /// Inputs: the columns but the bias column.
    #[getter]
    fn inputs(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |v| Ok(v.inputs()))
    }

    /// Whether the last column is a folded bias.
    #[getter]
    fn has_bias(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |v| Ok(v.has_bias()))
    }

    /// PEs the rows are interleaved over (row r on PE r mod N).
    #[getter]
    fn pes(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |v| Ok(v.pes()))
    }

    /// Column batches (parts) the layer is split into to fit the memories.
    #[getter]
    fn parts(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |v| Ok(v.parts().len()))
    }

    /// Bits of a weight code.
    #[getter]
    fn code_bits(&self, py: Python<'_>) -> PyResult<u8> {
        self.with(py, |v| Ok(v.parts()[0].code_bits()))
    }

    /// Bits of a relative row index.
    #[getter]
    fn index_bits(&self, py: Python<'_>) -> PyResult<u8> {
        self.with(py, |v| Ok(v.parts()[0].index_bits()))
    }

    /// The codebook: the value of every code (code 0 is 0.0), float32.
    #[getter]
    fn codebook<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let values = self.with(py, |v| Ok(v.codebook().values().to_vec()))?;
        Ok(array1(py, values))
    }

    /// Entries (padding included) every PE stores, over the parts.
    #[getter]
    fn entries_per_pe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let counts = self.with(py, |v| {
            let mut n = vec![0u64; v.pes()];
            for part in v.parts() {
                for (k, s) in part.streams().iter().enumerate() {
                    n[k] += s.codes().len() as u64;
                }
            }
            Ok(n)
        })?;
        Ok(array1(py, counts))
    }

    /// Padding entries (code 0) every PE stores, over the parts.
    #[getter]
    fn padding_per_pe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let counts = self.with(py, |v| {
            let mut n = vec![0u64; v.pes()];
            for part in v.parts() {
                for (k, s) in part.streams().iter().enumerate() {
                    n[k] += s.codes().iter().filter(|&&c| c == 0).count() as u64;
                }
            }
            Ok(n)
        })?;
        Ok(array1(py, counts))
    }

    /// PE `pe`'s weight codes, one per entry (0: padding), in stream order, uint8.
    #[pyo3(signature = (pe, part=0))]
    fn codes<'py>(
        &self,
        py: Python<'py>,
        pe: usize,
        part: usize,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let v = self.part(py, pe, part, |s| s.codes().to_vec())?;
        Ok(array1(py, v))
    }

    /// PE `pe`'s relative row indices (zeros skipped before each entry), uint8.
    #[pyo3(signature = (pe, part=0))]
    fn indices<'py>(
        &self,
        py: Python<'py>,
        pe: usize,
        part: usize,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let v = self.part(py, pe, part, |s| s.z().to_vec())?;
        Ok(array1(py, v))
    }

    /// PE `pe`'s column pointers (columns + 1 of them), uint32.
    #[pyo3(signature = (pe, part=0))]
    fn pointers<'py>(
        &self,
        py: Python<'py>,
        pe: usize,
        part: usize,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let v = self.part(py, pe, part, |s| s.ptr().to_vec())?;
        Ok(array1(py, v))
    }

    /// The weights the images hold, as a dense float32 `rows x inputs` matrix (0.0 where
    /// pruned), and the folded bias (None without one).
    #[allow(clippy::type_complexity)]
    fn dense<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, Option<Bound<'py, PyArray1<f32>>>)> {
        let (rows, inputs, (w, bias)) = self.with(py, |v| {
            Ok((v.rows(), v.inputs(), v.dense().map_err(error::from)?))
        })?;
        Ok((array2(py, w, rows, inputs)?, bias.map(|b| array1(py, b))))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |v| {
            Ok(format!(
                "Layer({:?}, {} x {}{}, {} PEs)",
                v.name(),
                v.rows(),
                v.inputs(),
                if v.has_bias() { " + bias" } else { "" },
                v.pes()
            ))
        })
    }
}
