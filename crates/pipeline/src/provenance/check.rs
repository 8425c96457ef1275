//! The checker: a bundle's recorded settings must be true of its layers.

use eie_format::{Bundle, PackedLayer};

use super::keys::*;
use super::{MadeBy, made_by};
use crate::error::{Error, Result};

/// The keys only one of the commands records (besides compress's `layer.NAME` lines).
const OPTIONAL: [&str; 9] = [
    BIAS_COLUMN,
    CALIBRATION,
    CODE_BITS,
    LAYERS,
    RECIPE,
    RETRAIN,
    DESCRIPTION,
    HOST_LAYERS,
    LANGUAGE,
];

/// The keys a bundle made by `compress` or `pack` always records.
const REQUIRED: [&str; 7] = [
    PES,
    INDEX_BITS,
    POINTER_BITS,
    SPMAT_KIB,
    POINTER_KIB,
    COLUMN_BATCH,
    COMMAND,
];

/// Checks a bundle's recorded settings against its layers: no unknown key, every key
/// `compress` or `pack` always writes present, and every value that describes the layers
/// (PEs, bit widths, pointer width, column batches, biases, each layer's line) true of them.
pub fn check_provenance(bundle: &Bundle) -> Result<()> {
    let c = Checker {
        settings: &bundle.meta().settings,
        layers: bundle.layers(),
        pointer_bits: bundle.meta().pointer_bits,
    };
    if c.settings.is_empty() {
        // A bundle assembled by a library user, not by a command: nothing recorded.
        return Ok(());
    }
    c.keys()?;
    let command = c.command()?;
    c.every_layer(PES, 1..=eie_format::MAX_PES as u64, PackedLayer::pes)?;
    if let Some(bits) = c.number(POINTER_BITS, 16..=32)?
        && bits != c.pointer_bits as u64
    {
        return bad(format!(
            "{bits}-bit pointers, but the bundle's are {}-bit",
            c.pointer_bits
        ));
    }
    c.number(SPMAT_KIB, 1..=1 << 30)?;
    c.number(POINTER_KIB, 1..=1 << 30)?;
    c.column_batch()?;
    check_described(c.layers, c.get(DESCRIPTION), c.get(HOST_LAYERS)).or_else(bad)?;
    c.bias_column()?;
    if command == MadeBy::Pack {
        c.every_layer(CODE_BITS, 1..=8, |l| l.code_bits() as usize)?;
        c.every_layer(INDEX_BITS, 1..=8, |l| l.index_bits() as usize)?;
    } else {
        // compress records the command line's width; a recipe may give layers others, which
        // their own lines say.
        c.number(INDEX_BITS, 1..=8)?;
        for l in c.layers {
            c.layer_line(l)?;
        }
    }
    Ok(())
}

/// A recorded setting that is not true: the error.
fn bad<T>(reason: String) -> Result<T> {
    Err(Error::Plan {
        reason: format!("model.eie's recorded settings: {reason}"),
    })
}

/// A bundle's recorded settings and what they describe.
struct Checker<'a> {
    settings: &'a std::collections::BTreeMap<String, String>,
    layers: &'a [PackedLayer],
    pointer_bits: u8,
}

impl Checker<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// No unknown key, every required one present.
    fn keys(&self) -> Result<()> {
        for key in self.settings.keys() {
            let ok = match key.strip_prefix(LAYER_PREFIX) {
                Some(name) => self.layers.iter().any(|l| l.name() == name),
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
            if !self.settings.contains_key(key) {
                return bad(format!("\"{key}\" is missing"));
            }
        }
        Ok(())
    }

    /// The command that made the bundle; each command records its own keys, and only those.
    fn command(&self) -> Result<MadeBy> {
        let text = self.get(COMMAND).unwrap_or_default();
        let Some(command) = made_by(self.settings) else {
            return bad(format!(
                "\"command\" is {:?}, expected \"compress\" or \"pack\"",
                eie_format::shown(text)
            ));
        };
        let (foreign, other): (&[&str], &str) = match command {
            MadeBy::Pack => (&[RECIPE, RETRAIN, CALIBRATION], "compress"),
            MadeBy::Compress => (&[CODE_BITS, LAYERS], "pack"),
        };
        if let Some(k) = self.settings.keys().find(|k| {
            foreign.contains(&k.as_str())
                || (command == MadeBy::Pack && k.starts_with(LAYER_PREFIX))
        }) {
            return bad(format!(
                "\"{}\" is a key only {other} records, in a bundle made by {text}",
                eie_format::shown(k)
            ));
        }
        Ok(command)
    }

    /// A number, digits only as this tool writes them ("+4" parses, but was never written),
    /// within `range`.
    fn number(&self, k: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if range.contains(&n) && v.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
                _ => bad(format!(
                    "\"{k}\" is {:?}, expected {}..={}",
                    eie_format::shown(v),
                    range.start(),
                    range.end()
                )),
            },
        }
    }

    /// A number recorded for the whole bundle must be every layer's.
    fn every_layer(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        of: fn(&PackedLayer) -> usize,
    ) -> Result<()> {
        if let Some(v) = self.number(key, range)?
            && let Some(l) = self.layers.iter().find(|l| of(l) as u64 != v)
        {
            return bad(format!(
                "\"{key}\" is {v}, but layer \"{}\" has {}",
                l.name(),
                of(l)
            ));
        }
        Ok(())
    }

    /// `auto`, none (no layer split) or a width no part is wider than.
    fn column_batch(&self) -> Result<()> {
        match self.get(COLUMN_BATCH) {
            Some("auto") | None => Ok(()),
            Some(v) => match v.parse::<usize>() {
                Ok(0) => match self.layers.iter().find(|l| l.span().is_some()) {
                    Some(l) => bad(format!(
                        "no column batches, but layer \"{}\" is split",
                        l.name()
                    )),
                    None => Ok(()),
                },
                Ok(c) => match self.layers.iter().find(|l| l.cols() > c) {
                    Some(l) => bad(format!(
                        "column batches of {c}, but a part of layer \"{}\" has {} columns",
                        l.name(),
                        l.cols()
                    )),
                    None => Ok(()),
                },
                Err(_) => bad(format!(
                    "\"column_batch\" is {:?}, expected \"auto\" or a number",
                    eie_format::shown(v)
                )),
            },
        }
    }

    /// No bias columns recorded means no layer folds one.
    fn bias_column(&self) -> Result<()> {
        match self.get(BIAS_COLUMN) {
            None | Some("true") => Ok(()),
            Some("false") => match self.layers.iter().find(|l| l.bias().is_some()) {
                Some(l) => bad(format!(
                    "no bias columns, but layer \"{}\" folds {}",
                    l.name(),
                    l.bias().unwrap_or_default()
                )),
                None => Ok(()),
            },
            Some(v) => bad(format!(
                "\"bias_column\" is {:?}, expected true or false",
                eie_format::shown(v)
            )),
        }
    }

    /// compress's line of layer `l` ([`super::layer_line`]) must say its widths and its bias.
    fn layer_line(&self, l: &PackedLayer) -> Result<()> {
        let Some(line) = self.get(&format!("{LAYER_PREFIX}{}", l.name())) else {
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
        Ok(())
    }
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
            Some(_) => Err(format!("\"{HOST_LAYERS}\" without \"{DESCRIPTION}\"")),
        };
    };
    let arch: eie_model::Arch = text
        .parse()
        .map_err(|e| format!("\"{DESCRIPTION}\": {e}"))?;
    let specs = eie_model::matrix_specs(&arch).map_err(|e| format!("\"{DESCRIPTION}\": {e}"))?;
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
        .map(|s| (s.name.as_str(), s.rows(), s.cols()))
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
            "\"{HOST_LAYERS}\" is {}, but the host runs the description's convolutions, {}, or none",
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
