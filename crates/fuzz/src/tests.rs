//! CI's replay of the fuzz corpora: every file of `fuzz/corpus/TARGET/` goes through its
//! target (none may panic), and every file of `fuzz/hostile/TARGET/` must be refused with the
//! error its `.error` file names.

use std::path::{Path, PathBuf};

use super::*;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir` (sorted), without the `.error` notes.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "error"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_replays_without_a_panic() {
    for (name, target) in TARGETS {
        let files = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(!files.is_empty(), "fuzz/corpus/{name} has no seed");
        for f in files {
            let bytes = std::fs::read(&f).expect("a corpus file");
            let _ = target(&bytes);
        }
    }
    remove_scratch();
}

#[test]
fn the_seeds_are_accepted() {
    // A seed that is refused would leave the fuzzer exploring only error paths.
    for (name, target) in TARGETS {
        for f in inputs(&fuzz_dir().join("corpus").join(name)) {
            let stem = f.file_name().unwrap().to_string_lossy().into_owned();
            if stem.starts_with("seed") {
                let bytes = std::fs::read(&f).expect("a seed");
                if let Err(e) = target(&bytes) {
                    panic!("{}: {e}", f.display());
                }
            }
        }
    }
    remove_scratch();
}

#[test]
fn every_hostile_input_gets_its_error() {
    let mut checked = 0;
    for (name, target) in TARGETS {
        for f in inputs(&fuzz_dir().join("hostile").join(name)) {
            let note = PathBuf::from(format!("{}.error", f.display()));
            let expected = std::fs::read_to_string(&note)
                .unwrap_or_else(|_| panic!("{} has no .error note", f.display()));
            let bytes = std::fs::read(&f).expect("a hostile file");
            match target(&bytes) {
                Ok(()) => panic!("{} was accepted", f.display()),
                Err(e) => assert!(
                    e.contains(expected.trim()),
                    "{}: {e:?} does not say {:?}",
                    f.display(),
                    expected.trim()
                ),
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} hostile inputs");
    remove_scratch();
}

#[test]
fn the_manifest_seed_is_the_seed_bundles() {
    let rendered = eie_images::render(&seed_bundle())
        .unwrap()
        .manifest
        .to_json();
    let committed = std::fs::read_to_string(fuzz_dir().join("corpus/manifest/seed.json"))
        .expect("fuzz/corpus/manifest/seed.json (fuzz/make_corpus.sh writes it)");
    assert_eq!(committed, rendered, "rerun fuzz/make_corpus.sh");
    let bundle = std::fs::read(fuzz_dir().join("corpus/bundle/seed-fuzz.eie")).unwrap();
    assert_eq!(
        bundle,
        seed_bundle().to_bytes().unwrap(),
        "rerun fuzz/make_corpus.sh"
    );
}

#[test]
#[ignore = "prints every hostile input's error, for writing the .error notes"]
fn print_hostile_errors() {
    for (name, target) in TARGETS {
        for f in inputs(&fuzz_dir().join("hostile").join(name)) {
            let bytes = std::fs::read(&f).unwrap();
            println!(
                "{}: {:?}",
                f.file_name().unwrap().to_string_lossy(),
                target(&bytes)
            );
        }
    }
}
