//! `simulate`'s and `bench-paper`'s tables.

use eie_commands::bench_paper;
use eie_commands::simulate::{ChainReport, DescribedReport, LayerTotals, ResidencyReport};

use super::cpu::cpu;
use super::energy::{SAVINGS_HEADING, costed_tables, energy_table, heading, savings_table};
use super::table::Table;

/// "s" for any count but one.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A chain's runs: per layer its figures over every vector, energy, and the CPU baseline.
pub fn chain(r: &ChainReport) -> String {
    let layers = r.layer_totals();
    let mut out = format!(
        "{} layer{} ({}), {} PEs at {} MHz, queue depth {}, {}-bit accumulators, {} input vector{}\n",
        layers.len(),
        plural(layers.len()),
        r.mode,
        r.pes,
        r.clock_mhz,
        r.fifo,
        r.acc_bits,
        r.vectors.len(),
        plural(r.vectors.len())
    );
    let mut t = Table::columns(
        "layer | cycles | time us | broadcasts | load eff. | theoretical | stalls | Spmat reads | ptr reads | GOP/s",
    );
    let row = |l: &LayerTotals, all: bool| {
        let all = |v: u64| if all { v.to_string() } else { String::new() };
        vec![
            l.name.clone(),
            l.cycles.to_string(),
            format!("{:.2}", l.time_us),
            all(l.broadcasts),
            format!("{:.3}", l.load_efficiency),
            all(l.theoretical_cycles),
            all(l.stall_cycles),
            all(l.spmat_reads),
            all(l.pointer_reads),
            format!("{:.1}", l.gops),
        ]
    };
    for l in &layers {
        t.row(row(l, true));
    }
    if layers.len() > 1 {
        t.row(row(&r.total(), false));
    }
    out.push_str(&t.render());
    let unfinished = r.total().unfinished;
    if unfinished > 0 {
        out.push_str(&format!(
            "note: the authors' simulator stops at its first cycle with no write after its last group, here with {unfinished} products not yet accumulated; the cycles are its count (docs/timing-model.md \"The authors' rules\")\n"
        ));
    }
    out.push_str(&costed_tables(&r.energy));
    if let Some(m) = &r.residency {
        out.push_str(&residency(m, r.language.as_deref()));
    }
    if let Some(c) = &r.cpu {
        out.push_str(&cpu(c));
    }
    out
}

/// The whole model against the SRAMs, and what an inference (a language model's token)
/// costs with it.
fn residency(m: &ResidencyReport, language: Option<&str>) -> String {
    let kib = |b: u64| format!("{:.1} KiB", b as f64 / 1024.0);
    let unit = if language.is_some() {
        "token"
    } else {
        "inference"
    };
    let (e, dram) = (m.energy_per_inference_nj, m.extra_dram_nj);
    let mut out = match language {
        Some(family) => format!(
            "\nper token ({family}: every linear layer once; attention, norms and activations on the host, not counted): {:.1} tokens/s, {e:.1} nJ a token{}\n",
            m.inferences_per_second,
            match dram > 0.0 {
                true => format!(" ({dram:.1} nJ of it the whole model's DRAM traffic)"),
                false => String::new(),
            }
        ),
        None => "\n".into(),
    };
    out.push_str(&format!(
        "the whole model per PE: Spmat {} of {}, pointers {} of {}: ",
        kib(m.spmat_bytes_per_pe),
        kib(m.spmat_capacity),
        kib(m.pointer_bytes_per_pe),
        kib(m.pointer_capacity)
    ));
    let fetched = kib(m.dram_bytes_per_inference);
    out.push_str(&match (m.resident, m.pes_to_hold) {
        (true, _) => format!("resident in SRAM from one {unit} to the next\n"),
        (false, Some(n)) => format!("not resident: {fetched} a {unit} from DRAM, in the energy per {unit} ({e:.1} nJ); about {n} PEs would hold it\n"),
        (false, None) => format!("not resident: {fetched} a {unit} from DRAM, in the energy per {unit} ({e:.1} nJ); its pointers alone overflow every PE's pointer SRAM, whatever the PE count\n"),
    });
    out
}

/// A described model's runs, per inference.
pub fn described(r: &DescribedReport) -> String {
    let inputs = match r.tokens_per_second {
        Some(_) => format!(
            "{} generated token{}, an inference each",
            r.inferences,
            plural(r.inferences)
        ),
        None => format!("{} input{}", r.inferences, plural(r.inferences)),
    };
    let mut out = format!(
        "{} on {} PEs at {} MHz, queue depth {}, {}-bit accumulators, {inputs}{}\n",
        r.model,
        r.pes,
        r.clock_mhz,
        r.fifo,
        r.acc_bits,
        if r.host_layers.is_empty() {
            String::new()
        } else {
            format!(
                "; on the host, in float, not timed: {}",
                eie_format::shown(&r.host_layers.join(", "))
            )
        }
    );
    let mut t = Table::columns(
        "layer | runs/inference | cycles/inference | cycles/run | time us | load eff. | stalls",
    );
    for l in &r.layers {
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
        format!("{:.1}", r.cycles_per_inference),
        String::new(),
        format!("{:.3}", r.time_per_inference_us),
        String::new(),
        String::new(),
    ]);
    out.push_str(&t.render());
    if let Some(tps) = r.tokens_per_second {
        out.push_str(&format!(
            "per token: {:.3} us, {tps:.0} tokens/s, {:.1} nJ a token\n",
            r.time_per_inference_us, r.energy.model.total_nj
        ));
    }
    out.push_str(&costed_tables(&r.energy));
    out
}

/// The paper's nine layers: figures, energy, savings and the CPU baseline.
pub fn bench_paper(r: &bench_paper::Report) -> String {
    let mut t = Table::columns(
        "layer | size (in x out) | weight % | act % | entries | padding % | batches | theoretical us | simulated us | load eff. | GOP/s",
    );
    for l in &r.layers {
        let r = &l.result;
        t.row(vec![
            r.name.to_string(),
            format!("{}x{}", r.inputs, r.outputs),
            format!("{:.0}", 100.0 * r.weight_density),
            format!("{:.1}", 100.0 * r.act_density),
            r.entries.to_string(),
            format!("{:.1}", r.padding_pct),
            r.batches.to_string(),
            format!("{:.2}", r.theoretical_time_us),
            format!("{:.2}", r.time_us),
            format!("{:.3}", r.load_efficiency),
            format!("{:.1}", r.gops),
        ]);
    }
    let mut out = format!(
        "EIE paper layers (Table III), {} PEs at {} MHz, 4-bit codes and indices\n{}",
        r.pes,
        r.clock_mhz,
        t.render()
    );
    let names = r.layers.iter().map(|l| l.result.name.to_string());
    let rows: Vec<_> = names
        .clone()
        .zip(r.layers.iter().map(|l| l.computed))
        .collect();
    out.push_str(&format!("\n{}\n", heading(r.energy_table_file.as_deref())));
    out.push_str(&energy_table(&rows, Some(&r.total.computed)));
    let mut rows: Vec<_> = names
        .zip(r.layers.iter().map(|l| l.savings.clone()))
        .collect();
    rows.push(("nine layers".into(), r.total.savings.clone()));
    out.push_str(&format!("\n{SAVINGS_HEADING}\n"));
    out.push_str(&savings_table(&rows));
    if let Some(c) = &r.cpu {
        out.push_str(&cpu(c));
    }
    out
}
