//! The per-stage accuracy table.

use eie_evaluate::StageReport;

use super::table::Table;

/// The stages as a table: accuracy and its change against the first stage.
pub fn render_stages(stages: &[StageReport]) -> String {
    let mut t = Table::new(&["stage", "density", "top-1", "vs first", "correct"]);
    for s in stages {
        t.row(vec![
            s.stage.clone(),
            s.density
                .map(|d| format!("{:.2}%", 100.0 * d))
                .unwrap_or_default(),
            format!("{:.2}%", 100.0 * s.top1),
            format!("{:+.2}", s.delta_pct),
            format!("{}/{}", s.correct, s.total),
        ]);
    }
    t.render()
}

/// Activation fractions as `14,13,12`.
pub fn fractions(f: &[u8]) -> String {
    f.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
