//! Showing untrusted text (tensor names, patterns, recorded settings) in a message: one
//! line, bounded. A name with a newline must not make a multi-line error, and a megabyte-long
//! pattern must not be echoed in full.

/// Longest run of non-space characters shown whole; longer runs keep their start and end.
pub const MAX_WORD: usize = 200;
/// Longest text shown whole.
pub const MAX_TEXT: usize = 4000;

/// `text` with control characters escaped (`\n`, `\t`, `\u{1b}`), every run of more than
/// [`MAX_WORD`] non-space characters cut to its start and end around a count of what was
/// left out, and the whole cut after [`MAX_TEXT`] characters likewise.
pub fn shown(text: &str) -> String {
    let mut out = String::new();
    let mut word: Vec<char> = Vec::new();
    let flush = |word: &mut Vec<char>, out: &mut String| {
        if word.len() > MAX_WORD {
            out.extend(&word[..120]);
            out.push_str(&format!("…[{} characters]…", word.len() - 160));
            out.extend(&word[word.len() - 40..]);
        } else {
            out.extend(word.iter());
        }
        word.clear();
    };
    for c in text.chars() {
        if c == ' ' {
            flush(&mut word, &mut out);
            out.push(' ');
        } else if c.is_control() {
            word.extend(c.escape_default());
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    let n = out.chars().count();
    if n > MAX_TEXT {
        let head: String = out.chars().take(MAX_TEXT).collect();
        return format!("{head}… ({} more characters)", n - MAX_TEXT);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_one_bounded_line() {
        assert_eq!(shown("fc1.weight"), "fc1.weight");
        assert_eq!(shown("a\nb\tc"), "a\\nb\\tc");
        let long = "a".repeat(1_000_000);
        let s = shown(&format!("pattern {long} matches nothing"));
        assert!(
            s.starts_with("pattern aaa") && s.ends_with("aaa matches nothing"),
            "{s}"
        );
        assert!(
            s.contains("[999840 characters]") && s.len() < 400,
            "{}",
            s.len()
        );
        let many = "word ".repeat(10_000);
        let s = shown(&many);
        assert!(
            s.ends_with("(46000 more characters)"),
            "{}",
            &s[s.len() - 40..]
        );
        assert!(!shown(&format!("x\n{long}")).contains('\n'));
    }
}
