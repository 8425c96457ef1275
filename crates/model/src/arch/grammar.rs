//! The grammar: a description's text to an [`Arch`] and back.

use std::fmt;
use std::str::FromStr;

use super::{Arch, Layer, LayerKind, MAX_DIM, MAX_ITEMS, MAX_LAYER_NAME, MAX_VALUES, Shape};
use crate::error::{Error, Result};

fn parse_dim(text: &str, what: &str) -> std::result::Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("{what} \"{text}\" is not a positive integer"))?;
    if n == 0 || n > MAX_DIM {
        return Err(format!("{what} {n}: expected 1..={MAX_DIM}"));
    }
    Ok(n)
}

/// Splits `body` (after its keyword) into the leading number and its lettered options:
/// `20k5s2` -> (20, [('k', 5), ('s', 2)]).
fn numbers(body: &str, what: &str) -> std::result::Result<(usize, Vec<(char, String)>), String> {
    let lead_end = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let lead = parse_dim(&body[..lead_end], what)?;
    let mut opts = Vec::new();
    let mut rest = &body[lead_end..];
    while let Some(c) = rest.chars().next() {
        if !c.is_ascii_lowercase() {
            return Err(format!("unexpected \"{c}\""));
        }
        let tail = &rest[1..];
        let end = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        if end == 0 {
            return Err(format!("\"{c}\" must be followed by a number"));
        }
        if opts.iter().any(|(o, _)| *o == c) {
            return Err(format!("\"{c}\" is given twice"));
        }
        opts.push((c, tail[..end].to_string()));
        rest = &tail[end..];
    }
    Ok((lead, opts))
}

fn parse_kind(body: &str) -> std::result::Result<LayerKind, String> {
    if body == "relu" {
        return Ok(LayerKind::Relu);
    }
    if body == "flatten" {
        return Ok(LayerKind::Flatten);
    }
    if body.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(LayerKind::Linear {
            outputs: parse_dim(body, "outputs")?,
        });
    }
    let take = |opts: &[(char, String)], allowed: &str| -> std::result::Result<(), String> {
        match opts.iter().find(|(c, _)| !allowed.contains(*c)) {
            Some((c, _)) => Err(format!(
                "unknown option \"{c}\" (this layer takes {})",
                allowed
                    .chars()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Ok(()),
        }
    };
    let get = |opts: &[(char, String)], c: char, what: &str| {
        opts.iter()
            .find(|(o, _)| *o == c)
            .map(|(_, v)| parse_dim(v, what))
            .transpose()
    };
    if let Some(rest) = body.strip_prefix("conv") {
        let (outputs, opts) = numbers(rest, "output channels")?;
        take(&opts, "ksp")?;
        let kernel = get(&opts, 'k', "kernel")?
            .ok_or("a convolution needs its kernel: convOkK, e.g. conv20k5")?;
        let stride = get(&opts, 's', "stride")?.unwrap_or(1);
        let padding = match opts.iter().find(|(c, _)| *c == 'p') {
            Some((_, v)) => v
                .parse::<usize>()
                .ok()
                .filter(|&p| p <= MAX_DIM)
                .ok_or_else(|| format!("padding \"{v}\": expected 0..={MAX_DIM}"))?,
            None => 0,
        };
        return Ok(LayerKind::Conv {
            outputs,
            kernel,
            stride,
            padding,
        });
    }
    for (keyword, max) in [("maxpool", true), ("avgpool", false)] {
        if let Some(rest) = body.strip_prefix(keyword) {
            let (kernel, opts) = numbers(rest, "window")?;
            take(&opts, "s")?;
            let stride = get(&opts, 's', "stride")?.unwrap_or(kernel);
            return Ok(if max {
                LayerKind::MaxPool { kernel, stride }
            } else {
                LayerKind::AvgPool { kernel, stride }
            });
        }
    }
    if let Some(rest) = body.strip_prefix("embed") {
        let (dims, opts) = numbers(rest, "embedding width")?;
        take(&opts, "")?;
        return Ok(LayerKind::Embed { dims });
    }
    if let Some(rest) = body.strip_prefix("lstm") {
        let (hidden, opts) = numbers(rest, "hidden units")?;
        take(&opts, "x")?;
        let layers = get(&opts, 'x', "layers")?.unwrap_or(1);
        return Ok(LayerKind::Lstm { hidden, layers });
    }
    Err(
        "expected a layer: N (Linear), convOkK[sS][pP], maxpoolK[sS], avgpoolK[sS], relu, flatten, lstmH[xL] or embedE"
            .into(),
    )
}

/// The input item: its shape, and whether it is a token stream (`tokV`).
fn parse_input(text: &str) -> std::result::Result<(Shape, bool), String> {
    if let Some(v) = text.strip_prefix("tok") {
        let vocab = parse_dim(v, "vocabulary")?;
        return Ok((Shape::Vector(vocab), true));
    }
    parse_shape(text).map(|s| (s, false))
}

fn parse_shape(text: &str) -> std::result::Result<Shape, String> {
    let dims = text
        .split('x')
        .map(|d| parse_dim(d, "input size"))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "{e}; expected N, TxF (steps x features), CxHxW (an image) or tokV (tokens of a vocabulary of V)"
            )
        })?;
    Ok(match dims[..] {
        [n] => Shape::Vector(n),
        [steps, features] => Shape::Sequence { steps, features },
        [channels, height, width] => Shape::Image {
            channels,
            height,
            width,
        },
        _ => return Err("expected N, TxF (steps x features) or CxHxW (an image)".into()),
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
}

impl FromStr for Arch {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::Arch {
            arch: text.to_string(),
            reason,
        };
        let items: Vec<&str> = text.split('-').map(str::trim).collect();
        if items.len() > MAX_ITEMS {
            return Err(bad(format!("{} items, at most {MAX_ITEMS}", items.len())));
        }
        if items.len() < 2 {
            return Err(bad(
                "expected an input and at least one layer joined by '-', e.g. 784-300-100-10 or 1x28x28-conv20k5-maxpool2-500-10".into(),
            ));
        }
        let (input, tokens) =
            parse_input(items[0]).map_err(|e| bad(format!("input \"{}\": {e}", items[0])))?;
        if input.checked_size().is_none() {
            return Err(bad(format!(
                "input \"{}\": more than {MAX_VALUES} values per sample",
                items[0]
            )));
        }
        let mut parsed = Vec::new();
        for (i, item) in items.iter().enumerate().skip(1) {
            let (name, body) = match item.split_once('=') {
                Some((n, b)) => (Some(n.trim()), b.trim()),
                None => (None, *item),
            };
            let kind = parse_kind(body).map_err(|e| bad(format!("item {i} \"{item}\": {e}")))?;
            parsed.push((i, name, kind));
        }
        let lstms = parsed
            .iter()
            .filter(|(_, _, k)| matches!(k, LayerKind::Lstm { .. }))
            .count();
        let mut layers: Vec<Layer> = Vec::new();
        let mut counts = [0usize; 6];
        for (i, name, kind) in parsed {
            let (slot, stem) = match kind {
                LayerKind::Linear { .. } => (0, "fc"),
                LayerKind::Conv { .. } => (1, "conv"),
                LayerKind::Lstm { .. } => (2, "lstm"),
                LayerKind::MaxPool { .. } | LayerKind::AvgPool { .. } => (3, "pool"),
                LayerKind::Relu | LayerKind::Flatten => (4, "act"),
                LayerKind::Embed { .. } => (5, "embed"),
            };
            counts[slot] += 1;
            let default = if slot == 2 && lstms == 1 {
                "lstm".to_string()
            } else if slot == 5 && counts[5] == 1 {
                "embed".to_string()
            } else {
                format!("{stem}{}", counts[slot])
            };
            let named = name.is_some();
            let name = match name {
                Some(n) if n.len() > MAX_LAYER_NAME => {
                    return Err(bad(format!(
                        "item {i}: a name of {} bytes; at most {MAX_LAYER_NAME} (its tensors' names, NAME.weight_hh_l0 and the like, must fit the {} bytes a tensor name may have)",
                        n.len(),
                        eie_format::MAX_NAME
                    )));
                }
                Some(n) if valid_name(n) => n.to_string(),
                Some(n) => {
                    return Err(bad(format!(
                        "item {i}: the name \"{n}\" is not a module path (letters, digits, '_' and '.')"
                    )));
                }
                None => default,
            };
            if kind.has_tensors() && layers.iter().any(|l| l.name == name) {
                return Err(bad(format!("item {i}: the name \"{name}\" is used twice")));
            }
            layers.push(Layer { name, named, kind });
        }
        let arch = Arch {
            input,
            layers,
            tokens,
        };
        arch.steps().map_err(|e| match e {
            Error::Arch { reason, .. } => bad(reason),
            other => other,
        })?;
        Ok(arch)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tokens {
            write!(f, "tok{}", self.input.size())?;
        } else {
            write!(f, "{}", self.input)?;
        }
        for l in &self.layers {
            if l.named {
                write!(f, "-{}={}", l.name, l.kind)?;
            } else {
                write!(f, "-{}", l.kind)?;
            }
        }
        Ok(())
    }
}
