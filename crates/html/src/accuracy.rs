//! Accuracy (or perplexity) by stage: compress's own measurement and eval's, when made.

use crate::doc::{Doc, Fmt};
use crate::{Result, figure, svg};

/// The accuracy section (nothing without a measurement).
pub fn section(d: &Doc) -> Result<String> {
    let mut parts = Vec::new();
    if d.get("/compress/accuracy/stages").is_some() {
        let (heading, caption) = match d.get("/compress/accuracy/held_out") {
            Some(_) => (
                format!(
                    "While compressing, on {}",
                    d.text("/compress/accuracy/held_out")?
                ),
                format!(
                    "While compressing, on {}",
                    d.str("/compress/accuracy/held_out")?
                ),
            ),
            None => ("While compressing".into(), "While compressing".into()),
        };
        parts.push(stages(d, "/compress/accuracy/stages", &heading, &caption)?);
    }
    if d.get("/eval/stages").is_some() {
        let heading = format!(
            "eval, on {} ({} samples)",
            d.text("/eval/dataset")?,
            d.num("/eval/samples", Fmt::Int)?
        );
        let caption = format!("eval, on {}", d.str("/eval/dataset")?);
        parts.push(stages(d, "/eval/stages", &heading, &caption)?);
    }
    if parts.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "<section id=\"accuracy\"><h2>Accuracy by stage</h2>{}</section>\n",
        parts.concat()
    ))
}

/// One list of stages: a table under `heading` (markup) and a chart of top-1 (or
/// perplexity) under `caption` (text).
fn stages(d: &Doc, list: &str, heading: &str, caption: &str) -> Result<String> {
    let n = d.arr(list)?.len();
    let language = d.get(&format!("{list}/0/perplexity")).is_some();
    let mut s = format!(
        "<h3>{heading}</h3><div class=\"scroll\"><table class=\"num\"><tr><th class=\"l\">stage</th><th>density</th><th>{}</th><th>top-1 vs first, points</th><th>{}</th></tr>",
        if language { "perplexity" } else { "top-1" },
        if language { "tokens" } else { "correct" },
    );
    let mut rows = Vec::new();
    for j in 0..n {
        let p = |k: &str| format!("{list}/{j}/{k}");
        s += &format!("<tr><td class=\"l\">{}</td>", d.text(&p("stage"))?);
        s += &d.td_opt(&p("density"), Fmt::Pct(2))?;
        let (metric, fmt) = if language {
            (p("perplexity"), Fmt::Fixed(2))
        } else {
            (p("top1"), Fmt::Pct(2))
        };
        s += &d.td(&metric, fmt)?;
        s += &d.td(&p("delta_pct"), Fmt::Fixed(2))?;
        s += &if language {
            d.td(&p("total"), Fmt::Int)?
        } else {
            format!(
                "<td>{} / {}</td>",
                d.num(&p("correct"), Fmt::Int)?,
                d.num(&p("total"), Fmt::Int)?
            )
        };
        s += "</tr>";
        let v = d.f64(&metric)?;
        rows.push((
            d.str(&p("stage"))?.to_string(),
            vec![(if language { v } else { v * 100.0 }, "s0")],
            d.tspan(&metric, fmt)?,
        ));
    }
    s += "</table></div>";
    let axis = if language { "perplexity" } else { "top-1, %" };
    s += &figure(caption, &svg::bars(caption, &rows, axis, false), &[]);
    Ok(s)
}
