//! The reference design's sources (`rtl/` at the top of the repository), built into the
//! binary so that `rtl-check` runs from anywhere.

/// Every source file, as `(path under rtl/, text)`, in compile order.
pub const SOURCES: [(&str, &str); 4] = [
    ("eie_lnzd.v", include_str!("../../../rtl/eie_lnzd.v")),
    ("eie_pe.v", include_str!("../../../rtl/eie_pe.v")),
    ("eie_top.v", include_str!("../../../rtl/eie_top.v")),
    ("tb/eie_tb.sv", include_str!("../../../rtl/tb/eie_tb.sv")),
];
