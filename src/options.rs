//! The option groups several commands share, each declared once and flattened into every
//! command that takes it: same names, same types, same help. Each group turns itself into
//! the commands library's request type; nothing here does any work or checks anything the
//! library checks.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};

use eie_commands::{CalibrationRequest, DatasetRequest, EnergyTable, InputRequest, Source};
use eie_dataset::{SampleRange, ScalingRequest, Spec};
use eie_images::{Capacity, ColumnBatch, Fit};
use eie_simulate::{Arith, Rules, TimingParams};

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

impl DatasetArgs {
    /// The dataset asked for, scaled as `scale` says, its samples within `memory`.
    pub fn request(&self, scale: &ScaleArgs, memory: &MemoryArgs) -> Option<DatasetRequest> {
        self.dataset.as_ref().map(|spec| DatasetRequest {
            spec: spec.clone(),
            range: self.range,
            scale: scale.request(),
            max_memory: memory.max_memory,
        })
    }
}

/// Calibration samples, for the settings that gather statistics on them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CalibrationArgs {
    /// Calibration samples for --prune-score activation, --update obs and --codebook-weight
    /// activation: text:FILE for a language model folder, an image dataset for an MLP
    /// (labels are not read).
    #[arg(long, value_name = "SPEC")]
    pub calibration: Option<Spec>,
    /// The calibration dataset's part, A..B (default all; a text's bytes).
    #[arg(long, value_name = "A..B", requires = "calibration")]
    pub calibration_range: Option<SampleRange>,
    /// Calibration samples taken from the start of the range (a language model's: windows
    /// of its context).
    #[arg(long, value_name = "N", requires = "calibration", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub calibration_samples: u32,
}

impl CalibrationArgs {
    /// The calibration asked for, scaled by `scale`, its work within `memory`.
    pub fn request(
        &self,
        scale: ScalingRequest,
        memory: &MemoryArgs,
    ) -> Option<CalibrationRequest> {
        let data = |spec: &Spec| DatasetRequest {
            spec: spec.clone(),
            range: self.calibration_range,
            scale,
            max_memory: memory.max_memory,
        };
        let samples = self.calibration_samples as usize;
        self.calibration.as_ref().map(|spec| CalibrationRequest {
            data: data(spec),
            samples,
        })
    }
}

/// The memory a command's work may take.
#[derive(clap::Args, Debug, Clone)]
pub struct MemoryArgs {
    /// The most memory the command's work may take (the samples, the network it runs or
    /// trains, the packed model and its re-packings), estimated before any: bytes, or a
    /// number with K, M, G, T.
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = eie_commands::parse_size)]
    pub max_memory: u64,
}

/// A language model's window.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ContextArgs {
    /// A language model's window, tokens: eval's (default a folder's positions, at most
    /// 1024, or a token model's training window) and a token model's in training (default 64).
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1..=1 << 24))]
    pub context: Option<u32>,
}

impl ContextArgs {
    /// The window, tokens.
    pub fn tokens(&self) -> Option<usize> {
        self.context.map(|c| c as usize)
    }
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
    #[arg(long, allow_negative_numbers = true, requires = "dataset", value_parser = eie_dataset::parse_f32)]
    pub mean: Option<f32>,
    /// Every input is divided by it after subtracting the mean.
    #[arg(long, requires = "dataset", value_parser = eie_dataset::parse_f32)]
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
    /// The arithmetic asked for (the command checks it).
    pub fn arith(&self) -> Arith {
        Arith {
            acc_bits: self.acc_bits,
            relu_last: self.relu_last,
        }
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
    /// Whose schedule: rtl, this project's (the reference RTL's); authors, the EIE authors'
    /// cycle simulator's (its group advance, ring queue and pointer register; queue depth D
    /// then holds D - 1 activations; docs/timing-model.md "The authors' rules").
    #[arg(long, default_value = "rtl", value_parser = PossibleValuesParser::new(Rules::ALL.map(Rules::name)).map(|s| Rules::named(&s).expect("a listed name")))]
    pub timing_rules: Rules,
}

impl TimingArgs {
    /// The parameters asked for (the command checks them).
    pub fn params(&self) -> TimingParams {
        TimingParams {
            fifo_depth: self.fifo,
            queue_ring: self.queue_ring,
            clock_mhz: self.clock_mhz,
            spmat_width: self.spmat_width,
            pipeline_depth: self.pipeline_depth,
            group_advance: !self.no_group_advance,
            rules: self.timing_rules,
        }
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

/// How packed layers are fitted to the hardware's memories.
#[derive(clap::Args, Debug, Clone)]
pub struct FitArgs {
    /// Width of a column pointer in the images: 16 (the paper) or 32.
    #[arg(long, default_value_t = Fit::default().pointer_bits, value_parser = PossibleValuesParser::new(["16", "32"]).map(|s| s.parse::<u8>().expect("16 or 32")))]
    pub pointer_bits: u8,
    /// Sparse-matrix SRAM per PE, in KiB (the paper: 128).
    #[arg(long, default_value_t = Capacity::default().spmat_bytes / 1024, value_parser = clap::value_parser!(u64).range(1..=eie_images::MAX_SRAM_BYTES / 1024))]
    pub spmat_kib: u64,
    /// Column-pointer SRAM per PE, in KiB (the paper: 32).
    #[arg(long, default_value_t = Capacity::default().pointer_bytes / 1024, value_parser = clap::value_parser!(u64).range(1..=eie_images::MAX_SRAM_BYTES / 1024))]
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
    /// The constants asked for.
    pub fn table(&self) -> EnergyTable {
        EnergyTable {
            file: self.energy_table.clone(),
        }
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
    /// The chart asked for.
    pub fn chart(&self) -> eie_commands::SavingsChart {
        eie_commands::SavingsChart {
            path: self.savings_chart.clone(),
            force: self.force.force,
        }
    }
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
    #[command(flatten)]
    pub memory: MemoryArgs,
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
    /// The inputs asked for.
    pub fn request(&self) -> InputRequest {
        let source = match (&self.input, self.data.request(&self.scale, &self.memory)) {
            (Some(path), _) => Source::File {
                path: path.clone(),
                tensor: self.input_tensor.clone(),
            },
            (None, Some(d)) => Source::Dataset(d),
            (None, None) => Source::Generated {
                density: self.act_density,
                seed: self.seed,
            },
        };
        InputRequest {
            source,
            act_frac: self.act_frac.act_frac.clone(),
        }
    }
}
