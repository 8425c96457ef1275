use eie_format::{Bundle, BundleMeta, Codebook, PackedLayer, SourceInfo, SparseCodes};
use eie_images::render;
use proptest::prelude::*;

use crate::fixed::{from_q16, quantize};
use crate::timing::TimingParams;
use crate::{Arith, LayerView, float, functional, reference, timing, workload};

/// The PE counts every case runs through.
const PE_COUNTS: [usize; 6] = [1, 2, 3, 4, 8, 64];

fn bundle(layers: Vec<PackedLayer>) -> Bundle {
    let meta = BundleMeta {
        tool_version: "test".into(),
        source: SourceInfo::default(),
        pointer_bits: 32,
        settings: Default::default(),
    };
    Bundle::new(meta, layers).unwrap()
}

/// The tester: one layer through the functional model (whole, and as column batches) and the
/// reference (from the rendered images), bit for bit, and through the timing model (its
/// lower bound), for every PE count.
#[allow(clippy::too_many_arguments)]
fn check(
    codes: &SparseCodes,
    book: &Codebook,
    index_bits: u8,
    bias: bool,
    input: &[i16],
    f_in: u8,
    f_out: u8,
    arith: Arith,
) {
    for pes in PE_COUNTS {
        let ctx = format!(
            "{}x{} N={pes} index_bits={index_bits} acc={} bias={bias}",
            codes.rows(),
            codes.cols(),
            arith.acc_bits
        );
        let mut layer =
            PackedLayer::encode_sparse("t", codes, book.clone(), pes, index_bits).unwrap();
        if bias {
            layer = layer.with_bias("t.bias").unwrap();
        }
        let whole = bundle(vec![layer.clone()]);
        let view = LayerView::new(whole.layers());
        let relu = pes % 2 == 0; // both write-back paths
        let got = functional::layer(view, input, f_in, f_out, arith, relu).unwrap();
        let refs = reference::decode(&render(&whole).unwrap());
        let (want, want_acc) = reference::layer(&refs[0], input, f_in, f_out, arith.acc_bits, relu);
        assert_eq!(got.outputs, want, "{ctx}: outputs");
        assert_eq!(got.accumulators, want_acc, "{ctx}: accumulators");
        let compiled = functional::Compiled::new(view);
        assert_eq!(
            compiled.run(input, f_in, f_out, arith, relu).unwrap(),
            want,
            "{ctx}: compiled"
        );

        // The same layer as column batches: the same results, and the reference agrees.
        for batch in [1usize, 5] {
            let parts = bundle(layer.clone().split_columns(batch).unwrap());
            let split = functional::layer(
                LayerView::new(parts.layers()),
                input,
                f_in,
                f_out,
                arith,
                relu,
            )
            .unwrap();
            assert_eq!(split, got, "{ctx}: batches of {batch}");
            let compiled = functional::Compiled::new(LayerView::new(parts.layers()));
            assert_eq!(
                compiled.run(input, f_in, f_out, arith, relu).unwrap(),
                want,
                "{ctx}: batches of {batch}, compiled"
            );
            let refs = reference::decode(&render(&parts).unwrap());
            assert_eq!(
                reference::layer(&refs[0], input, f_in, f_out, arith.acc_bits, relu).0,
                want,
                "{ctx}: batches of {batch}, reference"
            );
        }

        // Timing: never below the busiest PE's entries; counters add up.
        let mut active: Vec<bool> = input.iter().map(|&a| a != 0).collect();
        if bias {
            active.push(true);
        }
        let t = timing::layer(view, &active, &TimingParams::default()).unwrap();
        assert!(
            t.cycles >= t.lower_bound,
            "{ctx}: {} < {}",
            t.cycles,
            t.lower_bound
        );
        assert_eq!(
            t.broadcasts,
            active.iter().filter(|&&a| a).count() as u64,
            "{ctx}"
        );
        assert_eq!(
            t.macs,
            got.products.iter().map(|&p| p as u64).sum::<u64>(),
            "{ctx}: MACs are the functional model's products"
        );
        for pe in &t.pes {
            assert_eq!(pe.busy + pe.starved, t.cycles, "{ctx}");
        }
        // The authors' rules: each non-zero broadcast at most once (their simulator can stop
        // before the last), one entry a PE a cycle, so every result left unwritten is
        // counted: cycles + unfinished reach the busiest PE's real entries.
        let authors = TimingParams {
            rules: crate::Rules::Authors,
            ..Default::default()
        };
        let a = timing::layer(view, &active, &authors).unwrap();
        assert!(a.broadcasts <= t.broadcasts, "{ctx}: authors' rules");
        assert_eq!(a.macs, t.macs, "{ctx}: authors' rules");
        // Parts run one after another: the sum of each part's busiest PE.
        let active = &active;
        let real: u64 = view
            .parts()
            .iter()
            .map(|p| {
                let first = p.first_col();
                p.streams()
                    .iter()
                    .map(|s| {
                        (0..p.cols())
                            .filter(|&j| active[first + j])
                            .flat_map(|j| &s.codes()[s.ptr()[j] as usize..s.ptr()[j + 1] as usize])
                            .filter(|&&c| c != 0)
                            .count() as u64
                    })
                    .max()
                    .unwrap_or(0)
            })
            .sum();
        assert!(
            a.cycles + a.unfinished >= real,
            "{ctx}: authors' rules, {} cycles + {} unfinished < {real}",
            a.cycles,
            a.unfinished
        );
        assert!(a.unfinished <= a.macs, "{ctx}: authors' rules");
        for pe in &a.pes {
            assert_eq!(pe.busy + pe.starved, a.cycles, "{ctx}: authors' rules");
        }
    }
}

fn random_codes(
    rows: usize,
    cols: usize,
    density: f64,
    code_bits: u8,
    seed: u64,
) -> (SparseCodes, Codebook) {
    workload::random_layer(rows, cols, density, code_bits, seed)
}

#[test]
fn functional_equals_reference_through_every_pe_count() {
    for (rows, cols, density, act, seed) in [
        (70, 30, 0.2, 0.5, 1),
        (16, 8, 0.5, 1.0, 2),
        (3, 40, 0.9, 0.3, 3),
        (130, 5, 0.05, 1.0, 4),
    ] {
        let (codes, book) = random_codes(rows, cols, density, 4, seed);
        for bias in [false, true] {
            let inputs = cols - usize::from(bias);
            let input = workload::random_activations(inputs, act, seed + 10);
            for acc_bits in [16, 24, 32, 48] {
                check(
                    &codes,
                    &book,
                    4,
                    bias,
                    &input,
                    14,
                    10,
                    Arith {
                        acc_bits,
                        relu_last: false,
                    },
                );
            }
            check(&codes, &book, 1, bias, &input, 12, 14, Arith::default());
        }
    }
}

#[test]
fn saturation_limits_agree() {
    // Extreme codebook values and activations: products near 2^30, sums far beyond 16 bits.
    let values = [-2.0f32, 1.9999, -1e-5, 3e-5];
    let book = Codebook::new(2, &values[..3]).unwrap();
    let positions: Vec<u64> = (0..60).collect();
    let code_of = |i: u64| [1u8, 2, 1, 3, 2][i as usize % 5];
    let codes = SparseCodes::new(
        6,
        10,
        positions.clone(),
        positions.iter().map(|&i| code_of(i)).collect(),
    )
    .unwrap();
    for input in [
        vec![i16::MAX; 10],
        vec![i16::MIN; 10],
        (0..10)
            .map(|j| if j % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect(),
    ] {
        for acc_bits in [16, 18, 32, 62] {
            check(
                &codes,
                &book,
                2,
                false,
                &input,
                0,
                0,
                Arith {
                    acc_bits,
                    relu_last: false,
                },
            );
            check(
                &codes,
                &book,
                2,
                true,
                &input[..9],
                14,
                14,
                Arith {
                    acc_bits,
                    relu_last: false,
                },
            );
        }
    }
}

#[test]
#[allow(clippy::needless_range_loop)] // rows index several parallel arrays
fn fixed_point_stays_within_the_derived_bound() {
    // Three chained layers, formats from calibration, a wide accumulator (no saturation).
    let shapes = [(40, 30), (20, 40), (10, 20)];
    let mut layers = Vec::new();
    for (i, &(rows, cols)) in shapes.iter().enumerate() {
        let (codes, book) = random_codes(rows, cols + 1, 0.3, 4, 100 + i as u64);
        layers.push(
            PackedLayer::encode_sparse(format!("l{i}"), &codes, book, 4, 4)
                .unwrap()
                .with_bias(format!("b{i}"))
                .unwrap(),
        );
    }
    let b = bundle(layers);
    let views = LayerView::all(&b);
    crate::check_chain(&views).unwrap();
    let arith = Arith {
        acc_bits: 48,
        relu_last: false,
    };
    let guard = arith.guard_bits() as i32;
    for seed in 0..5 {
        let x: Vec<f32> = workload::random_activations(30, 0.7, seed)
            .iter()
            .map(|&q| from_q16(q, 14) * 0.9)
            .collect();
        let fracs = float::calibrate(&views, std::slice::from_ref(&x), false);
        let mut a = quantize(&x, fracs[0]).unwrap();
        let mut xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        // Input error bound: quantization.
        let mut d: Vec<f64> = vec![(-(fracs[0] as f64 + 1.0)).exp2(); 30];
        for (l, view) in views.iter().enumerate() {
            let relu = l + 1 < views.len();
            let (f_in, f_out) = (fracs[l], fracs[l + 1]);
            let out = functional::layer(*view, &a, f_in, f_out, arith, relu).unwrap();
            let xin: Vec<f32> = xf.iter().map(|&v| v as f32).collect();
            let y = float::layer(*view, &xin, relu);
            let dense = view.parts()[0].decode();
            let values = view.codebook().values();
            let e_w = view.codebook().max_fixed_error();
            let f_acc = f_out as i32 + guard;
            let shifted = f_in as i32 + view.codebook().frac_bits() as i32 > f_acc;
            let e_p = if shifted {
                (-(f_acc as f64 + 1.0)).exp2()
            } else {
                0.0
            };
            let e_o = (-(f_out as f64 + 1.0)).exp2();
            let mut next_d = Vec::new();
            for i in 0..view.rows() {
                let mut bound = e_o + out.products[i] as f64 * e_p;
                for j in 0..view.cols() {
                    let c = dense.get(i, j);
                    if c == 0 {
                        continue;
                    }
                    let (dj, aj) = if j < view.inputs() {
                        (d[j], from_q16(a[j], f_in).abs() as f64)
                    } else {
                        (0.0, 1.0)
                    };
                    bound += (values[c as usize] as f64).abs() * dj + aj * e_w;
                }
                let got = from_q16(out.outputs[i], f_out) as f64;
                assert!(
                    (got - y[i]).abs() <= bound * (1.0 + 1e-9),
                    "seed {seed} layer {l} row {i}: |{got} - {}| > {bound}",
                    y[i]
                );
                next_d.push(bound);
            }
            d = next_d;
            a = out.outputs;
            xf = y;
        }
    }
}

#[test]
fn timing_by_hand() {
    // One PE, four columns with 2, 0, 3 and 1 entries, all active (see docs/timing-model.md).
    let book = Codebook::new(4, &[0.5]).unwrap();
    let codes = SparseCodes::new(3, 4, vec![0, 2, 3, 6, 10, 11], vec![1; 6]).unwrap();
    // Column entries: col 0 rows 0 and 2? positions 0 (0,0), 2 (0,2), 3 (0,3), 6 (1,2),
    // 10 (2,2), 11 (2,3): col 0: 1, col 1: 0, col 2: 3, col 3: 2.
    let layer = PackedLayer::encode_sparse("h", &codes, book, 1, 4).unwrap();
    let b = bundle(vec![layer]);
    let view = LayerView::new(b.layers());
    let t = timing::layer(view, &[true; 4], &TimingParams::default()).unwrap();
    // scanner 0: b=0, PE 1..2 (1 entry); advance -> 2. b=2, PE 3..4 (empty: 1 cycle);
    // -> 4. b=4, PE 5..8 (3); -> 6. b=6, PE 8..10 (2); scanner 8. Drain 3: 10 + 3 = 13.
    assert_eq!(t.cycles, 13);
    assert_eq!(t.pes[0].busy, 1 + 1 + 3 + 2);
    assert_eq!(t.lower_bound, 6);
    assert_eq!(
        (t.broadcasts, t.pointer_reads, t.macs, t.stall_cycles),
        (4, 4, 6, 0)
    );
    // One 64-bit line holds all six 8-bit entries: one read.
    assert_eq!(t.spmat_reads(), 1);
    let narrow = TimingParams {
        spmat_width: 8,
        ..Default::default()
    };
    assert_eq!(
        timing::layer(view, &[true; 4], &narrow)
            .unwrap()
            .spmat_reads(),
        6
    );
    // Without the group-advance cycle: broadcasts every cycle, the PE is the bottleneck.
    let fast = TimingParams {
        group_advance: false,
        ..Default::default()
    };
    let t = timing::layer(view, &[true; 4], &fast).unwrap();
    // b=0 PE 1..2; b=1 PE 2..3; b=2 PE 3..6; b=3 PE 6..8; 8 + 3 = 11.
    assert_eq!(t.cycles, 11);
    // An inactive column is skipped by every PE.
    let t = timing::layer(view, &[true, true, false, true], &fast).unwrap();
    assert_eq!((t.broadcasts, t.macs), (3, 3));
}

#[test]
fn full_queues_stall_the_broadcast_and_name_the_blocking_pe() {
    // Two PEs; PE 0 has 10 entries in column 0, PE 1 none: with a queue of 1, the broadcast of
    // column 2 waits for PE 0 to pop column 1.
    let book = Codebook::new(4, &[0.5]).unwrap();
    let positions: Vec<u64> = (0..10).map(|r| (2 * r * 3) as u64).collect(); // rows 0,2,..,18 col 0
    let codes = SparseCodes::new(20, 3, positions, vec![1; 10]).unwrap();
    let layer = PackedLayer::encode_sparse("q", &codes, book, 2, 4).unwrap();
    let b = bundle(vec![layer]);
    let view = LayerView::new(b.layers());
    let p = TimingParams {
        fifo_depth: 1,
        group_advance: false,
        ..Default::default()
    };
    let t = timing::layer(view, &[true; 3], &p).unwrap();
    // levels(2) = 1: b0 = 1, PE0 2..12; b1 = 2 (PE0 popped col 0 at 2), PE0 12..13;
    // b2 waits for PE0 to pop col 1 at 12: stall 12 - 3 = 9, blocking PE 0 only.
    assert_eq!(t.stall_cycles, 9);
    assert_eq!((t.pes[0].blocking, t.pes[1].blocking), (9, 0));
    // PE 0's last entry issues at 11; the empty columns after it (12, 13) leave nothing in the
    // pipeline, so the layer ends when that entry has drained: 12 + 3.
    assert_eq!(t.cycles, 12 + 3);
    let deep = TimingParams {
        fifo_depth: 8,
        group_advance: false,
        ..Default::default()
    };
    assert_eq!(
        timing::layer(view, &[true; 3], &deep).unwrap().stall_cycles,
        0
    );
    // The authors' ring of size 2 holds one: the same stall as depth 1.
    let ring = TimingParams {
        fifo_depth: 2,
        queue_ring: true,
        group_advance: false,
        ..Default::default()
    };
    assert_eq!(
        timing::layer(view, &[true; 3], &ring).unwrap().stall_cycles,
        9
    );
    assert!(
        timing::layer(
            view,
            &[true; 3],
            &TimingParams {
                fifo_depth: 0,
                ..Default::default()
            }
        )
        .is_err()
    );
    assert!(
        timing::layer(
            view,
            &[true; 3],
            &TimingParams {
                fifo_depth: 1,
                queue_ring: true,
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn column_batches_cost_a_barrier() {
    let (codes, book) = random_codes(256, 400, 0.1, 4, 9);
    let layer = PackedLayer::encode_sparse("w", &codes, book, 8, 4).unwrap();
    let whole = bundle(vec![layer.clone()]);
    let parts = bundle(layer.split_columns(100).unwrap());
    let active = vec![true; 400];
    let p = TimingParams::default();
    let a = timing::layer(LayerView::new(whole.layers()), &active, &p).unwrap();
    let b = timing::layer(LayerView::new(parts.layers()), &active, &p).unwrap();
    assert_eq!(b.batches, 4);
    assert_eq!((a.macs, a.broadcasts), (b.macs, b.broadcasts), "same work");
    assert!(
        b.cycles > a.cycles,
        "batches add barriers: {} vs {}",
        b.cycles,
        a.cycles
    );
    assert!(b.cycles >= b.lower_bound);
}

#[test]
fn paper_layers_have_their_densities() {
    for spec in workload::PAPER_LAYERS {
        // A fifth of each dimension keeps the test fast; densities are what matter.
        let (rows, cols) = (spec.outputs / 5 + 1, spec.inputs / 5 + 1);
        let (codes, _) = workload::random_layer(rows, cols, spec.weight_density, 4, 1);
        let d = codes.len() as f64 / (rows * cols) as f64;
        assert!((d - spec.weight_density).abs() < 0.01, "{}: {d}", spec.name);
        let a = workload::random_activations(cols, spec.act_density, 1);
        assert_eq!(
            a.iter().filter(|&&v| v != 0).count(),
            (spec.act_density * cols as f64).round() as usize
        );
        assert!(a.iter().all(|&v| v.unsigned_abs() <= 1 << 14));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn functional_equals_reference_on_random_layers(
        rows in 1usize..60, cols in 1usize..40, density in 0.0f64..1.0, code_bits in 1u8..=8,
        index_bits in 1u8..=8, act in 0.0f64..=1.0, bias in any::<bool>(),
        acc_bits in prop::sample::select(vec![16u8, 20, 32, 48, 62]),
        f_in in 0u8..=14, f_out in 0u8..=14, seed in any::<u64>(), extreme in any::<bool>(),
    ) {
        let cols = cols + usize::from(bias);
        let (codes, book) = random_codes(rows, cols, density, code_bits, seed);
        let inputs = cols - usize::from(bias);
        let mut input = workload::random_activations(inputs, act, seed ^ 1);
        if extreme {
            input.iter_mut().filter(|a| **a != 0).for_each(|a| *a = if *a > 0 { i16::MAX } else { i16::MIN });
        }
        check(&codes, &book, index_bits, bias, &input, f_in, f_out, Arith { acc_bits, relu_last: false });
    }
}

/// 4 PEs, a 4 x 64 layer of ones and a bias column of ones: the case measured on
/// the authors' simulator (RalphMao/EIE-simulator).
fn all_ones_with_bias() -> Bundle {
    let book = Codebook::new(4, &[1.0]).unwrap();
    let matrix = eie_format::CodeMatrix::new(4, 65, vec![1; 4 * 65]).unwrap();
    let layer = PackedLayer::encode("fc.weight", &matrix, book, 4, 4)
        .unwrap()
        .with_bias("fc.bias")
        .unwrap();
    bundle(vec![layer])
}

#[test]
fn the_authors_rules_give_their_simulators_cycles() {
    let b = all_ones_with_bias();
    let view = LayerView::new(b.layers());
    let authors = |fifo_depth| TimingParams {
        fifo_depth,
        rules: crate::Rules::Authors,
        ..Default::default()
    };
    let cycles = |slots: &dyn Fn(usize) -> bool, fifo| {
        let mut active: Vec<bool> = (0..64).map(slots).collect();
        active.push(true); // the bias column
        let t = timing::layer(view, &active, &authors(fifo)).unwrap();
        (t.cycles, t.unfinished)
    };
    // Their counts (tests/authors.rs runs their simulator on these and records them in
    // tests/authors/cycles.json): every input non-zero; only slot 3 of each group of 4; only
    // slot 0; every input with a ring of 2 (it holds 1). The last two stop with results
    // still to write.
    assert_eq!(cycles(&|_| true, 8), (73, 0));
    assert_eq!(cycles(&|j| j % 4 == 3, 8), (25, 0));
    assert_eq!(cycles(&|j| j % 4 == 0, 8), (33, 16));
    assert_eq!(cycles(&|_| true, 2), (129, 16));
    // This project's rules on the same cases: one cycle per group advance, a queue that
    // holds its depth.
    let rtl = |slots: &dyn Fn(usize) -> bool, fifo_depth| {
        let mut active: Vec<bool> = (0..64).map(slots).collect();
        active.push(true);
        let p = TimingParams {
            fifo_depth,
            ..Default::default()
        };
        timing::layer(view, &active, &p).unwrap().cycles
    };
    assert_eq!(rtl(&|_| true, 8), 86);
    assert_eq!(rtl(&|j| j % 4 == 3, 8), 38);
    // Options their rules fix are refused with them.
    for bad in [
        TimingParams {
            queue_ring: true,
            ..authors(8)
        },
        TimingParams {
            group_advance: false,
            ..authors(8)
        },
        TimingParams {
            pipeline_depth: 5,
            ..authors(8)
        },
        authors(1),
    ] {
        assert!(timing::layer(view, &[true; 65], &bad).is_err());
    }
}

#[test]
fn the_authors_rules_on_a_traced_case() {
    // 2 PEs, a 2 x 4 layer: PE 0's row has columns 0, 1, 3, PE 1's columns 1, 2; inputs
    // 1, 1, 0, 1; a ring of 2. Traced cycle by cycle on their simulator: its own stop rule
    // fires at 9 with products still in flight (everything is written by 12). These rules
    // report its 9, and the 3 of the 4 products not yet written.
    let book = Codebook::new(4, &[1.0]).unwrap();
    let codes = vec![1, 1, 0, 1, 0, 1, 1, 0];
    let matrix = eie_format::CodeMatrix::new(2, 4, codes).unwrap();
    let layer = PackedLayer::encode("t", &matrix, book, 2, 4).unwrap();
    let b = bundle(vec![layer]);
    let p = TimingParams {
        fifo_depth: 2,
        rules: crate::Rules::Authors,
        ..Default::default()
    };
    let t = timing::layer(LayerView::new(b.layers()), &[true, true, false, true], &p).unwrap();
    assert_eq!((t.cycles, t.unfinished), (9, 3));
    assert_eq!(t.broadcasts, 3);
    // The two stalls of the trace: cycles 2 and 4, each PE's queue full.
    assert_eq!(t.stall_cycles, 2);
}

/// Regression: calibrating on an input of the wrong width ran the float model first, which
/// indexed past the input (a panic reached Python's `run_layer`); now the width is refused.
#[test]
fn calibrating_on_a_short_input_is_an_error_not_a_panic() {
    let book = Codebook::new(4, &[0.5]).unwrap();
    let codes = SparseCodes::new(3, 4, vec![0, 2, 3, 6, 10, 11], vec![1; 6]).unwrap();
    let layer = PackedLayer::encode_sparse("h", &codes, book, 1, 4).unwrap();
    let b = bundle(vec![layer]);
    let views = [LayerView::new(b.layers())];
    for x in [vec![1.0f32; 3], Vec::new()] {
        let e = crate::run::fractions(&views, &[x], &[], false).unwrap_err();
        assert!(matches!(e, crate::Error::InputLength { .. }), "{e}");
    }
    assert!(crate::run::fractions(&views, &[vec![1.0; 4]], &[], false).is_ok());
}

/// Regression (the one walk skipped padding): an input that is not finite makes padding's
/// products NaN (0 x inf), and the float model keeps them, as the serial walk always did.
#[test]
fn the_float_model_keeps_padding_products_of_an_infinite_input() {
    let book = Codebook::new(4, &[0.5]).unwrap();
    // One PE, 1-bit relative indices: row 5 of each column needs padding before it.
    let codes = SparseCodes::new(8, 2, vec![10, 11], vec![1, 1]).unwrap();
    let layer = PackedLayer::encode_sparse("p", &codes, book, 1, 1).unwrap();
    assert!(layer.padding() > 0);
    let b = bundle(vec![layer]);
    let view = LayerView::new(b.layers());
    for x in [vec![f32::INFINITY, 1.0], vec![1.0, 2.0]] {
        let mut want = vec![0f64; 8];
        let values = view.codebook().values();
        view.for_each_entry(
            |j| (x[j] != 0.0).then_some(x[j] as f64),
            |a, row, code| want[row] += values[code as usize] as f64 * a,
        );
        let got = crate::float::layer(view, &x, false);
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{x:?}");
    }
}
