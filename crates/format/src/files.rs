//! Reading a whole input file safely: only a regular file (a FIFO or a device such as
//! `/dev/zero` would block or never end), and only up to a size, checked before the read and
//! enforced during it (a file may grow meanwhile).

use std::io::Read;
use std::path::Path;

/// The contents of `path`, which must be a regular file (symbolic links followed) of at
/// most `limit` bytes; otherwise an `InvalidInput` error saying which.
pub fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > limit {
        return Err(invalid(format!(
            "{} bytes, over the {limit} this input may have",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(invalid(format!(
            "grew past the {limit} bytes this input may have while read"
        )));
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_regular(path, limit)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("eie-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.toml");
        std::fs::write(&f, "x = 1\n").unwrap();
        assert_eq!(read_text(&f, 6).unwrap(), "x = 1\n");
        let e = read_text(&f, 5).unwrap_err().to_string();
        assert!(e.contains("6 bytes") && e.contains("5"), "{e}");
        assert!(
            read_text(&dir, 100)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
        if Path::new("/dev/zero").exists() {
            let e = read_regular(Path::new("/dev/zero"), 100)
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(
            read_text(&f, 100)
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
