//! The action counts of one run of one layer: what the energy model multiplies by the
//! table. Every count comes from the timing model's counters or from the packed layer itself.

use eie_images::{Capacity, LayerBytes, pointer_bytes, spmat_bytes};
use eie_simulate::{LayerTiming, LayerView, timing::lnzd_levels};
use serde::Serialize;

use crate::table::paper::RF_ENTRIES;

/// What one run of a layer did, counted (docs/energy.md, "Counters").
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Cycles of the run.
    pub cycles: u64,
    /// Processing elements.
    pub pes: u64,
    /// The clock, MHz.
    pub clock_mhz: f64,
    /// Spmat SRAM lines read, over all PEs.
    pub spmat_lines: u64,
    /// Width of a Spmat line, bits.
    pub spmat_width: u32,
    /// Pointer-pair reads, over all PEs (one per PE per broadcast).
    pub pointer_reads: u64,
    /// Real entries processed: multiply-accumulates.
    pub macs: u64,
    /// Padding entries processed (decoded, nothing multiplied or written).
    pub padding: u64,
    /// Accumulations served by the bypass (no accumulator read).
    pub bypasses: u64,
    /// Activations broadcast.
    pub broadcasts: u64,
    /// Steps of the leading-non-zero detection: a broadcast each, and one per group of N
    /// activations moved past.
    pub lnzd_steps: u64,
    /// Nodes of the detection tree (21 for 64 PEs).
    pub lnzd_nodes: u64,
    /// 16-bit activation-SRAM reads (inputs longer than the register files hold; a folded
    /// bias's constant input is not one).
    pub act_sram_reads: u64,
    /// 16-bit activation-SRAM writes (outputs longer than the register files hold).
    pub act_sram_writes: u64,
    /// Bytes fetched from DRAM: the part of each PE's images (all its column batches) beyond
    /// its SRAMs.
    pub dram_bytes: u64,
}

/// Nodes of the leading-non-zero-detection tree of `pes` PEs: groups of 4 at every level up
/// to the root (16 + 4 + 1 for 64).
pub fn lnzd_nodes(pes: usize) -> u64 {
    let mut nodes = 0u64;
    let mut width = pes as u64;
    for _ in 0..lnzd_levels(pes) {
        width = width.div_ceil(4);
        nodes += width;
    }
    nodes
}

impl Counts {
    /// The counts of `timing`, a run of `view` with `spmat_width`-bit Spmat lines; images with
    /// `pointer_bits`-bit pointers held in SRAMs of `capacity` (what does not fit is fetched
    /// from DRAM on every run).
    pub fn of(
        view: LayerView,
        timing: &LayerTiming,
        spmat_width: u32,
        pointer_bits: u8,
        capacity: &Capacity,
    ) -> Self {
        let pes = view.pes();
        let held = RF_ENTRIES * pes as u64;
        let (inputs, rows) = (view.inputs() as u64, view.rows() as u64);
        // A PE holds every column batch of the layer (the batches restart the pointers'
        // values, not their number): what all of them need beyond its SRAMs comes from DRAM.
        let pointers: u64 = view
            .parts()
            .iter()
            .map(|part| pointer_bytes(part, pointer_bits))
            .sum();
        let dram_bytes = (0..pes)
            .map(|pe| {
                let spmat: u64 = view.parts().iter().map(|part| spmat_bytes(part, pe)).sum();
                spmat.saturating_sub(capacity.spmat_bytes)
                    + pointers.saturating_sub(capacity.pointer_bytes)
            })
            .sum();
        Self {
            cycles: timing.cycles,
            pes: pes as u64,
            clock_mhz: timing.clock_mhz,
            spmat_lines: timing.spmat_reads(),
            spmat_width,
            pointer_reads: timing.pointer_reads,
            macs: timing.macs,
            padding: timing.padding,
            bypasses: timing.bypasses(),
            broadcasts: timing.broadcasts,
            lnzd_steps: timing.broadcasts + timing.groups,
            lnzd_nodes: lnzd_nodes(pes),
            // The bias column's constant 1 is not an activation read from anywhere.
            act_sram_reads: if inputs > held { inputs } else { 0 },
            act_sram_writes: if rows > held { rows } else { 0 },
            dram_bytes,
        }
    }
}

impl Counts {
    /// The counts of this run and `other`, a run of the same layer, together: the energy of
    /// the sum is the sum of the energies (every term is linear in the counts).
    pub fn plus(&self, other: &Counts) -> Counts {
        Counts {
            cycles: self.cycles + other.cycles,
            spmat_lines: self.spmat_lines + other.spmat_lines,
            pointer_reads: self.pointer_reads + other.pointer_reads,
            macs: self.macs + other.macs,
            padding: self.padding + other.padding,
            bypasses: self.bypasses + other.bypasses,
            broadcasts: self.broadcasts + other.broadcasts,
            lnzd_steps: self.lnzd_steps + other.lnzd_steps,
            act_sram_reads: self.act_sram_reads + other.act_sram_reads,
            act_sram_writes: self.act_sram_writes + other.act_sram_writes,
            dram_bytes: self.dram_bytes + other.dram_bytes,
            ..*self
        }
    }
}

/// What the savings breakdown needs of a layer besides its run (docs/energy.md, "Savings").
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Facts {
    /// Weights of the dense layer (rows x inputs; a folded bias is not a weight).
    pub dense_weights: u64,
    /// Entries stored, padding included.
    pub entries: u64,
    /// Bits of a code.
    pub code_bits: u8,
    /// Bits of the layer's images: Spmat, pointers and codebook.
    pub image_bits: u64,
    /// Columns (a folded bias column included).
    pub cols: u64,
    /// Columns broadcast in the run (non-zero activations, the bias column included).
    pub broadcast_cols: u64,
}

impl Facts {
    /// The facts of `view` with `pointer_bits`-bit pointers, run as `timing`.
    pub fn of(view: LayerView, timing: &LayerTiming, pointer_bits: u8) -> Self {
        Self::of_runs(view, pointer_bits, 1, timing.broadcasts)
    }

    /// The facts of `runs` runs of `view` that broadcast `broadcasts` columns in all: every
    /// run fetches the layer's weights again.
    pub fn of_runs(view: LayerView, pointer_bits: u8, runs: u64, broadcasts: u64) -> Self {
        let bytes = view
            .parts()
            .iter()
            .map(|p| LayerBytes::of(p, pointer_bits))
            .map(|b| b.total())
            .sum::<u64>();
        let entries: u64 = view.parts().iter().map(|p| p.entries() as u64).sum();
        Self {
            dense_weights: (view.rows() * view.inputs()) as u64 * runs,
            entries: entries * runs,
            code_bits: view.parts()[0].code_bits(),
            image_bits: bytes * 8 * runs,
            cols: view.cols() as u64 * runs,
            broadcast_cols: broadcasts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use eie_format::{CodeMatrix, Codebook, PackedLayer};
    use eie_simulate::{TimingParams, timing};

    /// A layer small enough to count by hand: 4 rows x 4 columns on 2 PEs (rows 0, 2 on PE 0;
    /// 1, 3 on PE 1), 2-bit relative indices.
    ///
    /// ```text
    ///        c0 c1 c2 c3
    ///   r0 [ 1  0  0  0 ]
    ///   r1 [ 2  0  0  3 ]
    ///   r2 [ 0  0  0  0 ]
    ///   r3 [ 0  1  0  0 ]
    /// ```
    #[test]
    fn a_small_layer_counted_by_hand() {
        #[rustfmt::skip]
        let codes = vec![
            1, 0, 0, 0,
            2, 0, 0, 3,
            0, 0, 0, 0,
            0, 1, 0, 0,
        ];
        let m = CodeMatrix::new(4, 4, codes).unwrap();
        let book = Codebook::new(2, &[0.5, 1.0, 1.5]).unwrap();
        let layer = PackedLayer::encode("w", &m, book, 2, 2).unwrap();
        let view = LayerView::new(std::slice::from_ref(&layer));
        // Columns 0, 1, 3 non-zero; column 2 zero.
        let active = [true, true, false, true];
        let params = TimingParams::default();
        let t = timing::layer(view, &active, &params).unwrap();
        let c = Counts::of(view, &t, 64, 16, &Capacity::default());
        assert_eq!(c.broadcasts, 3);
        assert_eq!(
            c.pointer_reads,
            3 * 2,
            "one pointer pair per PE per broadcast"
        );
        assert_eq!(c.macs, 4, "the non-zeros of columns 0, 1, 3");
        assert_eq!(c.padding, 0);
        // Two groups of two columns; a step per broadcast and per group.
        assert_eq!(c.lnzd_steps, 3 + 2);
        assert_eq!(c.lnzd_nodes, 1);
        assert_eq!(
            (c.act_sram_reads, c.act_sram_writes, c.dram_bytes),
            (0, 0, 0)
        );
        // PE 0 holds 1 entry (r0 c0), PE 1 three (r1 c0, r3 c1, r1 c3): a line each, once.
        assert_eq!(c.spmat_lines, 1 + 1);
        // With 8-byte Spmat SRAMs and 4-byte pointer SRAMs nothing of the 8-byte Spmat lines
        // overflows, but 5 16-bit pointers (10 bytes) are 6 bytes over on each PE.
        let tiny = Capacity {
            spmat_bytes: 8,
            pointer_bytes: 4,
        };
        assert_eq!(Counts::of(view, &t, 64, 16, &tiny).dram_bytes, 2 * 6);
        // In column batches of 2, each PE holds 3 + 3 pointers (12 bytes, 8 over), and PE 1's
        // entries now fill a Spmat line in each batch (16 bytes, 8 over): 8 + 16.
        let parts = layer.split_columns(2).unwrap();
        let batched = LayerView::new(&parts);
        let t = timing::layer(batched, &active, &params).unwrap();
        assert_eq!(Counts::of(batched, &t, 64, 16, &tiny).dram_bytes, 8 + 16);
    }

    #[test]
    fn the_detection_tree_has_the_papers_nodes() {
        assert_eq!(lnzd_nodes(64), 21);
        assert_eq!(lnzd_nodes(4), 1);
        assert_eq!(lnzd_nodes(1), 0);
        assert_eq!(lnzd_nodes(256), 64 + 16 + 4 + 1);
        assert_eq!(lnzd_nodes(8), 2 + 1);
    }
}
