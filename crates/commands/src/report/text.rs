//! The compress report as text tables, and the per-stage accuracy table it shares with
//! eval: what the binary prints, rendered here so a library caller prints the same.

use eie_evaluate::StageReport;
use eie_pipeline::report::LayerReport;

use super::table::Table;
use crate::compress::Report;
use crate::language::{Speed, TextReport};

/// The printed report.
pub fn render(c: &Report) -> String {
    let r = &c.report;
    let mut out = format!(
        "{} from {}, {} PEs, {}-bit pointers\n",
        r.tool_version, r.source.name, r.pes, r.pointer_bits
    );
    out.push_str(&layers_table(r));
    if let Some(m) = &c.model
        && !m.host_layers.is_empty()
    {
        out.push_str(&format!(
            "{}: on the host, in float (docs/accuracy.md), stored as above: {}\n",
            m.arch,
            eie_format::shown(&m.host_layers.join(", "))
        ));
    }
    let skipped: Vec<(&str, String)> = r
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.clone()))
        .collect();
    let why = match &c.language {
        Some(family) => format!(
            "a {family} model's embeddings and norms run on the host in float; report.json lists every one"
        ),
        None => "--layers selects any of them; report.json lists every one".into(),
    };
    out.push_str(&skipped_line(&skipped, &why));
    out.push_str(&balance_table(&r.layers));
    if let Some(a) = &c.accuracy {
        let what = match &a.text {
            Some(t) if t.sentences.is_some() => "sentence embeddings",
            Some(_) => "perplexity",
            None => "accuracy",
        };
        out.push_str(&format!(
            "\n{what} on {}{}\n",
            a.held_out,
            if a.held_out_is_train {
                " (the training samples, or some of them: give an --eval-range apart from --range)"
            } else {
                ""
            }
        ));
        out.push_str(&render_stages(&a.stages));
        out.push_str(&format!(
            "EIE activation fractions: {}\n",
            fractions(&a.act_frac)
        ));
        if let Some(t) = &a.text {
            out.push_str(&format!("{}\n", text_line(t, a.speed.as_ref())));
        }
        for n in &a.notes {
            out.push_str(n);
            out.push('\n');
        }
    }
    out
}

/// Every layer's figures, and their totals.
fn layers_table(r: &eie_pipeline::Report) -> String {
    let mut t = Table::columns(
        "layer | shape | density | kept | bits c/i | SSE | entries | padding | EIE bytes | x dense | x DC P+Q | Huffman B | entries/PE min/mean/max | imbalance",
    );
    for l in &r.layers {
        t.row(vec![
            format!("{}{}", l.name, if l.bias.is_some() { " +bias" } else { "" }),
            format!("{}x{}", l.rows, l.inputs),
            format!("{:.2}%", 100.0 * l.pruning.density),
            l.pruning.kept.to_string(),
            format!("{}/{}", l.quantization.code_bits, l.index_bits),
            format!("{:.4e}", l.quantization.sse),
            l.entries.to_string(),
            format!("{:.1}%", l.padding_pct),
            l.bytes.total.to_string(),
            format!("{:.1}", l.compression.vs_dense),
            format!("{:.1}", l.compression.deep_compression_pq),
            l.compression.huffman_bytes.to_string(),
            format!(
                "{}/{:.1}/{}",
                l.entries_per_pe.min, l.entries_per_pe.mean, l.entries_per_pe.max
            ),
            format!("{:.2}", l.entries_per_pe.imbalance),
        ]);
    }
    let tt = &r.totals;
    if r.layers.len() > 1 {
        t.row(vec![
            "total".into(),
            String::new(),
            format!("{:.2}%", 100.0 * tt.density),
            tt.kept.to_string(),
            String::new(),
            String::new(),
            tt.entries.to_string(),
            format!("{:.1}%", tt.padding_pct),
            tt.bytes.total.to_string(),
            format!("{:.1}", tt.compression.vs_dense),
            format!("{:.1}", tt.compression.deep_compression_pq),
            tt.compression.huffman_bytes.to_string(),
            String::new(),
            String::new(),
        ]);
    }
    t.render()
}

/// Pruning balanced across PEs, against plain pruning, per balanced layer (empty if none).
fn balance_table(layers: &[LayerReport]) -> String {
    let balanced: Vec<&LayerReport> = layers.iter().filter(|l| l.balance.is_some()).collect();
    if balanced.is_empty() {
        return String::new();
    }
    let mut t = Table::columns(
        "balanced layer | non-zeros/PE plain min/max | imbalance plain | balanced min/max | imbalance balanced | kept, not by plain | plain, not kept",
    );
    for l in balanced {
        let b = l.balance.as_ref().expect("filtered");
        t.row(vec![
            l.name.clone(),
            format!("{}/{}", b.plain.min, b.plain.max),
            format!("{:.3}", b.plain.imbalance),
            format!("{}/{}", b.balanced.min, b.balanced.max),
            format!("{:.3}", b.balanced.imbalance),
            b.kept_not_plain.to_string(),
            b.plain_not_kept.to_string(),
        ]);
    }
    format!("\n{}", t.render())
}

/// The `*.weight` tensors a default selection left out, in a line (empty if none): the
/// first few, with why, and `about` them in parentheses.
pub fn skipped_line(skipped: &[(&str, String)], about: &str) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let names: Vec<String> = skipped
        .iter()
        .take(4)
        .map(|(name, reason)| format!("{} ({reason})", eie_format::shown(name)))
        .collect();
    format!(
        "skipped {} weight tensor{} ({about}): {}{}\n",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" },
        names.join("; "),
        if skipped.len() > 4 { "; ..." } else { "" }
    )
}

/// The stages as a table: accuracy and its change against the first stage (a language
/// model's perplexity and loss, an encoder's sentence embeddings' cosine and rank
/// correlation beside it).
pub fn render_stages(stages: &[StageReport]) -> String {
    let language = stages.iter().any(|s| s.perplexity.is_some());
    let sentences = stages.iter().any(|s| s.cosine.is_some());
    let mut t = Table::columns(match (language, sentences) {
        (true, _) => "stage | density | perplexity | loss | top-1 | vs first | correct",
        (false, true) => {
            "stage | density | mean cosine | rank corr. | retrieval top-1 | vs first | found"
        }
        (false, false) => "stage | density | top-1 | vs first | correct",
    });
    for s in stages {
        let mut row = vec![
            s.stage.clone(),
            s.density
                .map(|d| format!("{:.2}%", 100.0 * d))
                .unwrap_or_default(),
        ];
        if language {
            row.push(s.perplexity.map(|p| format!("{p:.3}")).unwrap_or_default());
            row.push(s.loss.map(|l| format!("{l:.4}")).unwrap_or_default());
        } else if sentences {
            row.push(s.cosine.map(|c| format!("{c:.4}")).unwrap_or_default());
            row.push(
                s.rank_correlation
                    .map(|r| format!("{r:.4}"))
                    .unwrap_or_default(),
            );
        }
        row.push(format!("{:.2}%", 100.0 * s.top1));
        row.push(format!("{:+.2}", s.delta_pct));
        row.push(format!("{}/{}", s.correct, s.total));
        t.row(row);
    }
    t.render()
}

/// A language model's text: its tokens, the metric, the windows and how fast they ran.
pub fn text_line(t: &TextReport, speed: Option<&Speed>) -> String {
    let speed = speed.map_or(String::new(), |s| {
        let eie = s
            .eie_tokens_per_second
            .map(|e| format!(", {e:.0} on the EIE model"));
        format!(
            " ({:.0} tokens/s in float{})",
            s.tokens_per_second,
            eie.unwrap_or_default()
        )
    });
    let (n, m, c, s) = (t.tokens, t.metric, t.context, t.stride);
    match &t.sentences {
        Some(l) => {
            let first = if l.compared < l.distinct {
                format!(", the first {} compared", l.compared)
            } else {
                String::new()
            };
            let cut = if l.cut > 0 {
                format!(", {} cut to {s} tokens", l.cut)
            } else {
                String::new()
            };
            format!(
                "{} sentences of {n} tokens (the distinct lines of {}{first}{cut}), scored by their {m} against the original's{speed}",
                l.compared, l.lines
            )
        }
        None => format!("{n} tokens, scored on the {m}, windows of {c} every {s}{speed}"),
    }
}

/// Activation fractions as `14,13,12`.
pub fn fractions(f: &[u8]) -> String {
    f.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
