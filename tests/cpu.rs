//! The CPU baseline through `simulate --cpu` (bench-paper --cpu runs the same code on the
//! paper's layers; docs/results.md has its figures).

use crate::util::{TestDir, json, tiny_model};

#[test]
fn simulate_runs_the_layers_on_the_cpu_beside_eie() {
    let t = TestDir::new();
    tiny_model(&t, "m");
    let r = json(t.run(&["simulate", "m", "--cpu", "--json"]).ok());
    let cpu = &r["cpu"];
    assert!(!cpu["machine"]["cpu"].as_str().unwrap().is_empty());
    // Either measured or said to be unavailable; never invented.
    let energy = cpu["machine"]["energy"].as_str().unwrap();
    assert!(
        energy.starts_with("measured") || energy.starts_with("unavailable"),
        "{energy}"
    );
    let layers = cpu["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for l in layers {
        let eie = l["eie_us"].as_f64().unwrap();
        for product in ["dense", "sparse", "dense_batch", "sparse_batch"] {
            let m = &l[product];
            assert!(m["median_s"].as_f64().unwrap() > 0.0, "{product}");
            assert!(m["runs"].as_u64().unwrap() >= 5, "{product}");
        }
        let expected = l["dense"]["median_s"].as_f64().unwrap() * 1e6 / eie;
        assert!((l["speedup"]["dense"].as_f64().unwrap() / expected - 1.0).abs() < 1e-9);
    }
    let g = cpu["geomean"]["dense"].as_f64().unwrap();
    let product: f64 = layers
        .iter()
        .map(|l| l["speedup"]["dense"].as_f64().unwrap())
        .product();
    assert!((g - product.sqrt()).abs() < 1e-9 * g);
    // Without --cpu there is no CPU section.
    let plain = json(t.run(&["simulate", "m", "--json"]).ok());
    assert!(plain.get("cpu").is_none());
    let text = t.run(&["simulate", "m", "--cpu"]).ok().to_string();
    assert!(
        text.contains("CPU baseline:") && text.contains("geometric mean"),
        "{text}"
    );
    assert!(text.contains("GPU:"), "{text}");
}
