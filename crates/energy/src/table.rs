//! The energy table: every constant of the model, defined once with its unit, its default
//! and how that default follows from the paper's Tables I and II (docs/energy.md holds the
//! same derivations in prose; a test checks the two agree). A TOML file overrides any of them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The figures the EIE paper publishes (shared/docs/eie-reference.md, section 7): 45 nm,
/// 800 MHz. Everything else in the table is derived from these.
pub mod paper {
    /// The clock the power figures were estimated at, MHz.
    pub const CLOCK_MHZ: f64 = 800.0;
    /// Table II: one PE, total power, mW.
    pub const PE_TOTAL_MW: f64 = 9.157;
    /// Table II, by kind: the clock network, mW.
    pub const CLOCK_NETWORK_MW: f64 = 1.874;
    /// Table II, by module: the activation queue, mW.
    pub const ACT_QUEUE_MW: f64 = 0.112;
    /// Table II, by module: the pointer read unit (both banks), mW.
    pub const PTR_READ_MW: f64 = 1.807;
    /// Table II, by module: the sparse-matrix read unit (the 128 KB Spmat SRAM), mW.
    pub const SPMAT_READ_MW: f64 = 4.955;
    /// Table II, by module: the arithmetic unit, mW.
    pub const ARITHM_UNIT_MW: f64 = 1.162;
    /// Table II, by module: activation read/write (the register files), mW.
    pub const ACT_RW_MW: f64 = 1.122;
    /// One leading-non-zero-detection node, mW.
    pub const LNZD_NODE_MW: f64 = 0.023;
    /// "The Spmat and pointer SRAMs are each accessed about once every 8 cycles."
    pub const CYCLES_PER_SRAM_ACCESS: f64 = 8.0;
    /// Table I: 32-bit integer add, pJ.
    pub const INT32_ADD_PJ: f64 = 0.1;
    /// Table I: 32-bit integer multiply, pJ.
    pub const INT32_MULT_PJ: f64 = 3.1;
    /// Figure 10: a 16-bit fixed-point multiply costs about 5x less than a 32-bit one.
    pub const MULT32_OVER_MULT16: f64 = 5.0;
    /// Table I: 32-bit read of a 32 KB SRAM, pJ.
    pub const SRAM_32B_32KB_PJ: f64 = 5.0;
    /// Table I: 32-bit read of DRAM, pJ.
    pub const DRAM_32B_PJ: f64 = 640.0;
    /// Horowitz (ISSCC 2014), the source of Table I: a 64-bit read of a 32 KB SRAM, pJ (with
    /// 10 pJ at 8 KB and 100 pJ at 1 MB: energy grows as the square root of the capacity).
    pub const SRAM_64B_32KB_PJ: f64 = 20.0;
    /// The activation SRAM per PE, bytes.
    pub const ACT_SRAM_BYTES: f64 = 2048.0;
    /// Activations a PE's register file holds (64 x 16 bits).
    pub const RF_ENTRIES: u64 = 64;
}

/// The share of a module's power that is its clock network (Table II's by-kind figure over
/// the total, taken as the same for every module): charged every cycle, busy or idle.
pub fn clock_share() -> f64 {
    paper::CLOCK_NETWORK_MW / paper::PE_TOTAL_MW
}

/// pJ per action of a module of `mw` mW that acts once every `cycles_per_action` cycles at
/// the paper's clock, its clock share left out.
fn per_action(mw: f64, cycles_per_action: f64) -> f64 {
    mw * (1.0 - clock_share()) * 1e3 / paper::CLOCK_MHZ * cycles_per_action
}

/// ActRW's accesses per cycle at the paper's activity: an accumulator read and write per
/// entry, and a source-register read per broadcast (one every 8 cycles).
fn rf_access() -> f64 {
    per_action(paper::ACT_RW_MW, 1.0) / (2.0 + 1.0 / paper::CYCLES_PER_SRAM_ACCESS)
}

/// Arithmetic unit energy per entry (one entry per cycle).
fn arith_entry() -> f64 {
    per_action(paper::ARITHM_UNIT_MW, 1.0)
}

/// A 16-bit multiply.
fn multiply() -> f64 {
    paper::INT32_MULT_PJ / paper::MULT32_OVER_MULT16
}

/// Half of a push-and-pop pair of the activation queue (one pair per broadcast per PE).
fn queue_half() -> f64 {
    per_action(paper::ACT_QUEUE_MW, paper::CYCLES_PER_SRAM_ACCESS) / 2.0
}

/// A 16-bit read of the 2 KB activation SRAM: Horowitz's 64-bit, 32 KB figure scaled by the
/// square root of the capacity, then to 16 bits by the width rule (exponent 1/2).
fn act_sram() -> f64 {
    paper::SRAM_64B_32KB_PJ
        * (paper::ACT_SRAM_BYTES / 32768.0).sqrt()
        * (16.0f64 / 64.0).powf(DEFAULT_WIDTH_EXPONENT)
}

/// The width rule's default exponent: a w-bit line costs (w / 64)^(1/2) of a 64-bit one.
const DEFAULT_WIDTH_EXPONENT: f64 = 0.5;

/// The largest energy (pJ) or power (mW) a table may give: a millijoule per action, a
/// megawatt per PE.
pub const MAX_VALUE: f64 = 1e9;

/// One constant of the table.
#[derive(Debug, Clone, Copy)]
pub struct Constant {
    /// Its key in a table file.
    pub key: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// What it is the energy (or power) of.
    pub what: &'static str,
    /// How the default follows from the paper.
    pub derivation: &'static str,
    /// The default.
    pub default: fn() -> f64,
    /// The largest value a table may give it (a guard against figures off by orders of
    /// magnitude, whose products would overflow).
    pub max: f64,
}

/// Names each constant's place in [`CONSTANTS`] (and in a [`Table`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Key {
    SpmatLineRead,
    SpmatWidthExponent,
    PointerRead,
    Decode,
    Multiply,
    Add,
    AccumulatorRead,
    AccumulatorWrite,
    SourceRead,
    QueuePush,
    QueuePop,
    LnzdStep,
    ActSramAccess,
    Dram32,
    Sram32,
    ClockPerPe,
    LnzdClockPerNode,
    LeakagePerPe,
}

/// Every constant, in [`Key`] order.
pub static CONSTANTS: &[Constant] = &[
    Constant {
        key: "spmat_line_read_pj",
        unit: "pJ",
        what: "a 64-bit line read of the 128 KB Spmat SRAM",
        derivation: "SpmatRead 4.955 mW less its clock share (1.874 / 9.157), at one access every 8 cycles of 800 MHz",
        default: || per_action(paper::SPMAT_READ_MW, paper::CYCLES_PER_SRAM_ACCESS),
        max: MAX_VALUE,
    },
    Constant {
        key: "spmat_width_exponent",
        unit: "",
        what: "how a Spmat line's read energy grows with its width w: (w / 64)^x",
        derivation: "1/2: read energy grows as the square root of the bits the access spans (Horowitz: 10, 20, 100 pJ for 64-bit reads of 8 KB, 32 KB, 1 MB)",
        default: || DEFAULT_WIDTH_EXPONENT,
        max: 4.0,
    },
    Constant {
        key: "pointer_read_pj",
        unit: "pJ",
        what: "a pointer-pair read (both banks, one per PE per broadcast)",
        derivation: "PtrRead 1.807 mW less its clock share, at one access every 8 cycles",
        default: || per_action(paper::PTR_READ_MW, paper::CYCLES_PER_SRAM_ACCESS),
        max: MAX_VALUE,
    },
    Constant {
        key: "decode_pj",
        unit: "pJ",
        what: "decoding one entry, padding included: codebook look-up, row-index accumulation, pipeline registers",
        derivation: "ArithmUnit 1.162 mW less its clock share at one entry per cycle, less the multiply and the add",
        default: || arith_entry() - multiply() - paper::INT32_ADD_PJ,
        max: MAX_VALUE,
    },
    Constant {
        key: "multiply_pj",
        unit: "pJ",
        what: "a 16-bit fixed-point multiply (real entries only)",
        derivation: "Table I's 3.1 pJ 32-bit multiply over 5 (Figure 10)",
        default: multiply,
        max: MAX_VALUE,
    },
    Constant {
        key: "add_pj",
        unit: "pJ",
        what: "the accumulator's add (real entries only)",
        derivation: "Table I: 32-bit integer add",
        default: || paper::INT32_ADD_PJ,
        max: MAX_VALUE,
    },
    Constant {
        key: "accumulator_read_pj",
        unit: "pJ",
        what: "a destination register-file read (real entries not served by the bypass)",
        derivation: "ActRW 1.122 mW less its clock share at one cycle, over its 2 + 1/8 accesses per cycle",
        default: rf_access,
        max: MAX_VALUE,
    },
    Constant {
        key: "accumulator_write_pj",
        unit: "pJ",
        what: "a destination register-file write (every real entry)",
        derivation: "as accumulator_read_pj",
        default: rf_access,
        max: MAX_VALUE,
    },
    Constant {
        key: "source_read_pj",
        unit: "pJ",
        what: "reading a broadcast activation from its source register file",
        derivation: "as accumulator_read_pj",
        default: rf_access,
        max: MAX_VALUE,
    },
    Constant {
        key: "queue_push_pj",
        unit: "pJ",
        what: "pushing a broadcast activation into one PE's queue",
        derivation: "Act queue 0.112 mW less its clock share, at one push and one pop every 8 cycles, halved",
        default: queue_half,
        max: MAX_VALUE,
    },
    Constant {
        key: "queue_pop_pj",
        unit: "pJ",
        what: "popping it",
        derivation: "as queue_push_pj",
        default: queue_half,
        max: MAX_VALUE,
    },
    Constant {
        key: "lnzd_step_pj",
        unit: "pJ",
        what: "one step of one leading-non-zero-detection node (a broadcast, or moving past a group)",
        derivation: "LNZD 0.023 mW per node less its clock share, at one step every 8 cycles",
        default: || per_action(paper::LNZD_NODE_MW, paper::CYCLES_PER_SRAM_ACCESS),
        max: MAX_VALUE,
    },
    Constant {
        key: "act_sram_access_pj",
        unit: "pJ",
        what: "a 16-bit access of the 2 KB activation SRAM (layers longer than the register files)",
        derivation: "Horowitz's 20 pJ (64 bits, 32 KB) x sqrt(2 KB / 32 KB) x (16 / 64)^(1/2)",
        default: act_sram,
        max: MAX_VALUE,
    },
    Constant {
        key: "dram_32b_pj",
        unit: "pJ",
        what: "a 32-bit DRAM read (weights that do not fit the SRAMs; the dense baseline)",
        derivation: "Table I",
        default: || paper::DRAM_32B_PJ,
        max: MAX_VALUE,
    },
    Constant {
        key: "sram_32b_pj",
        unit: "pJ",
        what: "a 32-bit read of a 32 KB SRAM (the savings breakdown's on-chip reference)",
        derivation: "Table I",
        default: || paper::SRAM_32B_32KB_PJ,
        max: MAX_VALUE,
    },
    Constant {
        key: "clock_mw_per_pe",
        unit: "mW",
        what: "a PE's clock network, every cycle, busy or idle",
        derivation: "Table II, by kind (the paper describes no clock gating)",
        default: || paper::CLOCK_NETWORK_MW,
        max: MAX_VALUE,
    },
    Constant {
        key: "lnzd_clock_mw_per_node",
        unit: "mW",
        what: "an LNZD node's clock network, every cycle",
        derivation: "LNZD 0.023 mW x the clock share",
        default: || paper::LNZD_NODE_MW * clock_share(),
        max: MAX_VALUE,
    },
    Constant {
        key: "leakage_mw_per_pe",
        unit: "mW",
        what: "a PE's leakage, every cycle",
        derivation: "0: the paper publishes no leakage figure (set your process's)",
        default: || 0.0,
        max: MAX_VALUE,
    },
];

const _: () = assert!(CONSTANTS.len() == Key::LeakagePerPe as usize + 1);

/// The largest energy-table file read: a table of every key is under 4 KB.
pub const MAX_TABLE_BYTES: u64 = 1 << 20;

/// Energy per action (and static power): [`CONSTANTS`]' defaults, with any overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    values: Vec<f64>,
    /// Where the overrides came from, if anywhere.
    pub source: Option<String>,
}

impl Default for Table {
    fn default() -> Self {
        Self::paper()
    }
}

impl Table {
    /// The defaults: every constant derived from the paper.
    pub fn paper() -> Self {
        Self {
            values: CONSTANTS.iter().map(|c| (c.default)()).collect(),
            source: None,
        }
    }

    /// A constant's value.
    pub fn get(&self, key: Key) -> f64 {
        self.values[key as usize]
    }

    /// Sets one constant by its file key, checking it: a finite number, at least 0.
    pub fn set(&mut self, key: &str, value: f64) -> Result<()> {
        let index =
            CONSTANTS
                .iter()
                .position(|c| c.key == key)
                .ok_or_else(|| Error::UnknownKey {
                    key: key.to_string(),
                    known: keys(),
                })?;
        let max = CONSTANTS[index].max;
        if !value.is_finite() || value < 0.0 || value > max {
            return Err(Error::BadValue {
                key: key.to_string(),
                value: value.to_string(),
                max,
            });
        }
        self.values[index] = value;
        Ok(())
    }

    /// The defaults, overridden by a TOML file of `key = number` lines (any subset of the
    /// keys); the error names the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            eie_format::files::read_text(path, MAX_TABLE_BYTES).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let mut t = Self::parse(&text).map_err(|e| Error::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        t.source = Some(path.display().to_string());
        Ok(t)
    }

    /// [`Table::load`] on text.
    pub fn parse(text: &str) -> Result<Self> {
        let parsed: toml::Table = toml::from_str(text).map_err(|e| Error::Syntax {
            reason: one_line(text, &e),
        })?;
        let mut t = Self::paper();
        for (key, value) in &parsed {
            let number = match value {
                toml::Value::Float(f) => *f,
                toml::Value::Integer(i) => *i as f64,
                other => {
                    return Err(Error::BadValue {
                        key: key.clone(),
                        value: format!("a {}", other.type_str()),
                        max: CONSTANTS
                            .iter()
                            .find(|c| c.key == key)
                            .map_or(MAX_VALUE, |c| c.max),
                    });
                }
            };
            t.set(key, number)?;
        }
        if t.values.iter().all(|&v| v == 0.0) {
            return Err(Error::Syntax {
                reason: "every constant is 0: no run would cost anything, and energy per inference, per multiply-accumulate and inferences per joule would say nothing".into(),
            });
        }
        Ok(t)
    }

    /// The table as TOML, each constant with its meaning and derivation as a comment: a file
    /// [`Table::load`] reads back to the same table.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# EIE energy table (eie-compress; docs/energy.md). pJ per action, mW for power.\n",
        );
        for (c, v) in CONSTANTS.iter().zip(&self.values) {
            let default = (c.default)();
            // An overridden value's derivation is the default's, not its own.
            let derivation = if *v == default {
                c.derivation.to_string()
            } else {
                format!(
                    "set by {}; the default, {default:?}, is: {}",
                    self.source.as_deref().unwrap_or("the caller"),
                    c.derivation
                )
            };
            out.push_str(&format!(
                "\n# {} ({})\n# {derivation}\n{} = {v:?}\n",
                c.what,
                unit(c),
                c.key
            ));
        }
        out
    }

    /// Every constant by key, for reports.
    pub fn entries(&self) -> BTreeMap<&'static str, f64> {
        CONSTANTS
            .iter()
            .zip(&self.values)
            .map(|(c, &v)| (c.key, v))
            .collect()
    }
}

/// A TOML error in one line: where, and what.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {}", e.message().trim())
        }
        None => e.message().trim().to_string(),
    }
}

fn unit(c: &Constant) -> &'static str {
    if c.unit.is_empty() { "ratio" } else { c.unit }
}

fn keys() -> String {
    CONSTANTS
        .iter()
        .map(|c| c.key)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At the activity the paper states (one entry per cycle, a Spmat line, a pointer pair
    /// and a broadcast every 8 cycles), the per-action energies and the clock add up to Table
    /// II's 9.157 mW per PE: the derivation loses nothing.
    #[test]
    fn the_paper_activity_gives_table_two() {
        let t = Table::paper();
        let per_cycle = t.get(Key::Decode)
            + t.get(Key::Multiply)
            + t.get(Key::Add)
            + t.get(Key::AccumulatorRead)
            + t.get(Key::AccumulatorWrite)
            + (t.get(Key::SpmatLineRead)
                + t.get(Key::PointerRead)
                + t.get(Key::SourceRead)
                + t.get(Key::QueuePush)
                + t.get(Key::QueuePop))
                / 8.0
            + t.get(Key::ClockPerPe) * 1e3 / 800.0;
        let mw = per_cycle * 800.0 / 1e3;
        // Table II's modules add up to 9.158 mW against its printed total of 9.157.
        let modules = paper::ACT_QUEUE_MW
            + paper::PTR_READ_MW
            + paper::SPMAT_READ_MW
            + paper::ARITHM_UNIT_MW
            + paper::ACT_RW_MW;
        let expected = modules * (1.0 - clock_share()) + paper::CLOCK_NETWORK_MW;
        assert!((mw - expected).abs() < 1e-9, "{mw} vs {expected}");
        assert!((mw - paper::PE_TOTAL_MW).abs() < 1e-3, "{mw}");
    }

    #[test]
    fn the_derived_defaults() {
        let t = Table::paper();
        let near = |k: Key, v: f64| {
            assert!((t.get(k) - v).abs() < 5e-4, "{k:?}: {} vs {v}", t.get(k));
        };
        near(Key::SpmatLineRead, 39.4094);
        near(Key::PointerRead, 14.3717);
        near(Key::Multiply, 0.62);
        near(Key::Decode, 0.4353);
        near(Key::AccumulatorRead, 0.5249);
        near(Key::QueuePush, 0.4454);
        near(Key::LnzdStep, 0.1829);
        near(Key::ActSramAccess, 2.5);
        // Horowitz's square-root rule from 32 KB to the 128 KB Spmat gives 40 pJ, against 39.4
        // from Table II: two sources agreeing on the one memory both describe.
        let horowitz_128k = paper::SRAM_64B_32KB_PJ * (128.0f64 / 32.0).sqrt();
        assert!((horowitz_128k / t.get(Key::SpmatLineRead) - 1.0).abs() < 0.02);
    }

    #[test]
    fn a_file_overrides_and_is_checked() {
        let t = Table::parse("multiply_pj = 0.3\nclock_mw_per_pe = 2\n").unwrap();
        assert_eq!(t.get(Key::Multiply), 0.3);
        assert_eq!(t.get(Key::ClockPerPe), 2.0);
        assert_eq!(t.get(Key::Add), 0.1);
        for (text, needle) in [
            ("multipy_pj = 1\n", "multipy_pj"),
            ("add_pj = -1\n", "add_pj"),
            ("add_pj = nan\n", "add_pj"),
            ("add_pj = \"x\"\n", "add_pj"),
            ("add_pj = \n", "line 1"),
            ("add_pj = 1e300\n", "at most 1000000000"),
            ("spmat_width_exponent = 5\n", "at most 4"),
            ("[t]\nadd_pj = 1\n", "\"t\""),
        ] {
            let e = Table::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    /// `v` to 4 significant digits, trailing zeros dropped (as docs/energy.md prints it).
    fn four_digits(v: f64) -> String {
        if v == 0.0 {
            return "0".into();
        }
        let decimals = (3 - v.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }

    /// docs/energy.md lists every constant with its default: the doc and the code agree.
    #[test]
    fn the_doc_lists_every_constant_with_its_default() {
        let doc = include_str!("../../../docs/energy.md");
        for c in CONSTANTS {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", c.key)))
                .unwrap_or_else(|| panic!("{} is not in docs/energy.md", c.key));
            let default = four_digits((c.default)());
            let cell = row.split('|').nth(2).unwrap().trim();
            let number = cell.split(' ').next().unwrap();
            assert_eq!(number, default, "{}: the doc says {cell}", c.key);
        }
    }

    #[test]
    fn the_printed_table_reads_back() {
        let mut t = Table::paper();
        t.set("dram_32b_pj", 123.5).unwrap();
        let back = Table::parse(&t.to_toml()).unwrap();
        assert_eq!(back, t);
    }
}
