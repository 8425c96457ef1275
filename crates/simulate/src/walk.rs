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

/// What a model does with one PE's entries of one broadcast column.
pub(crate) trait Visit {
    /// Column `j` (of the whole layer) begins.
    fn column(&mut self, j: usize);
    /// Its next real entry (padding is not visited): the local row and the code.
    fn entry(&mut self, row: usize, code: u8);
}

/// The timing model's walk needs nothing more.
impl Visit for () {
    #[inline(always)]
    fn column(&mut self, _: usize) {}
    #[inline(always)]
    fn entry(&mut self, _: usize, _: u8) {}
}

/// Entries in `lo..hi` as lines of `epl` entries: the first and the last line.
#[inline(always)]
fn lines(lo: usize, hi: usize, epl: usize, shift: Option<u32>) -> (usize, usize) {
    match shift {
        Some(s) => (lo >> s, (hi - 1) >> s),
        None => (lo / epl, (hi - 1) / epl),
    }
}

/// Walks PE `k` over the broadcast columns (`columns`: per part, its broadcast columns,
/// local), part by part.
fn pe(
    view: LayerView,
    k: usize,
    columns: &[Vec<u32>],
    spmat_width: u32,
    visit: &mut impl Visit,
) -> PeWalk {
    let broadcasts = columns.iter().map(Vec::len).sum();
    let mut w = PeWalk {
        costs: Vec::with_capacity(broadcasts),
        adjacent: Vec::with_capacity(broadcasts),
        ..PeWalk::default()
    };
    for (part, columns) in view.parts().iter().zip(columns) {
        let epl = (spmat_width / part.entry_bits()).max(1) as usize;
        let shift = epl.is_power_of_two().then(|| epl.trailing_zeros());
        let s = &part.streams()[k];
        let (ptr, z, codes) = (s.ptr(), s.z(), s.codes());
        let first = part.first_col();
        let mut line: Option<usize> = None;
        let mut last_row: Option<usize> = None;
        for &j in columns {
            let j = j as usize;
            let (lo, hi) = (ptr[j] as usize, ptr[j + 1] as usize);
            w.costs.push((hi - lo) as u32);
            if hi == lo {
                w.adjacent.push(false);
                last_row = None;
                continue;
            }
            let (l0, l1) = lines(lo, hi, epl, shift);
            w.spmat_reads += (l1 - l0 + 1 - usize::from(line == Some(l0))) as u64;
            line = Some(l1);
            let (zs, cs) = (&z[lo..hi], &codes[lo..hi]);
            visit.column(first + j);
            let (mut next, mut row, mut real) = (0usize, 0usize, 0usize);
            for (&zi, &c) in zs.iter().zip(cs) {
                row = next + zi as usize;
                next = row + 1;
                if c != 0 {
                    real += 1;
                    visit.entry(row, c);
                }
            }
            let e = hi - lo;
            w.adjacent
                .push(cs[0] != 0 && last_row == Some(zs[0] as usize));
            last_row = Some(row);
            w.entries += e as u64;
            w.macs += real as u64;
            w.padding += (e - real) as u64;
        }
    }
    w
}

/// Walks every PE (on every core when the layer is large), each with a visitor `init(k)`.
pub(crate) fn all<V: Visit + Send>(
    view: LayerView,
    active: &[bool],
    spmat_width: u32,
    init: impl Fn(usize) -> V + Sync,
) -> Vec<(PeWalk, V)> {
    // Every PE walks the same columns: found once.
    let columns: Vec<Vec<u32>> = view
        .parts()
        .iter()
        .map(|p| {
            let first = p.first_col();
            (0..p.cols() as u32)
                .filter(|&j| active[first + j as usize])
                .collect()
        })
        .collect();
    let one = |k: usize| {
        let mut v = init(k);
        let w = pe(view, k, &columns, spmat_width, &mut v);
        (w, v)
    };
    let entries: usize = view.parts().iter().map(|p| p.entries()).sum();
    if entries >= PARALLEL_ENTRIES && rayon::current_num_threads() > 1 {
        (0..view.pes()).into_par_iter().map(one).collect()
    } else {
        (0..view.pes()).map(one).collect()
    }
}
