#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use serde_json::Value;

mod accuracy;
pub mod check;
mod doc;
mod layer;
mod model;
mod simulation;
pub mod svg;

pub use doc::{Doc, Fmt, esc, token};

/// How the page starts: by this `--force` knows a report.html eie-compress wrote.
pub const MARK: &str = "<!DOCTYPE html>\n<!-- eie-compress report -->";

/// What can go wrong rendering a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document lacks a field the page shows, or holds another type there (a report
    /// written by another version, or edited).
    #[error(
        "{pointer} in the report is not {expected} (a report.json of an older eie-compress, or edited: compress again)"
    )]
    Field {
        /// The JSON pointer of the field.
        pointer: String,
        /// What was expected there.
        expected: &'static str,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The page of `doc`: an object holding `compress` (compress's report.json) and, when known,
/// `settings` (model.eie's recorded settings, strings), `simulation` (the summary
/// `eie-compress report` makes of a simulation) and `eval` (eval's report). One HTML file:
/// inline CSS and SVG, no network, a line of script that opens every layer for printing.
pub fn render(doc: &Value) -> Result<String> {
    let d = Doc::new(doc);
    let name = d.str("/compress/source/name")?;
    let mut body = String::new();
    body += &model::header(&d)?;
    body += &model::summary(&d)?;
    body += &simulation::section(&d)?;
    body += &accuracy::section(&d)?;
    body += &model::layer_table(&d)?;
    body += &layer::all(&d)?;
    body += &model::settings(&d)?;
    Ok(format!(
        "{MARK}\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} - eie-compress report</title><style>{}</style></head>\n<body>\n{body}\
<script>addEventListener('beforeprint',()=>document.querySelectorAll('details').forEach(e=>e.open=true))</script>\
\n</body></html>\n",
        esc(name),
        include_str!("style.css")
    ))
}

/// A figure: caption, chart, legend (`(class, label)` swatches).
pub(crate) fn figure(caption: &str, svg: &str, legend: &[(&str, &str)]) -> String {
    let mut s = format!("<figure><figcaption>{}</figcaption>{svg}", esc(caption));
    if !legend.is_empty() {
        s += "<div class=\"legend\">";
        for (class, label) in legend {
            s += &format!("<span><i class=\"{class}\"></i>{}</span>", esc(label));
        }
        s += "</div>";
    }
    s + "</figure>"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A report of one layer of 4 PEs, named `name`, as compress writes it (the fields the
    /// page reads), with a simulation and an eval when asked.
    fn doc(name: &str, simulated: bool) -> Value {
        let layer = json!({
            "name": name, "rows": 8, "inputs": 4,
            "pruning": {"rule": "density 0.5", "weights": 32, "nonzeros_before": 32, "kept": 16,
                        "density": 0.5, "threshold": 0.25},
            "balance": null,
            "quantization": {"method": "k-means, linear init", "code_bits": 2,
                             "centroids": [-0.5, 0.25, 0.75], "clustered": 16, "sse": 0.01,
                             "code_counts": [2, 5, 6, 5]},
            "index_bits": 4, "nonzeros": 16, "entries": 18, "padding": 2, "padding_pct": 11.11,
            "bytes": {"spmat": 16, "codes": 4, "indices": 9, "word_fill": 3, "pointers": 40,
                      "codebook": 8, "total": 64, "dense_f32": 128},
            "compression": {"vs_dense": 2.0, "deep_compression_pq_bytes": 30,
                            "deep_compression_pq": 4.27, "huffman_bytes": 60, "vs_dense_huffman": 2.13},
            "entries_per_pe": {"min": 3.0, "mean": 4.5, "max": 6.0, "imbalance": 1.333, "efficiency": 0.75},
            "entries_by_pe": [3, 4, 5, 6],
            "histogram": {"limit": 1.0, "before": [1, 2, 3, 4, 4, 3, 2, 1], "kept": [1, 2, 0, 0, 0, 0, 2, 1]}
        });
        let mut d = json!({
            "compress": {
                "schema": "eie-compress.compress.v1", "tool_version": "eie-compress 0.1.0",
                "source": {"name": "m.safetensors", "sha256": "ab"}, "pes": 4, "pointer_bits": 16,
                "layers": [layer],
                "totals": {"weights": 32, "kept": 16, "density": 0.5, "nonzeros": 16, "entries": 18,
                           "padding": 2, "padding_pct": 11.11,
                           "bytes": {"spmat": 16, "codes": 4, "indices": 9, "word_fill": 3, "pointers": 40,
                                     "codebook": 8, "total": 64, "dense_f32": 128},
                           "compression": {"vs_dense": 2.0, "deep_compression_pq_bytes": 30,
                                           "deep_compression_pq": 4.27, "huffman_bytes": 60,
                                           "vs_dense_huffman": 2.13}}
            },
            "settings": {"pes": "4", "a/b~c": "x"}
        });
        if simulated {
            let energy = json!({"total_nj": 1.5, "power_mw": 10.0, "pj_per_mac": 20.0,
                                "inferences_per_joule": 6.6e8,
                                "components_pj": {"clock": 500.0, "spmat_read": 1000.0}});
            d["simulation"] = json!({
                "input": "a generated input", "vectors": 1, "clock_mhz": 800.0, "pes": 4,
                "cycles": 12.0, "time_us": 0.015,
                "layers": [{"name": name, "cycles": 12.0, "cycles_max": 12, "time_us": 0.015,
                            "load_efficiency": 0.7, "macs": 18.0}],
                "energy": {"layers": [{"name": name, "total_nj": 1.5, "pj_per_mac": 20.0,
                                       "components_pj": {"clock": 500.0, "spmat_read": 1000.0}}],
                           "model": energy,
                           "model_savings": {"steps": [{"name": "dense f32 weights from DRAM", "energy_pj": 1e5, "factor": 1.0},
                                                       {"name": "pruned", "energy_pj": 5e4, "factor": 2.0}],
                                             "model_pj": 1500.0, "actual": 66.7}}
            });
            d["eval"] = json!({"dataset": "synthetic:0", "samples": 10, "stages": [
                {"stage": "original (float)", "density": 1.0, "top1": 0.9, "correct": 9, "total": 10, "delta_pct": 0.0},
                {"stage": "EIE bit-exact (images)", "density": 0.5, "top1": 0.8, "correct": 8, "total": 10, "delta_pct": -10.0}
            ]});
        }
        d
    }

    #[test]
    fn every_number_on_the_page_is_the_documents() {
        for simulated in [false, true] {
            let d = doc("fc1.weight", simulated);
            let html = render(&d).unwrap();
            assert!(html.starts_with(MARK));
            let (bad, n) = check::check(&html, &d);
            assert!(bad.is_empty(), "{bad:?}");
            assert!(n > if simulated { 110 } else { 70 }, "{n}");
            assert_eq!(html.contains("id=\"simulation\""), simulated);
            // Every figure draws data.
            for f in html.split("<figure>").skip(1) {
                assert!(f[..f.find("</figure>").unwrap()].contains("class=\"d "));
            }
        }
    }

    #[test]
    fn a_hostile_layer_name_is_text_not_markup() {
        let name = "</title><script>alert(1)</script>\"'&";
        let d = doc(name, true);
        let html = render(&d).unwrap();
        assert!(!html.contains("<script>alert"), "the name became markup");
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "only the page's own line"
        );
        let (bad, _) = check::check(&html, &d);
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn a_missing_field_is_named_not_a_panic() {
        let mut d = doc("fc1.weight", true);
        d["compress"]["layers"][0]["bytes"]
            .as_object_mut()
            .unwrap()
            .remove("codes");
        let e = render(&d).unwrap_err().to_string();
        assert!(e.contains("/compress/layers/0/bytes/codes"), "{e}");
        d["compress"]["layers"] = json!("not a list");
        let e = render(&d).unwrap_err().to_string();
        assert!(
            e.contains("/compress/layers") && e.contains("an array"),
            "{e}"
        );
    }

    #[test]
    fn edited_extremes_render_without_a_panic() {
        let mut d = doc("fc1.weight", true);
        d["compress"]["layers"][0]["histogram"]["limit"] = json!(5e-324);
        d["simulation"]["energy"]["model_savings"]["steps"][0]["energy_pj"] = json!(1.7e308);
        d["compress"]["layers"][0]["entries_by_pe"] = json!([0, 0, 0, 0]);
        let html = render(&d).unwrap();
        assert!(check::check(&html, &d).0.is_empty());
    }

    #[test]
    fn a_layer_without_its_weights_before_pruning_shows_its_survivors() {
        let mut d = doc("lstm", false);
        d["compress"]["layers"][0]["histogram"]["before"] = Value::Null;
        let html = render(&d).unwrap();
        assert!(html.contains("no one tensor"));
        assert!(check::check(&html, &d).0.is_empty());
    }
}
