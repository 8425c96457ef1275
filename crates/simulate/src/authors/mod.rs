//! The EIE authors' cycle simulator (RalphMao/EIE-simulator at its newest revision, 7ee0029;
//! its C++ last changed in f902f6b), as an option of the timing model (`--timing-rules
//! authors`, docs/timing-model.md "The authors' rules"), and its data files ([`files`]).
//!
//! The schedule is theirs register for register: every cycle first loads every register from
//! the wires of the cycle before (their `update`), then computes the wires from the registers
//! (their `propagate`). Only what decides a cycle count is kept:
//!
//! - the non-zero detector (`nzfetch.cpp`) holds one group of N activations and searches it
//!   from the slot after the one it last took; it pushes the first non-zero into every PE's
//!   queue unless a queue is full, and loads the next group when it finds none, or in the
//!   cycle it pushes slot N - 1. Their control (`actrw.cpp`) presents the input's groups, then
//!   a group holding only the bias's 1 in slot 0, then zeros;
//! - each PE's queue is a ring of D slots, full when `(write + 1) mod D == read` on the
//!   registered positions: it holds D - 1;
//! - the pointer stage (`ptrvec.cpp`) pops the queue's head, reads the column's pointers, and
//!   walks the column's entries, one a cycle; it pops the next column in the cycle of the
//!   last entry, or in the one cycle it holds a column with no entries here;
//! - the Spmat read stage, the three arithmetic stages and the write into the output register
//!   file follow it one cycle each; an entry of code 0 (padding) writes nothing;
//! - `system.cpp` stops at the first count of cycles, 9 at least, at which the control has
//!   presented its last group to the detector and no PE wrote in the cycle before. That can be
//!   before every product is accumulated, or before the last non-zeros are broadcast: their count
//!   is what these rules report (`LayerTiming::unfinished` says what was left).

pub mod files;
pub mod simulator;

use crate::layer::LayerView;

/// Their simulator never reports fewer cycles (`while (!done() || cycles < 9)`).
const MIN_CYCLES: u64 = 9;
/// Cycles from an entry in the pointer stage to the write their stop rule looks at: the Spmat
/// read, arithmetic stages 1, 2 and 3, and the output register file's write enable.
const WRITE_DELAY: usize = 5;

/// What one part (a whole layer, or one column batch) took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartRun {
    /// Cycles, their simulator's count.
    pub cycles: u64,
    /// Activations pushed into the queues.
    pub broadcasts: u64,
    /// Cycles the detector held a non-zero back because a queue was full.
    pub stall_cycles: u64,
    /// Groups the detector moved past.
    pub groups: u64,
    /// Products (real entries) not yet accumulated when their simulator stopped: those in
    /// the pipeline, the rest of the columns in the pointer stages and the queues, and the
    /// non-zero columns of the last group not yet broadcast. 0 when the count covers the
    /// whole layer.
    pub unfinished: u64,
    /// Per PE: cycles the pointer stage walked an entry, plus one for each column with no
    /// entries here (the cycle that pops it); cycles its full queue held the detector;
    /// back-to-back entries of one row.
    pub busy: Vec<u64>,
    /// See `busy`.
    pub blocking: Vec<u64>,
    /// See `busy`.
    pub bypasses: Vec<u64>,
}

/// The order in which the detector meets the part's non-zero activations: group by group,
/// each group's non-zero slots with their local columns.
struct Groups {
    /// (slot, local column) of every non-zero, in order.
    nonzeros: Vec<(u32, u32)>,
    /// Where each group's non-zeros start in `nonzeros`, and one past the last group.
    starts: Vec<usize>,
}

impl Groups {
    /// The groups their control presents for `active` (a part's flags; its last column is
    /// the bias when `bias`): `(inputs - 1) / N + 1` groups of inputs (C's division: one for a
    /// part of none), then the bias's.
    fn new(active: &[bool], n: usize, bias: bool) -> Self {
        let inputs = active.len() - usize::from(bias);
        let input_groups = inputs.saturating_sub(1) / n + 1;
        let mut nonzeros = Vec::new();
        let mut starts = Vec::with_capacity(input_groups + 2);
        for g in 0..input_groups {
            starts.push(nonzeros.len());
            for j in (g * n..((g + 1) * n).min(inputs)).filter(|&j| active[j]) {
                nonzeros.push(((j - g * n) as u32, j as u32));
            }
        }
        if bias {
            starts.push(nonzeros.len());
            nonzeros.push((0, inputs as u32));
        }
        starts.push(nonzeros.len());
        Self { nonzeros, starts }
    }

    fn count(&self) -> usize {
        self.starts.len() - 1
    }
}

/// Every PE's registers, one array per register.
struct Pes {
    /// Activations popped from the queue (the ring's read position, unwrapped).
    popped: Vec<usize>,
    /// The pointer stage holds a column (their `empty` register, negated).
    held: Vec<bool>,
    /// The held column's next entry and one past its last.
    next: Vec<u32>,
    end: Vec<u32>,
    /// The row after the held column's last entry walked (its entries' rows rise by their
    /// relative index plus one), and the cycle and row of the entry last walked, for the
    /// bypass count.
    row: Vec<usize>,
    last: Vec<Option<(u64, usize)>>,
}

/// Runs one part: `active[j]` says whether its local column j is broadcast (the bias column,
/// when the part holds it, always is). `fifo_depth` is their ring's size, at least 2.
pub(crate) fn part(part: &eie_format::PackedLayer, active: &[bool], fifo_depth: usize) -> PartRun {
    let n = part.pes();
    let ring_holds = fifo_depth.max(2) - 1;
    let groups = Groups::new(active, n, part.holds_bias_column());
    let streams = part.streams();
    let mut pe = Pes {
        popped: vec![0; n],
        held: vec![false; n],
        next: vec![0; n],
        end: vec![0; n],
        row: vec![0; n],
        last: vec![None; n],
    };
    let mut out = PartRun {
        cycles: 0,
        broadcasts: 0,
        stall_cycles: 0,
        groups: 0,
        unfinished: 0,
        busy: vec![0; n],
        blocking: vec![0; n],
        bypasses: vec![0; n],
    };
    // Columns pushed, in order: every queue receives the same ones, so a queue is this list
    // and its PE's read position.
    let mut pushed: Vec<u32> = Vec::new();
    // The detector: the group it holds (None: the zeros it starts with and gets after the
    // last group), its next non-zero, and the groups the control has presented.
    let mut held_group: Option<usize> = None;
    let mut cursor = 0usize;
    let mut presented = 0usize;
    // Per cycle modulo WRITE_DELAY: the entries that write (code not 0) every PE walked.
    let mut walked = [0u64; WRITE_DELAY];
    let mut full = vec![false; n];
    loop {
        let c = out.cycles;
        // ---- propagate: the wires of cycle c, from the registers ----
        // The stop rule: the control's state (the last group presented) and the output
        // register file's write enables, which hold what was walked WRITE_DELAY cycles ago.
        let slot_c = c as usize % WRITE_DELAY;
        let writing = walked[slot_c] > 0;
        if presented == groups.count() && !writing && c >= MIN_CYCLES {
            break;
        }
        let written = pushed.len();
        let mut one_full = false;
        for (f, &popped) in full.iter_mut().zip(&pe.popped) {
            *f = written - popped == ring_holds;
            one_full |= *f;
        }
        let found = held_group
            .and_then(|g| (cursor < groups.starts[g + 1]).then(|| groups.nonzeros[cursor]));
        let push = found.filter(|_| !one_full);
        let advance = found.is_none_or(|(slot, _)| slot as usize == n - 1 && !one_full);
        // ---- update: cycle c's registers load, cycle c + 1 begins ----
        if found.is_some() && one_full {
            out.stall_cycles += 1;
            for (b, &f) in out.blocking.iter_mut().zip(&full) {
                *b += u64::from(f);
            }
        }
        let mut writes = 0u64;
        for k in 0..n {
            // The pointer stage: walk an entry of a column with entries here; pop the next
            // column at the last entry, or at once from a column with none.
            let valid = pe.held[k] && pe.next[k] != pe.end[k];
            if valid {
                let e = pe.next[k] as usize;
                writes += u64::from(streams[k].codes()[e] != 0);
                out.busy[k] += 1;
                let row = pe.row[k] + streams[k].z()[e] as usize;
                pe.row[k] = row + 1;
                if c > 0 && pe.last[k] == Some((c - 1, row)) {
                    out.bypasses[k] += 1;
                }
                pe.last[k] = Some((c, row));
                pe.next[k] += 1;
            } else if pe.held[k] {
                out.busy[k] += 1; // the column with no entries here: its pop's cycle
            }
            let read_ptr = !valid || pe.next[k] == pe.end[k];
            if read_ptr {
                let empty = pe.popped[k] == written;
                pe.held[k] = !empty;
                if !empty {
                    let j = pushed[pe.popped[k]] as usize;
                    let ptr = streams[k].ptr();
                    (pe.next[k], pe.end[k], pe.row[k]) = (ptr[j], ptr[j + 1], 0);
                    pe.popped[k] += 1;
                }
            }
        }
        walked[slot_c] = writes;
        if let Some((_, col)) = push {
            pushed.push(col);
            cursor += 1;
            out.broadcasts += 1;
        }
        if advance {
            out.groups += u64::from(held_group.is_some());
            if presented < groups.count() {
                held_group = Some(presented);
                cursor = groups.starts[presented];
                presented += 1;
            } else {
                held_group = None;
            }
        }
        out.cycles += 1;
    }
    // What the last WRITE_DELAY cycles walked is still in the pipeline (the stop rule saw
    // the oldest of them write nothing).
    out.unfinished =
        walked.iter().sum::<u64>() + unfinished(part, &pushed, &pe, &groups, held_group, cursor);
    out
}

/// Entries not yet walked when their simulator stopped that would write (padding does not):
/// the rest of every column in a pointer stage or a queue, and the non-zeros of the held
/// group not yet pushed.
fn unfinished(
    part: &eie_format::PackedLayer,
    pushed: &[u32],
    pe: &Pes,
    groups: &Groups,
    held_group: Option<usize>,
    cursor: usize,
) -> u64 {
    let real = |k: usize, lo: u32, hi: u32| -> u64 {
        let codes = &part.streams()[k].codes()[lo as usize..hi as usize];
        codes.iter().filter(|&&c| c != 0).count() as u64
    };
    let pending: Vec<u32> = match held_group {
        Some(_) => groups.nonzeros[cursor..].iter().map(|&(_, j)| j).collect(),
        None => Vec::new(),
    };
    let mut left = 0u64;
    for (k, s) in part.streams().iter().enumerate() {
        let ptr = s.ptr();
        if pe.held[k] {
            left += real(k, pe.next[k], pe.end[k]);
        }
        for &j in pushed[pe.popped[k]..].iter().chain(&pending) {
            left += real(k, ptr[j as usize], ptr[j as usize + 1]);
        }
    }
    left
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
