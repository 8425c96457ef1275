use eie_rng::Rng;
use proptest::prelude::*;

use super::*;

/// The reference: indices of the `k` largest |w| (non-zeros only), ties to the lower index.
fn naive_keep(w: &[f32], k: u64) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..w.len()).filter(|&i| w[i] != 0.0).collect();
    idx.sort_by(|&a, &b| w[b].abs().total_cmp(&w[a].abs()).then(a.cmp(&b)));
    let mut keep = vec![false; w.len()];
    for &i in idx.iter().take(k as usize) {
        keep[i] = true;
    }
    keep
}

fn mask(w: &[f32]) -> Vec<bool> {
    w.iter().map(|&x| x != 0.0).collect()
}

/// Weights with many exact ties and zeros, to stress the tie-breaking.
fn weights(rng: &mut Rng, n: usize, levels: u64) -> Vec<f32> {
    (0..n)
        .map(|_| match rng.below(levels + 1) {
            0 => 0.0,
            v => (v as f32 * 0.125) * if rng.below(2) == 0 { 1.0 } else { -1.0 },
        })
        .collect()
}

#[test]
fn density_keeps_exactly_the_largest_with_ties_to_the_earliest() {
    let mut rng = Rng::new(1);
    for levels in [1, 3, 50, 100_000] {
        let w = weights(&mut rng, 5000, levels);
        for d in [1e-4, 0.01, 0.09, 0.5, 0.9, 1.0] {
            let mut p = w.clone();
            let r = prune(&mut p, 50, 100, Rule::Density(d), None).unwrap();
            let k = ((d * 5000.0).round() as u64).min(r.before);
            assert_eq!(r.kept, k, "levels {levels} density {d}");
            assert_eq!(mask(&p), naive_keep(&w, k), "levels {levels} density {d}");
            // Kept weights keep their values.
            assert!(p.iter().zip(&w).all(|(a, b)| *a == 0.0 || a == b));
        }
    }
}

#[test]
fn already_zero_weights_stay_zero() {
    let mut w = vec![0.0f32; 100];
    w[3] = 1.0;
    w[50] = -2.0;
    let r = prune(&mut w, 10, 10, Rule::Density(0.5), None).unwrap();
    assert_eq!((r.before, r.kept), (2, 2));
    assert_eq!(mask(&w).iter().filter(|&&b| b).count(), 2);
}

#[test]
fn threshold_std_prunes_below_s_times_std() {
    let mut rng = Rng::new(2);
    let w: Vec<f32> = (0..10_000).map(|_| rng.normal() as f32).collect();
    let s = 0.7;
    let t = s * std(&w);
    let mut p = w.clone();
    let r = prune(&mut p, 100, 100, Rule::ThresholdStd(s), None).unwrap();
    let expected: Vec<bool> = w.iter().map(|&x| (x.abs() as f64) >= t).collect();
    assert_eq!(mask(&p), expected);
    assert_eq!(r.kept, expected.iter().filter(|&&b| b).count() as u64);
    // About 48% of a Gaussian is within 0.7 std.
    assert!((4_700..5_100).contains(&r.kept), "{}", r.kept);
}

/// Regression (review A11): the two paths computed the standard deviation with different
/// formulas (one pass `E[w^2] - mean^2` and two passes), so on weights far from zero they
/// kept different weights for the same `--threshold-std`.
#[test]
fn threshold_std_on_offset_weights_is_the_same_on_both_paths() {
    let mut rng = Rng::new(3);
    let w: Vec<f32> = (0..20).map(|_| 100.0 + rng.uniform() as f32).collect();
    // The reference: two passes in f64.
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / 20.0;
    let reference = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 20.0).sqrt();
    assert_eq!(std(&w), reference);
    // S that puts the largest weight right at the threshold.
    let top = w.iter().copied().fold(0.0f32, f32::max) as f64;
    let s = top / reference;
    sparse_matches_dense(&w, Rule::ThresholdStd(s));
    let mut dense = w.clone();
    assert!(
        prune(&mut dense, 1, 20, Rule::ThresholdStd(s), None)
            .unwrap()
            .kept
            >= 1
    );
}

#[test]
fn keep_all_and_count() {
    let w = vec![0.5f32, 0.0, -0.25, 1.0];
    let mut p = w.clone();
    assert_eq!(prune(&mut p, 2, 2, Rule::KeepAll, None).unwrap().kept, 3);
    assert_eq!(p, w);
    let mut p = w.clone();
    assert_eq!(prune(&mut p, 2, 2, Rule::Count(1), None).unwrap().kept, 1);
    assert_eq!(p, [0.0, 0.0, 0.0, 1.0]);
    let mut p = w.clone();
    let r = prune(&mut p, 2, 2, Rule::Count(0), None).unwrap();
    assert_eq!((r.kept, r.threshold), (0, f32::INFINITY));
    assert!(p.iter().all(|&x| x == 0.0));
}

#[test]
fn bad_rules_are_errors() {
    let mut w = vec![1.0f32; 4];
    for rule in [
        Rule::Density(0.0),
        Rule::Density(1.5),
        Rule::Density(f64::NAN),
        Rule::ThresholdStd(-1.0),
    ] {
        assert!(prune(&mut w, 2, 2, rule, None).is_err(), "{rule:?}");
    }
    assert!(matches!(
        prune(&mut w, 3, 2, Rule::KeepAll, None),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        prune(&mut w, 2, 2, Rule::KeepAll, Some(0)),
        Err(Error::ZeroPes)
    ));
    assert!(Global::new(0.0, 10).is_err());
}

#[test]
fn balanced_pruning_evens_out_the_pes() {
    // Rows of PE 0 (even rows) are much larger: plain pruning piles the kept weights there.
    let mut rng = Rng::new(3);
    let (rows, cols, pes) = (64, 200, 4);
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| rng.normal() as f32 * if (i / cols) % pes == 0 { 4.0 } else { 1.0 })
        .collect();
    let mut p = w.clone();
    let r = prune(&mut p, rows, cols, Rule::Density(0.1), Some(pes)).unwrap();
    let b = r.balance.unwrap();
    assert_eq!(r.kept, 1280);
    assert!(b.plain.imbalance() > 2.0, "{:?}", b.plain);
    assert!(b.balanced.max - b.balanced.min <= 1, "{:?}", b.balanced);
    assert_eq!(
        b.kept_not_plain, b.plain_not_kept,
        "same total, so swaps balance"
    );
    assert!(b.kept_not_plain > 0);
    // Each PE keeps its own largest weights.
    for pe in 0..pes {
        let slice: Vec<f32> = (pe..rows)
            .step_by(pes)
            .flat_map(|r| w[r * cols..(r + 1) * cols].to_vec())
            .collect();
        let kept: Vec<f32> = (pe..rows)
            .step_by(pes)
            .flat_map(|r| p[r * cols..(r + 1) * cols].to_vec())
            .collect();
        let k = mask(&kept).iter().filter(|&&b| b).count() as u64;
        assert_eq!(mask(&kept), naive_keep(&slice, k), "PE {pe}");
    }
}

#[test]
fn balanced_pruning_redistributes_what_a_sparse_slice_cannot_take() {
    // PE 1 (odd rows) has only 3 non-zeros; the others take up the rest evenly.
    let (rows, cols, pes) = (8, 10, 2);
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| {
            if (i / cols) % 2 == 1 {
                if i % 10 < 1 && i / cols < 6 { 0.5 } else { 0.0 }
            } else {
                1.0 + i as f32
            }
        })
        .collect();
    let mut p = w.clone();
    let r = prune(&mut p, rows, cols, Rule::Count(20), Some(pes)).unwrap();
    assert_eq!(r.kept, 20);
    assert_eq!(
        (
            r.balance.unwrap().balanced.min,
            r.balance.unwrap().balanced.max
        ),
        (3, 17)
    );
}

#[test]
fn share_is_even_within_one_and_capped() {
    assert_eq!(share(10, &[5, 5, 5, 5]), [3, 3, 2, 2]);
    assert_eq!(share(10, &[1, 9, 9]), [1, 5, 4]);
    assert_eq!(share(0, &[3, 3]), [0, 0]);
    assert_eq!(share(6, &[3, 3]), [3, 3]);
    assert_eq!(share(4, &[]), Vec::<u64>::new().as_slice());
}

#[test]
fn global_counts_match_one_cut_over_all_layers() {
    let mut rng = Rng::new(4);
    let layers: Vec<Vec<f32>> = [(30, 40, 5), (10, 100, 3), (50, 7, 1000)]
        .iter()
        .map(|&(r, c, levels)| weights(&mut rng, r * c, levels))
        .collect();
    let total: u64 = layers.iter().map(|l| l.len() as u64).sum();
    for d in [0.001, 0.05, 0.3, 1.0] {
        let mut g = Global::new(d, total).unwrap();
        layers.iter().for_each(|l| g.first_pass(l));
        layers.iter().for_each(|l| g.second_pass(l));
        let counts = g.counts();
        let all: Vec<f32> = layers.concat();
        let k = (d * total as f64).round() as u64;
        let keep = naive_keep(&all, k);
        let mut at = 0;
        for (l, &c) in layers.iter().zip(&counts) {
            let expect = keep[at..at + l.len()].iter().filter(|&&b| b).count() as u64;
            assert_eq!(c, expect, "density {d}");
            // Pruning the layer to its count keeps exactly the global selection.
            let mut p = l.clone();
            prune(&mut p, 1, l.len(), Rule::Count(c), None).unwrap();
            assert_eq!(mask(&p), keep[at..at + l.len()].to_vec());
            at += l.len();
        }
    }
}

proptest! {
    #[test]
    fn cut_matches_the_sorting_reference(
        raw in prop::collection::vec((0u8..6, any::<bool>(), 0u32..1000), 0..600),
        k in 0u64..700,
    ) {
        // Few distinct magnitudes: ties everywhere.
        let w: Vec<f32> = raw.iter().map(|&(m, neg, jitter)| {
            if m == 0 { 0.0 } else {
                let v = m as f32 + if jitter < 500 { 0.0 } else { jitter as f32 * 1e-3 };
                if neg { -v } else { v }
            }
        }).collect();
        let mut p = w.clone();
        let kept = apply(vec![&mut p[..]], cut_for_count(&[&w], k));
        let reference = naive_keep(&w, k);
        prop_assert_eq!(mask(&p), reference.clone());
        prop_assert_eq!(kept, reference.iter().filter(|&&b| b).count() as u64);
        prop_assert_eq!(keep_mask(&[&w], cut_for_count(&[&w], k)), reference);
    }
}

/// The sparse selection from storage keeps exactly what in-place pruning keeps.
fn sparse_matches_dense(w: &[f32], rule: Rule) {
    let read = |start: usize, out: &mut [f32]| out.copy_from_slice(&w[start..start + out.len()]);
    let sel = select(w.len(), &read, rule).unwrap();
    let mut dense = w.to_vec();
    let report = prune(&mut dense, 1, w.len(), rule, None).unwrap();
    let kept: Vec<(u64, f32)> = dense
        .iter()
        .enumerate()
        .filter(|&(_, &v)| v != 0.0)
        .map(|(i, &v)| (i as u64, v))
        .collect();
    let got: Vec<(u64, f32)> = sel
        .positions
        .iter()
        .copied()
        .zip(sel.values.iter().copied())
        .collect();
    assert_eq!(got, kept, "{rule:?}");
    assert_eq!(
        (sel.report.before, sel.report.kept),
        (report.before, report.kept),
        "{rule:?}"
    );
    if report.kept > 0 {
        assert_eq!(sel.report.threshold, report.threshold, "{rule:?}");
    }
}

#[test]
fn sparse_selection_equals_in_place_pruning_on_large_layers() {
    let mut rng = Rng::new(9);
    // Several blocks, ties and zeros.
    let w = weights(&mut rng, 300_000, 40);
    for rule in [
        Rule::KeepAll,
        Rule::Density(0.04),
        Rule::Density(0.5),
        Rule::Count(12_345),
        Rule::ThresholdStd(1.2),
    ] {
        sparse_matches_dense(&w, rule);
    }
    let g: Vec<f32> = (0..200_000).map(|_| rng.normal() as f32).collect();
    for rule in [Rule::Density(0.09), Rule::ThresholdStd(0.7), Rule::Count(0)] {
        sparse_matches_dense(&g, rule);
    }
}

#[test]
fn sampled_selection_is_exact_whether_the_sample_guesses_right_or_not() {
    let sampling = Sampling {
        windows: 16,
        width: 64,
        min_len: 0,
    };
    // Returns the full passes the sampled selection made.
    let check = |w: &[f32], rule: Rule| {
        let read =
            |start: usize, out: &mut [f32]| out.copy_from_slice(&w[start..start + out.len()]);
        let plain = select(w.len(), &read, rule).unwrap();
        let before = SCANS.with(|c| c.get());
        let sampled = select_with(w.len(), &read, rule, &sampling).unwrap();
        assert_eq!(sampled, plain, "{rule:?}");
        SCANS.with(|c| c.get()) - before
    };
    let mut rng = Rng::new(12);
    let g: Vec<f32> = (0..100_000).map(|_| rng.normal() as f32).collect();
    for d in [0.001, 0.04, 0.09, 0.5] {
        assert_eq!(
            check(&g, Rule::Density(d)),
            1,
            "a fair sample needs one pass"
        );
    }
    // The sample sees only large weights (its 16 windows of 64 start near multiples of
    // 6662): it guesses a threshold too high, and the fallback (a full histogram, then a
    // second collect) finds the rest.
    let w: Vec<f32> = (0..100_000)
        .map(|i| {
            if i % 6662 < 100 || i % 6662 > 6600 {
                0.9
            } else {
                0.01 + (i % 89) as f32 * 1e-4
            }
        })
        .collect();
    assert_eq!(check(&w, Rule::Count(50_000)), 3);
    assert_eq!(check(&w, Rule::Count(100)), 1);
}

#[test]
fn sparse_selection_names_the_first_non_finite_weight() {
    let mut w = vec![1.0f32; 200_000];
    w[150_000] = f32::NAN;
    w[70_000] = f32::INFINITY;
    let read = |start: usize, out: &mut [f32]| out.copy_from_slice(&w[start..start + out.len()]);
    assert!(matches!(
        select(w.len(), &read, Rule::KeepAll),
        Err(Error::NonFinite { index: 70_000, .. })
    ));
}

proptest! {
    #[test]
    fn sparse_selection_matches_the_reference(
        raw in prop::collection::vec((0u8..6, any::<bool>()), 0..400),
        k in 0u64..500, d in 0.001f64..1.0, s in 0.0f64..3.0,
    ) {
        let w: Vec<f32> = raw.iter().map(|&(m, neg)| if neg { -(m as f32) } else { m as f32 }).collect();
        for rule in [Rule::Count(k), Rule::Density(d), Rule::ThresholdStd(s), Rule::KeepAll] {
            sparse_matches_dense(&w, rule);
        }
    }
}

#[test]
fn scores_by_magnitude_prune_as_magnitude_pruning_does() {
    let mut rng = Rng::new(21);
    let (rows, cols) = (12, 17);
    let w = weights(&mut rng, rows * cols, 40);
    let scores: Vec<f32> = w.iter().map(|v| v.abs()).collect();
    for (group, pes) in [(Group::Layer, None), (Group::Pes(5), Some(5))] {
        let mut a = w.clone();
        let mut b = w.clone();
        let ra = prune(&mut a, rows, cols, Rule::Density(0.3), pes).unwrap();
        let rb = prune_scored(&mut b, &scores, rows, cols, Rule::Density(0.3), group).unwrap();
        assert_eq!(a, b, "{group:?}");
        assert_eq!(ra, rb, "{group:?}");
    }
}

#[test]
fn per_row_scores_keep_each_rows_largest_and_equal_counts() {
    let mut rng = Rng::new(22);
    let (rows, cols) = (9, 20);
    let w = weights(&mut rng, rows * cols, 1000);
    // Wanda's score: a large input norm on the last columns favours them.
    let norms: Vec<f32> = (0..cols).map(|j| 1.0 + j as f32).collect();
    let scores: Vec<f32> = w
        .iter()
        .enumerate()
        .map(|(i, v)| v.abs() * norms[i % cols])
        .collect();
    let mut p = w.clone();
    let r = prune_scored(&mut p, &scores, rows, cols, Rule::Density(0.25), Group::Row).unwrap();
    assert_eq!(r.kept, 45);
    for row in 0..rows {
        let range = row * cols..(row + 1) * cols;
        let kept: Vec<usize> = range.clone().filter(|&i| p[i] != 0.0).collect();
        assert_eq!(kept.len(), 5, "row {row}");
        let least = kept
            .iter()
            .map(|&i| scores[i])
            .fold(f32::INFINITY, f32::min);
        for i in range {
            assert!(p[i] == 0.0 || p[i] == w[i]);
            if p[i] == 0.0 && w[i] != 0.0 {
                assert!(
                    scores[i] <= least,
                    "row {row}: a dropped score beats a kept one"
                );
            }
        }
    }
    // The activation-aware choice differs from magnitude's.
    let mut m = w.clone();
    prune(&mut m, rows, cols, Rule::Density(0.25), Some(rows)).unwrap();
    assert_ne!(m, p);
}

#[test]
fn zero_scores_are_never_kept_and_bad_scores_refused() {
    let mut w = vec![1.0f32, 2.0, 3.0, 4.0];
    // A dead input column (score 0) loses its weights even at density 1.
    let r = prune_scored(
        &mut w,
        &[1.0, 0.0, 3.0, 0.0],
        2,
        2,
        Rule::KeepAll,
        Group::Layer,
    )
    .unwrap();
    assert_eq!((w, r.kept), (vec![1.0, 0.0, 3.0, 0.0], 2));
    let mut w = vec![1.0f32; 4];
    for bad in [f32::NAN, -1.0, f32::INFINITY] {
        let e = prune_scored(
            &mut w,
            &[1.0, bad, 1.0, 1.0],
            2,
            2,
            Rule::KeepAll,
            Group::Row,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Score { index: 1, .. }), "{e}");
    }
    assert!(matches!(
        prune_scored(&mut w, &[1.0; 3], 2, 2, Rule::KeepAll, Group::Row),
        Err(Error::Shape { got: 3, .. })
    ));
}
