//! What a bundle's settings may say, checked against its layers: `verify` refuses a
//! `model.eie` whose recorded settings were edited to disagree with what it holds.

use eie_format::{Bundle, PackedLayer};

use crate::error::{Error, Result};

/// The model.eie settings key under which compress records a described model's description
/// (a CNN, an LSTM; the checkpoint's own is `eie_model::ARCH_KEY`, `eie.arch`:
/// docs/models.md).
pub const DESCRIPTION_KEY: &str = "arch";
/// The key listing a described model's layers that run on the host, comma-separated.
pub const HOST_LAYERS_KEY: &str = "host_layers";

/// The keys only one of the commands records (besides compress's `layer.NAME` lines).
const OPTIONAL: [&str; 7] = [
    "bias_column",
    "code_bits",
    "layers",
    "recipe",
    "retrain",
    DESCRIPTION_KEY,
    HOST_LAYERS_KEY,
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
            None => {
                REQUIRED.contains(&key.as_str())
                    || OPTIONAL.contains(&key.as_str())
                    || key.starts_with("eie.")
            }
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
            // Digits only, as this tool writes them ("+4" parses, but was never written).
            Some(v) => match v.parse::<u64>() {
                Ok(n) if range.contains(&n) && v.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
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
    // Each command records its own keys, and only those.
    let (foreign, other): (&[&str], &str) = if command == "pack" {
        (&["recipe", "retrain"], "compress")
    } else {
        (&["code_bits", "layers"], "pack")
    };
    if let Some(k) = settings
        .keys()
        .find(|k| foreign.contains(&k.as_str()) || (command == "pack" && k.starts_with("layer.")))
    {
        return bad(format!(
            "\"{}\" is a key only {other} records, in a bundle made by {command}",
            eie_format::shown(k)
        ));
    }
    // A number recorded for the whole bundle must be every layer's.
    let every_layer = |key: &str, range, of: fn(&PackedLayer) -> usize| -> Result<()> {
        if let Some(v) = number(key, range)?
            && let Some(l) = layers.iter().find(|l| of(l) as u64 != v)
        {
            return bad(format!(
                "\"{key}\" is {v}, but layer \"{}\" has {}",
                l.name(),
                of(l)
            ));
        }
        Ok(())
    };
    every_layer("pes", 1..=eie_format::MAX_PES as u64, PackedLayer::pes)?;
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
    check_described(layers, get(DESCRIPTION_KEY), get(HOST_LAYERS_KEY)).or_else(bad)?;
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
        every_layer("code_bits", 1..=8, |l| l.code_bits() as usize)?;
        every_layer("index_bits", 1..=8, |l| l.index_bits() as usize)?;
    } else {
        // compress records the command line's width; a recipe may give layers others, which
        // their own lines (below) say.
        number("index_bits", 1..=8)?;
    }
    // compress's line per layer: "pruning ...; C bits, ...; index I bits; balance B; bias X";
    // every layer has one.
    for l in layers.iter().filter(|_| command == "compress") {
        let Some(line) = get(&format!("layer.{}", l.name())) else {
            return bad(format!(
                "no \"layer.{}\" line for a layer compress made",
                l.name()
            ));
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

/// A recorded description must describe the layers (their names and shapes, in order), and
/// the host layers must be its convolutions.
fn check_described(
    layers: &[eie_format::PackedLayer],
    arch: Option<&str>,
    host: Option<&str>,
) -> std::result::Result<(), String> {
    let Some(text) = arch else {
        return match host {
            None => Ok(()),
            Some(_) => Err(format!(
                "\"{HOST_LAYERS_KEY}\" without \"{DESCRIPTION_KEY}\""
            )),
        };
    };
    let arch: eie_model::Arch = text
        .parse()
        .map_err(|e| format!("\"{DESCRIPTION_KEY}\": {e}"))?;
    let specs =
        eie_model::matrix_specs(&arch).map_err(|e| format!("\"{DESCRIPTION_KEY}\": {e}"))?;
    // Layers stored as column batches are one matrix.
    let mut whole: Vec<(&str, usize, usize)> = Vec::new();
    for l in layers {
        if whole.last().is_none_or(|w| w.0 != l.name()) {
            whole.push((
                l.name(),
                l.rows(),
                l.total_cols() - usize::from(l.bias().is_some()),
            ));
        }
    }
    let shapes: Vec<(&str, usize, usize)> = specs
        .iter()
        .map(|s| (s.name.as_str(), s.shape[0], s.shape[1..].iter().product()))
        .collect();
    if whole != shapes {
        return Err(format!(
            "the description \"{}\" means matrices {shapes:?}, the layers are {whole:?}",
            eie_format::shown(text)
        ));
    }
    // The host runs exactly the convolutions, or none of them (they run on EIE as im2col).
    let convs: Vec<&str> = specs
        .iter()
        .filter(|s| s.shape.len() == 4)
        .map(|s| s.name.as_str())
        .collect();
    let listed: Vec<&str> = host
        .unwrap_or("")
        .split(',')
        .filter(|n| !n.is_empty())
        .collect();
    if !listed.is_empty() && listed != convs {
        return Err(format!(
            "\"{HOST_LAYERS_KEY}\" is {}, but the host runs the description's convolutions, {}, or none",
            eie_format::shown(host.unwrap_or("")),
            convs.join(",")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use eie_format::{BundleMeta, CodeMatrix, Codebook, SourceInfo};

    use super::*;

    fn bundle(settings: &[(&str, &str)]) -> Bundle {
        let codes = CodeMatrix::new(3, 4, vec![1, 0, 2, 0, 0, 1, 0, 0, 2, 0, 0, 1]).unwrap();
        let book = Codebook::new(4, &[0.5, -1.0]).unwrap();
        let layer = PackedLayer::encode("fc.weight", &codes, book, 2, 4)
            .unwrap()
            .with_bias("fc.bias")
            .unwrap();
        let meta = BundleMeta {
            tool_version: "test".into(),
            source: SourceInfo {
                name: "m".into(),
                sha256: None,
            },
            pointer_bits: 16,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        Bundle::new(meta, vec![layer]).unwrap()
    }

    const TRUE: [(&str, &str); 9] = [
        ("pes", "2"),
        ("index_bits", "4"),
        ("pointer_bits", "16"),
        ("spmat_kib", "128"),
        ("pointer_kib", "32"),
        ("column_batch", "auto"),
        ("command", "compress"),
        ("bias_column", "true"),
        (
            "layer.fc.weight",
            "pruning density 0.5; 4 bits, k-means, linear init; index 4 bits; balance false; bias fc.bias",
        ),
    ];

    #[test]
    fn recorded_settings_must_be_true_of_the_layers() {
        check_provenance(&bundle(&TRUE)).unwrap();
        check_provenance(&bundle(&[])).unwrap();
        let lie = |key: &str, value: &str, needle: &str| {
            let mut s: Vec<(&str, &str)> =
                TRUE.iter().filter(|(k, _)| *k != key).copied().collect();
            if !value.is_empty() {
                s.push((key, value));
            }
            let e = check_provenance(&bundle(&s)).unwrap_err().to_string();
            assert!(e.contains(needle), "{key}={value}: {e}");
        };
        lie("pes", "3", "\"pes\" is 3, but layer \"fc.weight\" has 2");
        lie("pes", "0", "expected 1..=4096");
        lie("pes", "+2", "expected 1..=4096");
        lie("code_bits", "4", "a key only pack records");
        lie("layer.fc.weight", "", "no \"layer.fc.weight\" line");
        lie("pointer_bits", "32", "32-bit pointers");
        lie("command", "other", "expected \"compress\" or \"pack\"");
        lie("command", "", "\"command\" is missing");
        lie("bias_column", "false", "folds fc.bias");
        lie(
            "column_batch",
            "2",
            "a part of layer \"fc.weight\" has 4 columns",
        );
        lie("column_batch", "many", "expected \"auto\" or a number");
        lie("mystery", "1", "unknown key \"mystery\"");
        lie("arch", "3-fc=4", "means matrices");
        lie("arch", "3-x", "\"arch\": model description \"3-x\"");
        lie("host_layers", "fc.weight", "without \"arch\"");
        // A description that describes the layer; only a convolution runs on the host.
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut s = TRUE.to_vec();
            s.extend_from_slice(extra);
            check_provenance(&bundle(&s))
        };
        with(&[("arch", "3-fc=3")]).unwrap();
        let e = with(&[("arch", "3-fc=3"), ("host_layers", "fc.weight")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("the host runs the description's convolutions"),
            "{e}"
        );
        lie("layer.other", "x", "unknown key \"layer.other\"");
        lie(
            "layer.fc.weight",
            "pruning none; 8 bits, k-means; index 4 bits; balance false; bias fc.bias",
            "does not say \"4 bits\"",
        );
        lie(
            "layer.fc.weight",
            "pruning none; 4 bits, k-means; index 4 bits; balance false; bias none",
            "does not say \"bias fc.bias\"",
        );
    }
}
