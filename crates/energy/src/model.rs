//! The energy of a run: per component, the action count times the energy per action, plus
//! static power times time (docs/energy.md, "The model").

use serde::Serialize;

use crate::counts::Counts;
use crate::table::{Key, Table};

/// Where energy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// Spmat SRAM line reads.
    SpmatRead,
    /// Pointer SRAM reads (both banks).
    PointerRead,
    /// Decoding entries, padding included: codebook look-up and row-index accumulation.
    Decode,
    /// 16-bit multiplies.
    Multiply,
    /// Accumulator adds.
    Add,
    /// Destination register-file reads and writes.
    Accumulator,
    /// Source register-file reads of broadcast activations.
    SourceRead,
    /// Activation-queue pushes and pops.
    Queue,
    /// Leading-non-zero detection and broadcast.
    Lnzd,
    /// Activation SRAM traffic.
    ActivationSram,
    /// DRAM traffic.
    Dram,
    /// The clock networks, every cycle of every PE and node (static).
    Clock,
    /// Leakage (static).
    Leakage,
}

/// The components in the groups a table of a run's energy shows (every component has its
/// own figure in the JSON): the Spmat and pointer SRAMs, the arithmetic, the register files,
/// the broadcast, the activation SRAM and DRAM, and static power.
pub const GROUPS: [(&str, &[Component]); 7] = [
    ("Spmat", &[Component::SpmatRead]),
    ("ptrs", &[Component::PointerRead]),
    (
        "arith",
        &[Component::Decode, Component::Multiply, Component::Add],
    ),
    (
        "reg files",
        &[Component::Accumulator, Component::SourceRead],
    ),
    ("bcast", &[Component::Queue, Component::Lnzd]),
    ("SRAM/DRAM", &[Component::ActivationSram, Component::Dram]),
    ("static", &[Component::Clock, Component::Leakage]),
];

impl Component {
    /// Every component, in report order.
    pub const ALL: [Component; 13] = [
        Component::SpmatRead,
        Component::PointerRead,
        Component::Decode,
        Component::Multiply,
        Component::Add,
        Component::Accumulator,
        Component::SourceRead,
        Component::Queue,
        Component::Lnzd,
        Component::ActivationSram,
        Component::Dram,
        Component::Clock,
        Component::Leakage,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Component::SpmatRead => "spmat_read",
            Component::PointerRead => "pointer_read",
            Component::Decode => "decode",
            Component::Multiply => "multiply",
            Component::Add => "add",
            Component::Accumulator => "accumulator",
            Component::SourceRead => "source_read",
            Component::Queue => "queue",
            Component::Lnzd => "lnzd",
            Component::ActivationSram => "activation_sram",
            Component::Dram => "dram",
            Component::Clock => "clock",
            Component::Leakage => "leakage",
        }
    }
}

/// The energy of one run (or the sum of several), by component.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Energy {
    /// pJ per component, in [`Component::ALL`] order.
    pub parts: [f64; 13],
    /// Cycles the energy was spent over (a mean of runs may be fractional).
    pub cycles: f64,
    /// Time, microseconds.
    pub time_us: f64,
    /// Multiply-accumulates done (a mean of runs may be fractional).
    pub macs: f64,
}

/// The energy of a Spmat line of `width` bits: the 64-bit figure scaled by the width rule.
pub fn spmat_line_pj(table: &Table, width: u32) -> f64 {
    table.get(Key::SpmatLineRead) * (width as f64 / 64.0).powf(table.get(Key::SpmatWidthExponent))
}

impl Energy {
    /// The energy of a run with `counts` at the energies of `table`.
    pub fn of(c: &Counts, table: &Table) -> Self {
        let e = |k| table.get(k);
        let time_us = c.cycles as f64 / c.clock_mhz;
        // mW x us = nJ.
        let static_pj = |mw: f64| mw * time_us * 1e3;
        let n = |v: u64| v as f64;
        let mut parts = [0.0; 13];
        for (slot, component) in parts.iter_mut().zip(Component::ALL) {
            *slot = match component {
                Component::SpmatRead => n(c.spmat_lines) * spmat_line_pj(table, c.spmat_width),
                Component::PointerRead => n(c.pointer_reads) * e(Key::PointerRead),
                Component::Decode => n(c.macs + c.padding) * e(Key::Decode),
                Component::Multiply => n(c.macs) * e(Key::Multiply),
                Component::Add => n(c.macs) * e(Key::Add),
                Component::Accumulator => {
                    n(c.macs - c.bypasses.min(c.macs)) * e(Key::AccumulatorRead)
                        + n(c.macs) * e(Key::AccumulatorWrite)
                }
                Component::SourceRead => n(c.broadcasts) * e(Key::SourceRead),
                Component::Queue => {
                    n(c.broadcasts * c.pes) * (e(Key::QueuePush) + e(Key::QueuePop))
                }
                Component::Lnzd => n(c.lnzd_steps * c.lnzd_nodes) * e(Key::LnzdStep),
                Component::ActivationSram => {
                    n(c.act_sram_reads + c.act_sram_writes) * e(Key::ActSramAccess)
                }
                Component::Dram => n(c.dram_bytes) / 4.0 * e(Key::Dram32),
                Component::Clock => static_pj(
                    n(c.pes) * e(Key::ClockPerPe) + n(c.lnzd_nodes) * e(Key::LnzdClockPerNode),
                ),
                Component::Leakage => static_pj(n(c.pes) * e(Key::LeakagePerPe)),
            };
        }
        Self {
            parts,
            cycles: c.cycles as f64,
            time_us,
            macs: c.macs as f64,
        }
    }

    /// The percentage of the total that `parts` take (0 of a run that cost nothing).
    pub fn share(&self, parts: &[Component]) -> f64 {
        let total = self.total_pj();
        if total > 0.0 {
            100.0 * parts.iter().map(|&c| self.get(c)).sum::<f64>() / total
        } else {
            0.0
        }
    }

    /// The energy of one component, pJ.
    pub fn get(&self, component: Component) -> f64 {
        self.parts[Component::ALL
            .iter()
            .position(|&c| c == component)
            .expect("listed")]
    }

    /// Total, pJ.
    pub fn total_pj(&self) -> f64 {
        self.parts.iter().sum()
    }

    /// Average power over the run, mW (0 for a run of no time).
    pub fn power_mw(&self) -> f64 {
        if self.time_us > 0.0 {
            self.total_pj() / self.time_us / 1e3
        } else {
            0.0
        }
    }

    /// Energy per multiply-accumulate, pJ (0 when none was done).
    pub fn pj_per_mac(&self) -> f64 {
        if self.macs > 0.0 {
            self.total_pj() / self.macs
        } else {
            0.0
        }
    }

    /// Runs a joule pays for: infinitely many for a run that cost nothing (JSON writes a
    /// non-finite number as `null`).
    pub fn per_joule(&self) -> f64 {
        let pj = self.total_pj();
        if pj > 0.0 { 1e12 / pj } else { f64::INFINITY }
    }

    /// This run and `other` one after the other.
    pub fn plus(&self, other: &Energy) -> Energy {
        let mut parts = self.parts;
        for (a, b) in parts.iter_mut().zip(other.parts) {
            *a += b;
        }
        Energy {
            parts,
            cycles: self.cycles + other.cycles,
            time_us: self.time_us + other.time_us,
            macs: self.macs + other.macs,
        }
    }

    /// Every component and count scaled by `k`: the mean of several runs is their sum scaled
    /// by one over their number.
    pub fn scaled(&self, k: f64) -> Energy {
        Energy {
            parts: self.parts.map(|p| p * k),
            cycles: self.cycles * k,
            time_us: self.time_us * k,
            macs: self.macs * k,
        }
    }

    /// The report form: totals and every component.
    pub fn report(&self) -> EnergyReport {
        EnergyReport {
            total_nj: self.total_pj() / 1e3,
            power_mw: self.power_mw(),
            pj_per_mac: self.pj_per_mac(),
            inferences_per_joule: self.per_joule(),
            components_pj: Component::ALL
                .iter()
                .zip(self.parts)
                .map(|(c, v)| (c.name(), v))
                .collect(),
        }
    }
}

/// An energy as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergyReport {
    /// Energy per inference (per run), nJ.
    pub total_nj: f64,
    /// Average power, mW.
    pub power_mw: f64,
    /// Energy per multiply-accumulate, pJ.
    pub pj_per_mac: f64,
    /// Inferences per joule.
    pub inferences_per_joule: f64,
    /// pJ per component.
    pub components_pj: std::collections::BTreeMap<&'static str, f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> Counts {
        Counts {
            cycles: 100,
            pes: 4,
            clock_mhz: 800.0,
            spmat_lines: 12,
            spmat_width: 64,
            pointer_reads: 40,
            macs: 70,
            padding: 5,
            bypasses: 3,
            broadcasts: 10,
            lnzd_steps: 13,
            lnzd_nodes: 1,
            act_sram_reads: 0,
            act_sram_writes: 0,
            dram_bytes: 8,
        }
    }

    /// The hand computation of docs/energy.md's formula, term by term, on a small run.
    #[test]
    fn a_small_run_by_hand() {
        let t = Table::parse(
            "spmat_line_read_pj = 40\npointer_read_pj = 10\ndecode_pj = 0.5\nmultiply_pj = 0.6\n\
             add_pj = 0.1\naccumulator_read_pj = 0.5\naccumulator_write_pj = 0.25\n\
             source_read_pj = 0.5\nqueue_push_pj = 0.4\nqueue_pop_pj = 0.1\nlnzd_step_pj = 2\n\
             dram_32b_pj = 640\nclock_mw_per_pe = 2\nlnzd_clock_mw_per_node = 0\nleakage_mw_per_pe = 0.4\n",
        )
        .unwrap();
        let e = Energy::of(&counts(), &t);
        let expected = [
            ("spmat_read", 12.0 * 40.0),
            ("pointer_read", 40.0 * 10.0),
            ("decode", 75.0 * 0.5),
            ("multiply", 70.0 * 0.6),
            ("add", 70.0 * 0.1),
            ("accumulator", 67.0 * 0.5 + 70.0 * 0.25),
            ("source_read", 10.0 * 0.5),
            ("queue", 40.0 * 0.5),
            ("lnzd", 13.0 * 2.0),
            ("activation_sram", 0.0),
            ("dram", 2.0 * 640.0),
            // 100 cycles at 800 MHz = 0.125 us; 4 PEs x 2 mW = 8 mW -> 1 nJ.
            ("clock", 1000.0),
            ("leakage", 4.0 * 0.4 * 0.125 * 1e3),
        ];
        let r = e.report();
        for (name, pj) in expected {
            assert!(
                (r.components_pj[name] - pj).abs() < 1e-9,
                "{name}: {} vs {pj}",
                r.components_pj[name]
            );
        }
        let total: f64 = expected.iter().map(|x| x.1).sum();
        assert!((e.total_pj() - total).abs() < 1e-9);
        assert!((e.power_mw() - total / 0.125 / 1e3).abs() < 1e-9);
        assert!((e.pj_per_mac() - total / 70.0).abs() < 1e-12);
        assert!((e.per_joule() - 1e12 / total).abs() < 1e-3);
    }

    /// Each counter moves only its own component.
    #[test]
    fn each_counter_moves_its_component() {
        let t = Table::paper();
        let base = Energy::of(&counts(), &t);
        type Bump = fn(&mut Counts);
        let cases: [(Bump, &[&str]); 10] = [
            (|c| c.spmat_lines += 1, &["spmat_read"]),
            (|c| c.pointer_reads += 1, &["pointer_read"]),
            (|c| c.padding += 1, &["decode"]),
            (|c| c.bypasses += 1, &["accumulator"]),
            (|c| c.broadcasts += 1, &["source_read", "queue"]),
            (|c| c.lnzd_steps += 1, &["lnzd"]),
            (|c| c.act_sram_reads += 1, &["activation_sram"]),
            (|c| c.dram_bytes += 4, &["dram"]),
            (|c| c.cycles += 1, &["clock"]),
            (
                |c| c.macs += 1,
                &["decode", "multiply", "add", "accumulator"],
            ),
        ];
        for (bump, moved) in cases {
            let mut c = counts();
            bump(&mut c);
            let e = Energy::of(&c, &t);
            for comp in Component::ALL {
                let changed = e.get(comp) != base.get(comp);
                // Leakage is zero by default, so only the clock moves with the cycles.
                assert_eq!(
                    changed,
                    moved.contains(&comp.name()),
                    "{comp:?} after {moved:?}"
                );
            }
        }
    }

    #[test]
    fn the_spmat_width_rule() {
        let t = Table::paper();
        let e64 = spmat_line_pj(&t, 64);
        assert!((spmat_line_pj(&t, 256) - 2.0 * e64).abs() < 1e-9);
        assert!((spmat_line_pj(&t, 16) - 0.5 * e64).abs() < 1e-9);
    }
}
