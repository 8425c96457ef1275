//! Reads a rendered page back: every number and text tagged with `data-k` (a JSON pointer
//! into the document) and `data-f` (how it was shown) must say what the document holds at
//! that pointer, to the precision shown. It parses the page's text, not the renderer's
//! values, so it checks the page a person (or a browser) sees.

use serde_json::Value;

/// A number or text on the page and what the document says.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The JSON pointer.
    pub pointer: String,
    /// What the page shows.
    pub shown: String,
    /// Why it does not match.
    pub reason: String,
}

/// One tagged element: pointer, format code and shown text (unescaped).
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    /// The JSON pointer.
    pub pointer: String,
    /// The `data-f` code.
    pub format: String,
    /// The element's text.
    pub shown: String,
}

/// Every tagged element of `html`, in order.
pub fn tagged(html: &str) -> Vec<Tagged> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(" data-k=\"") {
        rest = &rest[i + 9..];
        let Some(end) = rest.find('"') else { break };
        let pointer = unescape(&rest[..end]);
        rest = &rest[end..];
        let format = rest
            .find(" data-f=\"")
            .filter(|&j| rest[..j].find('>').is_none())
            .and_then(|j| {
                let f = &rest[j + 9..];
                f.find('"').map(|e| f[..e].to_string())
            })
            .unwrap_or_default();
        let Some(gt) = rest.find('>') else { break };
        rest = &rest[gt + 1..];
        let text_end = rest.find('<').unwrap_or(rest.len());
        out.push(Tagged {
            pointer,
            format,
            shown: unescape(&rest[..text_end]),
        });
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The mismatches between `html`'s tagged numbers and texts and `doc`, and how many were
/// checked.
pub fn check(html: &str, doc: &Value) -> (Vec<Mismatch>, usize) {
    let all = tagged(html);
    let bad = all
        .iter()
        .filter_map(|t| {
            let reason = mismatch(t, doc)?;
            Some(Mismatch {
                pointer: t.pointer.clone(),
                shown: t.shown.clone(),
                reason,
            })
        })
        .collect();
    (bad, all.len())
}

/// Why `t` does not say what `doc` holds, if it does not.
fn mismatch(t: &Tagged, doc: &Value) -> Option<String> {
    let Some(v) = doc.pointer(&t.pointer) else {
        return Some("no such field in the document".into());
    };
    if t.format == "t" {
        return match v.as_str() {
            Some(s) if s == t.shown => None,
            Some(s) => Some(format!("the document says {s:?}")),
            None => Some("not a string in the document".into()),
        };
    }
    let Some(want) = v.as_f64() else {
        return Some("not a number in the document".into());
    };
    let digits: String = t
        .shown
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | '+'))
        .collect();
    let Ok(shown) = digits.parse::<f64>() else {
        return Some("not a number on the page".into());
    };
    let decimals = |code: &str| code[1..].parse::<i32>().ok();
    let (target, tol) = match t.format.chars().next() {
        Some('i') => (want, 0.5),
        Some('f') | Some('x') => (want, 0.5 * 10f64.powi(-decimals(&t.format)?) * 1.000_001),
        Some('p') => (
            want * 100.0,
            0.5 * 10f64.powi(-decimals(&t.format)?) * 1.000_001,
        ),
        Some('g') => (want, 5e-4 * want.abs() * 1.000_001),
        _ => return Some(format!("unknown format {:?}", t.format)),
    };
    ((shown - target).abs() > tol).then(|| format!("the document says {want}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{Doc, Fmt};

    #[test]
    fn a_page_that_says_the_document_passes_and_one_that_lies_fails() {
        let v = serde_json::json!({"a": {"n": 1638, "d": 0.1038031, "s": "fc<1>", "r": 21.2244}});
        let d = Doc::new(&v);
        let page = [
            d.num("/a/n", Fmt::Int).unwrap(),
            d.td("/a/d", Fmt::Pct(2)).unwrap(),
            d.text("/a/s").unwrap(),
            d.num("/a/r", Fmt::Times(1)).unwrap(),
            d.num("/a/d", Fmt::Sig).unwrap(),
        ]
        .join("\n");
        let (bad, n) = check(&page, &v);
        assert_eq!((bad.len(), n), (0, 5), "{bad:?}");
        // The page's text is what is checked: change what it shows and it fails.
        for (from, to) in [
            ("1,638", "1,639"),
            ("10.38%", "10.39%"),
            ("fc&lt;1&gt;", "fc1"),
            ("21.2x", "21.3x"),
            ("0.1038<", "0.1039<"),
        ] {
            let lying = page.replacen(from, to, 1);
            assert_ne!(lying, page, "{from}");
            let (bad, _) = check(&lying, &v);
            assert_eq!(bad.len(), 1, "{from} -> {to}: {bad:?}");
        }
        let (bad, _) = check("<td data-k=\"/a/x\" data-f=\"i\">1</td>", &v);
        assert_eq!(bad[0].reason, "no such field in the document");
    }
}
