//! One section per layer, collapsed: its figures, its weight distribution before and after,
//! its codebook, its PEs' load and, when simulated, its cycles and energy.

use crate::doc::{Doc, Fmt};
use crate::svg::{self, Mark};
use crate::{Result, figure, model, simulation};

/// Every layer's section, closing the layers' part of the page.
pub fn all(d: &Doc) -> Result<String> {
    let n = d.arr("/compress/layers")?.len();
    let mut s = String::from(
        "<p class=\"hint\">Each layer below opens on a click; printing opens them all.</p>",
    );
    for i in 0..n {
        s += &one(d, i)?;
    }
    Ok(s + "</section>\n")
}

fn one(d: &Doc, i: usize) -> Result<String> {
    let l = format!("/compress/layers/{i}");
    let p = |k: &str| format!("{l}/{k}");
    let name = d.str(&p("name"))?;
    let mut s = format!(
        "<details id=\"layer-{i}\"{}><summary><b>{}</b> {} x {}, density {}, {} bytes</summary>",
        // The first layer open: the page shows what a layer holds without a click.
        if i == 0 { " open" } else { "" },
        d.text(&p("name"))?,
        d.num(&p("rows"), Fmt::Int)?,
        d.num(&p("inputs"), Fmt::Int)?,
        d.num(&p("pruning/density"), Fmt::Pct(2))?,
        d.num(&p("bytes/total"), Fmt::Int)?,
    );
    s += &figures_list(d, &l)?;
    s += "<div class=\"grid\">";
    s += &histograms(d, &l, name)?;
    s += &pes(d, &l, name)?;
    s += "</div>";
    s += &model::bytes_figure(d, &l, "Bytes")?;
    s += &codebook(d, &l)?;
    s += &simulation::layer(d, name)?;
    Ok(s + "</details>\n")
}

/// The layer's figures as a definition list.
fn figures_list(d: &Doc, l: &str) -> Result<String> {
    let p = |k: &str| format!("{l}/{k}");
    let mut rows: Vec<(&str, String)> = vec![
        ("pruning", d.text(&p("pruning/rule"))?),
        ("weights", d.num(&p("pruning/weights"), Fmt::Int)?),
        (
            "non-zero before",
            d.num(&p("pruning/nonzeros_before"), Fmt::Int)?,
        ),
        ("kept", d.num(&p("pruning/kept"), Fmt::Int)?),
    ];
    if d.get(&p("pruning/threshold")).is_some() {
        rows.push((
            "smallest kept |w|",
            d.num(&p("pruning/threshold"), Fmt::Sig)?,
        ));
    }
    if d.get(&p("balance")).is_some() {
        let imbalance = |k: &str| d.num(&p(&format!("balance/{k}/imbalance")), Fmt::Fixed(3));
        rows.push(("PE imbalance unbalanced", imbalance("plain")?));
        rows.push(("PE imbalance balanced", imbalance("balanced")?));
    }
    rows.push(("codebook", d.text(&p("quantization/method"))?));
    for (label, k, fmt) in [
        ("code bits", "quantization/code_bits", Fmt::Int),
        ("index bits", "index_bits", Fmt::Int),
        ("clustered values", "quantization/clustered", Fmt::Int),
        ("sharing SSE", "quantization/sse", Fmt::Sig),
        ("entries", "entries", Fmt::Int),
        ("padding entries", "padding", Fmt::Int),
        ("padding %", "padding_pct", Fmt::Fixed(2)),
        ("entries per PE, max", "entries_per_pe/max", Fmt::Fixed(0)),
        ("entries per PE, mean", "entries_per_pe/mean", Fmt::Fixed(1)),
        (
            "load-balance efficiency",
            "entries_per_pe/efficiency",
            Fmt::Pct(1),
        ),
        ("smaller than dense", "compression/vs_dense", Fmt::Times(1)),
        (
            "Deep Compression (p+q)",
            "compression/deep_compression_pq",
            Fmt::Times(1),
        ),
    ] {
        rows.push((label, d.num(&p(k), fmt)?));
    }
    let mut s = String::from("<dl class=\"kv\">");
    for (label, html) in rows {
        s += &format!("<dt>{label}</dt><dd>{html}</dd>");
    }
    Ok(s + "</dl>")
}

/// The weights before pruning with the smallest kept |w| (the threshold), and the
/// survivors with the centroids.
fn histograms(d: &Doc, l: &str, name: &str) -> Result<String> {
    let p = |k: &str| format!("{l}/{k}");
    let limit = d.f64(&p("histogram/limit"))?;
    let counts = |k: &str| -> Result<Vec<u64>> {
        Ok(d.nums(&p(k))?.into_iter().map(|v| v as u64).collect())
    };
    let kept = counts("histogram/kept")?;
    // Retrained or updated survivors are not a subset of the weights drawn behind them, and
    // a retrained LSTM matrix is no one tensor of the checkpoint: no before to show.
    let updated = d.get(&p("histogram/updated")).and_then(|v| v.as_bool()) == Some(true);
    let marker = ("mk", "smallest kept |w|");
    let (before, caption, legend) = match (d.get(&p("histogram/before")), updated) {
        (Some(_), false) => (
            counts("histogram/before")?,
            "Weights before pruning, the smallest kept |w| marked",
            vec![("b0", "pruned"), ("b1", "kept"), marker],
        ),
        (Some(_), true) => (
            counts("histogram/before")?,
            "The checkpoint's weights, and the survivors as retrained or updated",
            vec![
                ("b0", "the checkpoint's weights"),
                ("b1", "survivors, retrained or updated"),
                marker,
            ],
        ),
        (None, _) => (
            Vec::new(),
            "The survivors (the weights before pruning are no one tensor of the checkpoint)",
            vec![("b1", "survivors"), marker],
        ),
    };
    let marks: Vec<Mark> = match d.get(&p("pruning/threshold")).and_then(|v| v.as_f64()) {
        Some(t) => [-t, t]
            .iter()
            .map(|&x| Mark {
                x,
                title: format!("smallest kept |w| = {}", Fmt::Sig.show(t)),
            })
            .collect(),
        None => Vec::new(),
    };
    let mut s = figure(
        caption,
        &svg::histogram(
            &format!("{name}: weights before pruning"),
            &before,
            &kept,
            limit,
            &marks,
        ),
        &legend,
    );
    if kept.iter().all(|&c| c == 0) {
        return Ok(
            s + "<p class=\"hint\">No weight survives pruning: nothing shares the codebook.</p>"
        );
    }
    let centroids = d.nums(&p("quantization/centroids"))?;
    let code_counts = counts("quantization/code_counts")?;
    let marks: Vec<Mark> = centroids
        .iter()
        .enumerate()
        .map(|(c, &x)| Mark {
            x,
            title: format!(
                "code {}: {}, {} entries",
                c + 1,
                Fmt::Sig.show(x),
                code_counts.get(c + 1).copied().unwrap_or(0)
            ),
        })
        .collect();
    s += &figure(
        "Survivors and the centroids they share",
        &svg::histogram(
            &format!("{name}: survivors and centroids"),
            &[],
            &kept,
            limit,
            &marks,
        ),
        &[("b1", "survivors before sharing"), ("mk", "centroid")],
    );
    Ok(s)
}

/// Entries per PE, the busiest marked.
fn pes(d: &Doc, l: &str, name: &str) -> Result<String> {
    let by_pe = d.nums(&format!("{l}/entries_by_pe"))?;
    let mean = d.f64(&format!("{l}/entries_per_pe/mean"))?;
    Ok(figure(
        "Entries per PE, the bottleneck marked",
        &svg::columns(
            &format!("{name}: entries per PE"),
            &by_pe,
            mean,
            "PE",
            "entries",
        ),
        &[
            ("b1", "entries, padding included"),
            ("hot", "the busiest PEs"),
            ("mean", "mean"),
        ],
    ))
}

/// The codebook: every code's value and entries.
fn codebook(d: &Doc, l: &str) -> Result<String> {
    let p = |k: &str| format!("{l}/{k}");
    let n = d.arr(&p("quantization/centroids"))?.len();
    let mut s = String::from(
        "<div class=\"scroll\"><table class=\"num\"><tr><th>code</th><th>value</th><th>entries</th></tr>",
    );
    s += &format!(
        "<tr><td>0</td><td>0 (padding)</td>{}</tr>",
        d.td(&p("quantization/code_counts/0"), Fmt::Int)?
    );
    for c in 0..n {
        s += &format!(
            "<tr><td>{}</td>{}{}</tr>",
            c + 1,
            d.td(&p(&format!("quantization/centroids/{c}")), Fmt::Sig)?,
            d.td_opt(&p(&format!("quantization/code_counts/{}", c + 1)), Fmt::Int)?
        );
    }
    Ok(s + "</table></div>")
}
