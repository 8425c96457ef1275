//! What the simulation commands share: the hardware and arithmetic options, reading input
//! vectors, and running a model (functional and timing models together) on them.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use eie_checkpoint::Checkpoint;
use eie_format::Bundle;
use eie_simulate::fixed::{from_q16, quantize};
use eie_simulate::{
    Arith, LayerTiming, LayerView, TimingParams, float, functional, timing, workload,
};
use serde::Serialize;

/// The hardware's and the arithmetic's parameters (docs/timing-model.md, docs/fixed-point.md).
#[derive(clap::Args, Debug, Clone)]
pub struct SimOptions {
    /// Activation queue depth per PE.
    #[arg(long, default_value_t = 8)]
    pub fifo: usize,
    /// Clock in MHz.
    #[arg(long, default_value_t = 800.0)]
    pub clock_mhz: f64,
    /// Width of a Spmat SRAM line, in bits.
    #[arg(long, default_value_t = 64)]
    pub spmat_width: u32,
    /// Arithmetic pipeline stages.
    #[arg(long, default_value_t = 4)]
    pub pipeline_depth: u32,
    /// Model the authors' ring-buffer queue, which holds one activation less than its depth.
    #[arg(long)]
    pub queue_ring: bool,
    /// No cycle to move past a group of N activations without non-zeros left (the default
    /// charges one, as the authors' simulator does).
    #[arg(long)]
    pub no_group_advance: bool,
    /// Accumulator width in bits (even, 16..=62).
    #[arg(long, default_value_t = 32)]
    pub acc_bits: u8,
    /// Apply ReLU on the last layer's write-back too (by default its outputs are logits).
    #[arg(long)]
    pub relu_last: bool,
}

impl SimOptions {
    pub fn timing(&self) -> Result<TimingParams> {
        let p = TimingParams {
            fifo_depth: self.fifo,
            queue_ring: self.queue_ring,
            clock_mhz: self.clock_mhz,
            spmat_width: self.spmat_width,
            pipeline_depth: self.pipeline_depth,
            group_advance: !self.no_group_advance,
        };
        p.validate()?;
        Ok(p)
    }

    pub fn arith(&self) -> Result<Arith> {
        let a = Arith {
            acc_bits: self.acc_bits,
            relu_last: self.relu_last,
        };
        a.validate()?;
        Ok(a)
    }
}

/// Where input vectors come from.
#[derive(clap::Args, Debug, Clone)]
pub struct InputOptions {
    /// Input vectors: a safetensors file with one float tensor, `[inputs]` or `[vectors, inputs]`.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The tensor to read when the input file holds several.
    #[arg(long, value_name = "NAME", requires = "input")]
    pub input_tensor: Option<String>,
    /// Input vectors: samples of a dataset (mnist:DIR[:train|t10k], idx:IMAGES,LABELS,
    /// safetensors:FILE, synthetic (or synthetic:SEED)), scaled by --scale/--mean/--std.
    #[arg(long, value_name = "SPEC", conflicts_with = "input")]
    pub dataset: Option<eie_dataset::Spec>,
    /// The dataset's samples to use (A..B; default all).
    #[arg(long, value_name = "A..B", requires = "dataset")]
    pub range: Option<eie_dataset::SampleRange>,
    #[command(flatten)]
    pub scale: crate::accuracy::ScaleOptions,
    /// Without --input or --dataset: the fraction of non-zero activations generated
    /// (exactly round(D x inputs) of them, at random positions, values in [-1, 1]).
    #[arg(
        long,
        value_name = "D",
        default_value_t = 1.0,
        allow_negative_numbers = true,
        conflicts_with_all = ["input", "dataset"]
    )]
    pub act_density: f64,
    /// Seed of the generated activations.
    #[arg(long, default_value_t = 0, conflicts_with_all = ["input", "dataset"])]
    pub seed: u64,
    /// Activation fractional bits, one per layer boundary (layers + 1, comma-separated);
    /// default: calibrated on the input vectors.
    #[arg(long, value_name = "F,F,...", value_delimiter = ',')]
    pub act_frac: Vec<u8>,
}

impl InputOptions {
    /// Input vectors of `width` floats: a dataset's samples (scaled as the options say, else
    /// as the bundle's `settings` record the model's training), read from the file, or one
    /// generated vector.
    pub fn vectors(
        &self,
        width: usize,
        settings: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<Vec<f32>>> {
        if self.dataset.is_none() && self.scale.is_set() {
            bail!("--scale, --mean and --std apply to a dataset; give --dataset");
        }
        if let Some(spec) = &self.dataset {
            let scaling = self.scale.resolve(settings)?;
            let data = crate::accuracy::load(spec, self.range, &scaling)?;
            if data.width() != width {
                bail!(
                    "dataset {} has {} inputs per sample, but the first layer takes {width}",
                    data.name(),
                    data.width()
                );
            }
            return Ok((0..data.len()).map(|i| data.input(i).to_vec()).collect());
        }
        let Some(path) = &self.input else {
            if !(0.0..=1.0).contains(&self.act_density) {
                bail!("--act-density must be in [0, 1], got {}", self.act_density);
            }
            let q = workload::random_activations(width, self.act_density, self.seed);
            return Ok(vec![q.iter().map(|&v| from_q16(v, 14)).collect()]);
        };
        let ck = Checkpoint::open(path)?;
        let name = match &self.input_tensor {
            Some(n) => n.clone(),
            None => {
                let all = ck.tensors();
                match all.as_slice() {
                    [one] => one.name.clone(),
                    _ => bail!(
                        "{} holds {} tensors; say which with --input-tensor ({})",
                        path.display(),
                        all.len(),
                        ck.available()
                    ),
                }
            }
        };
        let info = ck
            .info(&name)
            .with_context(|| format!("{}: no tensor \"{name}\"", path.display()))?;
        let data = ck
            .read_f32(&name)
            .with_context(|| format!("input {}", path.display()))?;
        let vectors: Vec<Vec<f32>> = match info.shape[..] {
            [n] if n == width => vec![data],
            [_, n] if n == width => data.chunks(width.max(1)).map(<[f32]>::to_vec).collect(),
            _ => bail!(
                "input tensor \"{name}\" of {} has shape {:?}, expected [{width}] or [vectors, {width}] for the first layer's {width} inputs",
                path.display(),
                info.shape
            ),
        };
        for (v, x) in vectors.iter().enumerate() {
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                bail!(
                    "input tensor \"{name}\" of {}: vector {v}, value {i} is {}",
                    path.display(),
                    x[i]
                );
            }
        }
        Ok(vectors)
    }
}

/// The bundle's layers, or only the one named `layer` (an error listing the names when
/// there is none of that name).
pub fn select_views<'a>(bundle: &'a Bundle, layer: Option<&str>) -> Result<Vec<LayerView<'a>>> {
    let mut views = LayerView::all(bundle);
    if let Some(name) = layer {
        views.retain(|v| v.name() == name);
        if views.is_empty() {
            let names: Vec<&str> = LayerView::all(bundle).iter().map(|v| v.name()).collect();
            bail!("no layer named \"{name}\" (layers: {})", names.join(", "));
        }
    }
    Ok(views)
}

/// One layer of one vector's run.
#[derive(Serialize)]
pub struct LayerRun {
    pub name: String,
    #[serde(flatten)]
    pub timing: TimingReport,
    pub outputs: Outputs,
}

/// A layer's timing, as reported.
#[derive(Serialize)]
pub struct TimingReport {
    pub cycles: u64,
    pub time_us: f64,
    pub load_efficiency: f64,
    pub theoretical_cycles: u64,
    pub lower_bound: u64,
    pub broadcasts: u64,
    pub stall_cycles: u64,
    pub batches: usize,
    pub macs: u64,
    pub padding: u64,
    pub spmat_reads: u64,
    pub pointer_reads: u64,
    pub bypasses: u64,
    pub gops: f64,
    pub pe: Vec<PeReport>,
}

#[derive(Serialize)]
pub struct PeReport {
    pub index: usize,
    pub busy: u64,
    pub starved: u64,
    pub blocking: u64,
    pub entries: u64,
    pub spmat_reads: u64,
}

impl From<&LayerTiming> for TimingReport {
    fn from(t: &LayerTiming) -> Self {
        Self {
            cycles: t.cycles,
            time_us: t.time_us(),
            load_efficiency: t.load_efficiency(),
            theoretical_cycles: t.theoretical_cycles(),
            lower_bound: t.lower_bound,
            broadcasts: t.broadcasts,
            stall_cycles: t.stall_cycles,
            batches: t.batches,
            macs: t.macs,
            padding: t.padding,
            spmat_reads: t.spmat_reads(),
            pointer_reads: t.pointer_reads,
            bypasses: t.bypasses(),
            gops: t.gops(),
            pe: t
                .pes
                .iter()
                .enumerate()
                .map(|(index, p)| PeReport {
                    index,
                    busy: p.busy,
                    starved: p.starved,
                    blocking: p.blocking,
                    entries: p.entries,
                    spmat_reads: p.spmat_reads,
                })
                .collect(),
        }
    }
}

/// A layer's outputs, as 16-bit values and as numbers.
#[derive(Serialize)]
pub struct Outputs {
    pub frac_bits: u8,
    pub fixed: Vec<i16>,
    pub float: Vec<f32>,
}

/// One layer on one input: the functional model's outputs and accumulators, and the timing.
pub struct Step {
    pub output: functional::LayerOutput,
    pub timing: LayerTiming,
}

/// Runs a layer: functional and timing models on the same 16-bit input.
pub fn step(
    view: LayerView,
    input: &[i16],
    f_in: u8,
    f_out: u8,
    arith: Arith,
    relu: bool,
    params: &TimingParams,
) -> Result<Step> {
    let output = functional::layer(view, input, f_in, f_out, arith, relu)?;
    let mut active: Vec<bool> = input.iter().map(|&a| a != 0).collect();
    if view.has_bias() {
        active.push(true);
    }
    let timing = timing::layer(view, &active, params)?;
    Ok(Step { output, timing })
}

/// Activation fractions for a chain of layers: given, or calibrated on `vectors`.
pub fn fractions(
    views: &[LayerView],
    vectors: &[Vec<f32>],
    given: &[u8],
    relu_last: bool,
) -> Result<Vec<u8>> {
    if given.is_empty() {
        return Ok(float::calibrate(views, vectors, relu_last));
    }
    eie_simulate::fixed::check_fractions(given, views.len())?;
    Ok(given.to_vec())
}

/// Runs a chain of layers on one float vector: each layer's output feeds the next.
pub fn run_chain(
    views: &[LayerView],
    x: &[f32],
    fracs: &[u8],
    arith: Arith,
    params: &TimingParams,
) -> Result<(Vec<i16>, Vec<Step>)> {
    views[0].check_input(x.len())?;
    let input = quantize(x, fracs[0])?;
    let mut a = input.clone();
    let mut steps = Vec::with_capacity(views.len());
    for (i, view) in views.iter().enumerate() {
        let relu = float::relu_at(i, views.len(), arith.relu_last);
        let s = step(*view, &a, fracs[i], fracs[i + 1], arith, relu, params)?;
        a = s.output.outputs.clone();
        steps.push(s);
    }
    Ok((input, steps))
}

/// The report of one layer's step.
pub fn layer_run(view: LayerView, s: &Step, f_out: u8) -> LayerRun {
    LayerRun {
        name: view.name().to_string(),
        timing: TimingReport::from(&s.timing),
        outputs: Outputs {
            frac_bits: f_out,
            fixed: s.output.outputs.clone(),
            float: s
                .output
                .outputs
                .iter()
                .map(|&q| from_q16(q, f_out))
                .collect(),
        },
    }
}
