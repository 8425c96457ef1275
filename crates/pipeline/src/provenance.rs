//! What a bundle's settings may say, checked against its layers: `verify` refuses a
//! `model.eie` whose recorded settings were edited to disagree with what it holds.

use eie_format::Bundle;

use crate::error::{Error, Result};

/// Every key `compress` and `pack` record, besides `layer.NAME` (one per layer).
const KNOWN: [&str; 12] = [
    "pes",
    "index_bits",
    "pointer_bits",
    "spmat_kib",
    "pointer_kib",
    "column_batch",
    "command",
    "bias_column",
    "code_bits",
    "layers",
    "recipe",
    "retrain",
];

/// The keys a bundle made by `compress` or `pack` always records.
const REQUIRED: [&str; 7] = [
    "pes",
    "index_bits",
    "pointer_bits",
    "spmat_kib",
    "pointer_kib",
    "column_batch",
    "command",
];

/// Checks a bundle's recorded settings against its layers: no unknown key, every key
/// `compress` or `pack` always writes present, and every value that describes the layers
/// (PEs, bit widths, pointer width, column batches, biases, each layer's line) true of them.
pub fn check_provenance(bundle: &Bundle) -> Result<()> {
    let settings = &bundle.meta().settings;
    let bad = |reason: String| {
        Err(Error::Plan {
            reason: format!("model.eie's recorded settings: {reason}"),
        })
    };
    if settings.is_empty() {
        // A bundle assembled by a library user, not by a command: nothing recorded.
        return Ok(());
    }
    let layers = bundle.layers();
    for key in settings.keys() {
        let ok = match key.strip_prefix("layer.") {
            Some(name) => layers.iter().any(|l| l.name() == name),
            // The input scaling the source was trained with (`eie.scale`, `eie.mean`, ...).
            None => KNOWN.contains(&key.as_str()) || key.starts_with("eie."),
        };
        if !ok {
            return bad(format!("unknown key \"{}\"", eie_format::shown(key)));
        }
    }
    for key in REQUIRED {
        if !settings.contains_key(key) {
            return bad(format!("\"{key}\" is missing"));
        }
    }
    let get = |k: &str| settings.get(k).map(String::as_str);
    let number = |k: &str, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>> {
        match get(k) {
            None => Ok(None),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(Error::Plan {
                    reason: format!(
                        "model.eie's recorded settings: \"{k}\" is {:?}, expected {}..={}",
                        eie_format::shown(v),
                        range.start(),
                        range.end()
                    ),
                }),
            },
        }
    };
    let command = get("command").unwrap_or_default();
    if !["compress", "pack"].contains(&command) {
        return bad(format!(
            "\"command\" is {:?}, expected \"compress\" or \"pack\"",
            eie_format::shown(command)
        ));
    }
    if let Some(pes) = number("pes", 1..=eie_format::MAX_PES as u64)?
        && let Some(l) = layers.iter().find(|l| l.pes() as u64 != pes)
    {
        return bad(format!(
            "{pes} PEs, but layer \"{}\" has {}",
            l.name(),
            l.pes()
        ));
    }
    if let Some(bits) = number("pointer_bits", 16..=32)?
        && bits != bundle.meta().pointer_bits as u64
    {
        return bad(format!(
            "{bits}-bit pointers, but the bundle's are {}-bit",
            bundle.meta().pointer_bits
        ));
    }
    number("spmat_kib", 1..=1 << 30)?;
    number("pointer_kib", 1..=1 << 30)?;
    match get("column_batch") {
        Some("auto") | None => {}
        Some(v) => match v.parse::<usize>() {
            Ok(0) => {
                if let Some(l) = layers.iter().find(|l| l.span().is_some()) {
                    return bad(format!(
                        "no column batches, but layer \"{}\" is split",
                        l.name()
                    ));
                }
            }
            Ok(c) => {
                if let Some(l) = layers.iter().find(|l| l.cols() > c) {
                    return bad(format!(
                        "column batches of {c}, but a part of layer \"{}\" has {} columns",
                        l.name(),
                        l.cols()
                    ));
                }
            }
            Err(_) => {
                return bad(format!(
                    "\"column_batch\" is {:?}, expected \"auto\" or a number",
                    eie_format::shown(v)
                ));
            }
        },
    }
    match get("bias_column") {
        None | Some("true") => {}
        Some("false") => {
            if let Some(l) = layers.iter().find(|l| l.bias().is_some()) {
                return bad(format!(
                    "no bias columns, but layer \"{}\" folds {}",
                    l.name(),
                    l.bias().unwrap_or_default()
                ));
            }
        }
        Some(v) => {
            return bad(format!(
                "\"bias_column\" is {:?}, expected true or false",
                eie_format::shown(v)
            ));
        }
    }
    if command == "pack" {
        if let Some(bits) = number("code_bits", 1..=8)?
            && let Some(l) = layers.iter().find(|l| l.code_bits() as u64 != bits)
        {
            return bad(format!(
                "{bits}-bit codes, but layer \"{}\" has {}-bit codes",
                l.name(),
                l.code_bits()
            ));
        }
        if let Some(bits) = number("index_bits", 1..=8)?
            && let Some(l) = layers.iter().find(|l| l.index_bits() as u64 != bits)
        {
            return bad(format!(
                "{bits}-bit indices, but layer \"{}\" has {}-bit indices",
                l.name(),
                l.index_bits()
            ));
        }
    } else {
        number("index_bits", 1..=8)?;
    }
    // compress's line per layer: "pruning ...; C bits, ...; index I bits; balance B; bias X".
    for l in layers {
        let Some(line) = get(&format!("layer.{}", l.name())) else {
            continue;
        };
        let expect = [
            format!("; {} bits, ", l.code_bits()),
            format!("; index {} bits;", l.index_bits()),
            format!("; bias {}", l.bias().unwrap_or("none")),
        ];
        if let Some(e) = expect.iter().find(|e| !line.contains(e.as_str())) {
            return bad(format!(
                "layer \"{}\" is recorded as {:?}, which does not say {:?}",
                l.name(),
                eie_format::shown(line),
                e.trim_matches(|c| c == ';' || c == ' ' || c == ',')
            ));
        }
        if !line.ends_with(&expect[2]) {
            return bad(format!(
                "layer \"{}\" is recorded with another bias than it folds",
                l.name()
            ));
        }
    }
    Ok(())
}
