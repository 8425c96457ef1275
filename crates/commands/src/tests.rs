//! Every command's library run, called without a process: the reports hold what the tool
//! prints, the JSON names its schema, and refusals are error variants naming the option.

use std::path::{Path, PathBuf};

use eie_dataset::{SampleRange, Spec};

use crate::inspect::Pes;
use crate::report::to_json;
use crate::{
    DatasetRequest, Error, InputRequest, LinePlot, NoCharts, Quiet, Source, Value, bench_paper,
    compress, demo, energy_table, eval, inspect, pack, rtl_check, simulate, sweep, train, unpack,
    vectors, verify,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// Draws every chart as a line of text naming it, so the files a command writes can be
/// checked without plotters.
struct TextCharts;

impl crate::Draw for TextCharts {
    fn waterfall(&self, title: &str, _: &eie_energy::Savings) -> crate::Result<String> {
        Ok(format!("<svg>{title}</svg>"))
    }

    fn lines(&self, plot: &LinePlot) -> crate::Result<String> {
        Ok(format!(
            "<svg>{} ({} series)</svg>",
            plot.y_label,
            plot.series.len()
        ))
    }
}

/// The paper's Figure 2 matrix packed for 4 PEs into `dir/fig2`.
fn figure2(dir: &Path) -> PathBuf {
    let out = dir.join("fig2");
    let mut r = pack::Request::new(fixture("figure2.safetensors"), &out);
    r.pes = 4;
    r.run(&Quiet).unwrap();
    out
}

/// The gaussian MLP fixture compressed to 9% for 4 PEs into `dir/mlp`.
fn mlp(dir: &Path) -> (PathBuf, compress::Report) {
    let out = dir.join("mlp");
    let mut r = compress::Request::new(fixture("mlp-gaussian.safetensors"), &out);
    r.pes = 4;
    r.settings.push(("density".into(), Value::Float(0.09)));
    let report = r.resolve().unwrap().run(&Quiet).unwrap();
    (out, report)
}

fn synthetic(range: (usize, usize)) -> DatasetRequest {
    DatasetRequest {
        range: Some(SampleRange::new(range.0, range.1)),
        ..DatasetRequest::new("synthetic".parse::<Spec>().unwrap())
    }
}

#[test]
fn pack_then_inspect_shows_figure_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fig2");
    let mut r = pack::Request::new(fixture("figure2.safetensors"), &out);
    r.pes = 4;
    let packed = r.run(&Quiet).unwrap();
    assert_eq!(packed.files, 18);
    assert_eq!(packed.model.layers.len(), 1);
    assert_eq!(packed.model.totals().nonzeros, 43);
    assert!(
        packed.model.layers[0].pe.is_empty(),
        "a summary lists no arrays"
    );

    let shown = inspect::Request {
        dir: out.clone(),
        layer: None,
        pes: Pes::One(0),
    }
    .run()
    .unwrap();
    let pe0 = &shown.layers[0].pe[0];
    // The paper's Figure 3, PE0.
    assert_eq!(pe0.codes, [1, 9, 13, 6, 3, 15, 5, 9, 6, 3, 7, 1, 5]);
    assert_eq!(pe0.z, [0, 1, 0, 1, 0, 2, 0, 0, 0, 2, 0, 2, 0]);
    assert_eq!(pe0.ptr, [0, 3, 4, 6, 6, 8, 10, 11, 13]);
    let json = to_json(&shown).unwrap();
    assert!(
        json.starts_with("{\n  \"schema\": \"eie-compress.inspect.v1\",\n"),
        "{json}"
    );

    let e = inspect::Request {
        dir: out,
        layer: None,
        pes: Pes::One(4),
    }
    .run()
    .unwrap_err();
    assert!(
        matches!(e, Error::Option { ref option, .. } if option == "--pe 4"),
        "{e}"
    );
}

#[test]
fn verify_agrees_then_names_a_changed_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = figure2(dir.path());
    let ok = verify::Request { dir: out.clone() }.run().unwrap();
    assert_eq!((ok.layers, ok.files), (1, 18));
    let image = out.join("images/000-fig2.weight/pe00.spmat.bin");
    let mut bytes = std::fs::read(&image).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&image, bytes).unwrap();
    let e = verify::Request { dir: out }.run().unwrap_err().to_string();
    assert!(e.contains("pe00.spmat.bin"), "{e}");
    let e = verify::Request {
        dir: fixture("figure2.safetensors"),
    }
    .run()
    .unwrap_err();
    assert!(e.to_string().contains("not a valid bundle"), "{e}");
}

#[test]
fn unpack_writes_every_tensor_and_never_over_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = figure2(dir.path());
    let file = dir.path().join("dense.safetensors");
    let r = unpack::Request {
        dir: out.clone(),
        out: file.clone(),
        force: false,
    }
    .run()
    .unwrap();
    assert_eq!(r.tensors, 1);
    assert!(file.is_file());
    let e = unpack::Request {
        dir: out.clone(),
        out: out.join("model.eie"),
        force: true,
    }
    .run()
    .unwrap_err();
    assert!(e.to_string().contains("input"), "{e}");
}

#[test]
fn compress_reports_and_records_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = mlp(dir.path());
    let t = &report.report.totals;
    assert!(t.density > 0.08 && t.density < 0.1, "{}", t.density);
    assert_eq!(report.report.layers.len(), 3);
    assert_eq!(report.written.out, out);
    assert!(report.accuracy.is_none() && report.model.is_none());
    // report.json is the report, schema first.
    let written = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert_eq!(written, to_json(&report).unwrap());
    assert!(written.starts_with("{\n  \"schema\": \"eie-compress.compress.v1\","));
    // The bundle records how it was made, in keys the checker accepts.
    let model = crate::PackedModel::load(&out).unwrap();
    assert_eq!(model.settings()["command"], "compress");
    assert_eq!(model.settings()["pes"], "4");
    eie_pipeline::check_provenance(&model.bundle).unwrap();
}

#[test]
fn compress_refuses_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let request = || compress::Request::new(fixture("mlp-gaussian.safetensors"), &out);
    let mut r = request();
    r.act_frac = vec![14, 14, 14, 14];
    let e = r.resolve().err().unwrap();
    assert!(
        matches!(
            e,
            Error::NotApplicable {
                option: "--act-frac",
                ..
            }
        ),
        "{e}"
    );
    let mut r = request();
    r.conv_on_eie = true;
    let e = r.resolve().err().unwrap();
    assert!(
        matches!(
            e,
            Error::NotApplicable {
                option: "--conv-on-eie",
                ..
            }
        ),
        "{e}"
    );
    let mut r = request();
    r.settings.push(("density".into(), Value::Float(1.5)));
    let e = r.resolve().err().unwrap().to_string();
    assert!(
        e.starts_with("command line: ") && e.contains("density"),
        "{e}"
    );
    let mut r = request();
    r.settings
        .push(("no_such_setting".into(), Value::Switch(true)));
    let e = r.resolve().err().unwrap().to_string();
    assert!(e.contains("no_such_setting"), "{e}");
    let e = compress::Request::new(dir.path().join("missing.safetensors"), &out)
        .resolve()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.safetensors"), "{e}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn simulate_reports_per_layer_totals_that_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = mlp(dir.path());
    let mut r = simulate::Request::new(&out);
    r.input = InputRequest {
        source: Source::Generated {
            density: 0.5,
            seed: 3,
        },
        act_frac: Vec::new(),
    };
    let report = r.run(&NoCharts).unwrap();
    let simulate::Report::Chain(chain) = &report else {
        panic!("an MLP is a chain")
    };
    assert_eq!(chain.mode, "chained");
    let layers = chain.layer_totals();
    assert_eq!(layers.len(), 3);
    let total = chain.total();
    assert_eq!(total.cycles, layers.iter().map(|l| l.cycles).sum::<u64>());
    assert_eq!(total.cycles as f64, report.cycles_per_inference());
    assert!(total.load_efficiency > 0.0 && total.load_efficiency <= 1.0);
    assert!(report.energy().model.total_nj > 0.0);
    // A chart needs a drawer; the check comes before any work.
    r.chart.path = Some(dir.path().join("s.svg"));
    let e = r.run(&NoCharts).unwrap_err();
    assert!(matches!(e, Error::Draw { .. }), "{e}");
    assert!(!dir.path().join("s.svg").exists());
    let written = r.run(&TextCharts).unwrap();
    assert_eq!(
        written.cycles_per_inference(),
        report.cycles_per_inference()
    );
    assert!(
        std::fs::read_to_string(dir.path().join("s.svg"))
            .unwrap()
            .contains("mlp-gaussian")
    );
    r.chart.path = None;
    r.pes = Some(3);
    let e = r.run(&TextCharts).unwrap_err();
    assert!(
        matches!(
            e,
            Error::PesFixed {
                packed: 4,
                given: 3
            }
        ),
        "{e}"
    );
}

#[test]
fn vectors_write_one_set_per_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = mlp(dir.path());
    let request = |into: PathBuf| vectors::Request {
        dir: out.clone(),
        out: into,
        layer: None,
        force: false,
        input: InputRequest::default(),
        timing: Default::default(),
        arith: Default::default(),
        max_memory: crate::DEFAULT_MAX_MEMORY,
    };
    let r = request(dir.path().join("vec")).run().unwrap();
    assert_eq!(r.layers, 3);
    assert!(r.files > 0 && dir.path().join("vec/manifest.json").is_file());
    let e = request(out.clone()).run().unwrap_err();
    assert!(e.to_string().contains("write them elsewhere"), "{e}");
}

#[test]
fn train_then_eval_measure_the_same_network() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("t.safetensors");
    let trained = train::Request {
        data: synthetic((0, 400)),
        eval_range: Some(SampleRange::new(400, 500)),
        arch: "64-16-10".into(),
        settings: train::Settings {
            epochs: Some(2),
            ..Default::default()
        },
        out: model.clone(),
        force: false,
        context: None,
    }
    .run(&Quiet)
    .unwrap();
    let train::Trained::Classifier(trained) = trained else {
        panic!("a classifier")
    };
    let held = trained.held_out.as_ref().unwrap();
    assert_eq!(held.accuracy.total, 100);
    let evaluated = eval::Request {
        model: model.clone(),
        dir: None,
        data: synthetic((400, 500)),
        arch: None,
        layers: Vec::new(),
        act_frac: Vec::new(),
        arith: Default::default(),
        timing: Default::default(),
        energy: Default::default(),
        context: None,
        stride: None,
    }
    .run()
    .unwrap();
    assert_eq!(evaluated.stages.len(), 1);
    assert_eq!(evaluated.stages[0].correct, held.accuracy.correct);
    assert!(
        to_json(&evaluated)
            .unwrap()
            .contains("\"schema\": \"eie-compress.eval.v1\"")
    );
}

#[test]
fn sweep_writes_its_csvs_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = mlp(dir.path());
    let request = sweep::Request {
        dir: dir.path().join("sw"),
        param: eie_simulate::sweep::Param::Fifo,
        values: vec![2, 8],
        model: Some(out),
        act_density: 1.0,
        seed: 1,
        column_batch: Default::default(),
        force: false,
        timing: Default::default(),
        energy: Default::default(),
        max_memory: crate::DEFAULT_MAX_MEMORY,
    };
    let r = request.run(&TextCharts).unwrap();
    assert_eq!(r.points.len(), 3 * 2);
    assert_eq!(r.files.len(), 4);
    for f in &r.files {
        assert!(f.is_file(), "{}", f.display());
    }
    // Deeper queues never take more cycles.
    for l in &r.layers {
        let at = |v: u32| {
            r.points
                .iter()
                .find(|p| &p.layer == l && p.value == v)
                .unwrap()
                .cycles
        };
        assert!(at(8) <= at(2), "{l}");
    }
    let mut twice = request.clone();
    twice.dir = dir.path().join("sw2");
    twice.values = vec![4, 4];
    let e = twice.run(&TextCharts).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Repeated {
                option: "--values",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn bench_paper_runs_the_nine_layers() {
    let r = bench_paper::Request {
        pes: 16,
        ..bench_paper::Request::default()
    }
    .run(&NoCharts)
    .unwrap();
    assert_eq!(r.layers.len(), 9);
    assert_eq!(r.layers[0].result.name, "Alex-6");
    assert!(r.total.energy.total_nj > 0.0);
}

#[test]
fn energy_table_round_trips_through_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = energy_table::EnergyTable::default().run().unwrap();
    let file = dir.path().join("e.toml");
    std::fs::write(&file, &text).unwrap();
    let again = energy_table::EnergyTable { file: Some(file) }
        .run()
        .unwrap();
    let values = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .map(str::to_string)
            .collect()
    };
    assert!(!values(&text).is_empty());
    assert_eq!(values(&again), values(&text));
}

#[test]
fn rtl_check_refuses_a_model_file_before_any_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let out = figure2(dir.path());
    let e = rtl_check::Request {
        dir: out.join("model.eie"),
        simulator: eie_rtl::Simulator::Iverilog,
        work: None,
        host_load: false,
        input: InputRequest::default(),
        timing: Default::default(),
        arith: Default::default(),
    }
    .run()
    .unwrap_err();
    assert!(e.to_string().contains("is not a model folder"), "{e}");
}

#[test]
fn rtl_check_reports_a_verdict() {
    if std::process::Command::new("iverilog")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipping rtl_check_reports_a_verdict: iverilog is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = figure2(dir.path());
    let r = rtl_check::Request {
        dir: out,
        simulator: eie_rtl::Simulator::Iverilog,
        work: None,
        host_load: false,
        input: InputRequest::default(),
        timing: Default::default(),
        arith: Default::default(),
    }
    .run()
    .unwrap();
    r.verdict().unwrap();
    assert!(r.pass && r.layers.len() == 1);
    assert_eq!(r.layers[0].rtl_cycles, Some(r.layers[0].model_cycles));
}

#[test]
fn demo_prepares_its_folder_and_keeps_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let d = demo::Request { out: out.clone() }.prepare().unwrap();
    assert_eq!(d.steps.len(), 5);
    assert_eq!(d.steps[0].argv[0], "compress");
    // The last step renders the report page beside the compressed folder.
    assert_eq!(
        d.steps[4].argv[..2],
        ["report".to_string(), d.eie.display().to_string()]
    );
    assert_eq!(
        std::fs::read(out.join("demo-mlp.safetensors")).unwrap(),
        demo::MODEL
    );
    drop(d);
    // A second run replaces its own files; an edited recipe is not its own.
    demo::Request { out: out.clone() }.prepare().unwrap();
    std::fs::write(out.join("recipe.toml"), "# mine\n").unwrap();
    let e = demo::Request { out: out.clone() }.prepare().unwrap_err();
    assert!(e.to_string().contains("recipe.toml"), "{e}");
    assert_eq!(
        std::fs::read_to_string(out.join("recipe.toml")).unwrap(),
        "# mine\n"
    );
    // A page of the user's where the last step writes stops the demo before any work.
    std::fs::write(out.join("recipe.toml"), demo::RECIPE).unwrap();
    std::fs::write(out.join("report.html"), "<p>mine</p>").unwrap();
    let e = demo::Request { out: out.clone() }.prepare().unwrap_err();
    assert!(e.to_string().contains("report.html"), "{e}");
}

/// What the command line's parser refuses, a library caller's plain request is refused for
/// too, before any file is opened (the paths here do not exist).
#[test]
fn requests_are_checked_without_files() {
    let nowhere = Path::new("/nonexistent/eie");
    let option = |e: Error| match e {
        Error::Option { option, .. } => option,
        Error::NotApplicable { option, .. } => option.to_string(),
        other => panic!("not an option's error: {other}"),
    };
    let compress = || compress::Request::new(nowhere.join("m.safetensors"), nowhere.join("out"));
    let mut r = compress();
    r.pes = 0;
    assert_eq!(option(r.check().unwrap_err()), "--pes");
    let mut r = compress();
    r.fit.pointer_bits = 8;
    assert_eq!(option(r.check().unwrap_err()), "--pointer-bits");
    let mut r = compress();
    r.fit.capacity.spmat_bytes = 1500;
    assert_eq!(option(r.check().unwrap_err()), "--spmat-kib");
    let mut r = compress();
    r.retrain = true;
    assert_eq!(option(r.check().unwrap_err()), "--retrain");
    let mut r = compress();
    r.retraining.push(("epochs".into(), Value::Int(3)));
    assert_eq!(option(r.check().unwrap_err()), "--epochs");
    let mut r = compress();
    r.eval_range = Some(SampleRange::new(0, 10));
    assert_eq!(option(r.check().unwrap_err()), "--eval-range");
    let mut r = compress();
    r.arith.acc_bits = 13;
    assert!(r.check().unwrap_err().to_string().contains("13"));

    let mut s = simulate::Request::new(nowhere);
    s.input.source = Source::Generated {
        density: 1.5,
        seed: 0,
    };
    assert!(s.check().unwrap_err().to_string().contains("1.5"));
    let mut s = simulate::Request::new(nowhere);
    s.timing.fifo_depth = 0;
    assert!(s.check().is_err());

    let sweep = sweep::Request {
        dir: nowhere.to_path_buf(),
        param: eie_simulate::sweep::Param::Pes,
        values: Vec::new(),
        model: None,
        act_density: 1.0,
        seed: 0,
        column_batch: Default::default(),
        force: false,
        timing: Default::default(),
        energy: Default::default(),
        max_memory: crate::DEFAULT_MAX_MEMORY,
    };
    // The folder check comes first; an existing parent keeps it out of the way.
    let dir = tempfile::tempdir().unwrap();
    let e = sweep::Request {
        dir: dir.path().join("sw"),
        ..sweep
    }
    .run(&NoCharts)
    .unwrap_err();
    assert_eq!(option(e), "--values");

    let e = eval::Request {
        model: nowhere.join("m.safetensors"),
        dir: None,
        data: synthetic((0, 10)),
        arch: None,
        layers: Vec::new(),
        act_frac: vec![14, 14],
        arith: Default::default(),
        timing: Default::default(),
        energy: Default::default(),
        context: None,
        stride: None,
    }
    .check()
    .unwrap_err();
    assert_eq!(option(e), "--act-frac");
}

#[test]
fn simulate_on_a_loaded_model_with_vectors_in_memory_is_simulate_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = mlp(dir.path());
    let x: Vec<f32> = (0..128).map(|i| (i as f32 / 64.0) - 1.0).collect();
    let file = dir.path().join("x.safetensors");
    let mut w = eie_checkpoint::Writer::create(
        &file,
        &Default::default(),
        &[("x".into(), safetensors::Dtype::F32, vec![1, 128])],
    )
    .unwrap();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    w.write_tensor(&bytes).unwrap();
    w.finish().unwrap();

    let mut from_file = simulate::Request::new(&out);
    from_file.input.source = Source::File {
        path: file,
        tensor: None,
    };
    let want = to_json(&from_file.run(&NoCharts).unwrap()).unwrap();
    let model = crate::PackedModel::load(&out).unwrap();
    let mut in_memory = simulate::Request::new("not read");
    in_memory.input.source = Source::Vectors(vec![x.clone()]);
    let got = to_json(&in_memory.run_on(&model, &NoCharts).unwrap()).unwrap();
    assert_eq!(got, want);
    // A vector of the wrong width is refused, naming the width the layer takes.
    in_memory.input.source = Source::Vectors(vec![x, vec![0.0; 3]]);
    let e = in_memory.run_on(&model, &NoCharts).unwrap_err();
    assert!(e.to_string().contains("input vector 1 has 3 values"), "{e}");
}

#[test]
fn rtl_check_plans_without_a_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let out = figure2(dir.path());
    let model = crate::PackedModel::load(&out).unwrap();
    let r = rtl_check::Request {
        dir: out.clone(),
        simulator: eie_rtl::Simulator::Iverilog,
        work: None,
        host_load: false,
        input: InputRequest::default(),
        timing: eie_simulate::TimingParams::default(),
        arith: eie_simulate::Arith::default(),
    };
    let planned = r.plan(&model).unwrap();
    assert_eq!(planned.design.params.n_pe, 4);
    assert_eq!(planned.design.descriptors.len(), 1);
    assert_eq!(planned.runs.len(), 1);
    assert_eq!(planned.runs[0].step.timing.cycles, 19);
}

#[test]
fn copy_output_publishes_a_copy_and_never_over_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = figure2(dir.path());
    let model = crate::PackedModel::load(&out).unwrap();
    let copy = dir.path().join("copy");
    let files = crate::packed::copy_output(&model, &copy, false).unwrap();
    assert!(files >= 4, "{files}");
    crate::PackedModel::load(&copy).unwrap();
    let e = crate::packed::copy_output(&model, &copy, false).unwrap_err();
    assert!(e.to_string().contains("force"), "{e}");
    crate::packed::copy_output(&model, &copy, true).unwrap();
    // The folder itself, and a folder inside it, are inputs.
    assert!(crate::packed::copy_output(&model, &out, true).is_err());
    assert!(crate::packed::copy_output(&model, &out.join("images"), true).is_err());
    assert!(out.join("model.eie").is_file());
    // An image changed since the model was loaded is refused, nothing copied.
    let image = std::fs::read_dir(out.join("images"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "hex"))
        .unwrap();
    std::fs::write(&image, "0000\n").unwrap();
    let elsewhere = dir.path().join("elsewhere");
    assert!(crate::packed::copy_output(&model, &elsewhere, false).is_err());
    assert!(!elsewhere.exists());
}

#[test]
fn one_line_joins_the_causes_it_does_not_already_show() {
    let e = Error::Io {
        what: "cannot read",
        path: "/x".into(),
        source: std::io::Error::other("disk on fire"),
    };
    let line = crate::one_line(&e);
    assert!(
        line.contains("/x") && line.ends_with("disk on fire"),
        "{line}"
    );
    assert_eq!(line.matches("disk on fire").count(), 1, "{line}");
}
