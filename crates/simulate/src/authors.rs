//! The EIE authors' cycle simulator's rules (RalphMao/EIE-simulator), as an option of the
//! timing model (`--timing-rules authors`, docs/timing-model.md "The authors' rules"): a
//! cycle-stepped model of its five stages, written from its documented behaviour, so that a
//! queue-depth sweep (the paper's Figure 8) can be compared with theirs.
//!
//! Every stage has registers, and wires computed from the registers alone; a cycle loads every
//! register from the wires of the cycle before (their simulator's update/propagate split):
//!
//! - the leading-non-zero detector holds one group of N activations and the slot it last
//!   took; it searches the slots after it (from slot 0 when it last took slot N - 1), pushes
//!   the first non-zero into every PE's queue unless any queue is full, and advances to the
//!   next group when it finds nothing, or in the cycle it pushes slot N - 1;
//! - each PE's queue is a ring of D slots, full when `(write + 1) mod D == read`, on the
//!   registered positions: it holds D - 1 activations, and a pop frees no slot in its cycle;
//! - the pointer stage holds one column more: it takes the queue's head whenever its column
//!   has no entries in this PE (or it holds none) or the Spmat stage takes its column;
//! - the Spmat stage issues one entry per cycle, and takes the pointer stage's column when it
//!   has none or issues its column's last entry;
//! - three arithmetic stages, then the write into the output register file.
//!
//! Their simulator stops at the first cycle in which the detector has passed the last group
//! and no PE wrote in the cycle before, which can be while results are still in flight; this
//! model counts to the first such moment after which nothing is in flight, the count their
//! simulator reported on the cases these rules were matched against (and at least 9 cycles,
//! their minimum).

use crate::layer::LayerView;

/// Their simulator never reports fewer cycles.
const MIN_CYCLES: u64 = 9;

/// What one part (a whole layer, or one column batch) took.
pub(crate) struct PartRun {
    /// Cycles, their simulator's count.
    pub cycles: u64,
    /// Activations pushed into the queues.
    pub broadcasts: u64,
    /// Cycles the detector held a non-zero back because a queue was full.
    pub stall_cycles: u64,
    /// Group advances.
    pub groups: u64,
    /// Per PE: cycles the Spmat stage issued an entry, plus one for each activation whose
    /// slice is empty (the pointer stage's cycle); cycles its full queue held the detector;
    /// back-to-back writes of one row.
    pub busy: Vec<u64>,
    /// See `busy`.
    pub blocking: Vec<u64>,
    /// See `busy`.
    pub bypasses: Vec<u64>,
}

/// One PE's registers.
#[derive(Clone, Default)]
struct Pe {
    // The ring queue of local columns: a ring of D slots holds D - 1, so it is full at
    // D - 1 (held as a deque: memory for what it holds, not for D slots per PE).
    queue: std::collections::VecDeque<usize>,
    // The pointer stage's column, if it holds one.
    ptr_col: Option<usize>,
    // The Spmat stage: the column's next entry and last entry, if it holds a column.
    sp: Option<(usize, usize)>,
    // The three arithmetic stages' valid flags, and the row each holds.
    arith: [Option<usize>; 3],
    // A result written in the cycle before (the output register file's write enable).
    wrote: bool,
}

/// One part's fixed facts: its streams, each entry's local row, the queue depth.
struct Part<'a> {
    part: &'a eie_format::PackedLayer,
    /// Per PE, the local row of every entry, for the bypass count.
    rows: Vec<Vec<usize>>,
    depth: usize,
}

/// What one PE's registers load from in a cycle, besides its own registers.
struct PeWires {
    /// The pointer stage's column has entries in this PE.
    ptr_valid: bool,
    /// The Spmat stage takes a column (it holds none or issues its last entry).
    sp_read: bool,
    /// The column the detector pushes into every queue, if it pushes.
    push: Option<usize>,
}

impl<'a> Part<'a> {
    fn new(part: &'a eie_format::PackedLayer, fifo_depth: usize) -> Self {
        let cols = part.cols();
        let rows = part
            .streams()
            .iter()
            .map(|s| {
                let mut rows = vec![0usize; s.codes().len()];
                for j in 0..cols {
                    let mut next = 0usize;
                    for (e, row) in rows
                        .iter_mut()
                        .enumerate()
                        .take(s.ptr()[j + 1] as usize)
                        .skip(s.ptr()[j] as usize)
                    {
                        *row = next + s.z()[e] as usize;
                        next = *row + 1;
                    }
                }
                rows
            })
            .collect();
        Self {
            part,
            rows,
            depth: fifo_depth.max(2),
        }
    }

    /// PE k's entries of local column j: first and one past the last.
    fn ptr(&self, k: usize, j: usize) -> (usize, usize) {
        let p = self.part.streams()[k].ptr();
        (p[j] as usize, p[j + 1] as usize)
    }

    /// PE k's wires from its registers (`push`: the detector's).
    fn wires(&self, k: usize, p: &Pe, push: Option<usize>) -> PeWires {
        PeWires {
            ptr_valid: p
                .ptr_col
                .is_some_and(|j| self.ptr(k, j).0 != self.ptr(k, j).1),
            sp_read: p.sp.is_none_or(|(e, last)| e == last),
            push,
        }
    }

    /// One cycle of PE k: every register loaded from the wires, its counters in `out`.
    fn clock(
        &self,
        k: usize,
        p: &mut Pe,
        w: &PeWires,
        last_issue: &mut Option<(u64, usize)>,
        out: &mut PartRun,
    ) {
        // output write, then the arithmetic stages shift
        p.wrote = p.arith[2].is_some();
        p.arith = [p.sp.map(|(e, _)| self.rows[k][e]), p.arith[0], p.arith[1]];
        if let Some((e, _)) = p.sp {
            out.busy[k] += 1;
            let row = self.rows[k][e];
            if out.cycles > 0 && *last_issue == Some((out.cycles - 1, row)) {
                out.bypasses[k] += 1;
            }
            *last_issue = Some((out.cycles, row));
        }
        // the Spmat stage: next entry, or the pointer stage's column
        let next_sp = match p.sp {
            Some((e, last)) if e < last => Some((e + 1, last)),
            _ => None,
        };
        p.sp = if w.sp_read {
            p.ptr_col
                .filter(|_| w.ptr_valid)
                .map(|j| (self.ptr(k, j).0, self.ptr(k, j).1 - 1))
        } else {
            next_sp
        };
        // the pointer stage takes the queue's head (the queue pops) when its column is
        // invalid or the Spmat stage took it
        if !w.ptr_valid || w.sp_read {
            if p.ptr_col
                .is_some_and(|j| self.ptr(k, j).0 == self.ptr(k, j).1)
            {
                out.busy[k] += 1; // the empty slice's cycle
            }
            p.ptr_col = p.queue.pop_front();
        }
        if let Some(col) = w.push {
            p.queue.push_back(col);
        }
    }
}

/// Runs one part: `active[j]` says whether its local column j is broadcast.
pub(crate) fn part(part: &eie_format::PackedLayer, active: &[bool], fifo_depth: usize) -> PartRun {
    let n = part.pes();
    let ctx = Part::new(part, fifo_depth);
    let depth = ctx.depth;
    let groups = part.cols().div_ceil(n);
    let mut pes = vec![Pe::default(); n];
    let mut out = PartRun {
        cycles: 0,
        broadcasts: 0,
        stall_cycles: 0,
        groups: 0,
        busy: vec![0; n],
        blocking: vec![0; n],
        bypasses: vec![0; n],
    };
    // The detector: the group it holds (None: the empty group it starts with, and what it
    // holds after the last), the slot it last took, and the next group the control presents.
    let mut held: Option<usize> = None;
    let mut last_slot = 0usize;
    let mut presented = 0usize;
    // The control has presented its last group (it then presents zeros): true from the
    // cycle the detector loads the last group.
    let mut passed_last = groups == 0;
    let mut flagged = false;
    // Per PE: the cycle and row of the entry last issued.
    let mut last_issue: Vec<Option<(u64, usize)>> = vec![None; n];
    loop {
        // ---- wires, from the registers ----
        let full: Vec<bool> = pes.iter().map(|p| p.queue.len() + 1 == depth).collect();
        let one_full = full.iter().any(|&f| f);
        let found = held.and_then(|g| {
            let from = if last_slot == n - 1 { 0 } else { last_slot + 1 };
            (from..n).find(|&s| active.get(g * n + s).copied().unwrap_or(false))
        });
        let slot = found.unwrap_or(n - 1);
        let push = (found.is_some() && !one_full)
            .then(|| held.expect("a push comes from a group") * n + slot);
        let advance = found.is_none() || (slot == n - 1 && !one_full);
        let wires: Vec<PeWires> = pes
            .iter()
            .enumerate()
            .map(|(k, p)| ctx.wires(k, p, push))
            .collect();
        let in_flight = found.is_some()
            || pes.iter().zip(&wires).any(|(p, w)| {
                !p.queue.is_empty()
                    || w.ptr_valid
                    || p.sp.is_some()
                    || p.arith.iter().any(Option::is_some)
            });
        let complete = passed_last && !pes.iter().any(|p| p.wrote);
        flagged |= complete;
        if flagged && !in_flight && out.cycles >= MIN_CYCLES {
            break;
        }
        // ---- one cycle: every register from the wires ----
        if found.is_some() && one_full {
            out.stall_cycles += 1;
            for (b, &f) in out.blocking.iter_mut().zip(&full) {
                *b += u64::from(f);
            }
        }
        for (k, p) in pes.iter_mut().enumerate() {
            ctx.clock(k, p, &wires[k], &mut last_issue[k], &mut out);
        }
        out.broadcasts += u64::from(push.is_some());
        if found.is_none() || !one_full {
            last_slot = slot;
        }
        if advance {
            out.groups += u64::from(held.is_some());
            if presented < groups {
                held = Some(presented);
                presented += 1;
            } else {
                held = None;
            }
            passed_last = presented == groups;
        }
        out.cycles += 1;
    }
    out
}

/// Runs a layer part by part (their simulator has no column batches: each part runs as a
/// layer of its own, one after another).
pub(crate) fn layer(view: LayerView, active: &[bool], fifo_depth: usize) -> Vec<PartRun> {
    view.parts()
        .iter()
        .map(|p| {
            let first = p.first_col();
            part(p, &active[first..first + p.cols()], fifo_depth)
        })
        .collect()
}
