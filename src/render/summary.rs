//! The summary table of a packed model (`inspect`, `pack`).

use eie_format::{Bundle, hex};
use eie_images::{EntryBalance, LayerBytes};
use eie_pipeline::report::pct;

use super::table::Table;

/// The summary table (one layer, or all of them with a total row).
pub fn summary(bundle: &Bundle, only: Option<&str>) -> String {
    let meta = bundle.meta();
    let mut out = format!(
        "{} from {}{} ({}-bit pointers)\n",
        meta.tool_version,
        meta.source.name,
        meta.source
            .sha256
            .map(|h| format!(" sha256 {}", &hex(&h)[..16]))
            .unwrap_or_default(),
        meta.pointer_bits
    );
    let mut t = Table::new(&[
        "layer",
        "shape",
        "PEs",
        "bits c/i",
        "non-zeros",
        "entries",
        "padding",
        "Spmat B",
        "ptr B",
        "codebook B",
        "entries/PE min/mean/max",
    ]);
    let mut total = (0usize, 0usize, 0usize, 0u64, 0u64, 0u64);
    let layers: Vec<_> = bundle
        .layers()
        .iter()
        .filter(|l| only.is_none_or(|n| l.name() == n))
        .collect();
    for l in &layers {
        let b = LayerBytes::of(l, meta.pointer_bits);
        let e = EntryBalance::of(l);
        t.row(vec![
            match l.span() {
                None => l.name().to_string(),
                Some(s) => format!(
                    "{} [cols {}..{} of {}]",
                    l.name(),
                    s.first,
                    s.first + l.cols(),
                    s.total
                ),
            },
            format!("{}x{}", l.rows(), l.cols()),
            l.pes().to_string(),
            format!("{}/{}", l.code_bits(), l.index_bits()),
            l.nonzeros().to_string(),
            l.entries().to_string(),
            format!("{} ({:.1}%)", l.padding(), pct(l.padding(), l.entries())),
            b.spmat.to_string(),
            b.pointers.to_string(),
            b.codebook.to_string(),
            format!("{}/{:.1}/{}", e.min, e.mean, e.max),
        ]);
        total = (
            total.0 + l.nonzeros(),
            total.1 + l.entries(),
            total.2 + l.padding(),
            total.3 + b.spmat,
            total.4 + b.pointers,
            total.5 + b.codebook,
        );
    }
    if layers.len() > 1 {
        t.row(vec![
            "total".into(),
            String::new(),
            String::new(),
            String::new(),
            total.0.to_string(),
            total.1.to_string(),
            format!("{} ({:.1}%)", total.2, pct(total.2, total.1)),
            total.3.to_string(),
            total.4.to_string(),
            total.5.to_string(),
            String::new(),
        ]);
    }
    out.push_str(&t.render());
    out
}
