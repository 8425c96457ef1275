//! `sweep`: the timing and energy models over one parameter (PEs, queue depth, index bits,
//! Spmat width), on the paper's layers or a packed model: a CSV per point, a CSV of energy
//! per value, and line plots, like the EIE paper's Figures 8 (queue depth), 9 (Spmat width),
//! 11 (PEs) and 12 (padding against PEs).

use std::path::{Path, PathBuf};

use eie_energy::{Component, Energy, layer_energy};
use eie_images::{ColumnBatch, Fit, pct};
use eie_pipeline::output::{Inputs, Lock, OutputKind, check_replaceable, write_file};
use eie_pipeline::recorded_capacity;
use eie_simulate::sweep::Param;
use eie_simulate::sweep::{Point, Work, model_workload, paper_workload, point};
use eie_simulate::workload::{PAPER_INDEX_BITS, PAPER_LAYERS};
use eie_simulate::{LayerView, TimingParams};
use rayon::prelude::*;
use serde::Serialize;

use crate::budget::Estimate;
use crate::charts::{Draw, LinePlot, SVG, Series, write_svg};
use crate::energy_table::EnergyTable;
use crate::error::{Error, Result, io};
use crate::packed::PackedModel;
use crate::report::Schema;

/// What to sweep, over which values, on which layers, and where the files go.
#[derive(Debug, Clone)]
pub struct Request {
    /// The folder for the CSVs and the plots (it may hold other sweeps).
    pub dir: PathBuf,
    /// The parameter.
    pub param: Param,
    /// Its values, each once.
    pub values: Vec<u32>,
    /// A packed model as the workload (an output folder or `model.eie`); default: the
    /// paper's nine layers (Table III).
    pub model: Option<PathBuf>,
    /// With a model: the density of the generated input activations of every layer.
    pub act_density: f64,
    /// Seed of the generated layers and activations.
    pub seed: u64,
    /// Column batches of the re-packed layers.
    pub column_batch: ColumnBatch,
    /// Replace this tool's own sweep files of the same parameter.
    pub force: bool,
    /// The timing model's hardware, besides the swept parameter.
    pub timing: TimingParams,
    /// The energy model's constants.
    pub energy: EnergyTable,
    /// The most memory the sweep may take, estimated before any point is run (the largest
    /// re-packed layer, once per thread).
    pub max_memory: u64,
}

/// What a sweep measured and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report's schema.
    pub schema: Schema,
    /// The parameter's name.
    pub param: &'static str,
    /// Its values.
    pub values: Vec<u32>,
    /// The layers swept.
    pub layers: Vec<String>,
    /// Every layer at every value.
    pub points: Vec<SweepPoint>,
    /// With the Spmat width swept: where the Spmat read energy is lowest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_energy_minima: Option<Minima>,
    /// The files written: the CSVs, then the plots.
    pub files: Vec<PathBuf>,
}

impl Report {
    /// In words: where the Spmat read energy is lowest (a Spmat-width sweep), then what was
    /// swept and the files written.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        if let Some(m) = &self.read_energy_minima {
            s.push_str("Spmat read energy per inference is lowest at:\n");
            for (layer, bits, nj) in &m.layers {
                s.push_str(&format!(
                    "  {}: {bits} bits ({nj:.1} nJ)\n",
                    eie_format::shown(layer)
                ));
            }
            if let Some((bits, nj)) = m.all {
                s.push_str(&format!(
                    "  all layers together: {bits} bits ({nj:.1} nJ)\n"
                ));
            }
        }
        let plots: Vec<String> = self.files[2..]
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        s.push_str(&format!(
            "swept {} over {:?} on {} layers: {} and {}\n",
            self.param,
            self.values,
            self.layers.len(),
            self.files[0].display(),
            plots.join(", ")
        ));
        s
    }
}

/// One layer at one value of the parameter: a line of `sweep-PARAM.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// The layer.
    pub layer: String,
    /// The value.
    pub value: u32,
    /// Cycles.
    pub cycles: u64,
    /// Time, us.
    pub time_us: f64,
    /// Busy PE cycles over all PE cycles.
    pub load_efficiency: f64,
    /// The layer's cycles at the first value over these.
    pub speedup: f64,
    /// Entries, padding included.
    pub entries: usize,
    /// Padding entries.
    pub padding: usize,
    /// Padding, % of entries.
    pub padding_pct: f64,
    /// Spmat lines read.
    pub spmat_reads: u64,
    /// Pointer reads.
    pub pointer_reads: u64,
    /// Non-zero activations broadcast.
    pub broadcasts: u64,
    /// Broadcast stalls.
    pub stall_cycles: u64,
    /// Spmat lines read per multiply-accumulate.
    pub spmat_reads_per_mac: f64,
    /// The energy of the run (docs/energy.md).
    #[serde(skip)]
    pub energy: Energy,
    /// Energy per inference, nJ.
    pub energy_nj: f64,
    /// Average power, mW.
    pub power_mw: f64,
    /// Energy per multiply-accumulate, pJ.
    pub pj_per_mac: f64,
    /// Spmat read energy, nJ.
    pub spmat_read_nj: f64,
}

/// Where the Spmat read energy per inference is lowest: the paper's Figure 9 question,
/// which it answered with 64 bits for AlexNet's layers.
#[derive(Debug, Clone, Serialize)]
pub struct Minima {
    /// Per layer: the width and its read energy, nJ.
    pub layers: Vec<(String, u32, f64)>,
    /// All layers together.
    pub all: Option<(u32, f64)>,
}

/// How this tool's sweep files start, by which `--force` knows them.
const CSV: OutputKind = OutputKind::Text("layer,param,value,");
const ENERGY_CSV: OutputKind = OutputKind::Text("param,value,layer,energy_nj,");

fn kind_of(file: &str) -> OutputKind {
    if file.ends_with("-energy.csv") {
        ENERGY_CSV
    } else if file.ends_with(".csv") {
        CSV
    } else {
        SVG
    }
}

/// The files a sweep of `param` writes: its CSVs and plots.
fn output_names(param: Param) -> Vec<String> {
    let name = param.name();
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

/// A sweep's folder (it may hold other sweeps), checked before any work: neither an input
/// nor inside one, a folder if it exists, and each of `files` replaceable (with `force`,
/// only if this tool wrote it).
pub(crate) fn check_folder(
    dir: &Path,
    inputs: &Inputs,
    files: &[(String, OutputKind)],
    force: bool,
) -> Result<()> {
    inputs.check_folder(dir, &[])?;
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Unfit {
            reason: format!("output {} exists and is not a folder", dir.display()),
        });
    }
    for (file, kind) in files {
        check_replaceable(&dir.join(file), force, *kind)?;
    }
    Ok(())
}

/// Runs `work` in `dir` (made if absent) under its lock, so a second sweep into it fails at
/// once; a folder made for work that then fails is removed again (if still empty).
pub(crate) fn in_folder<T>(dir: &Path, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    let _lock = Lock::take(dir)?;
    let result = work();
    if result.is_err() && created {
        let _ = std::fs::remove_dir(dir);
    }
    result
}

impl Request {
    /// Checks everything, then sweeps, one sweep at a time into a folder (a second fails at
    /// once); a folder made for a sweep that then fails is removed again (if still empty).
    pub fn run(&self, draw: &dyn Draw) -> Result<Report> {
        // The folder may hold other sweeps; this one's files are replaced (with force) only if
        // this tool wrote them, and never inside the model's folder or over the energy table.
        let mut inputs = Inputs::new();
        inputs.extend(&self.energy.file);
        if let Some(model) = &self.model {
            crate::packed::add_model_inputs(model, &crate::packed::model_file(model), &mut inputs);
        }
        let files: Vec<(String, OutputKind)> = output_names(self.param)
            .into_iter()
            .map(|f| {
                let kind = kind_of(&f);
                (f, kind)
            })
            .collect();
        check_folder(&self.dir, &inputs, &files, self.force)?;
        self.timing.validate()?;
        if self.values.is_empty() {
            return Err(Error::Option {
                option: "--values".into(),
                reason: "give at least one value".into(),
            });
        }
        if self.model.is_some() {
            eie_simulate::workload::check_act_density(self.act_density)?;
        }
        // A value given twice would be swept, summed and plotted twice.
        if let Some(v) = self
            .values
            .iter()
            .enumerate()
            .find_map(|(i, v)| self.values[..i].contains(v).then_some(v))
        {
            return Err(Error::Repeated {
                option: "--values",
                value: v.to_string(),
            });
        }
        for &v in &self.values {
            eie_simulate::sweep::check_value(self.param, v, &self.timing)?;
        }
        in_folder(&self.dir, || self.sweep(draw, &inputs))
    }

    fn sweep(&self, draw: &dyn Draw, inputs: &Inputs) -> Result<Report> {
        let points = self.points()?;
        // Points are layer-major, one per value (repeated values were refused).
        let layers: Vec<String> = points
            .chunks(self.values.len())
            .map(|l| l[0].layer.clone())
            .collect();
        let name = self.param.name();
        let csv_path = self.dir.join(format!("sweep-{name}.csv"));
        let energy_path = self.dir.join(format!("sweep-{name}-energy.csv"));
        let csv = points_csv(name, &points);
        let energy = energy_csv(name, &points, &self.values);
        // Every plot drawn before any file is written: a drawing that fails leaves nothing.
        let svgs = self
            .plots(&layers, &points)
            .into_iter()
            .map(|(file, plot)| {
                // What was checked before the work must be what is written.
                assert!(
                    output_names(self.param).contains(&file),
                    "every plot is a name output_names checks"
                );
                Ok((self.dir.join(&file), draw.lines(&plot)?))
            })
            .collect::<Result<Vec<_>>>()?;
        write_file(&csv_path, self.force, CSV, inputs, |tmp| -> Result<()> {
            std::fs::write(tmp, &csv).map_err(io("cannot write", &csv_path))
        })?;
        write_file(
            &energy_path,
            self.force,
            ENERGY_CSV,
            inputs,
            |tmp| -> Result<()> {
                std::fs::write(tmp, &energy).map_err(io("cannot write", &energy_path))
            },
        )?;
        let mut files = vec![csv_path, energy_path];
        for (path, svg) in svgs {
            write_svg(&path, self.force, inputs, &svg)?;
            files.push(path);
        }
        Ok(Report {
            schema: Schema("sweep"),
            param: name,
            values: self.values.clone(),
            read_energy_minima: (self.param == Param::SpmatWidth)
                .then(|| read_energy_minima(&layers, &points, &self.values)),
            layers,
            points,
            files,
        })
    }

    /// Every layer at every value, each costed as soon as it is run and its packed layer
    /// and per-PE counters then dropped: what a point keeps is its row of the CSV.
    fn points(&self) -> Result<Vec<SweepPoint>> {
        let fit = Fit {
            column_batch: self.column_batch,
            ..Fit::default()
        };
        let table = self.energy.table()?;
        // The images' pointers and SRAMs, for the energy: the model's as recorded, else the
        // paper's. The estimate comes before any workload is built.
        let (work, pointer_bits, capacity) = match &self.model {
            None => {
                self.estimate(&paper_shapes(), 0)?;
                (paper_workload(self.seed), fit.pointer_bits, fit.capacity)
            }
            Some(model) => {
                let m = PackedModel::load_within(model, self.max_memory)?;
                let decoded = std::fs::metadata(&m.file).map_or(0, |f| f.len());
                self.estimate(&model_shapes(&m.bundle), decoded)?;
                (
                    model_workload(&m.bundle, self.act_density, self.seed)?,
                    m.bundle.meta().pointer_bits,
                    recorded_capacity(m.settings()),
                )
            }
        };
        // Every (layer, value) point in parallel, in order: memory holds one packed layer
        // per thread, whatever the number of values, and a large layer's values do not wait
        // on one thread.
        let pairs: Vec<(&Work, u32)> = work
            .iter()
            .flat_map(|w| self.values.iter().map(move |&v| (w, v)))
            .collect();
        let mut points: Vec<SweepPoint> = pairs
            .par_iter()
            .map(|&(w, v)| -> eie_simulate::Result<SweepPoint> {
                let p = point(w, self.param, v, &self.timing, &fit)?;
                let e = layer_energy(
                    p.view(),
                    &p.timing,
                    p.spmat_width,
                    pointer_bits,
                    &capacity,
                    &table,
                )
                .energy;
                Ok(SweepPoint::of(&p, e))
            })
            .collect::<eie_simulate::Result<Vec<_>>>()?;
        // Layer-major: each chunk is one layer's values, the first value's cycles the base
        // of its speed-ups.
        for layer in points.chunks_mut(self.values.len()) {
            let first = layer[0].cycles.max(1) as f64;
            for p in layer {
                p.speedup = first / p.cycles.max(1) as f64;
            }
        }
        Ok(points)
    }

    /// Refuses, before any workload is built, a sweep of `shapes` that would take more than
    /// `--max-memory`: the model as decoded (`decoded` bytes), the layers' weights as sparse
    /// codes, the points' results and files, and the largest re-packings that can run at once (as many
    /// as there are threads).
    fn estimate(&self, shapes: &[Shape], decoded: u64) -> Result<()> {
        let points = shapes.len() * self.values.len();
        let threads = rayon::current_num_threads().min(points).max(1);
        let mut repacked: Vec<Estimate> = shapes
            .iter()
            .flat_map(|s| self.values.iter().map(move |&v| (s, v)))
            .map(|(s, v)| {
                let (mut pes, mut bits, mut fifo) = (s.pes, s.index_bits, self.timing.fifo_depth);
                match self.param {
                    Param::Pes => pes = v as usize,
                    Param::IndexBits => bits = v as u8,
                    Param::Fifo => fifo = v as usize,
                    Param::SpmatWidth => {}
                }
                let mut one = Estimate::part();
                one.packing(&s.name, (s.rows, s.cols, s.nonzeros), (pes, bits), fifo, 1);
                one
            })
            .collect();
        // Any `threads` points at once take at most the `threads` largest together.
        repacked.sort_by_key(|e| std::cmp::Reverse(e.total()));
        let mut estimate = Estimate::default();
        if decoded > 0 {
            estimate.add("model.eie decoded", decoded);
        }
        let weights: u64 = shapes.iter().map(|s| s.nonzeros * 9).sum();
        estimate.add("the layers' weights", weights).add(
            // A point's row in memory, in both CSVs and in every plot: about 1 KiB.
            format!("{points} points' results, CSVs and plots"),
            (points * (std::mem::size_of::<SweepPoint>() + 512)) as u64,
        );
        for e in repacked.into_iter().take(threads) {
            estimate.include(e);
        }
        estimate.check(self.max_memory)
    }

    /// The plots of the parameter, each with its file name.
    fn plots(&self, layers: &[String], points: &[SweepPoint]) -> Vec<(String, LinePlot)> {
        let name = self.param.name();
        let log_x = matches!(self.param, Param::Pes | Param::Fifo | Param::SpmatWidth);
        let plot = |suffix: &str, y_label: &str, metric: &dyn Fn(&SweepPoint) -> f64| {
            let series = layers
                .iter()
                .zip(points.chunks(self.values.len()))
                .map(|(l, layer)| Series {
                    name: l.clone(),
                    points: layer.iter().map(|p| (p.value as f64, metric(p))).collect(),
                })
                .collect();
            (
                format!("sweep-{name}{suffix}.svg"),
                LinePlot {
                    param: name.to_string(),
                    y_label: y_label.to_string(),
                    series,
                    log_x,
                },
            )
        };
        let mut plots = match self.param {
            Param::Pes => vec![
                plot("", "speed-up over the first PE count", &|p| p.speedup),
                plot("-padding", "padding entries (% of entries)", &|p| {
                    p.padding_pct
                }),
            ],
            Param::Fifo => vec![plot("", "load-balance efficiency", &|p| p.load_efficiency)],
            Param::IndexBits => vec![
                plot("", "padding entries (% of entries)", &|p| p.padding_pct),
                plot("-time", "time (us)", &|p| p.time_us),
            ],
            Param::SpmatWidth => vec![
                plot("", "Spmat lines read per entry", &|p| p.spmat_reads_per_mac),
                plot(
                    "-read-energy",
                    "Spmat read energy per inference (nJ)",
                    &|p| p.spmat_read_nj,
                ),
            ],
        };
        plots.push(plot("-energy", "energy per inference (nJ)", &|p| {
            p.energy_nj
        }));
        plots
    }
}

impl SweepPoint {
    /// A point's row, its speed-up not yet known (1).
    fn of(p: &Point, e: Energy) -> Self {
        let t = &p.timing;
        Self {
            layer: p.layer.clone(),
            value: p.value,
            cycles: t.cycles,
            time_us: t.time_us(),
            load_efficiency: t.load_efficiency(),
            speedup: 1.0,
            entries: p.entries,
            padding: p.padding,
            padding_pct: pct(p.padding, p.entries),
            spmat_reads: t.spmat_reads(),
            pointer_reads: t.pointer_reads,
            broadcasts: t.broadcasts,
            stall_cycles: t.stall_cycles,
            spmat_reads_per_mac: t.spmat_reads() as f64 / t.macs.max(1) as f64,
            energy: e,
            energy_nj: e.total_pj() / 1e3,
            power_mw: e.power_mw(),
            pj_per_mac: e.pj_per_mac(),
            spmat_read_nj: e.get(Component::SpmatRead) / 1e3,
        }
    }
}

/// A layer's size as a sweep re-packs it, known before its workload is built.
struct Shape {
    name: String,
    rows: usize,
    cols: usize,
    nonzeros: u64,
    pes: usize,
    index_bits: u8,
}

/// The paper's nine layers, from Table III (their weights not generated yet).
fn paper_shapes() -> Vec<Shape> {
    PAPER_LAYERS
        .iter()
        .map(|l| Shape {
            name: l.name.to_string(),
            rows: l.outputs,
            cols: l.inputs,
            nonzeros: (l.weight_density * (l.outputs * l.inputs) as f64).ceil() as u64,
            pes: 64,
            index_bits: PAPER_INDEX_BITS,
        })
        .collect()
}

/// A packed model's layers (padding left out of the weights).
fn model_shapes(bundle: &eie_format::Bundle) -> Vec<Shape> {
    LayerView::all(bundle)
        .iter()
        .map(|v| Shape {
            name: v.name().to_string(),
            rows: v.rows(),
            cols: v.cols(),
            nonzeros: v
                .parts()
                .iter()
                .map(|p| (p.entries() - p.padding()) as u64)
                .sum(),
            pes: v.pes(),
            index_bits: v.parts()[0].index_bits(),
        })
        .collect()
}

/// `sweep-PARAM.csv`: one line per point.
fn points_csv(name: &str, points: &[SweepPoint]) -> String {
    let mut csv = String::from(
        "layer,param,value,cycles,time_us,load_efficiency,speedup,entries,padding,padding_pct,spmat_reads,pointer_reads,broadcasts,stall_cycles,energy_nj,power_mw,pj_per_mac,spmat_read_nj\n",
    );
    for p in points {
        csv.push_str(&format!(
            "{},{name},{},{},{:.4},{:.6},{:.4},{},{},{:.3},{},{},{},{},{:.4},{:.3},{:.4},{:.4}\n",
            p.layer,
            p.value,
            p.cycles,
            p.time_us,
            p.load_efficiency,
            p.speedup,
            p.entries,
            p.padding,
            p.padding_pct,
            p.spmat_reads,
            p.pointer_reads,
            p.broadcasts,
            p.stall_cycles,
            p.energy_nj,
            p.power_mw,
            p.pj_per_mac,
            p.spmat_read_nj,
        ));
    }
    csv
}

/// `sweep-PARAM-energy.csv`: per value, every layer's energy and all layers' together:
/// energy per inference, power, energy per MAC, inferences per joule and every component
/// (docs/energy.md).
fn energy_csv(name: &str, points: &[SweepPoint], values: &[u32]) -> String {
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
    for (i, &v) in values.iter().enumerate() {
        let mut total = Energy::default();
        // Layer-major points: value i is every values.len()-th from i.
        for p in points.iter().skip(i).step_by(values.len()) {
            row(v, &p.layer, &p.energy);
            total = total.plus(&p.energy);
        }
        row(v, "total", &total);
    }
    out
}

/// Where the Spmat read energy is lowest, per layer and over all layers.
fn read_energy_minima(layers: &[String], points: &[SweepPoint], widths: &[u32]) -> Minima {
    let read = |p: &SweepPoint| p.energy.get(Component::SpmatRead);
    let per_layer = layers
        .iter()
        .zip(points.chunks(widths.len()))
        .filter_map(|(l, layer)| {
            layer
                .iter()
                .map(|p| (p, read(p)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(p, pj)| (l.clone(), p.value, pj / 1e3))
        })
        .collect();
    // Layer-major points: width i is every widths.len()-th from i.
    let total = |i: usize| -> f64 { points.iter().skip(i).step_by(widths.len()).map(read).sum() };
    let all = (0..widths.len())
        .min_by(|&a, &b| total(a).total_cmp(&total(b)))
        .map(|i| (widths[i], total(i) / 1e3));
    Minima {
        layers: per_layer,
        all,
    }
}
