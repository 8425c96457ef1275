//! The cycle-level timing model of docs/timing-model.md. Every cycle count follows from a
//! recurrence over the broadcast activations that is exact for the model's rules, so a layer
//! costs work proportional to its processed entries, not to cycles x PEs.

use crate::error::{Error, Result};
use crate::layer::LayerView;
use crate::walk::{self, PeWalk};

/// Which schedule the timing model follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rules {
    /// This project's rules (docs/timing-model.md), which the reference RTL implements.
    #[default]
    Rtl,
    /// The EIE authors' cycle simulator's (RalphMao/EIE-simulator): its group advance, its
    /// ring queue on registered pointers, its pointer-read register (docs/timing-model.md
    /// "The authors' rules").
    Authors,
}

impl Rules {
    /// Both, in the order the command line lists them.
    pub const ALL: [Rules; 2] = [Rules::Rtl, Rules::Authors];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Rules::Rtl => "rtl",
            Rules::Authors => "authors",
        }
    }

    /// The rules of `name` ([`Rules::name`]).
    pub fn named(name: &str) -> Option<Rules> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// The hardware's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingParams {
    /// Activation queue depth per PE (default 8, the paper's choice).
    pub fifo_depth: usize,
    /// Model the authors' ring buffer, which holds one entry less than its size.
    pub queue_ring: bool,
    /// Clock in MHz (default 800).
    pub clock_mhz: f64,
    /// Width of a Spmat SRAM line in bits (default 64).
    pub spmat_width: u32,
    /// Arithmetic pipeline stages (default 4).
    pub pipeline_depth: u32,
    /// A group of N activations with no non-zero left costs a cycle to move past (default,
    /// as in the reference RTL; docs/timing-model.md).
    pub group_advance: bool,
    /// Whose schedule.
    pub rules: Rules,
}

impl Default for TimingParams {
    fn default() -> Self {
        Self {
            fifo_depth: 8,
            queue_ring: false,
            clock_mhz: 800.0,
            spmat_width: 64,
            pipeline_depth: 4,
            group_advance: true,
            rules: Rules::Rtl,
        }
    }
}

impl TimingParams {
    /// Entries a queue holds.
    pub fn queue_capacity(&self) -> usize {
        if self.queue_ring {
            self.fifo_depth.saturating_sub(1)
        } else {
            self.fifo_depth
        }
    }

    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        let bad = |what, expected, got: String| {
            Err(Error::Parameter {
                what,
                expected,
                got,
            })
        };
        if self.fifo_depth > MAX_FIFO_DEPTH {
            return bad(
                "the activation queue depth",
                "at most 4096 entries (every PE allocates its queue whole)",
                self.fifo_depth.to_string(),
            );
        }
        if self.queue_capacity() == 0 {
            return bad(
                "the activation queue depth",
                "at least 1 (at least 2 for the ring buffer, which holds one less)",
                self.fifo_depth.to_string(),
            );
        }
        if !(MIN_CLOCK_MHZ..=MAX_CLOCK_MHZ).contains(&self.clock_mhz) {
            return bad(
                "the clock",
                "0.001..=1000000 MHz",
                format!("{:e}", self.clock_mhz),
            );
        }
        if self.pipeline_depth == 0 || self.pipeline_depth > MAX_PIPELINE_DEPTH {
            return bad(
                "the pipeline depth",
                "1..=64 stages",
                self.pipeline_depth.to_string(),
            );
        }
        if self.rules == Rules::Authors {
            // Their rules fix these: the queue is their ring, the group advance theirs, the
            // arithmetic pipeline theirs.
            if self.queue_ring {
                return bad(
                    "--queue-ring",
                    "off with --timing-rules authors (their queue is already their ring)",
                    "on".into(),
                );
            }
            if !self.group_advance {
                return bad(
                    "--no-group-advance",
                    "off with --timing-rules authors (their group advance is theirs)",
                    "on".into(),
                );
            }
            if self.pipeline_depth != Self::default().pipeline_depth {
                return bad(
                    "the pipeline depth",
                    "4 (the default) with --timing-rules authors, whose arithmetic pipeline is fixed",
                    self.pipeline_depth.to_string(),
                );
            }
            if self.fifo_depth < 2 {
                return bad(
                    "the activation queue depth",
                    "at least 2 with the authors' rules (their ring holds one less)",
                    self.fifo_depth.to_string(),
                );
            }
        }
        if self.spmat_width == 0 || self.spmat_width > MAX_SPMAT_WIDTH {
            return bad(
                "the Spmat width",
                "1..=1024 bits",
                self.spmat_width.to_string(),
            );
        }
        Ok(())
    }
}

/// Deepest activation queue (entries): the paper explores 1 to 256 (Figure 8), and every PE
/// allocates its queue whole.
pub const MAX_FIFO_DEPTH: usize = 4096;
/// Slowest and fastest clocks, in MHz: outside them a time is not a number worth printing.
pub const MIN_CLOCK_MHZ: f64 = 1e-3;
/// The widest Spmat SRAM line, in bits.
pub const MAX_SPMAT_WIDTH: u32 = 1024;
/// See [`MIN_CLOCK_MHZ`].
pub const MAX_CLOCK_MHZ: f64 = 1e6;
/// Deepest arithmetic pipeline (stages); the paper's is 4.
pub const MAX_PIPELINE_DEPTH: u32 = 64;

/// One PE's counters for a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeCounters {
    /// Cycles spent on activations: one per entry (padding included), at least one per
    /// broadcast activation (the pointer read).
    pub busy: u64,
    /// Cycles idle: the queue was empty (before, between or after its work).
    pub starved: u64,
    /// Cycles during which this PE's full queue stalled the broadcast.
    pub blocking: u64,
    /// Entries processed (padding included).
    pub entries: u64,
    /// Spmat lines read.
    pub spmat_reads: u64,
    /// Back-to-back writes to one accumulator (served by the bypass, no stall).
    pub bypasses: u64,
}

/// A layer's timing.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTiming {
    /// Total cycles, pipeline fill and drain included.
    pub cycles: u64,
    /// Non-zero activations broadcast (the bias column's constant 1 included).
    pub broadcasts: u64,
    /// Cycles the broadcast waited because some queue was full.
    pub stall_cycles: u64,
    /// Per-PE counters.
    pub pes: Vec<PeCounters>,
    /// Pointer-pair reads (one per PE per broadcast, both banks at once).
    pub pointer_reads: u64,
    /// Multiply-accumulates done (real entries of broadcast columns).
    pub macs: u64,
    /// Padding entries processed.
    pub padding: u64,
    /// Column batches (parts) the layer ran as.
    pub batches: usize,
    /// Groups of N activations the leading-non-zero detection moved through (one step each
    /// after its last non-zero, whether or not that step costs a cycle).
    pub groups: u64,
    /// max over PEs of the entries of its broadcast columns: no schedule can beat it.
    pub lower_bound: u64,
    /// Products (real entries, not padding) not yet accumulated into their outputs when the
    /// count stopped: 0 under this project's rules, which count until the last one is. The
    /// authors' simulator stops at its first cycle with no write after the last group reached
    /// its detector, which can be before (docs/timing-model.md "The authors' rules").
    pub unfinished: u64,
    /// The clock, for conversions.
    pub clock_mhz: f64,
}

impl LayerTiming {
    /// PEs.
    pub fn pe_count(&self) -> usize {
        self.pes.len()
    }

    /// Time at the clock, in microseconds.
    pub fn time_us(&self) -> f64 {
        self.cycles as f64 / self.clock_mhz
    }

    /// The paper's load-balance efficiency: 1 - starvation bubbles / total cycles, over all
    /// PEs (= busy cycles / (PEs x cycles)).
    pub fn load_efficiency(&self) -> f64 {
        load_efficiency(self.busy(), self.cycles, self.pes.len())
    }

    /// Busy PE cycles, over all PEs.
    pub fn busy(&self) -> u64 {
        self.pes.iter().map(|p| p.busy).sum()
    }

    /// Cycles a perfectly balanced machine would take for the same work: busy cycles / PEs.
    pub fn theoretical_cycles(&self) -> u64 {
        self.busy().div_ceil(self.pes.len().max(1) as u64)
    }

    /// Effective GOP/s: 2 operations per multiply-accumulate done, over the time.
    pub fn gops(&self) -> f64 {
        gops(self.macs, self.cycles, self.clock_mhz)
    }

    /// Spmat lines read, over all PEs.
    pub fn spmat_reads(&self) -> u64 {
        self.pes.iter().map(|p| p.spmat_reads).sum()
    }

    /// Bypass events, over all PEs.
    pub fn bypasses(&self) -> u64 {
        self.pes.iter().map(|p| p.bypasses).sum()
    }
}

/// The paper's load-balance efficiency of a run (or of many runs added up): `busy` PE
/// cycles over the `pes` x `cycles` there were. A run of no cycles had nothing to balance:
/// 1.
pub fn load_efficiency(busy: u64, cycles: u64, pes: usize) -> f64 {
    if cycles == 0 {
        1.0
    } else {
        busy as f64 / (cycles as f64 * pes as f64)
    }
}

/// Effective GOP/s of `macs` multiply-accumulates done in `cycles` at `clock_mhz`: two
/// operations each. A run of no cycles did nothing: 0.
pub fn gops(macs: u64, cycles: u64, clock_mhz: f64) -> f64 {
    if cycles == 0 {
        0.0
    } else {
        2.0 * macs as f64 * clock_mhz / cycles as f64 / 1e3
    }
}

/// Levels of the leading-non-zero-detection tree (groups of 4): log4(N), rounded up.
pub fn lnzd_levels(pes: usize) -> u64 {
    let (mut levels, mut span) = (0u64, 1usize);
    while span < pes {
        span *= 4;
        levels += 1;
    }
    levels
}

/// Broadcast columns whose per-PE costs [`schedule`] gathers at once.
const TILE: usize = 32;

/// Times one layer. `active[j]` says whether column j's activation is non-zero (length: the
/// layer's columns; the bias column, if any, is always active).
pub fn layer(view: LayerView, active: &[bool], params: &TimingParams) -> Result<LayerTiming> {
    params.validate()?;
    assert_eq!(active.len(), view.cols(), "one flag per column");
    let walks = walk::all(view, active, params.spmat_width, |_| ());
    let walks: Vec<&PeWalk> = walks.iter().map(|(w, _)| w).collect();
    schedule(view, active, params, &walks)
}

/// [`layer`]'s schedule from the PEs' walks (`walk::all` on the same `active` and Spmat
/// width): the recurrence over the broadcasts, which couples the PEs through the queues.
pub(crate) fn schedule(
    view: LayerView,
    active: &[bool],
    params: &TimingParams,
    walks: &[&PeWalk],
) -> Result<LayerTiming> {
    if params.rules == Rules::Authors {
        return authors_layer(view, active, params, walks);
    }
    let n = view.pes();
    let cap = params.queue_capacity();
    let levels = lnzd_levels(n);
    let drain = params.pipeline_depth as u64 - 1;
    let (mut out, mut pes) = counted(view, params, walks);
    let mut finish = vec![0u64; n]; // first cycle each PE is free
    // The cycle after the last entry issued (padding included): only entries go through the
    // arithmetic pipeline, so only they leave something to drain; an empty slice's cycle
    // does not.
    let mut entry_end = 0u64;
    let mut scanner = levels; // the first broadcast waits for the LNZD tree
    let mut base = 0usize; // broadcasts of the parts before
    for (index, part) in view.parts().iter().enumerate() {
        if index > 0 {
            // Barrier: the next batch's pointers replace this batch's once every PE is done
            // and the pipeline has drained; the LNZD tree then restarts.
            let done = finish
                .iter()
                .copied()
                .max()
                .unwrap_or(0)
                .max(entry_end + drain);
            scanner = scanner.max(done) + levels;
        }
        // Per PE: when each of its last `cap` activations frees its queue slot (the cycle of
        // its last entry: the activation being processed stays at the head of the queue). A
        // part of fewer broadcasts than `cap` fills only that many slots (t % cap = t).
        let first = part.first_col();
        let end = first + part.cols();
        let count = active[first..end].iter().filter(|&&a| a).count();
        // Slot-major, so a broadcast's look at every PE's slot is one contiguous scan.
        let slots = cap.min(count);
        let mut freed = vec![0u64; slots * n];
        // Every PE's costs of the next TILE broadcasts, copied PE by PE into rows of n: the
        // recurrence then reads one contiguous row a broadcast.
        let tile_rows = TILE.min(count);
        let mut costs = vec![0u32; tile_rows * n];
        let mut adjacent = vec![false; tile_rows * n];
        let mut t = 0usize; // broadcasts in this part
        // Every part scans at least one group, even a part of no columns (a layer of none):
        // the scanner loads a group before it can find it empty, as the RTL's does.
        let mut g = first / n;
        loop {
            let lo = (g * n).max(first);
            let hi = ((g + 1) * n).min(end);
            for _ in active[lo.min(hi)..hi].iter().filter(|a| **a) {
                if t.is_multiple_of(TILE) {
                    let rows = TILE.min(count - t);
                    for (k, w) in walks.iter().enumerate() {
                        let from = base + t;
                        for r in 0..rows {
                            costs[r * n + k] = w.costs[from + r];
                            adjacent[r * n + k] = w.adjacent[from + r];
                        }
                    }
                }
                let row = (t % TILE) * n;
                let (cost_row, adjacent_row) = (&costs[row..row + n], &adjacent[row..row + n]);
                // Queue constraint: every PE must be done with activation t - cap, whose slot
                // this one takes (a slot freed in a cycle can be filled in that cycle).
                let earliest = scanner;
                let mut b = earliest;
                let slot = &mut freed[(t % cap) * n..][..n];
                if t >= cap {
                    b = slot.iter().copied().fold(b, u64::max);
                    for (pe, &s) in pes.iter_mut().zip(slot.iter()) {
                        pe.blocking += s.min(b).saturating_sub(earliest);
                    }
                }
                out.stall_cycles += b - earliest;
                out.broadcasts += 1;
                scanner = b + 1;
                for k in 0..n {
                    let e = cost_row[k] as u64;
                    let start = (b + 1).max(finish[k]);
                    let cost = e.max(1);
                    let pe = &mut pes[k];
                    pe.busy += cost;
                    if e > 0 {
                        entry_end = entry_end.max(start + e);
                        if adjacent_row[k] && start == finish[k] {
                            pe.bypasses += 1;
                        }
                    }
                    slot[k] = start + cost - 1;
                    finish[k] = start + cost;
                }
                out.pointer_reads += n as u64;
                t += 1;
            }
            if params.group_advance {
                // Moving past the group, which has no non-zero left.
                scanner += 1;
            }
            out.groups += 1;
            g += 1;
            if g * n >= end {
                break;
            }
        }
        base += count;
    }
    let busy_end = finish.iter().copied().max().unwrap_or(0);
    out.cycles = if out.broadcasts == 0 {
        scanner
    } else {
        scanner.max(busy_end).max(entry_end + drain)
    };
    for pe in &mut pes {
        pe.starved = out.cycles - pe.busy;
    }
    out.pes = pes;
    Ok(out)
}

/// What both schedules count the same, from the walks: entries, Spmat reads,
/// multiply-accumulates, padding, and the lower bound (the busiest PE's entries); every
/// schedule-dependent figure 0.
fn counted(
    view: LayerView,
    params: &TimingParams,
    walks: &[&PeWalk],
) -> (LayerTiming, Vec<PeCounters>) {
    let pes: Vec<PeCounters> = walks
        .iter()
        .map(|w| PeCounters {
            entries: w.entries,
            spmat_reads: w.spmat_reads,
            ..Default::default()
        })
        .collect();
    let out = LayerTiming {
        cycles: 0,
        broadcasts: 0,
        stall_cycles: 0,
        pes: Vec::new(),
        pointer_reads: 0,
        macs: walks.iter().map(|w| w.macs).sum(),
        padding: walks.iter().map(|w| w.padding).sum(),
        batches: view.parts().len(),
        groups: 0,
        // No schedule beats the busiest PE's entries.
        lower_bound: pes.iter().map(|p| p.entries).max().unwrap_or(0),
        unfinished: 0,
        clock_mhz: params.clock_mhz,
    };
    (out, pes)
}

/// [`layer`] under the authors' rules: their schedule (cycles, stalls, busy and blocking
/// cycles, bypasses), with the counts that do not depend on the schedule (entries, padding,
/// multiply-accumulates, Spmat and pointer reads, the lower bound) from this model.
fn authors_layer(
    view: LayerView,
    active: &[bool],
    params: &TimingParams,
    walks: &[&PeWalk],
) -> Result<LayerTiming> {
    let (mut out, mut pes) = counted(view, params, walks);
    // A pointer pair read by every PE for every non-zero of the layer, as this model counts
    // them (their simulator stopping early or not).
    out.pointer_reads = (view.pes() * active.iter().filter(|&&a| a).count()) as u64;
    let runs = crate::authors::layer(view, active, params.fifo_depth);
    out.cycles = runs.iter().map(|r| r.cycles).sum();
    out.broadcasts = runs.iter().map(|r| r.broadcasts).sum();
    out.stall_cycles = runs.iter().map(|r| r.stall_cycles).sum();
    out.groups = runs.iter().map(|r| r.groups).sum();
    out.unfinished = runs.iter().map(|r| r.unfinished).sum();
    for (k, pe) in pes.iter_mut().enumerate() {
        pe.busy = runs.iter().map(|r| r.busy[k]).sum();
        pe.blocking = runs.iter().map(|r| r.blocking[k]).sum();
        pe.bypasses = runs.iter().map(|r| r.bypasses[k]).sum();
        pe.starved = out.cycles.saturating_sub(pe.busy);
    }
    out.pes = pes;
    Ok(out)
}
