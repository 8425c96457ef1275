//! The option groups several commands share, each declared once and flattened into every
//! command that takes it: same names, same types, same help. Each group turns itself into
//! the library's settings type; nothing here does any work.

use std::path::PathBuf;

use eie_dataset::{SampleRange, ScalingRequest, Spec};
use eie_images::{Capacity, ColumnBatch, Fit};
use eie_pipeline::output::{Inputs, Kind, check_file, write_file};
use eie_simulate::{Arith, TimingParams};

/// The input data of a command: a dataset and which of its samples.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DatasetArgs {
    /// A dataset: mnist:DIR[:train|t10k], idx:IMAGES,LABELS, safetensors:FILE, or synthetic
    /// (or synthetic:SEED).
    #[arg(long, value_name = "SPEC")]
    pub dataset: Option<Spec>,
    /// The dataset's samples to use, A..B (indices from 0; default all). With `compress
    /// --retrain` and with `train`, the samples trained on.
    #[arg(long, value_name = "A..B", requires = "dataset")]
    pub range: Option<SampleRange>,
}

/// Held-out samples, for the commands that also train.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EvalRangeArgs {
    /// Held-out samples of the dataset that accuracy is reported on, A..B (default: --range).
    #[arg(long, value_name = "A..B", requires = "dataset")]
    pub eval_range: Option<SampleRange>,
}

/// How a dataset's inputs are scaled.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleKind {
    /// Integer inputs (U8 pixels) divided by their type's largest value: [0, 1].
    Unit,
    /// Inputs as stored.
    Raw,
}

/// Input scaling; each default is what the model records (`train` writes it), else `unit`,
/// mean 0, std 1. It scales a dataset, so each option requires `--dataset`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ScaleArgs {
    /// unit: integer inputs (U8 pixels) divided by their type's largest value, to [0, 1];
    /// raw: as stored (float inputs are always taken as stored).
    #[arg(long, value_enum, requires = "dataset")]
    pub scale: Option<ScaleKind>,
    /// Subtracted from every input after --scale.
    #[arg(long, allow_negative_numbers = true, requires = "dataset")]
    pub mean: Option<f32>,
    /// Every input is divided by it after subtracting the mean.
    #[arg(long, requires = "dataset")]
    pub std: Option<f32>,
}

impl ScaleArgs {
    /// The scaling asked for.
    pub fn request(&self) -> ScalingRequest {
        ScalingRequest {
            unit: self.scale.map(|k| k == ScaleKind::Unit),
            mean: self.mean,
            std: self.std,
        }
    }
}

/// Parses an `--act-density`: a fraction in [0, 1] (checked by the simulator's own rule).
pub fn act_density(text: &str) -> Result<f64, String> {
    let d: f64 = text.parse().map_err(|e| format!("{e}"))?;
    eie_simulate::workload::check_act_density(d).map_err(|e| e.to_string())?;
    Ok(d)
}

/// The EIE model's activation fractions.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ActFracArgs {
    /// Activation fractional bits of the EIE model, one per layer boundary (layers + 1,
    /// comma-separated); default: calibrated on the inputs the command runs.
    #[arg(long, value_name = "F,F,...", value_delimiter = ',')]
    pub act_frac: Vec<u8>,
}

/// The EIE model's arithmetic (docs/fixed-point.md).
#[derive(clap::Args, Debug, Clone)]
pub struct ArithArgs {
    /// Accumulator width in bits (even, 16..=62).
    #[arg(long, default_value_t = Arith::default().acc_bits)]
    pub acc_bits: u8,
    /// Apply ReLU on the last layer's write-back too (by default its outputs are logits).
    #[arg(long)]
    pub relu_last: bool,
}

impl ArithArgs {
    /// The arithmetic, checked.
    pub fn arith(&self) -> eie_simulate::Result<Arith> {
        let a = Arith {
            acc_bits: self.acc_bits,
            relu_last: self.relu_last,
        };
        a.validate()?;
        Ok(a)
    }
}

/// The timing model's hardware (docs/timing-model.md).
#[derive(clap::Args, Debug, Clone)]
pub struct TimingArgs {
    /// Activation queue depth per PE.
    #[arg(long, default_value_t = TimingParams::default().fifo_depth)]
    pub fifo: usize,
    /// Clock in MHz.
    #[arg(long, default_value_t = TimingParams::default().clock_mhz)]
    pub clock_mhz: f64,
    /// Width of a Spmat SRAM line, in bits.
    #[arg(long, default_value_t = TimingParams::default().spmat_width)]
    pub spmat_width: u32,
    /// Arithmetic pipeline stages.
    #[arg(long, default_value_t = TimingParams::default().pipeline_depth)]
    pub pipeline_depth: u32,
    /// Model the authors' ring-buffer queue, which holds one activation less than its depth.
    #[arg(long)]
    pub queue_ring: bool,
    /// No cycle to move past a group of N activations without non-zeros left (the default
    /// charges one after every group, as the reference RTL does).
    #[arg(long)]
    pub no_group_advance: bool,
    /// Whose schedule: this project's, which the reference RTL implements, or the EIE
    /// authors' cycle simulator's (its group advance, ring queue and pointer register; queue
    /// depth D then holds D - 1 activations, as theirs).
    #[arg(long, value_enum, default_value_t = RulesArg::Rtl)]
    pub timing_rules: RulesArg,
}

/// `--timing-rules`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RulesArg {
    /// docs/timing-model.md's rules, the reference RTL's.
    Rtl,
    /// The authors' simulator's (docs/timing-model.md "The authors' rules").
    Authors,
}

impl TimingArgs {
    /// The parameters, checked.
    pub fn params(&self) -> eie_simulate::Result<TimingParams> {
        let p = TimingParams {
            fifo_depth: self.fifo,
            queue_ring: self.queue_ring,
            clock_mhz: self.clock_mhz,
            spmat_width: self.spmat_width,
            pipeline_depth: self.pipeline_depth,
            group_advance: !self.no_group_advance,
            rules: match self.timing_rules {
                RulesArg::Rtl => eie_simulate::Rules::Rtl,
                RulesArg::Authors => eie_simulate::Rules::Authors,
            },
        };
        p.validate()?;
        Ok(p)
    }
}

/// Column batches.
#[derive(clap::Args, Debug, Clone)]
pub struct ColumnBatchArgs {
    /// Column batches: "auto" stores a layer whole when it fits its pointers and the pointer
    /// SRAM, else in batches of 4096 columns (the paper's activation batch; a batch that
    /// still overflows is an error naming what fits); a number C splits every layer wider
    /// than C columns; 0 keeps every layer whole. Pointers restart at 0 in every batch.
    #[arg(long, value_name = "auto|C", default_value_t = ColumnBatch::Auto)]
    pub column_batch: ColumnBatch,
}

fn parse_pointer_bits(s: &str) -> Result<u8, String> {
    match s {
        "16" => Ok(16),
        "32" => Ok(32),
        _ => Err(format!("expected 16 or 32, got {s}")),
    }
}

/// How packed layers are fitted to the hardware's memories.
#[derive(clap::Args, Debug, Clone)]
pub struct FitArgs {
    /// Width of a column pointer in the images: 16 (the paper) or 32.
    #[arg(long, default_value_t = Fit::default().pointer_bits, value_parser = parse_pointer_bits)]
    pub pointer_bits: u8,
    /// Sparse-matrix SRAM per PE, in KiB (the paper: 128).
    #[arg(long, default_value_t = Capacity::default().spmat_bytes / 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub spmat_kib: u64,
    /// Column-pointer SRAM per PE, in KiB (the paper: 32).
    #[arg(long, default_value_t = Capacity::default().pointer_bytes / 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub pointer_kib: u64,
    #[command(flatten)]
    pub column_batch: ColumnBatchArgs,
    /// Write layers that overflow the SRAMs anyway, with a warning, instead of failing.
    #[arg(long)]
    pub allow_overflow: bool,
}

impl FitArgs {
    /// The fitting rules.
    pub fn fit(&self) -> Fit {
        Fit {
            pointer_bits: self.pointer_bits,
            capacity: Capacity {
                spmat_bytes: self.spmat_kib * 1024,
                pointer_bytes: self.pointer_kib * 1024,
            },
            column_batch: self.column_batch.column_batch,
            allow_overflow: self.allow_overflow,
        }
    }
}

/// The PE count a model is packed for.
#[derive(clap::Args, Debug, Clone)]
pub struct PesArgs {
    /// Processing elements; row i of a layer goes to PE i mod N.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=eie_format::MAX_PES as i64))]
    pub pes: u32,
}

/// Whether a layer's bias is folded in.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BiasArgs {
    /// Leave biases out (by default NAME.bias is folded in as one extra column whose input is 1).
    #[arg(long)]
    pub no_bias_column: bool,
}

impl BiasArgs {
    /// Whether biases are folded.
    pub fn fold(&self) -> bool {
        !self.no_bias_column
    }
}

/// Which tensors are layers.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LayersArgs {
    /// Layers (glob, repeatable, in the order given; default: every 2-D float tensor named
    /// *.weight that is not an embedding table, in model order).
    #[arg(long = "layers", value_name = "PATTERN")]
    pub layers: Vec<String>,
}

/// The model description of a checkpoint.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ArchArgs {
    /// The model description (docs/models.md) of a checkpoint made elsewhere, e.g.
    /// 1x28x28-conv20k5-maxpool2-conv50k5-maxpool2-500-10; default: the one `train` recorded
    /// in the checkpoint, else an MLP of its 2-D layers.
    #[arg(long, value_name = "DESCRIPTION")]
    pub arch: Option<String>,
}

impl ArchArgs {
    /// The description given, parsed.
    pub fn arch(&self) -> anyhow::Result<Option<eie_model::Arch>> {
        Ok(self.arch.as_deref().map(str::parse).transpose()?)
    }
}

/// Replacing earlier outputs.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ForceArgs {
    /// Write over an existing output, replacing eie-compress's own files there (never an
    /// input).
    #[arg(long)]
    pub force: bool,
}

/// The energy model's constants.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EnergyArgs {
    /// A TOML file of energy constants (pJ per action, mW of static power) replacing the
    /// defaults derived from the paper; any subset of the keys `eie-compress energy-table`
    /// prints (docs/energy.md).
    #[arg(long, value_name = "FILE")]
    pub energy_table: Option<PathBuf>,
}

impl EnergyArgs {
    /// The table: the paper's, with the file's overrides.
    pub fn table(&self) -> anyhow::Result<eie_energy::Table> {
        Ok(match &self.energy_table {
            Some(path) => eie_energy::Table::load(path)?,
            None => eie_energy::Table::paper(),
        })
    }
}

/// The savings breakdown's chart.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ChartArgs {
    /// Also draw the savings breakdown as an SVG waterfall chart into FILE (docs/energy.md).
    #[arg(long, value_name = "FILE.svg")]
    pub savings_chart: Option<PathBuf>,
    #[command(flatten)]
    pub force: ForceArgs,
}

impl ChartArgs {
    /// Checks the chart's path before any work: never one of `inputs` nor inside an input
    /// folder, in a folder that exists, and not an existing file unless --force and a chart
    /// eie-compress drew.
    pub fn check(&self, inputs: &Inputs) -> anyhow::Result<()> {
        if let Some(chart) = &self.savings_chart {
            check_file(chart, self.force.force, SVG, inputs)?;
        }
        Ok(())
    }

    /// Writes the chart `draw` makes, all or nothing (and draws nothing when none is asked).
    pub fn write(
        &self,
        inputs: &Inputs,
        draw: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<()> {
        if let Some(chart) = &self.savings_chart {
            let svg = draw()?;
            write_file(
                chart,
                self.force.force,
                SVG,
                inputs,
                |tmp| -> anyhow::Result<()> {
                    std::fs::write(tmp, svg)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", chart.display()))
                },
            )?;
        }
        Ok(())
    }
}

/// How an SVG this tool drew starts (plotters' SVG backend), by which `--force` knows one.
pub const SVG: Kind = Kind::Text("<svg");

/// A packed model's inputs: its `model.eie`, and the output folder when the model was given
/// as one (nothing is written inside it).
pub fn model_inputs(inputs: &mut Inputs, given: &std::path::Path, bundle_file: &std::path::Path) {
    inputs.add(bundle_file);
    if given.is_dir() {
        inputs.add(given);
    }
}

/// The files (and, for an MNIST folder, the folder) a dataset is read from: inputs, which no
/// output may replace or sit inside.
pub fn dataset_inputs(spec: &eie_dataset::Spec) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = spec.files()?;
    if let eie_dataset::Spec::Mnist { dir, .. } = spec {
        paths.push(dir.clone());
    }
    Ok(paths)
}

/// The CPU baseline.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CpuArgs {
    /// Also run the same layers on this machine's CPU as dense f32 and CSR products, batch 1
    /// and 64 (faer), and print EIE's speed-up over each (the median of repeated runs).
    #[arg(long)]
    pub cpu: bool,
}

/// Where a simulation's input vectors come from.
#[derive(clap::Args, Debug, Clone)]
pub struct InputArgs {
    /// Input vectors: a safetensors file with one float tensor, `[inputs]` or `[vectors,
    /// inputs]`.
    #[arg(long, value_name = "FILE", conflicts_with = "dataset")]
    pub input: Option<PathBuf>,
    /// The tensor to read when the input file holds several.
    #[arg(long, value_name = "NAME", requires = "input")]
    pub input_tensor: Option<String>,
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub scale: ScaleArgs,
    /// Without --input or --dataset: the fraction of non-zero activations generated
    /// (exactly round(D x inputs) of them, at random positions, values in [-1, 1]).
    #[arg(
        long,
        value_name = "D",
        default_value_t = 1.0,
        allow_negative_numbers = true,
        value_parser = act_density,
        conflicts_with_all = ["input", "dataset"]
    )]
    pub act_density: f64,
    /// Seed of the generated activations.
    #[arg(long, default_value_t = 0, conflicts_with_all = ["input", "dataset"])]
    pub seed: u64,
    #[command(flatten)]
    pub act_frac: ActFracArgs,
}

impl InputArgs {
    /// Whether the inputs come from the user (a file or a dataset) or fractions are given,
    /// which only a network can take.
    pub fn external(&self) -> bool {
        self.input.is_some() || self.data.dataset.is_some() || !self.act_frac.act_frac.is_empty()
    }
}

impl InputArgs {
    /// Input vectors of `width` floats: a dataset's samples (scaled as the options say, else
    /// as `recorded`, the model's metadata, says), the vectors of the input file, or one
    /// generated vector.
    pub fn vectors(
        &self,
        width: usize,
        recorded: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let vectors = self.vectors_unchecked(width, recorded)?;
        if vectors.is_empty() {
            match &self.input {
                Some(path) => anyhow::bail!("{} holds no input vector", path.display()),
                None => anyhow::bail!("the input holds no vector"),
            }
        }
        Ok(vectors)
    }

    /// The runs `vectors` records and `rtl-check` compares with: chained on the first input
    /// vector when `views` chain, else each layer on a generated input of its own.
    pub fn runs<'a>(
        &self,
        views: &[eie_simulate::LayerView<'a>],
        recorded: &std::collections::BTreeMap<String, String>,
        params: &TimingParams,
        arith: Arith,
    ) -> anyhow::Result<(
        eie_simulate::run::Mode,
        Vec<eie_simulate::vectors::LayerRun<'a>>,
    )> {
        use eie_simulate::run::Mode;
        let mode = Mode::of(views, self.external())?;
        let inputs = match mode {
            Mode::Chained => self.vectors(views[0].inputs(), recorded)?,
            Mode::Independent => views
                .iter()
                .map(|v| Ok(self.vectors(v.inputs(), recorded)?.swap_remove(0)))
                .collect::<anyhow::Result<Vec<_>>>()?,
        };
        let runs = eie_simulate::vectors::layer_runs(
            views,
            mode,
            &inputs,
            &self.act_frac.act_frac,
            arith,
            params,
        )?;
        Ok((mode, runs))
    }

    /// The runs of a described model's program (a CNN, an LSTM) on the first input (a whole
    /// sample): every EIE run in order, each on its own recorded input (an LSTM's every time
    /// step), so the vectors are independent runs; fractions given, else calibrated on it.
    pub fn described_runs<'a>(
        &self,
        program: &eie_evaluate::program::Program<'a>,
        recorded: &std::collections::BTreeMap<String, String>,
        params: &TimingParams,
        arith: Arith,
    ) -> anyhow::Result<(
        eie_simulate::run::Mode,
        Vec<eie_simulate::vectors::LayerRun<'a>>,
    )> {
        let sample = self.samples(program.network(), recorded)?.swap_remove(0);
        let fracs =
            program.fractions(&self.act_frac.act_frac, std::iter::once(sample.as_slice()))?;
        let (_, runs) = program.run(&sample, &fracs, arith, Some(params))?;
        Ok((
            eie_simulate::run::Mode::Independent,
            runs.into_iter().map(|r| r.record).collect(),
        ))
    }

    /// A described model's input samples: as [`InputArgs::vectors`], a dataset also checked
    /// against the network's input (images to an LSTM, sequences to a convolution refused).
    pub fn samples(
        &self,
        net: &eie_model::Network,
        recorded: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        if let Some(spec) = &self.data.dataset {
            let scaling = eie_dataset::Scaling::resolve(&self.scale.request(), recorded)?;
            let data = eie_dataset::load(spec, self.data.range.unwrap_or_default(), &scaling)?;
            net.check_dataset(&data)?;
            return Ok((0..data.len()).map(|i| data.input(i).to_vec()).collect());
        }
        self.vectors(net.inputs(), recorded)
    }

    fn vectors_unchecked(
        &self,
        width: usize,
        recorded: &std::collections::BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        if let Some(spec) = &self.data.dataset {
            let scaling = eie_dataset::Scaling::resolve(&self.scale.request(), recorded)?;
            let data = eie_dataset::load(spec, self.data.range.unwrap_or_default(), &scaling)?;
            if data.width() != width {
                anyhow::bail!(
                    "dataset {} has {} inputs per sample, but the first layer takes {width}",
                    data.name(),
                    data.width()
                );
            }
            return Ok((0..data.len()).map(|i| data.input(i).to_vec()).collect());
        }
        match &self.input {
            Some(path) => Ok(eie_dataset::vectors_from_file(
                path,
                self.input_tensor.as_deref(),
                width,
            )?),
            None => {
                let q =
                    eie_simulate::workload::random_activations(width, self.act_density, self.seed);
                Ok(vec![
                    q.iter()
                        .map(|&v| eie_simulate::fixed::from_q16(v, 14))
                        .collect(),
                ])
            }
        }
    }
}

/// The bundle's layers, or only the one named `layer` (an error listing the names when
/// there is none of that name); never none.
pub fn select_views<'a>(
    bundle: &'a eie_format::Bundle,
    layer: Option<&str>,
) -> anyhow::Result<Vec<eie_simulate::LayerView<'a>>> {
    use eie_simulate::LayerView;
    let mut views = LayerView::all(bundle);
    if views.is_empty() {
        anyhow::bail!("the packed model holds no layer");
    }
    if let Some(name) = layer {
        views.retain(|v| v.name() == name);
        if views.is_empty() {
            let names: Vec<&str> = LayerView::all(bundle).iter().map(|v| v.name()).collect();
            anyhow::bail!("no layer named \"{name}\" (layers: {})", names.join(", "));
        }
    }
    Ok(views)
}
