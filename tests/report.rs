//! The HTML report: compress's report.html and the `report` command's page. Every number
//! on a page must say what its JSON document says (eie_html::check reads the page's text
//! back); the pages are checked in headless Chromium when it is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{TestDir, json, synthetic_mlp};

/// The document compress's report.html shows: report.json and model.eie's settings (as
/// `inspect` reads them).
fn compress_document(t: &TestDir, dir: &str) -> serde_json::Value {
    let report = json(&std::fs::read_to_string(t.path(&format!("{dir}/report.json"))).unwrap());
    let inspect = json(t.run(&["inspect", dir, "--json"]).ok());
    serde_json::json!({ "compress": report, "settings": inspect["settings"] })
}

/// Asserts every tagged number and text of `html` equals `doc`'s, that there are at least
/// `min` of them, and that every figure draws data.
#[track_caller]
fn assert_page_says(html: &str, doc: &serde_json::Value, min: usize) {
    let (bad, n) = eie_html::check::check(html, doc);
    assert!(
        bad.is_empty(),
        "{} of {n} differ: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert!(n >= min, "only {n} numbers tagged");
    let figures: Vec<&str> = html.split("<figure>").skip(1).collect();
    assert!(!figures.is_empty());
    for f in &figures {
        let f = &f[..f.find("</figure>").unwrap()];
        assert!(
            f.contains("class=\"d "),
            "a figure without data: {}",
            &f[..f.len().min(300)]
        );
    }
    // Self-contained: nothing fetched from anywhere.
    for needle in ["src=", "http://", "https://", "@import", "url("] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
}

#[test]
fn compress_writes_a_page_whose_every_number_is_in_report_json() {
    let t = TestDir::new();
    synthetic_mlp(&t, "m.safetensors", 1000, 1);
    let args = |out: &str| {
        t.run(&[
            "compress",
            "m.safetensors",
            "-o",
            out,
            "--density",
            "0.2",
            "--pes",
            "8",
            "--dataset",
            "synthetic",
            "--range",
            "0..200",
        ])
        .ok()
        .to_string()
    };
    let said = args("a");
    assert!(said.contains("report.html"), "{said}");
    let html = std::fs::read_to_string(t.path("a/report.html")).unwrap();
    let doc = compress_document(&t, "a");
    // Per layer at least its name, shape, bytes and codebook: dozens.
    assert_page_says(&html, &doc, 150);
    // The layers' figures and tables, and the accuracy the dataset measured.
    let layers = doc["compress"]["layers"].as_array().unwrap();
    for (i, l) in layers.iter().enumerate() {
        assert!(html.contains(&format!("id=\"layer-{i}\"")));
        assert!(html.contains(&format!("data-k=\"/compress/layers/{i}/bytes/total\"")));
        let h = &l["histogram"];
        let sum = |k: &str| {
            h[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>()
        };
        assert_eq!(sum("before"), l["pruning"]["weights"].as_u64().unwrap());
        assert_eq!(sum("kept"), l["pruning"]["kept"].as_u64().unwrap());
    }
    assert!(html.contains("data-k=\"/compress/accuracy/stages/0/top1\""));
    assert!(html.contains("data-k=\"/settings/pes\""));
    // Deterministic: the same inputs give the same page, byte for byte.
    args("b");
    assert_eq!(
        html,
        std::fs::read_to_string(t.path("b/report.html")).unwrap()
    );
    // A page that lies is caught: one number changed.
    let total = doc["compress"]["totals"]["bytes"]["total"]
        .as_u64()
        .unwrap();
    let lying = html.replacen(
        &format!("data-f=\"i\">{}", eie_html::Fmt::Int.show(total as f64)),
        &format!(
            "data-f=\"i\">{}",
            eie_html::Fmt::Int.show(total as f64 + 1.0)
        ),
        1,
    );
    assert_ne!(lying, html);
    assert!(!eie_html::check::check(&lying, &doc).0.is_empty());
}

#[test]
fn report_adds_the_simulation_and_eval_beside_the_folder() {
    let t = TestDir::new();
    synthetic_mlp(&t, "m.safetensors", 1000, 1);
    t.run(&[
        "compress",
        "m.safetensors",
        "-o",
        "eie",
        "--density",
        "0.2",
        "--pes",
        "8",
    ])
    .ok();
    let before = t.snapshot("eie");
    let out = json(
        t.run(&[
            "report",
            "eie",
            "--dataset",
            "synthetic",
            "--range",
            "1000..1100",
            "--checkpoint",
            "m.safetensors",
            "--json",
        ])
        .ok(),
    );
    let page = PathBuf::from(out["output"].as_str().unwrap());
    assert_eq!(page.file_name().unwrap(), "eie-report.html");
    assert_eq!(
        std::fs::canonicalize(page.parent().unwrap()).unwrap(),
        std::fs::canonicalize(t.path("")).unwrap()
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let doc = &out["document"];
    assert_page_says(&html, doc, 250);
    // The document's compress part is report.json itself.
    assert_eq!(doc["compress"], compress_document(&t, "eie")["compress"]);
    let layers = doc["compress"]["layers"].as_array().unwrap().len();
    assert_eq!(
        doc["simulation"]["layers"].as_array().unwrap().len(),
        layers
    );
    assert_eq!(doc["simulation"]["vectors"], 100);
    // Its means are simulate's figures averaged over the vectors.
    let sim = json(
        t.run(&[
            "simulate",
            "eie",
            "--dataset",
            "synthetic",
            "--range",
            "1000..1100",
            "--json",
        ])
        .ok(),
    );
    for l in 0..layers {
        let runs: Vec<f64> = sim["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["layers"][l]["cycles"].as_f64().unwrap())
            .collect();
        let mean = runs.iter().sum::<f64>() / runs.len() as f64;
        let shown = &doc["simulation"]["layers"][l];
        assert_eq!(shown["cycles"].as_f64().unwrap(), mean);
        assert_eq!(
            shown["cycles_max"].as_f64().unwrap(),
            runs.iter().copied().fold(0.0, f64::max)
        );
    }
    assert_eq!(doc["eval"]["samples"], 100);
    for id in ["id=\"simulation\"", "id=\"accuracy\"", "Savings:"] {
        assert!(html.contains(id), "{id}");
    }
    assert!(html.contains("data-k=\"/simulation/energy/model/total_nj\""));
    assert!(html.contains("data-k=\"/eval/stages/3/top1\""));
    // The folder it read is untouched.
    assert_eq!(before, t.snapshot("eie"));
    // Without a dataset: one generated vector, no eval.
    let r = json(t.run(&["report", "eie", "-o", "gen.html", "--json"]).ok());
    assert!(r["document"].get("eval").is_none());
    assert_eq!(r["document"]["simulation"]["vectors"], 1);
}

#[test]
fn report_of_selected_layers_and_of_an_all_zero_layer() {
    let t = TestDir::new();
    synthetic_mlp(&t, "m.safetensors", 1000, 1);
    t.run(&[
        "compress",
        "m.safetensors",
        "-o",
        "one",
        "--density",
        "0.2",
        "--pes",
        "4",
        "--layers",
        "fc1.weight",
    ])
    .ok();
    // eval is asked for the layers the folder holds, and says why one layer of a network
    // cannot be measured alone.
    t.run(&[
        "report",
        "one",
        "--dataset",
        "synthetic",
        "--range",
        "1000..1050",
        "--checkpoint",
        "m.safetensors",
    ])
    .fails_with(&["fc1.weight", "accuracy needs the whole network"]);
    // A layer of zeros: nothing survives; its figures say so, none is empty.
    t.checkpoint(
        "zero.safetensors",
        &[
            ("fc1.weight", vec![16, 8], vec![0.0; 128]),
            ("fc2.weight", vec![4, 16], crate::util::sparse(4, 16, 3, 5)),
        ],
    );
    t.run(&[
        "compress",
        "zero.safetensors",
        "-o",
        "z",
        "--density",
        "0.5",
        "--pes",
        "4",
    ])
    .ok();
    let html = std::fs::read_to_string(t.path("z/report.html")).unwrap();
    assert_page_says(&html, &compress_document(&t, "z"), 100);
    assert!(html.contains("No weight survives pruning"));
}

#[test]
fn report_shows_a_language_models_perplexity() {
    let Some(data) = crate::util::shakespeare() else {
        return;
    };
    let t = TestDir::new();
    let text = format!("text:{}", data.join("valid.txt").display());
    t.run(&[
        "train",
        "--dataset",
        &text,
        "--range",
        "0..60000",
        "--arch",
        "llama:layers=1,heads=2,kv-heads=1,width=16,context=16,tied=false",
        "--steps",
        "10",
        "--out",
        "lm",
        "-q",
    ])
    .ok();
    t.run(&[
        "compress",
        "lm",
        "-o",
        "c",
        "--density",
        "0.5",
        "--pes",
        "4",
        "-q",
    ])
    .ok();
    let r = json(
        t.run(&[
            "report",
            "c",
            "--dataset",
            &text,
            "--range",
            "60000..61000",
            "--checkpoint",
            "lm",
            "--json",
        ])
        .ok(),
    );
    let doc = &r["document"];
    assert!(doc["eval"]["stages"][0]["perplexity"].as_f64().unwrap() > 1.0);
    // The text is eval's; the simulation ran a generated input.
    assert!(
        doc["simulation"]["input"]
            .as_str()
            .unwrap()
            .contains("generated")
    );
    let html = std::fs::read_to_string(t.path("c-report.html")).unwrap();
    assert_page_says(&html, doc, 200);
    assert!(html.contains("data-k=\"/eval/stages/0/perplexity\""));
}

#[test]
fn report_never_writes_inside_its_inputs_and_replaces_only_its_own_page() {
    let t = TestDir::new();
    crate::util::tiny_model(&t, "eie");
    let before = t.snapshot("eie");
    t.run(&["report", "eie", "-o", "eie/page.html"])
        .fails_with(&["eie/page.html", "input"]);
    t.run(&["report", "eie", "-o", "eie/report.html", "--force"])
        .fails_with(&["eie/report.html", "input"]);
    t.run(&["report", "eie", "-o", "p.html"]).ok();
    t.run(&["report", "eie", "-o", "p.html"])
        .fails_with(&["p.html", "--force"]);
    t.run(&["report", "eie", "-o", "p.html", "--force"]).ok();
    // A file eie-compress did not write is never replaced.
    t.write("notes.html", b"<html>mine</html>");
    t.run(&["report", "eie", "-o", "notes.html", "--force"])
        .fails_with(&["notes.html"]);
    assert_eq!(
        std::fs::read(t.path("notes.html")).unwrap(),
        b"<html>mine</html>"
    );
    // Named by its model.eie, the folder is still an input.
    t.run(&["report", "eie/model.eie", "-o", "eie/x.html"])
        .fails_with(&["eie/x.html", "input"]);
    t.run(&[
        "report",
        "eie/model.eie",
        "-o",
        "eie/report.html",
        "--force",
    ])
    .fails_with(&["eie/report.html", "input"]);
    let named = json(t.run(&["report", "eie/model.eie", "--json"]).ok());
    assert!(
        named["output"]
            .as_str()
            .unwrap()
            .ends_with("eie-report.html"),
        "{named}"
    );
    // --checkpoint needs the samples eval measures on.
    t.run(&["report", "eie", "--checkpoint", "x.safetensors"])
        .usage_error(&["--dataset"]);
    t.run(&["report", "nowhere", "-o", "n.html"])
        .fails_with(&["nowhere", "no such folder"]);
    assert_eq!(before, t.snapshot("eie"));
}

#[test]
fn report_refuses_a_folder_whose_report_json_is_not_its_model() {
    let t = TestDir::new();
    crate::util::tiny_model(&t, "eie");
    let path = t.path("eie/report.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let first = json(&text)["layers"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        &path,
        text.replacen(&format!("\"{first}\""), "\"other\"", 1),
    )
    .unwrap();
    t.run(&["report", "eie", "-o", "p.html"])
        .fails_with(&["report.json", "does not describe"]);
    // Another run's report.json, from the same checkpoint with other settings.
    t.run(&[
        "compress",
        crate::util::fixture("tiny-mlp.safetensors")
            .to_str()
            .unwrap(),
        "-o",
        "other",
        "--density",
        "0.3",
        "--pes",
        "8",
        "--code-bits",
        "3",
    ])
    .ok();
    std::fs::copy(t.path("other/report.json"), &path).unwrap();
    t.run(&["report", "eie", "-o", "p.html"]).fails_with(&[
        "report.json",
        "does not describe",
        "code_bits",
    ]);
    std::fs::write(&path, "{ not json").unwrap();
    t.run(&["report", "eie", "-o", "p.html"])
        .fails_with(&["report.json", "not a report compress wrote"]);
    // pack writes no report.json: report says what it renders.
    std::fs::remove_file(&path).unwrap();
    t.run(&["report", "eie", "-o", "p.html"])
        .fails_with(&["report.json", "output folder of compress"]);
    assert!(!t.exists("p.html"));
}

/// A 127-layer transformer in Hugging Face naming (18 blocks of q, k, v, o, gate, up, down,
/// and lm_head), small matrices: the page's size grows with layers and PEs, not weights.
fn transformer(t: &TestDir) -> PathBuf {
    let (hidden, mlp, vocab) = (64usize, 176usize, 256usize);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.08
    };
    let mut tensors: Vec<(String, Vec<usize>)> = Vec::new();
    for b in 0..18 {
        let p = format!("model.layers.{b}");
        for n in ["q", "k", "v", "o"] {
            tensors.push((
                format!("{p}.self_attn.{n}_proj.weight"),
                vec![hidden, hidden],
            ));
        }
        tensors.push((format!("{p}.mlp.gate_proj.weight"), vec![mlp, hidden]));
        tensors.push((format!("{p}.mlp.up_proj.weight"), vec![mlp, hidden]));
        tensors.push((format!("{p}.mlp.down_proj.weight"), vec![hidden, mlp]));
    }
    tensors.push(("lm_head.weight".into(), vec![vocab, hidden]));
    let data: Vec<(&str, Vec<usize>, Vec<f32>)> = tensors
        .iter()
        .map(|(n, s)| {
            (
                n.as_str(),
                s.clone(),
                (0..s[0] * s[1]).map(|_| next()).collect(),
            )
        })
        .collect();
    t.checkpoint("tf.safetensors", &data)
}

#[test]
fn a_127_layer_transformer_page_stays_a_few_megabytes() {
    let t = TestDir::new();
    transformer(&t);
    t.run(&[
        "compress",
        "tf.safetensors",
        "-o",
        "eie",
        "--density",
        "0.1",
        "--pes",
        "64",
    ])
    .ok();
    let html = std::fs::read_to_string(t.path("eie/report.html")).unwrap();
    let doc = compress_document(&t, "eie");
    assert_eq!(doc["compress"]["layers"].as_array().unwrap().len(), 127);
    assert_page_says(&html, &doc, 127 * 30);
    assert!(html.len() < 5 << 20, "{} bytes", html.len());
    let r = json(t.run(&["report", "eie", "-o", "p.html", "--json"]).ok());
    assert!(r["bytes"].as_u64().unwrap() < 5 << 20, "{}", r["bytes"]);
    let page = std::fs::read_to_string(t.path("p.html")).unwrap();
    assert_page_says(&page, &r["document"], 127 * 35);
    // Layers collapsed, the first open; the long per-layer charts collapsed too.
    assert_eq!(page.matches("<details id=\"layer-").count(), 127);
    assert_eq!(page.matches("<details id=\"layer-0\" open>").count(), 1);
    assert!(page.contains("<details><summary>Cycles per layer: 127 bars"));
}

/// Chromium, if installed (`EIE_CHROMIUM` names another), else `None`, said.
fn chromium() -> Option<String> {
    let name = std::env::var("EIE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    match Command::new(&name).arg("--version").output() {
        Ok(o) if o.status.success() => Some(name),
        _ => {
            eprintln!("SKIPPED: no {name} (Debian's chromium package; .ci/run installs it)");
            None
        }
    }
}

/// What headless Chromium made of a page: its DOM after loading, and the console messages.
fn open(
    browser: &str,
    page: &Path,
    profile: &Path,
    screenshot: Option<&Path>,
) -> (String, Vec<String>) {
    let url = format!("file://{}", std::fs::canonicalize(page).unwrap().display());
    let base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
    ];
    let profile = format!("--user-data-dir={}", profile.display());
    let out = Command::new(browser)
        .args(base)
        .arg(&profile)
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect();
    if let Some(png) = screenshot {
        let shot = Command::new(browser)
            .args(base)
            .arg(&profile)
            .arg(format!("--screenshot={}", png.display()))
            .args(["--window-size=1200,1800", &url])
            .output()
            .unwrap();
        assert!(
            shot.status.success() && png.is_file(),
            "{}",
            String::from_utf8_lossy(&shot.stderr)
        );
    }
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
fn the_demo_pages_open_in_chromium_with_every_figure_drawn_and_no_console_error() {
    let Some(browser) = chromium() else { return };
    let t = TestDir::new();
    t.run(&["--quiet", "demo", "-o", "demo"]).ok();
    let profile = t.path("profile");
    // The check sees a console error: a page that logs one is caught.
    t.write(
        "bad.html",
        b"<!DOCTYPE html><script>console.error('broken')</script>",
    );
    let (_, console) = open(&browser, &t.path("bad.html"), &profile, None);
    assert!(console.iter().any(|l| l.contains("broken")), "{console:?}");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let full = json(
        t.run(&[
            "report",
            "demo/eie",
            "-o",
            "full.html",
            "--dataset",
            "synthetic",
            "--range",
            "8000..8100",
            "--checkpoint",
            "demo/demo-mlp.safetensors",
            "--json",
        ])
        .ok(),
    );
    // The demo's own page, rendered again with its step's arguments: the same bytes, and
    // so the same document.
    let again = json(
        t.run(&[
            "report",
            "demo/eie",
            "-o",
            "again.html",
            "--dataset",
            "synthetic",
            "--range",
            "8000..10000",
            "--checkpoint",
            "demo/demo-mlp.safetensors",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(
        std::fs::read(t.path("again.html")).unwrap(),
        std::fs::read(t.path("demo/report.html")).unwrap()
    );
    for (page, doc, png) in [
        (
            t.path("demo/eie/report.html"),
            compress_document(&t, "demo/eie"),
            "demo-compress.png",
        ),
        (
            t.path("demo/report.html"),
            again["document"].clone(),
            "demo-report.png",
        ),
        (t.path("full.html"), full["document"].clone(), "report.png"),
    ] {
        let (dom, console) = open(&browser, &page, &profile, Some(&shots.join(png)));
        assert!(console.is_empty(), "{}: {console:?}", page.display());
        // The DOM the browser built says what the document says, every figure drawn.
        assert_page_says(&dom, &doc, 200);
        let figures = dom.matches("<figure>").count();
        assert!(figures >= 6, "{figures} figures in {}", page.display());
        eprintln!(
            "{}: {figures} figures; screenshot {}",
            page.display(),
            shots.join(png).display()
        );
    }
}
