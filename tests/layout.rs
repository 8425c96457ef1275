//! The layout's rules (docs/architecture.md), checked on the sources: crates import only the
//! crates above them in the architecture's table, no import circle between the files of a
//! crate, error modules import nothing of their own crate, no function over 150 lines (over
//! 80 in `src/`) outside tests, and `src/` under 2,500 lines. A lexer strips comments,
//! strings and character literals first, so braces and paths in them do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `src` with comments, string and character literals blanked (newlines kept).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let end = if rest.starts_with(b"//") {
            i + rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            j
        } else if !ident_before
            && (rest.starts_with(b"r#") || rest.starts_with(b"r\"") || rest.starts_with(b"br"))
        {
            let start = i + usize::from(rest[0] == b'b') + 1;
            let hashes = b[start..].iter().take_while(|&&c| c == b'#').count();
            if b.get(start + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let body = start + hashes + 1;
            body + b[body..]
                .windows(close.len())
                .position(|w| w == close)
                .unwrap()
                + close.len()
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            j + 1
        } else if rest[0] == b'\'' {
            // A character literal ('a', '\n', '\u{1F600}'); a lifetime has no closing quote.
            let len = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                let ch = std::str::from_utf8(&rest[1..rest.len().min(6)])
                    .ok()
                    .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(2)]).ok())
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (rest.get(1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            match len {
                Some(n) => i + n,
                None => {
                    i += 1;
                    continue;
                }
            }
        } else {
            i += 1;
            continue;
        };
        blank(&mut out, i, end);
        i = end;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The index just past the `}` that closes the `{` at `open`.
fn block_end(s: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (j, &c) in s.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// `text` without its `#[cfg(test)]` items (a test module, a test-only impl).
fn without_tests(text: &str) -> String {
    let mut s = text.as_bytes().to_vec();
    let mut from = 0;
    while let Some(at) = text[from..].find("#[cfg(test)]").map(|p| p + from) {
        let next_semi = text[at..].find(';').map(|p| p + at);
        let next_open = text[at..].find('{').map(|p| p + at);
        let end = match (next_open, next_semi) {
            (Some(o), Some(sc)) if sc < o => sc + 1,
            (Some(o), _) => block_end(&s, o),
            _ => text.len(),
        };
        for c in &mut s[at..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(s).unwrap()
}

/// Whether a file is a test module or a test kit as a whole.
fn is_test_file(p: &Path) -> bool {
    let name = p.file_name().unwrap().to_string_lossy();
    matches!(name.as_ref(), "tests.rs" | "testutil.rs" | "testkit.rs")
}

/// (lines, function name, first line) of every function of a file outside its tests.
fn functions(text: &str) -> Vec<(usize, String, usize)> {
    let s = without_tests(&strip(text));
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = s[from..].find("fn ").map(|p| p + from) {
        from = at + 3;
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') {
            continue;
        }
        let name: String = s[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (open, semi) = (s[at..].find('{'), s[at..].find(';'));
        let Some(open) = open
            .filter(|&o| semi.is_none_or(|sc| o < sc))
            .map(|o| o + at)
        else {
            continue;
        };
        let end = block_end(b, open);
        let first = s[..at].matches('\n').count() + 1;
        let last = s[..end].matches('\n').count() + 1;
        out.push((last - first + 1, name, first));
    }
    out
}

#[test]
fn no_function_is_too_long() {
    let mut long = Vec::new();
    let roots = std::iter::once((root().join("src"), 80)).chain(
        std::fs::read_dir(root().join("crates"))
            .unwrap()
            .map(|e| (e.unwrap().path().join("src"), 150)),
    );
    for (dir, limit) in roots {
        for f in rust_files(&dir).into_iter().filter(|f| !is_test_file(f)) {
            for (lines, name, at) in functions(&std::fs::read_to_string(&f).unwrap()) {
                if lines > limit {
                    long.push(format!(
                        "{}:{at} {name}: {lines} lines, over {limit}",
                        f.display()
                    ));
                }
            }
        }
    }
    assert!(long.is_empty(), "split these:\n{}", long.join("\n"));
}

#[test]
fn the_binary_stays_thin() {
    let lines: usize = rust_files(&root().join("src"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    // 15 commands, two of which (train, eval) take classifiers and language models alike.
    assert!(
        lines <= 2600,
        "src/ holds {lines} lines: move work into a library crate"
    );
}

/// A crate's modules (by path from the crate root) and the files they live in.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    rust_files(src)
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(src).unwrap().with_extension("");
            let mut path: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if matches!(
                path.last().map(String::as_str),
                Some("lib" | "main" | "mod")
            ) {
                path.pop();
            }
            (path, f)
        })
        .collect()
}

/// The modules of its own crate a module's code names, outside its tests.
fn imports(
    me: &[String],
    text: &str,
    mods: &BTreeMap<Vec<String>, PathBuf>,
) -> BTreeSet<Vec<String>> {
    let s = without_tests(&strip(text));
    let mut out = BTreeSet::new();
    let words: Vec<&str> = s
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{' || c == ','))
        .collect();
    for w in words {
        let (base, rest) = match w.split_once("::") {
            Some((b @ ("crate" | "super"), r)) => (b, r),
            _ => continue,
        };
        let mut path: Vec<String> = match base {
            "crate" => Vec::new(),
            _ => me[..me.len().saturating_sub(1)].to_vec(),
        };
        let mut parts = rest.split("::").peekable();
        while parts.peek() == Some(&"super") {
            parts.next();
            path.pop();
        }
        let mut candidates = Vec::new();
        let mut prefix = path.clone();
        for p in parts {
            if let Some(group) = p.strip_prefix('{') {
                for item in group.split(',') {
                    let mut c = prefix.clone();
                    c.push(
                        item.trim_matches(|ch: char| !ch.is_alphanumeric() && ch != '_')
                            .to_string(),
                    );
                    candidates.push(c);
                }
                break;
            }
            prefix.push(p.to_string());
        }
        candidates.push(prefix);
        for c in candidates {
            if let Some(k) = (0..=c.len()).rev().find(|&k| mods.contains_key(&c[..k])) {
                let target = c[..k].to_vec();
                if !target.is_empty() && target != me && !me.starts_with(&target) {
                    out.insert(target);
                }
            }
        }
    }
    out
}

#[test]
fn no_import_circle_between_the_files_of_a_crate() {
    let mut found = Vec::new();
    let srcs = std::iter::once(root().join("src")).chain(
        std::fs::read_dir(root().join("crates"))
            .unwrap()
            .map(|e| e.unwrap().path().join("src")),
    );
    for src in srcs {
        let mods = modules(&src);
        let graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = mods
            .iter()
            .map(|(m, f)| {
                (
                    m.clone(),
                    imports(m, &std::fs::read_to_string(f).unwrap(), &mods),
                )
            })
            .collect();
        for (m, deps) in &graph {
            if m.last().is_some_and(|n| n == "error") && !deps.is_empty() {
                found.push(format!(
                    "{}: the error module imports {deps:?}",
                    src.display()
                ));
            }
        }
        // A module that reaches itself is on a circle.
        for start in graph.keys() {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<&Vec<String>> = graph[start].iter().collect();
            while let Some(m) = stack.pop() {
                if m == start {
                    found.push(format!(
                        "{}: {} is on an import circle",
                        src.display(),
                        start.join("::")
                    ));
                    break;
                }
                if seen.insert(m) {
                    stack.extend(graph.get(m).into_iter().flatten());
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn crates_import_only_crates_above_them_in_the_architecture() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    // The table's rows name their crate as (`eie-NAME`).
    let order: Vec<String> = doc
        .lines()
        .filter(|l| l.starts_with("| `crates/"))
        .filter_map(|l| l.split("(`").nth(1)?.split('`').next().map(str::to_string))
        .collect();
    assert!(order.len() >= 15, "{order:?}");
    let mut wrong = Vec::new();
    for (i, name) in order.iter().enumerate() {
        let dir = root().join("crates").join(name.trim_start_matches("eie-"));
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .unwrap_or("")
            .split("\n[")
            .next()
            .unwrap_or("");
        for dep in deps
            .lines()
            .filter_map(|l| l.split('.').next())
            .filter(|d| d.starts_with("eie-"))
        {
            if !order[..i].iter().any(|o| o == dep) {
                wrong.push(format!("{name} imports {dep}, which is not above it"));
            }
        }
    }
    let listed: BTreeSet<&str> = order.iter().map(String::as_str).collect();
    for e in std::fs::read_dir(root().join("crates")).unwrap() {
        let name = format!("eie-{}", e.unwrap().file_name().to_string_lossy());
        if !listed.contains(name.as_str()) {
            wrong.push(format!("{name} is not in docs/architecture.md's table"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_lexer_ignores_what_is_not_code() {
    let text = "fn a() { let s = \"}{ fn b() {\"; let c = '}'; // fn x() {\n /* { */ }\nfn d<'a>(x: &'a str) {}\n";
    let f = functions(text);
    assert_eq!(
        f.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        ["a", "d"]
    );
    assert_eq!(f[0].0, 2);
    let raw = "fn r() { let s = r#\"}\"#; }\n#[cfg(test)]\nmod tests {\n fn t() {}\n}\n";
    assert_eq!(functions(raw).len(), 1);
}
