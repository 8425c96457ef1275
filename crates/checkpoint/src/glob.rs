//! Layer-name patterns and the natural order of layer names.

use std::cmp::Ordering;

/// Longest pattern accepted (characters): a run with `?` or `[...]` costs a word operation
/// per 64 of its characters for each character of the name, so this bounds it.
pub const MAX_PATTERN: usize = 1024;
/// Most patterns one command takes (`--layers`, or a recipe's `select` and `[[layers]]`).
pub const MAX_PATTERNS: usize = 256;

/// Whether `name` matches the glob `pattern`: `*` any run of characters (dots included),
/// `?` one character, `[abc]`, `[a-z]` and `[!abc]` one character of (or not of) a set;
/// everything else matches itself (an unclosed `[` too).
///
/// Linear in the name for literal runs: the pattern is cut at its stars, and each run between
/// two stars is matched at its leftmost place after the previous one (a glob never needs to
/// backtrack further), found by Knuth-Morris-Pratt when it is literal, else by Shift-And:
/// each reads the name once. A pattern longer than [`MAX_PATTERN`] matches nothing ([`check_pattern`] says why).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if pattern.chars().count() > MAX_PATTERN {
        return false;
    }
    let n: Vec<char> = name.chars().collect();
    let runs = parse(pattern);
    let (first, rest) = runs.split_first().expect("at least one run");
    if rest.is_empty() {
        return first.len() == n.len() && matches_at(first, &n, 0);
    }
    let (last, middle) = rest.split_last().expect("two runs or more");
    if first.len() + last.len() > n.len()
        || !matches_at(first, &n, 0)
        || !matches_at(last, &n, n.len() - last.len())
    {
        return false;
    }
    let end = n.len() - last.len();
    let mut at = first.len();
    for run in middle {
        match find(run, &n[..end], at) {
            Some(i) => at = i + run.len(),
            None => return false,
        }
    }
    true
}

/// Refuses a pattern over [`MAX_PATTERN`] characters, with the reason.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let len = pattern.chars().count();
    if len > MAX_PATTERN {
        return Err(format!(
            "a pattern of {len} characters; at most {MAX_PATTERN} are accepted"
        ));
    }
    Ok(())
}

/// One character of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    Any,
    Class {
        negate: bool,
        items: Vec<(char, char)>,
    },
}

impl Tok {
    fn matches(&self, c: char) -> bool {
        match self {
            Tok::Lit(l) => *l == c,
            Tok::Any => true,
            Tok::Class { negate, items } => items.iter().any(|&(a, b)| a <= c && c <= b) != *negate,
        }
    }
}

/// The pattern's runs between stars (empty runs included: `*` alone is two empty runs).
fn parse(pattern: &str) -> Vec<Vec<Tok>> {
    let p: Vec<char> = pattern.chars().collect();
    let mut runs = vec![Vec::new()];
    let mut i = 0;
    while i < p.len() {
        let tok = match p[i] {
            '*' => {
                runs.push(Vec::new());
                i += 1;
                continue;
            }
            '?' => Tok::Any,
            '[' => match class(&p, i) {
                Some((tok, next)) => {
                    runs.last_mut().expect("a run").push(tok);
                    i = next;
                    continue;
                }
                None => Tok::Lit('['),
            },
            c => Tok::Lit(c),
        };
        runs.last_mut().expect("a run").push(tok);
        i += 1;
    }
    runs
}

/// The class starting at `p[start] == '['` and the index after its `]`, or None if it is not
/// closed (then `[` is an ordinary character). A `]` first in the class is a member.
fn class(p: &[char], start: usize) -> Option<(Tok, usize)> {
    let mut i = start + 1;
    let negate = p.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    while i < p.len() && (p[i] != ']' || first) {
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            items.push((p[i], p[i + 2]));
            i += 3;
        } else {
            items.push((p[i], p[i]));
            i += 1;
        }
    }
    if i >= p.len() {
        return None;
    }
    Some((Tok::Class { negate, items }, i + 1))
}

fn matches_at(run: &[Tok], n: &[char], at: usize) -> bool {
    n.len() >= at + run.len() && run.iter().zip(&n[at..]).all(|(t, &c)| t.matches(c))
}

/// The leftmost place at or after `from` where `run` matches inside `n`.
fn find(run: &[Tok], n: &[char], from: usize) -> Option<usize> {
    if run.is_empty() {
        return Some(from);
    }
    let literal: Option<Vec<char>> = run
        .iter()
        .map(|t| match t {
            Tok::Lit(c) => Some(*c),
            _ => None,
        })
        .collect();
    match literal {
        Some(needle) => kmp(&needle, n, from),
        None => shift_and(run, n, from),
    }
}

/// Shift-And (Baeza-Yates and Gonnet): the first place at or after `from` where `run`, with
/// `?` and classes, matches in `n`, reading `n` once with ceil(len / 64) word operations per
/// character.
fn shift_and(run: &[Tok], n: &[char], from: usize) -> Option<usize> {
    let m = run.len();
    let words = m.div_ceil(64);
    let (last, bit) = ((m - 1) / 64, 1u64 << ((m - 1) % 64));
    let mut masks: std::collections::HashMap<char, Vec<u64>> = std::collections::HashMap::new();
    let mut state = vec![0u64; words];
    for (i, &c) in n.iter().enumerate().skip(from) {
        let mask = masks.entry(c).or_insert_with(|| {
            let mut v = vec![0u64; words];
            for (k, t) in run.iter().enumerate() {
                if t.matches(c) {
                    v[k / 64] |= 1 << (k % 64);
                }
            }
            v
        });
        let mut carry = 1u64;
        for (w, m) in state.iter_mut().zip(mask.iter()) {
            let out = *w >> 63;
            *w = ((*w << 1) | carry) & m;
            carry = out;
        }
        if state[last] & bit != 0 {
            return Some(i + 1 - m);
        }
    }
    None
}

/// Knuth-Morris-Pratt: the first place at or after `from` where `needle` occurs in `hay`.
fn kmp(needle: &[char], hay: &[char], from: usize) -> Option<usize> {
    let mut fail = vec![0usize; needle.len()];
    let mut k = 0;
    for i in 1..needle.len() {
        while k > 0 && needle[i] != needle[k] {
            k = fail[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let mut k = 0;
    for (i, &c) in hay.iter().enumerate().skip(from) {
        while k > 0 && c != needle[k] {
            k = fail[k - 1];
        }
        if c == needle[k] {
            k += 1;
        }
        if k == needle.len() {
            return Some(i + 1 - k);
        }
    }
    None
}

/// Natural order: runs of digits compare as numbers, so `fc2` < `fc10` and `layers.2` <
/// `layers.10`; ties fall back to plain string order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let dx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let dy = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let tx = trim_zeros(&x[..dx]);
                let ty = trim_zeros(&y[..dy]);
                let ord = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[dx..];
                y = &y[dy..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backtracking matcher this module used before (quadratic at worst): the reference
    /// the linear one must agree with.
    fn reference(pattern: &str, name: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let n: Vec<char> = name.chars().collect();
        let (mut pi, mut ni) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            if pi < p.len() {
                match p[pi] {
                    '*' => {
                        star = Some((pi, ni));
                        pi += 1;
                        continue;
                    }
                    '?' => {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                    '[' => match class(&p, pi) {
                        Some((tok, next)) if tok.matches(n[ni]) => {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                        Some(_) => {}
                        None if n[ni] == '[' => {
                            pi += 1;
                            ni += 1;
                            continue;
                        }
                        None => {}
                    },
                    c if c == n[ni] => {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }

    proptest::proptest! {
        #[test]
        fn the_linear_matcher_agrees_with_backtracking(
            pattern in "[ab*?\\[\\]!-]{0,12}",
            name in "[ab\\[\\]!-]{0,16}",
        ) {
            proptest::prop_assert_eq!(glob_match(&pattern, &name), reference(&pattern, &name));
        }
    }

    #[test]
    fn long_runs_against_a_long_name() {
        // 400,000 characters against a 1,001-character literal run (quadratic matching took
        // seconds; Knuth-Morris-Pratt reads the name once): the answers, not the time.
        let name = "a".repeat(400_000);
        let pattern = format!("*{}b*", "a".repeat(1000));
        assert!(!glob_match(&pattern, &name));
        assert!(glob_match(&format!("*{}*", "a".repeat(1000)), &name));
        assert!(!glob_match(
            &"a".repeat(MAX_PATTERN + 1),
            &"a".repeat(MAX_PATTERN + 1)
        ));
        assert!(check_pattern(&"*".repeat(MAX_PATTERN + 1)).is_err());
        // Runs of `?` and classes (Shift-And), longer than a word.
        let q = format!("*{}b*", "?".repeat(100));
        assert!(!glob_match(&q, &name));
        assert!(glob_match(&q, &format!("{name}b")));
        assert!(glob_match(&format!("*[a]{}?*", "?".repeat(70)), &name));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.weight", "fc1.weight"));
        assert!(glob_match("*", ""));
        assert!(glob_match("fc?.weight", "fc1.weight"));
        assert!(!glob_match("fc?.weight", "fc10.weight"));
        assert!(glob_match("layers.*.weight", "layers.10.weight"));
        assert!(glob_match("fc[12].*", "fc2.bias"));
        assert!(!glob_match("fc[!12].*", "fc2.bias"));
        assert!(glob_match("fc[0-9]*", "fc7.weight"));
        assert!(glob_match("fc[", "fc["));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
        assert!(!glob_match("a*b*c", "aXXbYYb"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("[]]", "]"));
    }

    #[test]
    fn natural_order() {
        let mut names = vec![
            "fc10.weight",
            "fc2.weight",
            "fc1.weight",
            "layers.10.weight",
            "layers.9.weight",
            "a",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "a",
                "fc1.weight",
                "fc2.weight",
                "fc10.weight",
                "layers.9.weight",
                "layers.10.weight"
            ]
        );
        assert_eq!(natural_cmp("x01", "x1"), "x01".cmp("x1"));
    }
}
