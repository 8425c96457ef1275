use eie_rng::Rng;
use proptest::prelude::*;

use super::*;

fn gaussian(seed: u64, n: usize, sigma: f64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| (r.normal() * sigma) as f32).collect()
}

/// Minimum (weighted) SSE over every split of the sorted values into k contiguous
/// non-empty runs.
fn brute_force_sorted(data: &Sorted, start: usize, k: usize) -> f64 {
    let n = data.len();
    if k == 1 {
        return data.cost(start, n);
    }
    (start + 1..=n - (k - 1))
        .map(|cut| data.cost(start, cut) + brute_force_sorted(data, cut, k - 1))
        .fold(f64::INFINITY, f64::min)
}

/// Minimum SSE over every split of the sorted values into k contiguous non-empty runs.
fn brute_force(values: &[f32], k: usize) -> f64 {
    brute_force_sorted(&Sorted::new(values), 0, k)
}

#[test]
fn lloyd_matches_scikit_learn() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/sklearn_kmeans.json")).unwrap();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let k = case["k"].as_u64().unwrap() as usize;
        let data: Vec<f32> = case["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let run = cluster(
            &data,
            k,
            Method::Lloyd {
                init: Init::Linear,
                max_iter: 300,
            },
        )
        .unwrap();
        assert!(run.converged, "{name}");
        let expected: Vec<f64> = case["tol0"]["centroids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(run.centroids.len(), expected.len(), "{name}");
        for (got, want) in run.centroids.iter().zip(&expected) {
            let rel = (*got as f64 - want).abs() / want.abs().max(1e-12);
            assert!(
                rel <= 1e-5,
                "{name}: centroid {got} vs scikit-learn {want} (relative {rel:e})"
            );
        }
        // Never worse than scikit-learn with its default tolerance (which stops early).
        let inertia = case["default_tol"]["inertia"].as_f64().unwrap();
        assert!(
            run.sse <= inertia * (1.0 + 1e-9),
            "{name}: SSE {} vs scikit-learn {inertia}",
            run.sse
        );
    }
}

#[test]
fn fewer_distinct_values_than_clusters_gives_them_exactly() {
    let c = cluster(
        &[0.5, -1.0, 0.5, 2.0, -1.0],
        15,
        Method::Lloyd {
            init: Init::Linear,
            max_iter: 300,
        },
    )
    .unwrap();
    assert_eq!(c.centroids, [-1.0, 0.5, 2.0]);
    assert_eq!(c.sse, 0.0);
    let c = cluster(&[], 15, Method::Optimal).unwrap();
    assert!(c.centroids.is_empty());
}

#[test]
fn bad_input_is_an_error() {
    assert!(matches!(
        cluster(&[1.0], 0, Method::Optimal),
        Err(Error::ZeroClusters)
    ));
    assert!(matches!(
        cluster(&[1.0, f32::NAN], 2, Method::Optimal),
        Err(Error::NonFinite { index: 1, .. })
    ));
}

#[test]
fn initialisations() {
    let x = gaussian(1, 5000, 1.0);
    let data = Sorted::new(&x);
    let lin = Init::Linear.centers(&data, 15);
    assert_eq!((lin[0], lin[14]), (data.at(0), data.at(4999)));
    let steps: Vec<f64> = lin.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(steps.iter().all(|s| (s - steps[0]).abs() < 1e-12));
    let dens = Init::Density.centers(&data, 4);
    // Quantiles 1/8, 3/8, 5/8, 7/8 of a standard normal: about -1.15, -0.32, 0.32, 1.15.
    for (c, q) in dens.iter().zip([-1.15, -0.32, 0.32, 1.15]) {
        assert!((c - q).abs() < 0.06, "{dens:?}");
    }
    for init in [Init::Random(7), Init::KMeansPlusPlus(7)] {
        let a = init.centers(&data, 15);
        assert_eq!(a, init.centers(&data, 15), "seeded: same centers");
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            a.iter().all(|&c| data.values().contains(&(c as f32))),
            "centers are data points"
        );
    }
    assert_ne!(
        Init::Random(1).centers(&data, 15),
        Init::Random(2).centers(&data, 15)
    );
    assert_ne!(
        Init::KMeansPlusPlus(1).centers(&data, 15),
        Init::KMeansPlusPlus(2).centers(&data, 15)
    );
}

#[test]
fn lloyd_never_increases_the_sse() {
    let x = gaussian(2, 4000, 0.1);
    let data = Sorted::new(&x);
    let mut centers = Init::Linear.centers(&data, 15);
    let mut last = data.sse(&centers);
    for _ in 0..30 {
        centers = lloyd(&data, centers, 1).centers;
        let now = data.sse(&centers);
        assert!(now <= last * (1.0 + 1e-12), "{now} > {last}");
        last = now;
    }
}

#[test]
fn optimal_beats_every_lloyd_run_on_a_pruned_layer() {
    // A pruned Gaussian: the survivors are two tails, where Lloyd from a linear start wastes
    // centers in the empty middle.
    let w = gaussian(3, 60_000, 0.05);
    let survivors: Vec<f32> = w.into_iter().filter(|v| v.abs() > 0.08).collect();
    let best = cluster(&survivors, 15, Method::Optimal).unwrap();
    assert!(best.optimal_bound.is_none(), "small data is solved exactly");
    for init in [
        Init::Linear,
        Init::Density,
        Init::Random(1),
        Init::KMeansPlusPlus(1),
    ] {
        let run = cluster(
            &survivors,
            15,
            Method::Lloyd {
                init,
                max_iter: 300,
            },
        )
        .unwrap();
        assert!(
            best.sse <= run.sse * (1.0 + 1e-9),
            "{init:?}: optimal {} > Lloyd {}",
            best.sse,
            run.sse
        );
    }
}

#[test]
fn grouped_dp_beyond_the_exact_limit() {
    // The grouped path, at a small limit: close to the exact optimum and within its bound.
    let x = gaussian(4, 3000, 1.0);
    let data = Sorted::new(&x);
    let exact = optimal::optimal_with_limit(&data, 6, usize::MAX);
    let grouped = optimal::optimal_with_limit(&data, 6, 200);
    let (e, g) = (data.sse(&exact.centers), data.sse(&grouped.centers));
    let bound = grouped.bound.unwrap();
    assert!(exact.bound.is_none());
    assert!(
        e <= g * (1.0 + 1e-12),
        "exact {e} must not exceed grouped {g}"
    );
    assert!(
        g - e <= bound + 1e-9,
        "grouped {g} exceeds exact {e} by more than its bound {bound}"
    );
    assert!(g <= e * 1.001, "{g} vs {e}");
}

#[test]
fn assigner_agrees_with_the_clustering() {
    let x = gaussian(5, 3000, 0.3);
    let c = cluster(
        &x,
        15,
        Method::Lloyd {
            init: Init::Linear,
            max_iter: 300,
        },
    )
    .unwrap();
    let a = Assigner::new(&c.centroids);
    let sse: f64 = x
        .iter()
        .map(|&v| (v as f64 - c.centroids[a.index(v)] as f64).powi(2))
        .sum();
    assert!(
        (sse - c.sse).abs() <= 1e-9 * c.sse.max(1e-30),
        "{sse} vs {}",
        c.sse
    );
    // Brute force nearest, ties to the lower centroid.
    for &v in x.iter().take(500) {
        let d = |i: usize| (v as f64 - c.centroids[i] as f64).abs();
        let best = (0..c.centroids.len()).fold(0, |b, i| if d(i) < d(b) { i } else { b });
        assert_eq!(d(a.index(v)), d(best));
    }
    assert_eq!(Assigner::new(&[1.0, 3.0]).index(2.0), 0);
    assert_eq!(Assigner::new(&[]).index(5.0), 0);
}

#[test]
fn radix_sort_matches_the_comparison_sort() {
    let mut r = Rng::new(11);
    let mut x: Vec<f32> = (0..200_000).map(|_| (r.normal() * 1e-3) as f32).collect();
    x.extend([
        0.0,
        -0.0,
        1e30,
        -1e30,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        1e-45,
        -1e-45,
    ]);
    let mut expected = x.clone();
    expected.sort_by(f32::total_cmp);
    let got = sort(&x);
    assert_eq!(
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

/// Minimum weighted SSE over every split of the weighted values into k contiguous runs.
fn brute_force_weighted(values: &[f32], weights: &[f64], k: usize) -> f64 {
    brute_force_sorted(&Sorted::weighted(values, weights), 0, k)
}

/// The weighted error of assigning each value to its nearest centroid, summed directly.
fn weighted_error(values: &[f32], weights: &[f64], centroids: &[f32]) -> f64 {
    let a = Assigner::new(centroids);
    values
        .iter()
        .zip(weights)
        .map(|(&v, &w)| w * (v as f64 - centroids[a.index(v)] as f64).powi(2))
        .sum()
}

#[test]
fn unit_weights_cluster_exactly_as_no_weights() {
    let x = gaussian(7, 2000, 0.3);
    let ones = vec![1.0; x.len()];
    for method in [
        Method::Optimal,
        Method::Lloyd {
            init: Init::Linear,
            max_iter: 300,
        },
    ] {
        let plain = cluster(&x, 15, method).unwrap();
        let weighted = cluster_weighted(&x, &ones, 15, method).unwrap();
        assert_eq!(plain, weighted, "{method:?}");
    }
}

#[test]
fn an_integer_weight_counts_as_that_many_copies() {
    // Weight 3 on a value is the value three times: the same optimal centroids.
    let x = gaussian(9, 60, 1.0);
    let w: Vec<f64> = (0..x.len()).map(|i| (i % 3 + 1) as f64).collect();
    let copies: Vec<f32> = x
        .iter()
        .zip(&w)
        .flat_map(|(&v, &n)| std::iter::repeat_n(v, n as usize))
        .collect();
    let a = cluster_weighted(&x, &w, 7, Method::Optimal).unwrap();
    let b = cluster(&copies, 7, Method::Optimal).unwrap();
    assert_eq!(a.centroids.len(), b.centroids.len());
    for (p, q) in a.centroids.iter().zip(&b.centroids) {
        assert!((p - q).abs() <= 1e-6 * q.abs().max(1.0), "{p} vs {q}");
    }
    assert!((a.sse - b.sse).abs() <= 1e-9 * b.sse.max(1.0));
}

#[test]
fn bad_weights_are_errors() {
    let x = [1.0f32, 2.0, 3.0];
    for (w, index) in [
        (vec![1.0, 0.0, 1.0], 1),
        (vec![1.0, 1.0, f64::NAN], 2),
        (vec![-1.0, 1.0, 1.0], 0),
        (vec![1.0, 1.0], 2),
    ] {
        match cluster_weighted(&x, &w, 2, Method::Optimal) {
            Err(Error::Weight {
                index: i, count, ..
            }) => {
                assert_eq!((i, count), (index, 3), "{w:?}")
            }
            other => panic!("{w:?}: {other:?}"),
        }
    }
}

#[test]
fn weighting_pulls_the_centroids_toward_the_heavy_values() {
    // Two clusters' worth of values and one shared value: the weighted optimum sits on the
    // heavy side, and its weighted error is below the plain optimum's.
    let x = gaussian(11, 400, 1.0);
    let w: Vec<f64> = x
        .iter()
        .map(|&v| if v > 0.5 { 100.0 } else { 1.0 })
        .collect();
    let plain = cluster(&x, 3, Method::Optimal).unwrap();
    let weighted = cluster_weighted(&x, &w, 3, Method::Optimal).unwrap();
    let (ep, ew) = (
        weighted_error(&x, &w, &plain.centroids),
        weighted_error(&x, &w, &weighted.centroids),
    );
    assert!(
        ew < ep,
        "weighted {ew} must beat plain {ep} on the weighted error"
    );
    assert!((ew - weighted.sse).abs() <= 1e-6 * ew);
}

proptest! {
    #[test]
    fn weighted_optimal_is_the_brute_force_minimum(
        cases in prop::collection::vec((-100i32..100, 1u32..50), 1..12),
        k in 1usize..5,
    ) {
        let x: Vec<f32> = cases.iter().map(|&(v, _)| v as f32 * 0.01).collect();
        let w: Vec<f64> = cases.iter().map(|&(_, w)| w as f64 * 0.1).collect();
        prop_assume!(k <= Sorted::new(&x).distinct());
        let got = cluster_weighted(&x, &w, k, Method::Optimal).unwrap();
        let want = brute_force_weighted(&x, &w, k);
        prop_assert!((got.sse - want).abs() <= 1e-9 + 1e-6 * want, "{} vs {}", got.sse, want);
        let direct = weighted_error(&x, &w, &got.centroids);
        prop_assert!((direct - got.sse).abs() <= 1e-9 + 1e-6 * want, "{} vs {}", direct, got.sse);
    }

    #[test]
    fn optimal_is_the_brute_force_minimum(values in prop::collection::vec(-100i32..100, 1..13), k in 1usize..5) {
        let x: Vec<f32> = values.iter().map(|&v| v as f32 * 0.01).collect();
        let distinct = Sorted::new(&x).distinct();
        prop_assume!(k <= distinct);
        let got = cluster(&x, k, Method::Optimal).unwrap();
        let want = brute_force(&x, k);
        prop_assert!((got.sse - want).abs() <= 1e-9 + 1e-6 * want, "{} vs {}", got.sse, want);
    }

    #[test]
    fn optimal_never_exceeds_lloyd(seed in any::<u64>(), n in 20usize..400, k in 2usize..16) {
        let x = gaussian(seed, n, 1.0);
        let best = cluster(&x, k, Method::Optimal).unwrap();
        for init in [Init::Linear, Init::Density, Init::Random(seed), Init::KMeansPlusPlus(seed)] {
            let run = cluster(&x, k, Method::Lloyd { init, max_iter: 300 }).unwrap();
            prop_assert!(best.sse <= run.sse * (1.0 + 1e-9) + 1e-12, "{:?}: {} > {}", init, best.sse, run.sse);
        }
    }
}
