//! One walk of a layer's streams, PE by PE: everything the models need from the entries of
//! the broadcast columns, in a single pass that the functional model, the float model and the
//! timing model share. A PE's rows are its own, and each row's entries come in column order
//! within its PE, so the PEs can be walked on several threads with results identical to a
//! serial walk, bit for bit.

use rayon::prelude::*;

use crate::layer::LayerView;

/// Entries of a layer above which its PEs are walked on every core.
const PARALLEL_ENTRIES: usize = 1 << 15;

/// What one PE's walk found that does not depend on the schedule.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeWalk {
    /// Per broadcast column (over the parts, in broadcast order): its entries in this PE,
    /// padding included.
    pub costs: Vec<u32>,
    /// Per broadcast column: its first entry is a real one writing the row that the last
    /// entry of this PE's previous broadcast column wrote (a bypass when the two are
    /// processed back to back). Reset at every part and by a column with no entries here.
    pub adjacent: Vec<bool>,
    /// Entries walked, padding included.
    pub entries: u64,
    /// Spmat lines read: those each column spans, less the one still buffered.
    pub spmat_reads: u64,
    /// Real entries (multiply-accumulates).
    pub macs: u64,
    /// Padding entries.
    pub padding: u64,
}

/// Walks PE `k` over the broadcast columns (`active[j]`, over the whole layer), part by part,
/// calling `visit(j, local_row, code)` for every real entry (padding skipped) in stream order.
#[inline(always)]
fn pe(
    view: LayerView,
    k: usize,
    active: &[bool],
    spmat_width: u32,
    mut visit: impl FnMut(usize, usize, u8),
) -> PeWalk {
    let mut w = PeWalk::default();
    for part in view.parts() {
        let epl = (spmat_width / part.entry_bits()).max(1) as usize;
        let s = &part.streams()[k];
        let (ptr, z, codes) = (s.ptr(), s.z(), s.codes());
        let first = part.first_col();
        let mut line: Option<usize> = None;
        let mut last_row: Option<usize> = None;
        for (j, &on) in active[first..first + part.cols()].iter().enumerate() {
            if !on {
                continue;
            }
            let (lo, hi) = (ptr[j] as usize, ptr[j + 1] as usize);
            w.costs.push((hi - lo) as u32);
            if hi == lo {
                w.adjacent.push(false);
                last_row = None;
                continue;
            }
            let (l0, l1) = (lo / epl, (hi - 1) / epl);
            w.spmat_reads += (l1 - l0 + 1 - usize::from(line == Some(l0))) as u64;
            line = Some(l1);
            let (mut next, mut row, mut real) = (0usize, 0usize, 0u64);
            for (&zi, &c) in z[lo..hi].iter().zip(&codes[lo..hi]) {
                row = next + zi as usize;
                next = row + 1;
                if c != 0 {
                    real += 1;
                    visit(first + j, row, c);
                }
            }
            w.adjacent
                .push(codes[lo] != 0 && last_row == Some(z[lo] as usize));
            last_row = Some(row);
            let e = (hi - lo) as u64;
            w.entries += e;
            w.macs += real;
            w.padding += e - real;
        }
    }
    w
}

/// Walks every PE (on every core when the layer is large), each with a state `init(k)` that
/// `visit(state, j, local_row, code)` updates for its real entries.
pub(crate) fn all<S: Send>(
    view: LayerView,
    active: &[bool],
    spmat_width: u32,
    init: impl Fn(usize) -> S + Sync,
    visit: impl Fn(&mut S, usize, usize, u8) + Sync,
) -> Vec<(PeWalk, S)> {
    let one = |k: usize| {
        let mut state = init(k);
        let w = pe(view, k, active, spmat_width, |j, row, code| {
            visit(&mut state, j, row, code)
        });
        (w, state)
    };
    let entries: usize = view.parts().iter().map(|p| p.entries()).sum();
    if entries >= PARALLEL_ENTRIES && rayon::current_num_threads() > 1 {
        (0..view.pes()).into_par_iter().map(one).collect()
    } else {
        (0..view.pes()).map(one).collect()
    }
}
