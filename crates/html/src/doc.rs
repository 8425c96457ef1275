//! The report's JSON document and the cells that show its numbers. Every number the page
//! shows from the document is written by [`Doc::num`], which tags it with the JSON pointer
//! it came from and how it was formatted, so [`crate::check`] can prove the page says what
//! the document says.

use serde_json::Value;

use crate::{Error, Result};

/// How a number is shown (the `data-f` attribute; [`crate::check`] reads it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    /// A whole number with thousands separators: `12,345` (`i`).
    Int,
    /// Fixed decimals: `0.25` (`fN`).
    Fixed(u8),
    /// A fraction as a percentage with decimals: 0.1038 as `10.38%` (`pN`).
    Pct(u8),
    /// A ratio with decimals: `21.2x` (`xN`).
    Times(u8),
    /// Four significant digits: `0.07654`, `1.235e-5` (`g`).
    Sig,
}

impl Fmt {
    /// The `data-f` code.
    pub fn code(self) -> String {
        match self {
            Fmt::Int => "i".into(),
            Fmt::Fixed(d) => format!("f{d}"),
            Fmt::Pct(d) => format!("p{d}"),
            Fmt::Times(d) => format!("x{d}"),
            Fmt::Sig => "g".into(),
        }
    }

    /// `v` as shown.
    pub fn show(self, v: f64) -> String {
        match self {
            Fmt::Int => thousands(v),
            Fmt::Fixed(d) => format!("{v:.*}", d as usize),
            Fmt::Pct(d) => format!("{:.*}%", d as usize, v * 100.0),
            Fmt::Times(d) => format!("{v:.*}x", d as usize),
            Fmt::Sig => sig(v),
        }
    }
}

/// A whole number with commas every three digits.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// Four significant digits, fixed between 1e-3 and 1e6, else scientific.
fn sig(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e6).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

/// Escapes text for HTML (element content and attribute values alike).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON pointer's token: `~` and `/` escaped (RFC 6901).
pub fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The document the page shows, read by JSON pointer.
pub struct Doc<'a> {
    root: &'a Value,
}

impl<'a> Doc<'a> {
    /// Over `root`.
    pub fn new(root: &'a Value) -> Self {
        Self { root }
    }

    /// The value at `ptr`, if present and not null.
    pub fn get(&self, ptr: &str) -> Option<&'a Value> {
        self.root.pointer(ptr).filter(|v| !v.is_null())
    }

    /// The value at `ptr`, which must be present.
    pub fn need(&self, ptr: &str, expected: &'static str) -> Result<&'a Value> {
        self.get(ptr).ok_or_else(|| Error::Field {
            pointer: ptr.to_string(),
            expected,
        })
    }

    /// The number at `ptr`.
    pub fn f64(&self, ptr: &str) -> Result<f64> {
        self.need(ptr, "a number")?
            .as_f64()
            .ok_or_else(|| Error::Field {
                pointer: ptr.to_string(),
                expected: "a number",
            })
    }

    /// The string at `ptr`.
    pub fn str(&self, ptr: &str) -> Result<&'a str> {
        self.need(ptr, "a string")?
            .as_str()
            .ok_or_else(|| Error::Field {
                pointer: ptr.to_string(),
                expected: "a string",
            })
    }

    /// The array at `ptr`.
    pub fn arr(&self, ptr: &str) -> Result<&'a Vec<Value>> {
        self.need(ptr, "an array")?
            .as_array()
            .ok_or_else(|| Error::Field {
                pointer: ptr.to_string(),
                expected: "an array",
            })
    }

    /// The array of numbers at `ptr`.
    pub fn nums(&self, ptr: &str) -> Result<Vec<f64>> {
        self.arr(ptr)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_f64().ok_or_else(|| Error::Field {
                    pointer: format!("{ptr}/{i}"),
                    expected: "a number",
                })
            })
            .collect()
    }

    /// The index of the element named `name` (its `name` field) in the array at `list`.
    pub fn index_of(&self, list: &str, name: &str) -> Option<usize> {
        self.get(list)?
            .as_array()?
            .iter()
            .position(|l| l.get("name").and_then(|n| n.as_str()) == Some(name))
    }

    /// The number at `ptr` as a tagged span.
    pub fn num(&self, ptr: &str, fmt: Fmt) -> Result<String> {
        Ok(tagged("span", ptr, fmt, self.f64(ptr)?))
    }

    /// The number at `ptr` as a tagged table cell.
    pub fn td(&self, ptr: &str, fmt: Fmt) -> Result<String> {
        Ok(tagged("td", ptr, fmt, self.f64(ptr)?))
    }

    /// The number at `ptr` as a tagged cell, or an empty cell when it is absent or null.
    pub fn td_opt(&self, ptr: &str, fmt: Fmt) -> Result<String> {
        match self.get(ptr) {
            None => Ok("<td>-</td>".into()),
            Some(_) => self.td(ptr, fmt),
        }
    }

    /// The number at `ptr` as a tagged SVG `tspan`.
    pub fn tspan(&self, ptr: &str, fmt: Fmt) -> Result<String> {
        Ok(tagged("tspan", ptr, fmt, self.f64(ptr)?))
    }

    /// The string at `ptr` as a tagged span (its text checked verbatim).
    pub fn text(&self, ptr: &str) -> Result<String> {
        Ok(format!(
            "<span data-k=\"{}\" data-f=\"t\">{}</span>",
            esc(ptr),
            esc(self.str(ptr)?)
        ))
    }
}

/// `<tag data-k=… data-f=…>shown</tag>`.
fn tagged(tag: &str, ptr: &str, fmt: Fmt, v: f64) -> String {
    format!(
        "<{tag} data-k=\"{}\" data-f=\"{}\">{}</{tag}>",
        esc(ptr),
        fmt.code(),
        fmt.show(v)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_show_as_people_read_them() {
        assert_eq!(Fmt::Int.show(1234567.0), "1,234,567");
        assert_eq!(Fmt::Int.show(999.0), "999");
        assert_eq!(Fmt::Int.show(-1000.0), "-1,000");
        assert_eq!(Fmt::Int.show(0.0), "0");
        assert_eq!(Fmt::Pct(2).show(0.10380314), "10.38%");
        assert_eq!(Fmt::Times(1).show(21.2244), "21.2x");
        assert_eq!(Fmt::Sig.show(0.07654398), "0.07654");
        assert_eq!(Fmt::Sig.show(1.4722e-5), "1.472e-5");
        assert_eq!(Fmt::Sig.show(-12.5), "-12.50");
        assert_eq!(Fmt::Sig.show(0.0), "0");
    }

    #[test]
    fn a_missing_field_is_named() {
        let v = serde_json::json!({"a": {"b": 1}});
        let d = Doc::new(&v);
        let e = d.f64("/a/c").unwrap_err().to_string();
        assert!(e.contains("/a/c") && e.contains("a number"), "{e}");
        assert!(d.str("/a/b").is_err());
        assert_eq!(token("a/b~c"), "a~1b~0c");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
