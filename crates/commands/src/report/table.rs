//! Plain-text tables: a header row, left-aligned text, right-aligned numbers; the layout the
//! binary renders every report's tables with.

/// A table under construction.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table of these column headers, no rows yet.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// A table whose header is written as a markdown row: `"layer | shape | density"`.
    pub fn columns(header: &str) -> Self {
        Self::new(&header.split('|').map(str::trim).collect::<Vec<_>>())
    }

    /// Adds a row, every cell escaped as errors are (a name from a file may hold anything).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| eie_format::shown(c)).collect());
    }

    /// Renders the table; a column is right-aligned when every non-empty cell in it starts
    /// with a digit (or a minus sign and a digit).
    pub fn render(&self) -> String {
        let n = self.header.len();
        let width = |i: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(i))
                .chain([&self.header[i]])
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let numeric = |i: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(i))
                .filter(|c| !c.is_empty())
                .all(|c| {
                    let c = c.strip_prefix(['-', '+']).unwrap_or(c);
                    c.starts_with(|ch: char| ch.is_ascii_digit())
                })
        };
        let widths: Vec<usize> = (0..n).map(width).collect();
        let right: Vec<bool> = (0..n).map(numeric).collect();
        let line = |cells: &[String]| {
            let mut s = String::new();
            for i in 0..n {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = widths[i] - cell.chars().count();
                if i > 0 {
                    s.push_str("  ");
                }
                if right[i] {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(cell);
                } else {
                    s.push_str(cell);
                    if i + 1 < n {
                        s.push_str(&" ".repeat(pad));
                    }
                }
            }
            s.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}
