//! The model as a whole: the header, the totals and their bytes, the table of layers and
//! the recorded settings.

use crate::doc::{Doc, Fmt, esc, token};
use crate::{Result, figure, svg};

/// The title, what made it, and the contents.
pub fn header(d: &Doc) -> Result<String> {
    let mut s = format!(
        "<header><h1>{}</h1><p>Compressed by {} for {} PEs with {}-bit column pointers. Source SHA-256 {}.</p>",
        d.text("/compress/source/name")?,
        d.text("/compress/tool_version")?,
        d.num("/compress/pes", Fmt::Int)?,
        d.num("/compress/pointer_bits", Fmt::Int)?,
        match d.get("/compress/source/sha256") {
            Some(_) => format!("<code>{}</code>", d.text("/compress/source/sha256")?),
            None => "not recorded".into(),
        }
    );
    s += "<nav><a href=\"#summary\">Summary</a>";
    if d.get("/simulation").is_some() {
        s += "<a href=\"#simulation\">Simulation</a>";
    }
    if d.get("/compress/accuracy").is_some() || d.get("/eval").is_some() {
        s += "<a href=\"#accuracy\">Accuracy</a>";
    }
    s += "<a href=\"#layers\">Layers</a><a href=\"#settings\">Settings</a></nav></header>\n";
    Ok(s)
}

/// The totals, as figures and as the bytes chart.
pub fn summary(d: &Doc) -> Result<String> {
    let t = "/compress/totals";
    let mut s = String::from("<section id=\"summary\"><h2>Summary</h2><dl class=\"kv\">");
    let rows: [(&str, String, Fmt); 12] = [
        ("weights", format!("{t}/weights"), Fmt::Int),
        ("kept", format!("{t}/kept"), Fmt::Int),
        ("density", format!("{t}/density"), Fmt::Pct(2)),
        (
            "entries (padding included)",
            format!("{t}/entries"),
            Fmt::Int,
        ),
        ("padding entries", format!("{t}/padding"), Fmt::Int),
        ("padding %", format!("{t}/padding_pct"), Fmt::Fixed(2)),
        ("image bytes", format!("{t}/bytes/total"), Fmt::Int),
        ("dense f32 bytes", format!("{t}/bytes/dense_f32"), Fmt::Int),
        (
            "smaller than dense",
            format!("{t}/compression/vs_dense"),
            Fmt::Times(1),
        ),
        (
            "Deep Compression (p+q) bytes",
            format!("{t}/compression/deep_compression_pq_bytes"),
            Fmt::Int,
        ),
        (
            "Deep Compression (p+q) ratio",
            format!("{t}/compression/deep_compression_pq"),
            Fmt::Times(1),
        ),
        (
            "with Huffman coding",
            format!("{t}/compression/vs_dense_huffman"),
            Fmt::Times(1),
        ),
    ];
    for (label, ptr, fmt) in rows {
        s += &format!("<dt>{label}</dt><dd>{}</dd>", d.num(&ptr, fmt)?);
    }
    s += "</dl>";
    s += &bytes_figure(d, t, "The model's bytes")?;
    Ok(s + "</section>\n")
}

/// The bytes at `base` (a layer or the totals): the images split by kind, against Deep
/// Compression's accounting and dense f32.
pub fn bytes_figure(d: &Doc, base: &str, caption: &str) -> Result<String> {
    let b = |k: &str| d.f64(&format!("{base}/bytes/{k}"));
    let dc = format!("{base}/compression/deep_compression_pq_bytes");
    let rows = vec![
        (
            "EIE images".to_string(),
            vec![
                (b("codes")?, "s0"),
                (b("indices")?, "s1"),
                (b("word_fill")?, "s2"),
                (b("pointers")?, "s3"),
                (b("codebook")?, "s4"),
            ],
            d.tspan(&format!("{base}/bytes/total"), Fmt::Int)?,
        ),
        (
            "Deep Compression (p+q)".to_string(),
            vec![(d.f64(&dc)?, "s5")],
            d.tspan(&dc, Fmt::Int)?,
        ),
        (
            "dense f32".to_string(),
            vec![(b("dense_f32")?, "s6")],
            d.tspan(&format!("{base}/bytes/dense_f32"), Fmt::Int)?,
        ),
    ];
    let svg = svg::bars(caption, &rows, "bytes", false);
    let mut s = figure(
        caption,
        &svg,
        &[
            ("s0", "codes"),
            ("s1", "relative indices"),
            ("s2", "word fill"),
            ("s3", "column pointers"),
            ("s4", "codebook"),
            (
                "s5",
                "Deep Compression: codes and indices, no PEs, no pointers",
            ),
            ("s6", "dense f32"),
        ],
    );
    s += "<div class=\"scroll\"><table class=\"num\"><tr><th>codes</th><th>indices</th><th>word fill</th><th>pointers</th><th>codebook</th><th>total</th></tr><tr>";
    for k in [
        "codes",
        "indices",
        "word_fill",
        "pointers",
        "codebook",
        "total",
    ] {
        s += &d.td(&format!("{base}/bytes/{k}"), Fmt::Int)?;
    }
    Ok(s + "</tr></table></div>")
}

/// Every layer in one table, each linking to its section.
pub fn layer_table(d: &Doc) -> Result<String> {
    let layers = d.arr("/compress/layers")?;
    let simulated = d.get("/simulation/layers").is_some();
    let mut s = String::from(
        "<section id=\"layers\"><h2>Layers</h2><div class=\"scroll\"><table class=\"num\"><thead><tr>\
<th>#</th><th class=\"l\">layer</th><th>rows</th><th>inputs</th><th>density</th><th>entries</th>\
<th>padding %</th><th>bytes</th><th>vs dense</th><th>PE efficiency</th>",
    );
    if simulated {
        s += "<th>cycles</th><th>energy nJ</th>";
    }
    s += "</tr></thead><tbody>";
    for i in 0..layers.len() {
        let l = format!("/compress/layers/{i}");
        s += &format!(
            "<tr><td>{i}</td><td class=\"l\"><a href=\"#layer-{i}\">{}</a></td>",
            d.text(&format!("{l}/name"))?
        );
        for (k, fmt) in [
            ("rows", Fmt::Int),
            ("inputs", Fmt::Int),
            ("pruning/density", Fmt::Pct(2)),
            ("entries", Fmt::Int),
            ("padding_pct", Fmt::Fixed(2)),
            ("bytes/total", Fmt::Int),
            ("compression/vs_dense", Fmt::Times(1)),
            ("entries_per_pe/efficiency", Fmt::Pct(1)),
        ] {
            s += &d.td(&format!("{l}/{k}"), fmt)?;
        }
        if simulated {
            let name = d.str(&format!("{l}/name"))?;
            s += &match d.index_of("/simulation/layers", name) {
                Some(j) => d.td(&format!("/simulation/layers/{j}/cycles"), Fmt::Fixed(1))?,
                None => "<td>-</td>".into(),
            };
            s += &match d.index_of("/simulation/energy/layers", name) {
                Some(j) => d.td(&format!("/simulation/energy/layers/{j}/total_nj"), Fmt::Sig)?,
                None => "<td>-</td>".into(),
            };
        }
        s += "</tr>";
    }
    Ok(s + "</tbody></table></div>")
}

/// model.eie's recorded settings and the tool's version.
pub fn settings(d: &Doc) -> Result<String> {
    let mut s = String::from("<section id=\"settings\"><h2>Settings</h2>");
    match d.get("/settings").and_then(|v| v.as_object()) {
        Some(map) => {
            s += "<p>As <code>model.eie</code> records them.</p><div class=\"scroll\"><table><tbody>";
            for k in map.keys() {
                let ptr = format!("/settings/{}", token(k));
                s += &format!(
                    "<tr><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>",
                    esc(k),
                    d.text(&ptr)?
                );
            }
            s += "</tbody></table></div>";
        }
        None => s += "<p>Not recorded.</p>",
    }
    s += &format!(
        "<p class=\"foot\">Rendered from a report of schema {} written by {}.</p></section>\n",
        d.text("/compress/schema")?,
        d.text("/compress/tool_version")?
    );
    Ok(s)
}
