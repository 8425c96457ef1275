//! Small inline SVG charts, written by hand: a few kilobytes each, so a report of hundreds
//! of layers stays a few megabytes and opens at once (docs/decisions.md, "HTML report").
//! Every drawn datum carries the class `d`: the browser test finds one in every figure.
//! Coordinates are rounded to a tenth of a pixel; the figures scale with the page.

use std::fmt::Write;

use crate::doc::esc;

/// A plot area and its data ranges.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    log_x: bool,
}

impl Frame {
    /// The small chart of a layer's section (a histogram, the PEs): 480 x 200 over
    /// `x0..x1` and `0..y1`.
    fn small(x0: f64, x1: f64, y1: f64) -> Self {
        Self {
            w: 480.0,
            h: 200.0,
            left: 46.0,
            right: 10.0,
            top: 14.0,
            bottom: 34.0,
            x0,
            x1,
            y0: 0.0,
            y1,
            log_x: false,
        }
    }

    fn x(&self, v: f64) -> f64 {
        let (v, a, b) = if self.log_x {
            (v.max(self.x0).log10(), self.x0.log10(), self.x1.log10())
        } else {
            (v, self.x0, self.x1)
        };
        self.left + (v - a) / (b - a).max(f64::MIN_POSITIVE) * (self.w - self.left - self.right)
    }

    fn y(&self, v: f64) -> f64 {
        let span = (self.y1 - self.y0).max(f64::MIN_POSITIVE);
        self.h - self.bottom - (v - self.y0) / span * (self.h - self.top - self.bottom)
    }

    fn open(&self, label: &str) -> String {
        format!(
            "<svg viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">",
            self.w,
            self.h,
            esc(label)
        )
    }

    /// The axes' lines, ticks and labels.
    fn axes(
        &self,
        xticks: &[(f64, String)],
        yticks: &[(f64, String)],
        xl: &str,
        yl: &str,
    ) -> String {
        let (l, b, r, t) = (
            self.left,
            self.h - self.bottom,
            self.w - self.right,
            self.top,
        );
        let mut s = format!("<path class=\"ax\" d=\"M{l},{t}V{b}H{r}\"/>");
        for (v, label) in xticks {
            let x = r1(self.x(*v));
            let _ = write!(
                s,
                "<path class=\"tk\" d=\"M{x},{b}v4\"/><text x=\"{x}\" y=\"{}\" class=\"c\">{}</text>",
                b + 15.0,
                esc(label)
            );
        }
        for (v, label) in yticks {
            let y = r1(self.y(*v));
            let _ = write!(
                s,
                "<path class=\"gr\" d=\"M{l},{y}H{r}\"/><text x=\"{}\" y=\"{}\" class=\"e\">{}</text>",
                l - 4.0,
                y + 3.5,
                esc(label)
            );
        }
        if !xl.is_empty() {
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" class=\"c\">{}</text>",
                r1((l + r) / 2.0),
                self.h - 4.0,
                esc(xl)
            );
        }
        if !yl.is_empty() {
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"10\" class=\"s\">{}</text>",
                l - 4.0,
                esc(yl)
            );
        }
        s
    }
}

/// Rounded to a tenth.
fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// About `n` round tick values covering `lo..=hi`.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater)
        || !lo.is_finite()
        || !hi.is_finite()
    {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    let (first, last) = ((lo / step).ceil(), (hi / step).floor());
    // A range too small or too large for f64 steps (a subnormal limit): its ends only.
    let count = last - first;
    if !(step.is_finite() && step > 0.0 && count.is_finite() && count <= 4.0 * n as f64 + 4.0) {
        return vec![lo, hi];
    }
    (first as i64..=last as i64)
        .map(|i| i as f64 * step)
        .collect()
}

/// A tick's label: short, no trailing zeros.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e12).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 1e9 {
        trim(format!("{:.1}", v / 1e9)) + "G"
    } else if a >= 1e6 {
        trim(format!("{:.1}", v / 1e6)) + "M"
    } else if a >= 1e3 {
        trim(format!("{:.1}", v / 1e3)) + "k"
    } else {
        trim(format!("{v:.3}"))
    }
}

/// A number's text without trailing zeros after its point.
fn trim(s: String) -> String {
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Ticks with their labels.
fn labelled(vs: Vec<f64>) -> Vec<(f64, String)> {
    vs.into_iter().map(|v| (v, tick_label(v))).collect()
}

/// A vertical marker on a histogram: its position and tooltip.
pub struct Mark {
    /// Where, on the x axis.
    pub x: f64,
    /// Its tooltip.
    pub title: String,
}

/// Weights in equal bins over `[-limit, limit]`: `back` (grey) behind `front` (blue), and
/// vertical `marks` (orange; the pruning threshold or the centroids). A limit that is not
/// positive (an all-zero layer, whose weights the middle bin counts) is drawn as 1.
pub fn histogram(label: &str, back: &[u64], front: &[u64], limit: f64, marks: &[Mark]) -> String {
    let limit = if limit > 0.0 && limit.is_finite() {
        limit
    } else {
        1.0
    };
    let top = back.iter().chain(front).copied().max().unwrap_or(0).max(1) as f64;
    let f = Frame::small(-limit, limit, top * 1.05);
    let mut s = f.open(label);
    let xt = labelled(ticks(-limit, limit, 6));
    let yt = labelled(ticks(0.0, top, 4));
    s += &f.axes(&xt, &yt, "weight", "weights per bin");
    let bins = back.len().max(front.len()).max(1);
    let width = 2.0 * limit / bins as f64;
    for (counts, class) in [(back, "d b0"), (front, "d b1")] {
        let mut d = String::new();
        for (i, &c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let x0 = r1(f.x(-limit + i as f64 * width));
            let x1 = r1(f.x(-limit + (i + 1) as f64 * width));
            let y = r1(f.y(c as f64));
            let _ = write!(d, "M{x0},{}V{y}H{x1}V{}z", r1(f.y(0.0)), r1(f.y(0.0)));
        }
        if !d.is_empty() {
            let _ = write!(s, "<path class=\"{class}\" d=\"{d}\"/>");
        }
    }
    for m in marks {
        let x = r1(f.x(m.x));
        let _ = write!(
            s,
            "<path class=\"d mk\" d=\"M{x},{}V{}\"><title>{}</title></path>",
            f.top,
            r1(f.y(0.0)),
            esc(&m.title)
        );
    }
    s + "</svg>"
}

/// One bar per index (PEs): every bar of the largest value in orange, a dashed line at
/// `mean`.
pub fn columns(label: &str, values: &[f64], mean: f64, xl: &str, yl: &str) -> String {
    let highest = values.iter().copied().fold(f64::MIN, f64::max);
    let top = values.iter().copied().fold(0.0, f64::max).max(1.0);
    let n = values.len().max(1);
    let f = Frame::small(0.0, n as f64, top * 1.05);
    let mut s = f.open(label);
    let xt: Vec<(f64, String)> = ticks(0.0, (n - 1) as f64, 8)
        .into_iter()
        .map(|v| (v + 0.5, format!("{v:.0}")))
        .collect();
    s += &f.axes(&xt, &labelled(ticks(0.0, top, 4)), xl, yl);
    let gap = if n > 128 { 0.0 } else { 0.15 };
    let mut d = String::new();
    let mut hot = String::new();
    for (i, &v) in values.iter().enumerate() {
        let (x0, x1) = (r1(f.x(i as f64 + gap)), r1(f.x(i as f64 + 1.0 - gap)));
        let bar = format!(
            "M{x0},{}V{}H{x1}V{}z",
            r1(f.y(0.0)),
            r1(f.y(v)),
            r1(f.y(0.0))
        );
        if v == highest { hot += &bar } else { d += &bar }
    }
    if !d.is_empty() {
        let _ = write!(s, "<path class=\"d b1\" d=\"{d}\"/>");
    }
    if !hot.is_empty() {
        let _ = write!(s, "<path class=\"d hot\" d=\"{hot}\"/>");
    }
    let y = r1(f.y(mean));
    let _ = write!(
        s,
        "<path class=\"mean\" d=\"M{},{y}H{}\"><title>mean {}</title></path>",
        f.left,
        f.w - f.right,
        tick_label(mean)
    );
    s + "</svg>"
}

/// A horizontal bar's segment: its value and CSS class (its colour).
pub type Segment = (f64, &'static str);

/// Horizontal bars, one per row, each a stack of segments, labelled on the left and with
/// `note` (SVG text content: escaped, tagged with [`crate::Doc::tspan`]) at the end; `log`
/// for a log scale (segments are then drawn from the axis).
pub fn bars(label: &str, rows: &[(String, Vec<Segment>, String)], xl: &str, log: bool) -> String {
    let total = |segs: &[Segment]| segs.iter().map(|s| s.0).sum::<f64>();
    let hi = rows
        .iter()
        .map(|r| total(&r.1))
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let lo = if log {
        let m = rows
            .iter()
            .flat_map(|r| r.1.iter().map(|s| s.0))
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        if m.is_finite() {
            10f64.powf((m / 2.0).log10().floor())
        } else {
            1.0
        }
    } else {
        0.0
    };
    let hi = if log {
        10f64.powf((hi * 2.0).log10().ceil())
    } else {
        hi * 1.02
    };
    let row_h = 20.0;
    let label_w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 34) as f64
        * 6.2
        + 8.0;
    let f = Frame {
        w: 720.0,
        h: 44.0 + row_h * rows.len() as f64,
        left: label_w,
        right: 110.0,
        top: 8.0,
        bottom: 36.0,
        x0: lo,
        x1: hi,
        y0: 0.0,
        y1: rows.len() as f64,
        log_x: log,
    };
    let mut s = f.open(label);
    let xt = if log {
        // Decades, clamped to f64's range (an edited report's values are not trusted).
        let decade = |v: f64| v.log10().round().clamp(-300.0, 300.0) as i32;
        let (a, b) = (decade(lo), decade(hi));
        let step = ((b - a) / 6).max(1);
        (a..=b)
            .step_by(step as usize)
            .map(|e| (10f64.powi(e), format!("1e{e}")))
            .collect()
    } else {
        labelled(ticks(0.0, hi, 5))
    };
    s += &f.axes(&xt, &[], xl, "");
    for (i, (name, segs, note)) in rows.iter().enumerate() {
        let y_top = r1(f.y((rows.len() - i) as f64) + 3.0);
        let y_bot = r1(f.y((rows.len() - i - 1) as f64) - 3.0);
        let mid = r1((y_top + y_bot) / 2.0 + 4.0);
        let short: String = if name.chars().count() > 34 {
            name.chars().take(33).collect::<String>() + "…"
        } else {
            name.clone()
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{mid}\" class=\"e\">{}<title>{}</title></text>",
            f.left - 4.0,
            esc(&short),
            esc(name)
        );
        let mut at = if log { lo } else { 0.0 };
        for &(v, class) in segs {
            if v <= 0.0 {
                continue;
            }
            let end = if log { v.max(lo) } else { at + v };
            let (x0, x1) = (r1(f.x(if log { lo } else { at })), r1(f.x(end)));
            let _ = write!(
                s,
                "<path class=\"d {class}\" d=\"M{x0},{y_top}H{}V{y_bot}H{x0}z\"/>",
                x1.max(x0 + 0.5)
            );
            at = end;
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{mid}\" class=\"w\">{}</text>",
            r1(f.x(at) + 4.0),
            note
        );
    }
    s + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(ticks(-1.0, 1.0, 4), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(ticks(3.0, 3.0, 4), vec![3.0]);
        // A subnormal range (an edited report's) gives its ends, not billions of ticks.
        assert_eq!(ticks(-5e-324, 5e-324, 6).len(), 2);
        assert_eq!(ticks(0.0, f64::MAX / 2.0, 6).len(), 5);
        assert_eq!(tick_label(2500.0), "2.5k");
        assert_eq!(tick_label(2000.0), "2k");
        assert_eq!(tick_label(100.0), "100");
        assert_eq!(tick_label(2e7), "20M");
        assert_eq!(tick_label(1.5e9), "1.5G");
        assert_eq!(tick_label(1e-4), "1e-4");
        assert_eq!(tick_label(0.25), "0.25");
    }

    #[test]
    fn every_chart_draws_its_data() {
        let h = histogram(
            "h",
            &[1, 5, 0, 2],
            &[0, 3, 0, 1],
            1.0,
            &[Mark {
                x: 0.1,
                title: "t".into(),
            }],
        );
        assert_eq!(h.matches("class=\"d ").count(), 3, "{h}");
        let c = columns("c", &[3.0, 9.0, 4.0, 9.0], 25.0 / 4.0, "PE", "entries");
        assert!(
            c.contains("class=\"d hot\"") && c.contains("class=\"d b1\""),
            "{c}"
        );
        // Both of the busiest PEs are marked.
        let hot = c.split("class=\"d hot\" d=\"").nth(1).unwrap();
        assert_eq!(hot[..hot.find('"').unwrap()].matches('M').count(), 2, "{c}");
        let b = bars(
            "b",
            &[("a".into(), vec![(5.0, "s0"), (2.0, "s1")], "7".into())],
            "bytes",
            false,
        );
        assert_eq!(b.matches("class=\"d ").count(), 2, "{b}");
        let l = bars(
            "l",
            &[
                ("x".into(), vec![(1e6, "s0")], String::new()),
                ("y".into(), vec![(10.0, "s0")], String::new()),
            ],
            "pJ",
            true,
        );
        assert_eq!(l.matches("class=\"d ").count(), 2, "{l}");
    }
}
