//! `sweep`: the timing model over one parameter (PEs, queue depth, index bits, Spmat width),
//! on the paper's layers or a packed model: a CSV and SVG plots, like the EIE paper's
//! Figures 8 (queue depth), 11 (PEs) and 12 (padding against PEs).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use eie_format::{Codebook, PackedLayer, SparseCodes};
use eie_simulate::workload::{PAPER_LAYERS, random_activations, random_layer};
use eie_simulate::{LayerView, TimingParams, timing};
use plotters::prelude::*;
use rayon::prelude::*;

use super::bench_paper::batch_for;
use crate::output::{check_out_dir, load_bundle, write_file};
use crate::sim::SimOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Param {
    /// Processing elements (layers re-packed for each).
    Pes,
    /// Activation queue depth.
    Fifo,
    /// Relative-index width (layers re-packed for each).
    IndexBits,
    /// Spmat SRAM line width in bits.
    SpmatWidth,
}

impl Param {
    fn name(self) -> &'static str {
        match self {
            Param::Pes => "pes",
            Param::Fifo => "fifo",
            Param::IndexBits => "index-bits",
            Param::SpmatWidth => "spmat-width",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for the CSV and the plots.
    pub dir: PathBuf,
    /// The parameter to sweep.
    #[arg(long, value_enum)]
    pub param: Param,
    /// Its values (comma-separated).
    #[arg(long, value_delimiter = ',', required = true, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub values: Vec<u32>,
    /// A packed model (an output folder or model.eie) as the workload; default: the paper's
    /// nine layers (Table III).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// For --model: the density of the generated input activations of every layer.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub act_density: f64,
    /// Seed of the generated layers and activations.
    #[arg(long, default_value_t = 2016)]
    pub seed: u64,
    /// Column batches, as for bench-paper: auto, a number of columns, or 0.
    #[arg(long, value_name = "auto|C", default_value = "auto")]
    pub column_batch: String,
    /// Replace earlier sweep files in the folder.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub sim: SimOptions,
}

/// One layer of the workload: its codes, codebook, base packing, and input activations.
struct Work {
    name: String,
    codes: SparseCodes,
    codebook: Codebook,
    pes: usize,
    index_bits: u8,
    bias: Option<String>,
    input: Vec<i16>,
}

fn workload(args: &Args) -> Result<Vec<Work>> {
    let Some(model) = &args.model else {
        return Ok(PAPER_LAYERS
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let (codes, codebook) = random_layer(
                    spec.outputs,
                    spec.inputs,
                    spec.weight_density,
                    4,
                    args.seed + i as u64,
                );
                Work {
                    name: spec.name.to_string(),
                    codes,
                    codebook,
                    pes: 64,
                    index_bits: 4,
                    bias: None,
                    input: random_activations(
                        spec.inputs,
                        spec.act_density,
                        args.seed + 1000 + i as u64,
                    ),
                }
            })
            .collect());
    };
    if !(0.0..=1.0).contains(&args.act_density) {
        bail!("--act-density must be in [0, 1], got {}", args.act_density);
    }
    let (_, bundle) = load_bundle(model)?;
    let mut out = Vec::new();
    for (i, view) in LayerView::all(&bundle).into_iter().enumerate() {
        // The whole layer's codes, its parts side by side.
        let mut entries = Vec::new();
        for part in view.parts() {
            let c = part.decode_sparse();
            let pc = part.cols() as u64;
            for (&p, &code) in c.positions().iter().zip(c.codes()) {
                entries.push((
                    (p / pc) * view.cols() as u64 + part.first_col() as u64 + p % pc,
                    code,
                ));
            }
        }
        entries.sort_unstable_by_key(|e| e.0);
        let (positions, codes) = entries.into_iter().unzip();
        out.push(Work {
            name: view.name().to_string(),
            codes: SparseCodes::new(view.rows(), view.cols(), positions, codes)?,
            codebook: view.codebook().clone(),
            pes: view.pes(),
            index_bits: view.parts()[0].index_bits(),
            bias: view.parts()[0].bias().map(str::to_string),
            input: random_activations(view.inputs(), args.act_density, args.seed + i as u64),
        });
    }
    Ok(out)
}

/// One line of a plot: a layer's name and its (parameter, metric) points.
type Series = (String, Vec<(f64, f64)>);

/// One point of the sweep.
struct Point {
    layer: String,
    value: u32,
    t: eie_simulate::LayerTiming,
    entries: usize,
    padding: usize,
}

fn point(
    w: &Work,
    param: Param,
    value: u32,
    base: &TimingParams,
    column_batch: &str,
) -> Result<Point> {
    let (pes, index_bits) = match param {
        Param::Pes => (value as usize, w.index_bits),
        Param::IndexBits => {
            if value > 8 {
                bail!("index bits must be in 1..=8, got {value}");
            }
            (w.pes, value as u8)
        }
        _ => (w.pes, w.index_bits),
    };
    let mut params = *base;
    match param {
        Param::Fifo => params.fifo_depth = value as usize,
        Param::SpmatWidth => params.spmat_width = value,
        _ => {}
    }
    let mut layer = PackedLayer::encode_sparse(
        w.name.clone(),
        &w.codes,
        w.codebook.clone(),
        pes,
        index_bits,
    )?;
    if let Some(b) = &w.bias {
        layer = layer.with_bias(b.clone())?;
    }
    let (entries, padding) = (layer.entries(), layer.padding());
    let batch = batch_for(&layer, column_batch)?;
    let parts = layer.split_columns(batch)?;
    let view = LayerView::new(&parts);
    let mut active: Vec<bool> = w.input.iter().map(|&a| a != 0).collect();
    if view.has_bias() {
        active.push(true);
    }
    Ok(Point {
        layer: w.name.clone(),
        value,
        t: timing::layer(view, &active, &params)?,
        entries,
        padding,
    })
}

pub fn run(args: Args) -> Result<()> {
    check_out_dir(&args.dir, args.force).or_else(|e| {
        // An existing sweep folder is fine: the files are replaced one by one with --force.
        if args.force { Ok(()) } else { Err(e) }
    })?;
    let base = args.sim.timing()?;
    let work = workload(&args)?;
    let points: Vec<Point> = work
        .par_iter()
        .flat_map(|w| args.values.par_iter().map(move |&v| (w, v)))
        .map(|(w, v)| point(w, args.param, v, &base, &args.column_batch))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;

    let name = args.param.name();
    let mut csv = String::from(
        "layer,param,value,cycles,time_us,load_efficiency,speedup,entries,padding,padding_pct,spmat_reads,pointer_reads,broadcasts,stall_cycles\n",
    );
    let first_cycles = |layer: &str| {
        points
            .iter()
            .find(|p| p.layer == layer)
            .map_or(1, |p| p.t.cycles.max(1))
    };
    for p in &points {
        csv.push_str(&format!(
            "{},{name},{},{},{:.4},{:.6},{:.4},{},{},{:.3},{},{},{},{}\n",
            p.layer,
            p.value,
            p.t.cycles,
            p.t.time_us(),
            p.t.load_efficiency(),
            first_cycles(&p.layer) as f64 / p.t.cycles.max(1) as f64,
            p.entries,
            p.padding,
            100.0 * p.padding as f64 / p.entries.max(1) as f64,
            p.t.spmat_reads(),
            p.t.pointer_reads,
            p.t.broadcasts,
            p.t.stall_cycles,
        ));
    }
    let csv_path = args.dir.join(format!("sweep-{name}.csv"));
    write_file(&csv_path, true, |tmp| Ok(std::fs::write(tmp, &csv)?))?;

    let layers: Vec<String> = work.iter().map(|w| w.name.clone()).collect();
    let series = |metric: &dyn Fn(&Point) -> f64| -> Vec<Series> {
        layers
            .iter()
            .map(|l| {
                (
                    l.clone(),
                    points
                        .iter()
                        .filter(|p| &p.layer == l)
                        .map(|p| (p.value as f64, metric(p)))
                        .collect(),
                )
            })
            .collect()
    };
    let mut plots: Vec<(String, String, Vec<Series>)> = Vec::new();
    match args.param {
        Param::Pes => {
            plots.push((
                format!("sweep-{name}.svg"),
                "speed-up over the first PE count".into(),
                series(&|p| first_cycles(&p.layer) as f64 / p.t.cycles.max(1) as f64),
            ));
            plots.push((
                format!("sweep-{name}-padding.svg"),
                "padding entries (% of entries)".into(),
                series(&|p| 100.0 * p.padding as f64 / p.entries.max(1) as f64),
            ));
        }
        Param::Fifo => plots.push((
            format!("sweep-{name}.svg"),
            "load-balance efficiency".into(),
            series(&|p| p.t.load_efficiency()),
        )),
        Param::IndexBits => {
            plots.push((
                format!("sweep-{name}.svg"),
                "padding entries (% of entries)".into(),
                series(&|p| 100.0 * p.padding as f64 / p.entries.max(1) as f64),
            ));
            plots.push((
                format!("sweep-{name}-time.svg"),
                "time (us)".into(),
                series(&|p| p.t.time_us()),
            ));
        }
        Param::SpmatWidth => plots.push((
            format!("sweep-{name}.svg"),
            "Spmat lines read per entry".into(),
            series(&|p| p.t.spmat_reads() as f64 / p.t.macs.max(1) as f64),
        )),
    }
    for (file, y_label, data) in &plots {
        let svg = plot(
            name,
            y_label,
            data,
            matches!(args.param, Param::Pes | Param::Fifo | Param::SpmatWidth),
        )?;
        write_file(&args.dir.join(file), true, |tmp| {
            Ok(std::fs::write(tmp, &svg)?)
        })?;
    }
    println!(
        "swept {name} over {:?} on {} layers: {} and {}",
        args.values,
        layers.len(),
        csv_path.display(),
        plots
            .iter()
            .map(|(f, _, _)| args.dir.join(f).display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// An SVG line plot, one line per layer; `log_x` for parameters swept in powers of two.
fn plot(param: &str, y_label: &str, data: &[Series], log_x: bool) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        let xs = data.iter().flat_map(|(_, p)| p.iter().map(|&(x, _)| x));
        let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        let y_max = data
            .iter()
            .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
            .fold(0.0, f64::max);
        let tx = |x: f64| if log_x { x.log2() } else { x };
        let (lo, hi) = (tx(x_min), tx(x_max).max(tx(x_min) + 1e-9));
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{y_label} against {param}"), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..(y_max * 1.08).max(1e-9))
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        chart
            .configure_mesh()
            .x_desc(if log_x {
                format!("{param} (log2)")
            } else {
                param.to_string()
            })
            .y_desc(y_label)
            .x_label_formatter(&|v| {
                if log_x {
                    format!("{}", v.exp2().round())
                } else {
                    format!("{v}")
                }
            })
            .draw()
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        for (i, (name, points)) in data.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|&(x, y)| (tx(x), y)),
                    color.stroke_width(2),
                ))
                .map_err(|e| anyhow::anyhow!("plot: {e}"))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    }
    Ok(svg)
}
