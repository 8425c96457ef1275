//! The energy model through the commands: `simulate`, `eval`, `sweep`, `energy-table`, and
//! `--energy-table` / `--savings-chart` on good and bad input.

use crate::util::{TestDir, fixture, json, tiny_model};

fn model(t: &TestDir) {
    tiny_model(t, "m");
}

fn total_nj(r: &serde_json::Value) -> f64 {
    r["energy"]["model"]["total_nj"].as_f64().unwrap()
}

#[test]
fn simulate_reports_energy_per_layer_and_vector() {
    let t = TestDir::new();
    model(&t);
    let r = json(t.run(&["simulate", "m", "--json"]).ok());
    let layers = r["vectors"][0]["layers"].as_array().unwrap();
    let sum: f64 = layers
        .iter()
        .map(|l| l["energy"]["total_nj"].as_f64().unwrap())
        .sum();
    assert!(sum > 0.0);
    assert!((r["vectors"][0]["energy"]["total_nj"].as_f64().unwrap() - sum).abs() < 1e-9 * sum);
    // One vector: the model's mean is that vector's energy.
    assert!((total_nj(&r) - sum).abs() < 1e-9 * sum);
    assert_eq!(r["energy"]["runs"], 1);
    let text = t.run(&["simulate", "m"]).ok().to_string();
    assert!(
        text.contains("energy nJ") && text.contains("savings:"),
        "{text}"
    );
}

/// A constant set to zero removes exactly its component, and the report names the file.
#[test]
fn an_energy_table_overrides_its_constants() {
    let t = TestDir::new();
    model(&t);
    let base = json(t.run(&["simulate", "m", "--json"]).ok());
    t.write(
        "e.toml",
        b"multiply_pj = 0\nclock_mw_per_pe = 0\nlnzd_clock_mw_per_node = 0\n",
    );
    let r = json(
        t.run(&["simulate", "m", "--json", "--energy-table", "e.toml"])
            .ok(),
    );
    let c = &r["energy"]["model"]["components_pj"];
    assert_eq!(c["multiply"], 0.0);
    assert_eq!(c["clock"], 0.0);
    let b = &base["energy"]["model"]["components_pj"];
    let removed = b["multiply"].as_f64().unwrap() + b["clock"].as_f64().unwrap();
    assert!((total_nj(&base) - total_nj(&r) - removed / 1e3).abs() < 1e-9);
    assert_eq!(r["energy"]["table_file"], "e.toml");
    assert_eq!(c["spmat_read"], b["spmat_read"]);
    // The printed defaults read back to the same energies.
    let defaults = t.run(&["energy-table"]).ok().to_string();
    t.write("d.toml", defaults.as_bytes());
    let d = json(
        t.run(&["simulate", "m", "--json", "--energy-table", "d.toml"])
            .ok(),
    );
    assert_eq!(d["energy"]["model"], base["energy"]["model"]);
}

#[test]
fn a_bad_energy_table_is_an_error_naming_the_file_and_key() {
    let t = TestDir::new();
    model(&t);
    for (text, needles) in [
        (
            "multipy_pj = 1\n",
            &["bad.toml", "\"multipy_pj\"", "multiply_pj"][..],
        ),
        ("add_pj = -0.5\n", &["bad.toml", "\"add_pj\"", "at least 0"]),
        ("add_pj = nan\n", &["bad.toml", "\"add_pj\"", "finite"]),
        ("add_pj = \"1\"\n", &["bad.toml", "\"add_pj\"", "string"]),
        ("add_pj =\n", &["bad.toml", "line 1"]),
    ] {
        t.write("bad.toml", text.as_bytes());
        t.run(&["simulate", "m", "--energy-table", "bad.toml"])
            .fails_with(needles);
        t.run(&["bench-paper", "--energy-table", "bad.toml"])
            .fails_with(needles);
    }
    t.run(&["simulate", "m", "--energy-table", "nope.toml"])
        .fails_with(&["nope.toml", "No such file"]);
}

#[test]
fn the_savings_chart_is_written_all_or_nothing_and_never_over_an_input() {
    let t = TestDir::new();
    model(&t);
    t.run(&["simulate", "m", "--savings-chart", "s.svg"]).ok();
    let svg = std::fs::read_to_string(t.path("s.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("weight-shared"),
        "{svg}"
    );
    t.run(&["simulate", "m", "--savings-chart", "s.svg"])
        .fails_with(&["s.svg", "already exists", "--force"]);
    t.run(&["simulate", "m", "--savings-chart", "s.svg", "--force"])
        .ok();
    let before = std::fs::read(t.path("m/model.eie")).unwrap();
    t.run(&["simulate", "m", "--savings-chart", "m/model.eie", "--force"])
        .fails_with(&["model.eie", "an input of this command"]);
    assert_eq!(std::fs::read(t.path("m/model.eie")).unwrap(), before);
    t.write("e.toml", b"add_pj = 1\n");
    t.run(&[
        "bench-paper",
        "--energy-table",
        "e.toml",
        "--savings-chart",
        "e.toml",
        "--force",
    ])
    .fails_with(&["e.toml", "an input of this command"]);
    assert_eq!(std::fs::read(t.path("e.toml")).unwrap(), b"add_pj = 1\n");
    // Not into the model's folder, not over the dataset's files, not into a missing folder;
    // --force means nothing without a chart.
    t.run(&["simulate", "m", "--savings-chart", "m/chart.svg"])
        .fails_with(&["m/chart.svg", "inside m", "an input"]);
    assert!(!t.exists("m/chart.svg"));
    // (Refused before the dataset is read: the files need only exist.)
    t.write("x.idx", b"IDX images");
    t.write("y.idx", b"IDX labels");
    t.run(&[
        "simulate",
        "m",
        "--dataset",
        "idx:x.idx,y.idx",
        "--savings-chart",
        "x.idx",
        "--force",
    ])
    .fails_with(&["x.idx", "an input of this command"]);
    assert_eq!(std::fs::read(t.path("x.idx")).unwrap(), b"IDX images");
    t.run(&["simulate", "m", "--savings-chart", "nope/c.svg"])
        .fails_with(&["nope/c.svg", "does not exist"]);
    t.run(&["simulate", "m", "--force"])
        .usage_error(&["--savings-chart"]);
}

#[test]
fn eval_costs_the_bit_exact_stage_on_every_sample() {
    let t = TestDir::new();
    let model = fixture("demo-mlp.safetensors");
    let m = model.to_str().unwrap();
    t.run(&["compress", m, "-o", "out", "--density", "0.3", "--pes", "8"])
        .ok();
    let eval = |extra: &[&str]| {
        let mut a = vec![
            "eval",
            m,
            "out",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8040",
            "--json",
        ];
        a.extend_from_slice(extra);
        json(t.run(&a).ok())
    };
    let r = eval(&[]);
    assert_eq!(r["energy"]["runs"], 40);
    let layers = r["energy"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    // The same samples through simulate: the same mean energy.
    let s = json(
        t.run(&[
            "simulate",
            "out",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8040",
            "--act-frac",
            &r["act_frac"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
            "--json",
        ])
        .ok(),
    );
    assert_eq!(s["energy"]["model"], r["energy"]["model"]);
    // A timing option changes the energy (a slower clock pays the clock network longer).
    let slow = eval(&["--clock-mhz", "400"]);
    assert!(total_nj(&slow) > total_nj(&r));
    // Energy options need an output folder to evaluate.
    let u = t.run(&[
        "eval",
        m,
        "--dataset",
        "synthetic",
        "--energy-table",
        "x.toml",
    ]);
    u.usage_error(&["--energy-table", "DIR"]);
}

/// Regression (issue 9 review): a value given twice was swept, summed and plotted twice.
#[test]
fn a_sweep_value_given_twice_is_an_error() {
    let t = TestDir::new();
    t.run(&["sweep", "s", "--param", "fifo", "--values", "8,4,8"])
        .fails_with(&["--values", "8 twice"]);
    assert!(!t.exists("s/sweep-fifo.csv"));
}

#[test]
fn sweeps_report_energy_and_where_the_spmat_read_energy_is_lowest() {
    let t = TestDir::new();
    let out = t
        .run(&[
            "sweep",
            "s",
            "--param",
            "spmat-width",
            "--values",
            "32,64,128",
        ])
        .ok()
        .to_string();
    assert!(
        out.contains("Spmat read energy per inference is lowest at:"),
        "{out}"
    );
    assert!(out.contains("all layers together:"), "{out}");
    let csv = std::fs::read_to_string(t.path("s/sweep-spmat-width.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (width, read) = (col("value"), col("spmat_read_nj"));
    // Alex-7: wider lines, fewer reads, each dearer by the width rule.
    let alex7: Vec<(u32, f64)> = csv
        .lines()
        .filter(|l| l.starts_with("Alex-7,"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[width].parse().unwrap(), f[read].parse().unwrap())
        })
        .collect();
    assert_eq!(alex7.len(), 3);
    assert!(alex7.iter().all(|&(_, nj)| nj > 0.0));
    assert!(t.exists("s/sweep-spmat-width-read-energy.svg"));
    // Per value every layer and the total, with every component adding up.
    let energy = std::fs::read_to_string(t.path("s/sweep-spmat-width-energy.csv")).unwrap();
    let rows: Vec<Vec<&str>> = energy
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(
        rows.len(),
        3 * 10,
        "nine layers and the total, three widths"
    );
    for r in &rows {
        let parts: f64 = r[7..].iter().map(|v| v.parse::<f64>().unwrap()).sum();
        let nj: f64 = r[3].parse().unwrap();
        assert!((parts / 1e3 - nj).abs() < 1e-3 * nj.max(1.0), "{r:?}");
    }
    let total64: f64 = rows
        .iter()
        .filter(|r| r[1] == "64" && r[2] != "total")
        .map(|r| r[3].parse::<f64>().unwrap())
        .sum();
    let row64 = rows
        .iter()
        .find(|r| r[1] == "64" && r[2] == "total")
        .unwrap();
    assert!((row64[3].parse::<f64>().unwrap() - total64).abs() < 1e-2);
    assert!(t.exists("s/sweep-spmat-width-energy.svg"));
}
