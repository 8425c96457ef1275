//! The summary table of a packed model (`inspect`, `pack`), and one PE's arrays.

use eie_commands::inspect::{LayerReport, PeReport, Report};

use super::table::Table;

/// The summary table: every layer (part) of the report, with a total row when there are
/// several.
pub fn summary(r: &Report) -> String {
    let mut out = format!(
        "{} from {}{} ({}-bit pointers)\n",
        r.tool_version,
        r.source.name,
        r.source
            .sha256
            .as_ref()
            .map(|h| format!(" sha256 {}", &h[..16]))
            .unwrap_or_default(),
        r.pointer_bits
    );
    let mut t = Table::columns(
        "layer | shape | PEs | bits c/i | non-zeros | entries | padding | Spmat B | ptr B | codebook B | entries/PE min/mean/max",
    );
    for l in &r.layers {
        let (b, e) = (&l.bytes, &l.entries_per_pe);
        t.row(vec![
            part_name(l),
            format!("{}x{}", l.rows, l.cols),
            l.pes.to_string(),
            format!("{}/{}", l.code_bits, l.index_bits),
            l.nonzeros.to_string(),
            l.entries.to_string(),
            format!("{} ({:.1}%)", l.padding, l.padding_pct),
            b.spmat.to_string(),
            b.pointers.to_string(),
            b.codebook.to_string(),
            format!("{}/{:.1}/{}", e.min, e.mean, e.max),
        ]);
    }
    if r.layers.len() > 1 {
        let t0 = r.totals();
        t.row(vec![
            "total".into(),
            String::new(),
            String::new(),
            String::new(),
            t0.nonzeros.to_string(),
            t0.entries.to_string(),
            format!("{} ({:.1}%)", t0.padding, t0.padding_pct),
            t0.spmat.to_string(),
            t0.pointers.to_string(),
            t0.codebook.to_string(),
            String::new(),
        ]);
    }
    out.push_str(&t.render());
    out
}

/// A layer's name, with its columns when it is a part of a layer.
fn part_name(l: &LayerReport) -> String {
    match &l.part {
        None => l.name.clone(),
        Some(p) => format!(
            "{} [cols {}..{} of {}]",
            l.name,
            p.first_col,
            p.first_col + l.cols,
            p.total_cols
        ),
    }
}

/// One PE's arrays, as the paper's Figure 3 prints them.
pub fn pe_arrays(l: &LayerReport, pe: &PeReport) -> String {
    let join = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(" ");
    format!(
        "\n{} PE {}: {} rows, {} entries ({} padding)\ncodes: {}\nz:     {}\nptr:   {}\n",
        eie_format::shown(&l.name),
        pe.index,
        pe.rows,
        pe.entries,
        pe.padding,
        join(&mut pe.codes.iter().map(|c| c.to_string())),
        join(&mut pe.z.iter().map(|c| c.to_string())),
        join(&mut pe.ptr.iter().map(|c| c.to_string())),
    )
}
