//! The test harness: a temporary folder, the binary, and checkpoint builders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use eie_checkpoint::{Dtype, Writer, f32_bytes};

/// The repository's fixtures folder.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// What a run of the binary did.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.status, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        &self.stdout
    }

    /// Asserts a usage error (clap's exit 2, no panic) whose message contains every one of
    /// `needles`.
    #[track_caller]
    pub fn usage_error(&self, needles: &[&str]) {
        assert_eq!(self.status, 2, "expected exit 2\nstderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        for n in needles {
            assert!(self.stderr.contains(n), "{n:?} not in {:?}", self.stderr);
        }
    }

    /// Asserts the failure shape every bad input must have (exit 1, one `error:` line, no
    /// panic) and that the message contains every one of `needles`.
    #[track_caller]
    pub fn fails_with(&self, needles: &[&str]) -> &str {
        assert_eq!(
            self.status, 1,
            "expected exit 1\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        let line = self.stderr.trim_end();
        assert!(
            line.starts_with("error: ") && !line.contains('\n'),
            "not one error line: {line:?}"
        );
        for n in needles {
            assert!(line.contains(n), "{n:?} not in {line:?}");
        }
        line
    }
}

/// A temporary working folder.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs the binary in the folder.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_eie-compress"))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        Run::from(out)
    }

    /// Writes a file in the folder.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Writes a safetensors checkpoint of f32 tensors.
    pub fn checkpoint(&self, rel: &str, tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> PathBuf {
        let specs: Vec<_> = tensors
            .iter()
            .map(|(n, s, _)| (n.to_string(), Dtype::F32, s.clone()))
            .collect();
        self.checkpoint_raw(
            rel,
            &specs,
            &tensors
                .iter()
                .map(|(_, _, d)| f32_bytes(d))
                .collect::<Vec<_>>(),
        )
    }

    /// Writes a safetensors checkpoint of any tensors (name, dtype, shape) with raw bytes.
    pub fn checkpoint_raw(
        &self,
        rel: &str,
        specs: &[(String, Dtype, Vec<usize>)],
        data: &[Vec<u8>],
    ) -> PathBuf {
        let p = self.path(rel);
        let mut w = Writer::create(&p, &BTreeMap::new(), specs).unwrap();
        for d in data {
            w.write_tensor(d).unwrap();
        }
        w.finish().unwrap();
        p
    }

    /// Every file under `rel`, as (relative path, bytes), sorted.
    pub fn snapshot(&self, rel: &str) -> Vec<(String, Vec<u8>)> {
        let root = self.path(rel);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }
}

/// A deterministic sparse matrix with at most `distinct` distinct non-zero values.
pub fn sparse(rows: usize, cols: usize, every: usize, distinct: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| {
            if (i * 7 + i / cols).is_multiple_of(every) {
                let k = (i / every) % distinct;
                (k as f32 - distinct as f32 / 2.0) * 0.125 + 0.0625
            } else {
                0.0
            }
        })
        .collect()
}

/// Parses stdout as JSON.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Runs `python` with `args`, requires success (its stderr in the message), returns stdout.
pub fn python_stdout<S: AsRef<std::ffi::OsStr>>(python: &str, args: &[S]) -> String {
    let out = Command::new(python).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The MNIST test set in ../shared/data/mnist, when it is there.
pub fn mnist_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    dir.join("t10k-images-idx3-ubyte.gz")
        .is_file()
        .then_some(dir)
}

/// Whether python3 with numpy and safetensors is there; if not, says that `test` skips.
pub fn python_with_safetensors(test: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import numpy, safetensors.numpy"])
        .output();
    let found = probe.map(|o| o.status.success()).unwrap_or(false);
    if !found {
        eprintln!(
            "SKIPPED {test}: python3 with numpy and safetensors not found (pip install numpy safetensors)"
        );
    }
    found
}

/// The Python that has PyTorch: `$EIE_TORCH_PYTHON` (.ci/run points it at the virtual
/// environment it installs torch into), else `python3`; `None` (saying that `test` skips)
/// when it cannot import torch, numpy and safetensors.
pub fn python_with_torch(test: &str) -> Option<String> {
    let python = std::env::var("EIE_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import torch, numpy, safetensors.torch"])
        .output();
    if probe.map(|o| o.status.success()).unwrap_or(false) {
        Some(python)
    } else {
        eprintln!(
            "SKIPPED {test}: {python} cannot import torch, numpy and safetensors (pip install torch numpy safetensors, or set EIE_TORCH_PYTHON to a Python that can)"
        );
        None
    }
}

/// tiny-mlp compressed to 30% for 8 PEs into `out` (a small chained model for simulate,
/// energy and CPU tests).
pub fn tiny_model(t: &TestDir, out: &str) {
    t.run(&[
        "compress",
        fixture("tiny-mlp.safetensors").to_str().unwrap(),
        "-o",
        out,
        "--density",
        "0.3",
        "--pes",
        "8",
    ])
    .ok();
}

impl TestDir {
    /// Runs the binary in the folder with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_eie-compress"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        Run::from(out)
    }
}

/// Forging `model.eie` files as a hostile user would (one home: `eie_fuzz::forge`).
pub use eie_fuzz::forge;

/// The Shakespeare corpus (train.txt and valid.txt) beside the project, or `None` (said)
/// when it is absent.
pub fn shakespeare() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/shakespeare");
    if dir.join("train.txt").is_file() && dir.join("valid.txt").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {} is absent", dir.display());
        None
    }
}

/// A 64-32-10 MLP trained by `train` on synthetic samples 0..`samples` for `epochs` epochs,
/// written to `rel`.
pub fn synthetic_mlp(t: &TestDir, rel: &str, samples: usize, epochs: usize) {
    t.run(&[
        "train",
        "--dataset",
        "synthetic",
        "--range",
        &format!("0..{samples}"),
        "--arch",
        "64-32-10",
        "--epochs",
        &epochs.to_string(),
        "-o",
        rel,
    ])
    .ok();
}
