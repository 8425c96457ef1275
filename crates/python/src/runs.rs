//! What the runs return to Python: a simulation (the report `simulate --json` prints, with
//! its outputs and cycles as arrays), one layer's run (the values a testbench compares), and
//! a testbench plan (the design's parameters and descriptors with every layer's run).

use eie_commands::report::timing::{LayerRun as LayerReport, Outputs, TimingReport};
use eie_commands::simulate::Report;
use eie_simulate::fixed::from_q16;
use eie_simulate::vectors;
use numpy::{PyArray1, PyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{array1, array2, json_dict};

/// A simulation's results: `report` is what `simulate --json` prints; the arrays hold the
/// last layer's outputs and every layer's cycles, one row per input vector.
#[pyclass(module = "eie_compress", frozen, get_all)]
pub struct Simulation {
    /// The report, as `simulate --json` prints it.
    report: Py<PyAny>,
    /// The layers run, in order.
    layers: Vec<String>,
    /// The last layer's 16-bit outputs, `vectors x outputs` (None for a described model).
    outputs: Option<Py<PyArray2<i16>>>,
    /// The numbers they stand for (the outputs over 2^frac_bits).
    outputs_float: Option<Py<PyArray2<f32>>>,
    /// Fractional bits of the last layer's outputs.
    frac_bits: Option<u8>,
    /// Cycles, `vectors x layers`.
    cycles: Option<Py<PyArray2<u64>>>,
    /// Time at the clock, microseconds, `vectors x layers`.
    time_us: Option<Py<PyArray2<f64>>>,
    /// Energy, nanojoules, `vectors x layers`.
    energy_nj: Option<Py<PyArray2<f64>>>,
    /// Mean cycles per inference, every layer together.
    cycles_per_inference: f64,
}

impl Simulation {
    pub(crate) fn new(py: Python<'_>, report: Report) -> PyResult<Self> {
        let json = serde_json::to_string(&report).map_err(crate::error::from)?;
        let dict = json_dict(py, &json)?.unbind();
        let cycles_per_inference = report.cycles_per_inference();
        let chain = match &report {
            Report::Chain(chain) if !chain.vectors.is_empty() => chain,
            _ => {
                let layers = match &report {
                    Report::Described(d) => d.layers.iter().map(|l| l.name.clone()).collect(),
                    Report::Chain(_) => Vec::new(),
                };
                return Ok(Self {
                    report: dict,
                    layers,
                    outputs: None,
                    outputs_float: None,
                    frac_bits: None,
                    cycles: None,
                    time_us: None,
                    energy_nj: None,
                    cycles_per_inference,
                });
            }
        };
        let vectors = chain.vectors.len();
        let layers: Vec<String> = chain.vectors[0]
            .layers
            .iter()
            .map(|l| l.name.clone())
            .collect();
        // Every vector runs every layer, and a model has at least one.
        let last: Vec<&Outputs> = chain
            .vectors
            .iter()
            .filter_map(|v| v.layers.last().map(|l| &l.outputs))
            .collect();
        let width = last.first().map_or(0, |o| o.fixed.len());
        let fixed: Vec<i16> = last.iter().flat_map(|o| o.fixed.iter().copied()).collect();
        let float: Vec<f32> = last.iter().flat_map(|o| o.float.iter().copied()).collect();
        let per_layer = |f: fn(&LayerReport) -> f64| -> Vec<f64> {
            chain
                .vectors
                .iter()
                .flat_map(|v| v.layers.iter().map(f))
                .collect()
        };
        let cycles: Vec<u64> = chain
            .vectors
            .iter()
            .flat_map(|v| v.layers.iter().map(|l| l.timing.cycles))
            .collect();
        let (time, energy) = (
            per_layer(|l| l.timing.time_us),
            per_layer(|l| l.energy.total_nj),
        );
        let n = layers.len();
        Ok(Self {
            report: dict,
            frac_bits: last.first().map(|o| o.frac_bits),
            outputs: Some(array2(py, fixed, vectors, width)?.unbind()),
            outputs_float: Some(array2(py, float, vectors, width)?.unbind()),
            cycles: Some(array2(py, cycles, vectors, n)?.unbind()),
            time_us: Some(array2(py, time, vectors, n)?.unbind()),
            energy_nj: Some(array2(py, energy, vectors, n)?.unbind()),
            layers,
            cycles_per_inference,
        })
    }
}

#[pymethods]
impl Simulation {
    fn __repr__(&self) -> String {
        format!(
            "Simulation({} layers, {:.1} cycles per inference)",
            self.layers.len(),
            self.cycles_per_inference
        )
    }
}

/// One layer's run on the functional and timing models: its quantized input, fractions,
/// every PE's accumulators before write-back, outputs and cycles. What a testbench compares.
#[pyclass(module = "eie_compress", frozen, get_all)]
pub struct LayerRun {
    /// The layer.
    name: String,
    /// PEs (row r is PE r mod pes's local row r div pes).
    pes: usize,
    /// The 16-bit input activations (the bias column's constant not included).
    input: Py<PyArray1<i16>>,
    /// Fractional bits of the input.
    f_in: u8,
    /// Fractional bits of the outputs.
    f_out: u8,
    /// Whether write-back applied ReLU.
    relu: bool,
    /// Per PE, its rows' accumulators before write-back, int64, local row order.
    accumulators: Vec<Py<PyArray1<i64>>>,
    /// The 16-bit outputs, row order.
    outputs: Py<PyArray1<i16>>,
    /// The numbers they stand for.
    outputs_float: Py<PyArray1<f32>>,
    /// Cycles the timing model counts.
    cycles: u64,
    /// The timing model's counters, as `simulate --json` reports a layer's.
    timing: Py<PyAny>,
}

impl LayerRun {
    /// Of the simulator's record of one layer's run (what `vectors` and `rtl-check` use).
    pub(crate) fn new(py: Python<'_>, run: &vectors::LayerRun) -> PyResult<Self> {
        let (view, step) = (run.view, &run.step);
        let pes = view.pes();
        let acc = &step.output.accumulators;
        let accumulators = (0..pes)
            .map(|k| array1(py, acc.iter().skip(k).step_by(pes).copied().collect()).unbind())
            .collect();
        let out = &step.output.outputs;
        let timing =
            serde_json::to_string(&TimingReport::from(&step.timing)).map_err(crate::error::from)?;
        Ok(Self {
            name: view.name().to_string(),
            pes,
            input: array1(py, run.input.clone()).unbind(),
            f_in: run.f_in,
            f_out: run.f_out,
            relu: run.relu,
            accumulators,
            outputs: array1(py, out.clone()).unbind(),
            outputs_float: array1(py, out.iter().map(|&q| from_q16(q, run.f_out)).collect())
                .unbind(),
            cycles: step.timing.cycles,
            timing: json_dict(py, &timing)?.unbind(),
        })
    }
}

#[pymethods]
impl LayerRun {
    fn __repr__(&self) -> String {
        format!(
            "LayerRun({:?}, f_in {}, f_out {}, {} cycles)",
            self.name, self.f_in, self.f_out, self.cycles
        )
    }
}

/// The reference design's plan for a model and the runs it must match, as `rtl-check` makes
/// them: the `eie_top` parameters, one 256-bit descriptor per part (docs/rtl.md, "Memory
/// map"), and every layer's run.
#[pyclass(module = "eie_compress", frozen, get_all)]
pub struct Testbench {
    /// "chained" (each layer's outputs are the next one's inputs) or "independent".
    mode: String,
    /// The design's parameters, named as `eie_top`'s (N_PE, CODE_BITS, ...).
    params: Py<PyDict>,
    /// One descriptor per part, as a 256-bit integer (field 0 in the low 32 bits).
    descriptors: Vec<Py<PyAny>>,
    /// The descriptors' fields, one dict per part.
    descriptor_fields: Vec<Py<PyDict>>,
    /// Every layer's run, in order.
    runs: Vec<Py<LayerRun>>,
}

impl Testbench {
    pub(crate) fn new(
        py: Python<'_>,
        planned: &eie_commands::rtl_check::Planned,
    ) -> PyResult<Self> {
        let design = &planned.design;
        let p = &design.params;
        let params = PyDict::new(py);
        for (k, v) in p.sizes().into_iter().chain([
            ("MAX_PARTS", p.parts as u64),
            ("MAX_LAYERS", p.layers as u64),
        ]) {
            params.set_item(k, v)?;
        }
        params.set_item("max_cycles", p.max_cycles)?;
        let int = py.import("builtins")?.getattr("int")?;
        let mut descriptors = Vec::new();
        let mut descriptor_fields = Vec::new();
        for d in &design.descriptors {
            descriptors.push(int.call1((d.hex(), 16))?.unbind());
            let f = PyDict::new(py);
            let numbers: [(&str, i64); 10] = [
                ("first_col", d.first_col.into()),
                ("cols", d.cols.into()),
                ("inputs", d.inputs.into()),
                ("first_group", d.first_group.into()),
                ("ptr_base", d.ptr_base.into()),
                ("spmat_base", d.spmat_base.into()),
                ("rows", d.rows.into()),
                ("shift", d.shift.into()),
                ("f_in", d.f_in.into()),
                ("layer", d.layer.into()),
            ];
            for (k, v) in numbers {
                f.set_item(k, v)?;
            }
            for (k, v) in [("last", d.last), ("bias", d.bias), ("relu", d.relu)] {
                f.set_item(k, v)?;
            }
            descriptor_fields.push(f.unbind());
        }
        let runs = planned
            .runs
            .iter()
            .map(|r| Py::new(py, LayerRun::new(py, r)?))
            .collect::<PyResult<_>>()?;
        Ok(Self {
            mode: planned.mode.name().to_string(),
            params: params.unbind(),
            descriptors,
            descriptor_fields,
            runs,
        })
    }
}

#[pymethods]
impl Testbench {
    fn __repr__(&self) -> String {
        format!(
            "Testbench({}, {} layers, {} descriptors)",
            self.mode,
            self.runs.len(),
            self.descriptors.len()
        )
    }
}
