//! `simulate`: a packed model through the bit-exact functional model and the cycle-level
//! timing model, from the bundle's streams.

use std::path::PathBuf;

use anyhow::{Result, bail};
use eie_baseline::{BATCH, Budget, Machine, Operands, measure_layer};
use eie_energy::{Counts, Energy, EnergyReport, Runs};
use eie_pipeline::output::{Inputs, load_bundle};
use eie_pipeline::recorded_capacity;
use eie_simulate::fixed::from_q16;
use eie_simulate::run::{Mode, Step, fractions, run_chain, run_independent};
use serde::Serialize;

use crate::options::{
    ArithArgs, ChartArgs, CpuArgs, EnergyArgs, InputArgs, TimingArgs, select_views,
};
use crate::render::cpu::{CpuReport, CpuRow};
use crate::render::energy::{CostReport, costed_tables, waterfall};
use crate::render::table::Table;
use crate::render::timing::{LayerRun, layer_run};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (or a model.eie file).
    pub dir: PathBuf,
    /// The PE count, as a check: it is fixed when a model is packed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=eie_format::MAX_PES as i64))]
    pub pes: Option<u32>,
    /// Simulate only this layer.
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Print JSON: per vector and layer the cycles, time, load efficiency, per-PE counters and
    /// the output activations (16-bit values and numbers).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub arith: ArithArgs,
    #[command(flatten)]
    pub energy: EnergyArgs,
    #[command(flatten)]
    pub chart: ChartArgs,
    #[command(flatten)]
    pub cpu: CpuArgs,
}

#[derive(Serialize)]
struct Report {
    mode: &'static str,
    pes: usize,
    clock_mhz: f64,
    fifo: usize,
    acc_bits: u8,
    /// Activation fractional bits at every layer boundary (chained mode), or per layer its
    /// input's and output's (independent mode).
    fractions: Vec<Vec<u8>>,
    vectors: Vec<VectorRun>,
    /// What the runs cost (docs/energy.md): per layer and for the model, the mean energy per
    /// inference and the savings breakdown over every vector.
    energy: CostReport,
    /// With --cpu: the same layers on this machine's CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<CpuReport>,
}

#[derive(Serialize)]
struct VectorRun {
    layers: Vec<LayerRun>,
    total_cycles: u64,
    total_time_us: f64,
    energy: EnergyReport,
}

pub fn run(args: Args) -> Result<()> {
    let (bundle_path, bundle) = load_bundle(&args.dir)?;
    let table = args.energy.table()?;
    // The chart never goes over an input: the model, its folder, the input vectors, the
    // dataset's files, the energy table.
    let mut inputs = Inputs::new();
    crate::options::model_inputs(&mut inputs, &args.dir, &bundle_path);
    inputs
        .extend(&args.input.input)
        .extend(&args.energy.energy_table);
    if let Some(spec) = &args.input.data.dataset {
        inputs.extend(crate::options::dataset_inputs(spec)?);
    }
    args.chart.check(&inputs)?;
    if let Some(program) = eie_evaluate::program::Program::of(&bundle)? {
        return run_described(&args, &bundle, &program, &table, &inputs);
    }
    let views = select_views(&bundle, args.layer.as_deref())?;
    let pes = views[0].pes();
    check_pes(args.pes, pes)?;
    let params = args.timing.params()?;
    let arith = args.arith.arith()?;
    let mode = Mode::of(&views, args.input.external())?;
    let settings = &bundle.meta().settings;

    let mut steps: Vec<Vec<Step>> = Vec::new();
    let mut fracs_report = Vec::new();
    // Per layer, the fraction of its output.
    let f_out: Vec<u8>;
    // The first layer's float inputs, for the CPU baseline (chained: the vectors; independent:
    // each layer's own).
    let cpu_inputs: Vec<Vec<Vec<f32>>>;
    match mode {
        Mode::Chained => {
            let vectors = args.input.vectors(views[0].inputs(), settings)?;
            let fracs = fractions(
                &views,
                &vectors,
                &args.input.act_frac.act_frac,
                arith.relu_last,
            )?;
            for x in &vectors {
                steps.push(run_chain(&views, x, &fracs, arith, &params)?.1);
            }
            f_out = fracs[1..].to_vec();
            fracs_report.push(fracs);
            // Layer i > 0 takes layer i - 1's outputs, as EIE computed them.
            let batch: Vec<Vec<f32>> = vectors.into_iter().take(BATCH).collect();
            cpu_inputs = (0..views.len())
                .map(|i| match i {
                    0 => batch.clone(),
                    _ => steps
                        .iter()
                        .take(BATCH)
                        .map(|run| {
                            run[i - 1]
                                .output
                                .outputs
                                .iter()
                                .map(|&q| from_q16(q, f_out[i - 1]))
                                .collect()
                        })
                        .collect(),
                })
                .collect();
        }
        Mode::Independent => {
            // Layers that do not chain run side by side, each on its own generated input.
            let inputs = views
                .iter()
                .map(|v| Ok(args.input.vectors(v.inputs(), settings)?.swap_remove(0)))
                .collect::<Result<Vec<_>>>()?;
            let runs = run_independent(&views, &inputs, arith, &params)?;
            cpu_inputs = inputs.iter().map(|x| vec![x.clone()]).collect();
            f_out = runs.iter().map(|r| r.fracs[1]).collect();
            fracs_report = runs.iter().map(|r| r.fracs.to_vec()).collect();
            steps.push(runs.into_iter().map(|r| r.step).collect());
        }
    }
    // What each vector's run of each layer did, and what all of them cost.
    let capacity = recorded_capacity(settings);
    let pointer_bits = bundle.meta().pointer_bits;
    let counts: Vec<Vec<Counts>> = steps
        .iter()
        .map(|run| {
            run.iter()
                .zip(&views)
                .map(|(s, v)| {
                    Counts::of(*v, &s.timing, params.spmat_width, pointer_bits, &capacity)
                })
                .collect()
        })
        .collect();
    let mut runs = Runs::new();
    for c in &counts {
        runs.add(c);
    }
    let costed = runs.costed(&views, pointer_bits, &table);
    // The CPU baseline, layer after layer, after the simulation.
    let cpu = if args.cpu.cpu {
        let machine = Machine::this();
        let runs = steps.len() as f64;
        let rows = views
            .iter()
            .zip(&cpu_inputs)
            .enumerate()
            .map(|(i, (v, inputs))| -> Result<CpuRow> {
                let ops = Operands::of(*v, inputs)?;
                let eie_us = steps.iter().map(|s| s[i].timing.time_us()).sum::<f64>() / runs;
                let cpu = measure_layer(&ops, &Budget::default(), machine.counter.as_ref());
                Ok(CpuRow::new(cpu, eie_us))
            })
            .collect::<Result<Vec<_>>>()?;
        Some(CpuReport::new(machine, rows))
    } else {
        None
    };
    let mut report = Report {
        mode: mode.name(),
        pes,
        clock_mhz: params.clock_mhz,
        fifo: params.fifo_depth,
        acc_bits: arith.acc_bits,
        fractions: fracs_report,
        vectors: Vec::new(),
        energy: CostReport::new(&costed, &table),
        cpu,
    };
    for (run, counts) in steps.iter().zip(&counts) {
        let energies: Vec<Energy> = counts.iter().map(|c| Energy::of(c, &table)).collect();
        let layers: Vec<LayerRun> = run
            .iter()
            .zip(&views)
            .zip(&energies)
            .enumerate()
            .map(|(i, ((s, v), e))| layer_run(*v, s, f_out[i], e))
            .collect();
        let total_cycles = layers.iter().map(|l| l.timing.cycles).sum();
        let energy = energies.iter().fold(Energy::default(), |a, e| a.plus(e));
        report.vectors.push(VectorRun {
            layers,
            total_cycles,
            total_time_us: total_cycles as f64 / params.clock_mhz,
            energy: energy.report(),
        });
    }
    let title = format!(
        "Where EIE's energy saving comes from: {}",
        bundle.meta().source.name
    );
    args.chart
        .write(&inputs, || waterfall(&title, &costed.savings))?;

    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    outln!(
        "{} layer{} ({}), {pes} PEs at {} MHz, queue depth {}, {}-bit accumulators, {} input vector{}",
        views.len(),
        if views.len() == 1 { "" } else { "s" },
        report.mode,
        params.clock_mhz,
        params.fifo_depth,
        arith.acc_bits,
        steps.len(),
        if steps.len() == 1 { "" } else { "s" }
    );
    let mut t = Table::new(&[
        "layer",
        "cycles",
        "time us",
        "broadcasts",
        "load eff.",
        "theoretical",
        "stalls",
        "Spmat reads",
        "ptr reads",
        "GOP/s",
    ]);
    let mut total = (0u64, 0u64, 0u64);
    for (i, view) in views.iter().enumerate() {
        let runs: Vec<&Step> = steps.iter().map(|s| &s[i]).collect();
        let sum = |f: &dyn Fn(&Step) -> u64| runs.iter().map(|s| f(s)).sum::<u64>();
        let cycles = sum(&|s| s.timing.cycles);
        let busy = sum(&|s| s.timing.pes.iter().map(|p| p.busy).sum());
        let macs = sum(&|s| s.timing.macs);
        total = (total.0 + cycles, total.1 + busy, total.2 + macs);
        t.row(vec![
            view.name().to_string(),
            cycles.to_string(),
            format!("{:.2}", cycles as f64 / params.clock_mhz),
            sum(&|s| s.timing.broadcasts).to_string(),
            format!("{:.3}", busy as f64 / (cycles.max(1) * pes as u64) as f64),
            sum(&|s| s.timing.theoretical_cycles()).to_string(),
            sum(&|s| s.timing.stall_cycles).to_string(),
            sum(&|s| s.timing.spmat_reads()).to_string(),
            sum(&|s| s.timing.pointer_reads).to_string(),
            format!(
                "{:.1}",
                2.0 * macs as f64 * params.clock_mhz / cycles.max(1) as f64 / 1e3
            ),
        ]);
    }
    if views.len() > 1 {
        t.row(vec![
            "total".into(),
            total.0.to_string(),
            format!("{:.2}", total.0 as f64 / params.clock_mhz),
            String::new(),
            format!(
                "{:.3}",
                total.1 as f64 / (total.0.max(1) * pes as u64) as f64
            ),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            format!(
                "{:.1}",
                2.0 * total.2 as f64 * params.clock_mhz / total.0.max(1) as f64 / 1e3
            ),
        ]);
    }
    out!("{}", t.render());
    out!("{}", costed_tables(&costed, &table));
    if let Some(c) = &report.cpu {
        out!("{}", c.render());
    }
    Ok(())
}

/// `--pes`, a check: the PE count is fixed by packing.
fn check_pes(given: Option<u32>, pes: usize) -> Result<()> {
    if let Some(n) = given
        && n as usize != pes
    {
        bail!(
            "model.eie was packed for {pes} PEs; the PE count is fixed by packing: re-pack with --pes {n}"
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct DescribedReport {
    model: String,
    pes: usize,
    clock_mhz: f64,
    fifo: usize,
    acc_bits: u8,
    /// The layers the host runs (in float, not timed).
    host_layers: Vec<String>,
    /// Per matrix its input's and output's fraction (host layers: 0, 0).
    fractions: Vec<u8>,
    /// Inferences (images, sequences) run.
    inferences: usize,
    /// Per EIE layer, the mean over inferences.
    layers: Vec<DescribedLayer>,
    /// Mean cycles and time per inference, every EIE layer together.
    cycles_per_inference: f64,
    time_per_inference_us: f64,
    energy: CostReport,
}

#[derive(Serialize)]
struct DescribedLayer {
    name: String,
    /// EIE runs per inference (an LSTM layer: one per time step).
    runs_per_inference: f64,
    cycles_per_inference: f64,
    cycles_per_run: f64,
    time_per_inference_us: f64,
    load_efficiency: f64,
    stall_cycles_per_inference: f64,
}

/// `simulate` of a described model (a CNN, an LSTM): each input is a whole sample through
/// the program (docs/accuracy.md): host layers in float, every EIE layer through the
/// functional and timing models, an LSTM once per time step; figures per inference.
fn run_described(
    args: &Args,
    bundle: &eie_format::Bundle,
    program: &eie_evaluate::program::Program,
    table: &eie_energy::Table,
    inputs: &Inputs,
) -> Result<()> {
    if args.cpu.cpu {
        bail!(
            "--cpu: the CPU baseline times chains of layers; {} is a described model ({})",
            args.dir.display(),
            program.network().describe()
        );
    }
    if args.layer.is_some() {
        bail!(
            "--layer: {} is a described model ({}), simulated whole, one sample at a time",
            args.dir.display(),
            program.network().describe()
        );
    }
    let views = program.views();
    let pes = views[0].pes();
    check_pes(args.pes, pes)?;
    let params = args.timing.params()?;
    let arith = args.arith.arith()?;
    let settings = &bundle.meta().settings;
    let net = program.network();
    let samples = args.input.samples(net, settings)?;
    let fracs = program.fractions(
        &args.input.act_frac.act_frac,
        samples.iter().map(Vec::as_slice),
    )?;
    let eie = program.eie_layers();
    let pointer_bits = bundle.meta().pointer_bits;
    let counting = eie_evaluate::Counting {
        params,
        pointer_bits,
        capacity: recorded_capacity(settings),
    };
    let mut runs = Runs::new();
    // Per EIE layer: runs, cycles, busy PE cycles, stalls over every inference.
    let mut sums = vec![(0u64, 0u64, 0u64, 0u64); eie.len()];
    for x in &samples {
        let (_, eie_runs) = program.run(x, &fracs, arith, Some(&params))?;
        for r in &eie_runs {
            let k = eie
                .iter()
                .position(|&l| l == r.layer)
                .expect("an EIE layer");
            let s = &mut sums[k];
            s.0 += 1;
            s.1 += r.timing().cycles;
            s.2 += r.timing().pes.iter().map(|p| p.busy).sum::<u64>();
            s.3 += r.timing().stall_cycles;
        }
        let (counts, repeats) = program.counted(&eie_runs, &counting);
        runs.add_repeated(&counts, &repeats);
    }
    let costed = runs.costed(&program.eie_views(), pointer_bits, table);
    let n = samples.len() as f64;
    let layers: Vec<DescribedLayer> = eie
        .iter()
        .zip(&sums)
        .map(|(&l, &(r, cycles, busy, stalls))| DescribedLayer {
            name: views[l].name().to_string(),
            runs_per_inference: r as f64 / n,
            cycles_per_inference: cycles as f64 / n,
            cycles_per_run: cycles as f64 / r.max(1) as f64,
            time_per_inference_us: cycles as f64 / n / params.clock_mhz,
            load_efficiency: busy as f64 / (cycles.max(1) * pes as u64) as f64,
            stall_cycles_per_inference: stalls as f64 / n,
        })
        .collect();
    let cycles: f64 = layers.iter().map(|l| l.cycles_per_inference).sum();
    let report = DescribedReport {
        model: net.describe(),
        pes,
        clock_mhz: params.clock_mhz,
        fifo: params.fifo_depth,
        acc_bits: arith.acc_bits,
        host_layers: program.host_layers(),
        fractions: fracs,
        inferences: samples.len(),
        cycles_per_inference: cycles,
        time_per_inference_us: cycles / params.clock_mhz,
        layers,
        energy: CostReport::new(&costed, table),
    };
    let title = format!(
        "Where EIE's energy saving comes from: {}",
        bundle.meta().source.name
    );
    args.chart
        .write(inputs, || waterfall(&title, &costed.savings))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    outln!(
        "{} on {pes} PEs at {} MHz, queue depth {}, {}-bit accumulators, {} input{}{}",
        report.model,
        params.clock_mhz,
        params.fifo_depth,
        arith.acc_bits,
        samples.len(),
        if samples.len() == 1 { "" } else { "s" },
        if report.host_layers.is_empty() {
            String::new()
        } else {
            format!(
                "; on the host, in float, not timed: {}",
                report.host_layers.join(", ")
            )
        }
    );
    let mut t = Table::new(&[
        "layer",
        "runs/inference",
        "cycles/inference",
        "cycles/run",
        "time us",
        "load eff.",
        "stalls",
    ]);
    for l in &report.layers {
        t.row(vec![
            l.name.clone(),
            format!("{:.0}", l.runs_per_inference),
            format!("{:.1}", l.cycles_per_inference),
            format!("{:.1}", l.cycles_per_run),
            format!("{:.3}", l.time_per_inference_us),
            format!("{:.3}", l.load_efficiency),
            format!("{:.1}", l.stall_cycles_per_inference),
        ]);
    }
    t.row(vec![
        "per inference".into(),
        String::new(),
        format!("{:.1}", report.cycles_per_inference),
        String::new(),
        format!("{:.3}", report.time_per_inference_us),
        String::new(),
        String::new(),
    ]);
    out!("{}", t.render());
    out!("{}", costed_tables(&costed, table));
    Ok(())
}
