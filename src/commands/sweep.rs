//! `sweep`: the timing model over one parameter (PEs, queue depth, index bits, Spmat width),
//! on the paper's layers or a packed model: a CSV and SVG plots, like the EIE paper's
//! Figures 8 (queue depth), 11 (PEs) and 12 (padding against PEs).

use std::path::PathBuf;

use anyhow::{Context, Result};
use eie_energy::{Component, Energy, layer_energy};
use eie_images::Fit;
use eie_pipeline::output::{Inputs, Kind, check_replaceable, load_bundle, write_file};
use eie_pipeline::recorded_capacity;
use eie_simulate::sweep::{Point, model_workload, paper_workload, point};
use plotters::prelude::*;
use rayon::prelude::*;

use crate::options::{ColumnBatchArgs, EnergyArgs, ForceArgs, SVG, TimingArgs};

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

impl From<Param> for eie_simulate::sweep::Param {
    fn from(p: Param) -> Self {
        match p {
            Param::Pes => Self::Pes,
            Param::Fifo => Self::Fifo,
            Param::IndexBits => Self::IndexBits,
            Param::SpmatWidth => Self::SpmatWidth,
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
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = crate::options::act_density)]
    pub act_density: f64,
    /// Seed of the generated layers and activations.
    #[arg(long, default_value_t = 2016)]
    pub seed: u64,
    #[command(flatten)]
    pub column_batch: ColumnBatchArgs,
    #[command(flatten)]
    pub force: ForceArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub energy: EnergyArgs,
}

/// One line of a plot: a layer's name and its (parameter, metric) points.
type Series = (String, Vec<(f64, f64)>);

pub fn run(args: Args) -> Result<()> {
    let force = args.force.force;
    // The folder may hold other sweeps; this one's files are replaced (with --force) only if
    // this tool wrote them, and never inside the model's folder or over the energy table.
    let mut inputs = Inputs::new();
    inputs.extend(&args.energy.energy_table);
    if let Some(model) = &args.model {
        let file = if model.is_dir() {
            model.join(eie_format::BUNDLE_FILE)
        } else {
            model.clone()
        };
        crate::options::model_inputs(&mut inputs, model, &file);
    }
    inputs.check_folder(&args.dir, &[])?;
    let name = eie_simulate::sweep::Param::from(args.param).name();
    if args.dir.exists() && !args.dir.is_dir() {
        anyhow::bail!("output {} exists and is not a folder", args.dir.display());
    }
    for file in output_names(args.param, name) {
        check_replaceable(&args.dir.join(&file), force, kind_of(&file))?;
    }
    let base = args.timing.params()?;
    // A value given twice would be swept, summed and plotted twice.
    if let Some(v) = args
        .values
        .iter()
        .enumerate()
        .find_map(|(i, v)| args.values[..i].contains(v).then_some(v))
    {
        anyhow::bail!("--values gives {v} twice");
    }
    let param = args.param.into();
    for &v in &args.values {
        eie_simulate::sweep::check_value(param, v, &base)?;
    }
    // One sweep at a time into a folder: a second fails at once. A folder made for a sweep
    // that then fails is removed again (if still empty).
    let created = !args.dir.exists();
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let _lock = eie_pipeline::output::Lock::take(&args.dir)?;
    let result = sweep(&args, param, base, force, &inputs);
    if result.is_err() && created {
        let _ = std::fs::remove_dir(&args.dir);
    }
    result
}

fn sweep(
    args: &Args,
    param: eie_simulate::sweep::Param,
    base: eie_simulate::TimingParams,
    force: bool,
    inputs: &Inputs,
) -> Result<()> {
    let fit = Fit {
        column_batch: args.column_batch.column_batch,
        ..Fit::default()
    };
    let table = args.energy.table()?;
    // The images' pointers and SRAMs, for the energy: the model's as recorded, else the
    // paper's.
    let (work, pointer_bits, capacity) = match &args.model {
        None => (paper_workload(args.seed), fit.pointer_bits, fit.capacity),
        Some(model) => {
            let (_, bundle) = load_bundle(model)?;
            let recorded = recorded_capacity(&bundle.meta().settings);
            let bits = bundle.meta().pointer_bits;
            (
                model_workload(&bundle, args.act_density, args.seed)?,
                bits,
                recorded,
            )
        }
    };
    // Each point costed as soon as it is run, its packed layer then dropped: a sweep holds
    // one layer per thread, not one per point.
    let costed: Vec<(Point, Energy)> = work
        .par_iter()
        .flat_map(|w| args.values.par_iter().map(move |&v| (w, v)))
        .map(|(w, v)| -> eie_simulate::Result<(Point, Energy)> {
            let mut p = point(w, param, v, &base, &fit)?;
            let e = layer_energy(
                p.view(),
                &p.timing,
                p.spmat_width,
                pointer_bits,
                &capacity,
                &table,
            )
            .energy;
            p.parts = Vec::new();
            Ok((p, e))
        })
        .collect::<eie_simulate::Result<Vec<_>>>()?;
    let (points, energies): (Vec<Point>, Vec<Energy>) = costed.into_iter().unzip();
    let energy_of = |p: &Point| -> &Energy {
        let i = points
            .iter()
            .position(|q| std::ptr::eq(q, p))
            .expect("a point");
        &energies[i]
    };

    let name = param.name();
    let mut csv = String::from(
        "layer,param,value,cycles,time_us,load_efficiency,speedup,entries,padding,padding_pct,spmat_reads,pointer_reads,broadcasts,stall_cycles,energy_nj,power_mw,pj_per_mac,spmat_read_nj\n",
    );
    let first_cycles = |layer: &str| {
        points
            .iter()
            .find(|p| p.layer == layer)
            .map_or(1, |p| p.timing.cycles.max(1))
    };
    for (p, e) in points.iter().zip(&energies) {
        csv.push_str(&format!(
            "{},{name},{},{},{:.4},{:.6},{:.4},{},{},{:.3},{},{},{},{},{:.4},{:.3},{:.4},{:.4}\n",
            p.layer,
            p.value,
            p.timing.cycles,
            p.timing.time_us(),
            p.timing.load_efficiency(),
            first_cycles(&p.layer) as f64 / p.timing.cycles.max(1) as f64,
            p.entries,
            p.padding,
            eie_images::pct(p.padding, p.entries),
            p.timing.spmat_reads(),
            p.timing.pointer_reads,
            p.timing.broadcasts,
            p.timing.stall_cycles,
            e.total_pj() / 1e3,
            e.power_mw(),
            e.pj_per_mac(),
            e.get(Component::SpmatRead) / 1e3,
        ));
    }
    let csv_path = args.dir.join(format!("sweep-{name}.csv"));
    write_file(&csv_path, force, CSV, inputs, |tmp| -> Result<()> {
        Ok(std::fs::write(tmp, &csv)?)
    })?;
    let energy_csv = energy_csv(name, &points, &energies, &args.values);
    let energy_path = args.dir.join(format!("sweep-{name}-energy.csv"));
    write_file(
        &energy_path,
        force,
        ENERGY_CSV,
        inputs,
        |tmp| -> Result<()> { Ok(std::fs::write(tmp, &energy_csv)?) },
    )?;

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
                series(&|p| first_cycles(&p.layer) as f64 / p.timing.cycles.max(1) as f64),
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
            series(&|p| p.timing.load_efficiency()),
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
                series(&|p| p.timing.time_us()),
            ));
        }
        Param::SpmatWidth => {
            plots.push((
                format!("sweep-{name}.svg"),
                "Spmat lines read per entry".into(),
                series(&|p| p.timing.spmat_reads() as f64 / p.timing.macs.max(1) as f64),
            ));
            plots.push((
                format!("sweep-{name}-read-energy.svg"),
                "Spmat read energy per inference (nJ)".into(),
                series(&|p| energy_of(p).get(Component::SpmatRead) / 1e3),
            ));
        }
    }
    plots.push((
        format!("sweep-{name}-energy.svg"),
        "energy per inference (nJ)".into(),
        series(&|p| energy_of(p).total_pj() / 1e3),
    ));
    // What --force checked before the work must be what is written.
    assert!(
        plots
            .iter()
            .all(|(f, _, _)| output_names(args.param, name).contains(f)),
        "every plot is a name output_names checks"
    );
    for (file, y_label, data) in &plots {
        let svg = plot(
            name,
            y_label,
            data,
            matches!(args.param, Param::Pes | Param::Fifo | Param::SpmatWidth),
        )?;
        write_file(
            &args.dir.join(file),
            force,
            SVG,
            inputs,
            |tmp| -> Result<()> { Ok(std::fs::write(tmp, &svg)?) },
        )?;
    }
    if args.param == Param::SpmatWidth {
        out!(
            "{}",
            read_energy_minima(&layers, &points, &energies, &args.values)
        );
    }
    outln!(
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

/// Per value, every layer's energy and all layers' together: energy per inference, power,
/// energy per MAC, inferences per joule and every component (docs/energy.md).
/// The files a sweep of `param` writes: its CSVs and plots (as `sweep` names them below).
fn output_names(param: Param, name: &str) -> Vec<String> {
    let mut files = vec![
        format!("sweep-{name}.csv"),
        format!("sweep-{name}-energy.csv"),
        format!("sweep-{name}.svg"),
        format!("sweep-{name}-energy.svg"),
    ];
    files.extend(
        match param {
            Param::Pes => Some("padding"),
            Param::IndexBits => Some("time"),
            Param::SpmatWidth => Some("read-energy"),
            Param::Fifo => None,
        }
        .map(|extra| format!("sweep-{name}-{extra}.svg")),
    );
    files
}

/// How this tool's sweep files start, by which `--force` knows them.
const CSV: Kind = Kind::Text("layer,param,value,");
const ENERGY_CSV: Kind = Kind::Text("param,value,layer,energy_nj,");

fn kind_of(file: &str) -> Kind {
    if file.ends_with("-energy.csv") {
        ENERGY_CSV
    } else if file.ends_with(".csv") {
        CSV
    } else {
        SVG
    }
}

fn energy_csv(name: &str, points: &[Point], energies: &[Energy], values: &[u32]) -> String {
    let mut out = String::from("param,value,layer,energy_nj,power_mw,pj_per_mac,inferences_per_j");
    for c in Component::ALL {
        out.push_str(&format!(",{}_pj", c.name()));
    }
    out.push('\n');
    let mut row = |value: u32, layer: &str, e: &Energy| {
        out.push_str(&format!(
            "{name},{value},{layer},{:.4},{:.3},{:.4},{:.6e}",
            e.total_pj() / 1e3,
            e.power_mw(),
            e.pj_per_mac(),
            e.per_joule()
        ));
        for c in Component::ALL {
            out.push_str(&format!(",{:.3}", e.get(c)));
        }
        out.push('\n');
    };
    for &v in values {
        let mut total = Energy::default();
        for (p, e) in points.iter().zip(energies).filter(|(p, _)| p.value == v) {
            row(v, &p.layer, e);
            total = total.plus(e);
        }
        row(v, "total", &total);
    }
    out
}

/// Where the Spmat read energy is lowest, per layer and over all layers: the paper's Figure 9
/// question, which it answered with 64 bits for AlexNet's layers.
fn read_energy_minima(
    layers: &[String],
    points: &[Point],
    energies: &[Energy],
    widths: &[u32],
) -> String {
    let mut out = String::from("Spmat read energy per inference is lowest at:\n");
    for l in layers {
        if let Some((p, pj)) = points
            .iter()
            .zip(energies)
            .filter(|(p, _)| &p.layer == l)
            .map(|(p, e)| (p, e.get(Component::SpmatRead)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
        {
            out.push_str(&format!("  {l}: {} bits ({:.1} nJ)\n", p.value, pj / 1e3));
        }
    }
    let total = |w: u32| -> f64 {
        points
            .iter()
            .zip(energies)
            .filter(|(p, _)| p.value == w)
            .map(|(_, e)| e.get(Component::SpmatRead))
            .sum()
    };
    if let Some(&w) = widths
        .iter()
        .min_by(|&&a, &&b| total(a).total_cmp(&total(b)))
    {
        out.push_str(&format!(
            "  all layers together: {w} bits ({:.1} nJ)\n",
            total(w) / 1e3
        ));
    }
    out
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
