//! RTL test vectors from the functional model: per layer the input activations, the expected
//! outputs and every PE's expected accumulators, as `$readmemh` text and little-endian
//! binary, with a manifest (`eie-vectors`, version 1).

use std::path::Path;

use eie_format::hex;
use eie_images::{layer_dir_name, to_hex, to_le_bytes};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::fixed::Arith;
use crate::float::relu_at;
use crate::layer::LayerView;
use crate::run::{LayerStep, Mode, fractions, run_chain, run_independent};
use crate::timing::TimingParams;

/// The manifest.
#[derive(Debug, Clone, Serialize)]
pub struct VectorManifest {
    /// Always "eie-vectors".
    pub format: &'static str,
    /// 1.
    pub format_version: u32,
    /// The tool that packed the model.
    pub tool_version: String,
    /// The model's source checkpoint.
    pub source: String,
    /// "chained": layer L's expected outputs are layer L+1's inputs; "independent": every
    /// layer has its own generated input.
    pub mode: &'static str,
    /// Byte order of the binary files.
    pub byte_order: &'static str,
    /// Accumulator width.
    pub acc_bits: u8,
    /// Every layer.
    pub layers: Vec<LayerVectors>,
}

/// One layer's vectors.
#[derive(Debug, Clone, Serialize)]
pub struct LayerVectors {
    /// Layer name.
    pub name: String,
    /// Its folder.
    pub dir: String,
    /// Rows.
    pub rows: usize,
    /// Inputs.
    pub inputs: usize,
    /// PEs.
    pub pes: usize,
    /// Whether a bias is folded in.
    pub bias: bool,
    /// Fractional bits of the input activations.
    pub frac_in: u8,
    /// Of the codebook.
    pub frac_weights: u8,
    /// Of the accumulators.
    pub frac_acc: u8,
    /// Of the outputs.
    pub frac_out: u8,
    /// Whether ReLU is applied on write-back.
    pub relu: bool,
    /// Its files.
    pub files: Vec<VectorFile>,
}

/// One file.
#[derive(Debug, Clone, Serialize)]
pub struct VectorFile {
    /// Path relative to the manifest.
    pub path: String,
    /// "input", "output", or "accumulators" (of one PE, its rows in local order).
    pub kind: &'static str,
    /// The PE, for accumulators.
    pub pe: Option<usize>,
    /// "binary" or "readmemh".
    pub encoding: &'static str,
    /// Bits per word.
    pub word_bits: u32,
    /// Words.
    pub words: usize,
    /// Bytes.
    pub bytes: usize,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// One layer's run, as the vectors record it.
#[derive(Debug, Clone)]
pub struct LayerRun<'a> {
    /// The layer.
    pub view: LayerView<'a>,
    /// Its quantized input.
    pub input: Vec<i16>,
    /// Fractional bits of its input.
    pub f_in: u8,
    /// Fractional bits of its output.
    pub f_out: u8,
    /// Whether it applies ReLU.
    pub relu: bool,
    /// What the models computed.
    pub step: LayerStep,
}

/// The vectors: the manifest and every file (path relative to the output folder, bytes).
#[derive(Debug, Clone)]
pub struct VectorSet {
    /// The manifest.
    pub manifest: VectorManifest,
    /// The files, in manifest order.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The runs the vectors record, on the functional and timing models: for a chained `mode`,
/// the network on `inputs[0]` (activation fractions `given`, else calibrated on it), each
/// layer's outputs the next one's inputs; otherwise layer i on `inputs[i]`, calibrated on it.
pub fn layer_runs<'a>(
    views: &[LayerView<'a>],
    mode: Mode,
    inputs: &[Vec<f32>],
    given: &[u8],
    arith: Arith,
    params: &TimingParams,
) -> Result<Vec<LayerRun<'a>>> {
    let relu = |i| relu_at(i, views.len(), arith.relu_last);
    match mode {
        Mode::Chained => {
            let fracs = fractions(views, &inputs[..1], given, arith.relu_last)?;
            let (input, steps) = run_chain(views, &inputs[0], &fracs, arith, params)?;
            let mut a = input;
            let mut runs = Vec::with_capacity(views.len());
            for (i, (view, step)) in views.iter().zip(steps).enumerate() {
                let next = step.output.outputs.clone();
                runs.push(LayerRun {
                    view: *view,
                    input: std::mem::replace(&mut a, next),
                    f_in: fracs[i],
                    f_out: fracs[i + 1],
                    relu: relu(i),
                    step,
                });
            }
            Ok(runs)
        }
        Mode::Independent => Ok(views
            .iter()
            .zip(run_independent(views, inputs, arith, params)?)
            .enumerate()
            .map(|(i, (view, r))| LayerRun {
                view: *view,
                input: r.input,
                f_in: r.fracs[0],
                f_out: r.fracs[1],
                relu: relu(i),
                step: r.step,
            })
            .collect()),
    }
}

/// Width of a file word holding a W-bit value: the next of 16, 32, 64 bits.
fn word_bits(bits: u32) -> u32 {
    [16, 32, 64].into_iter().find(|&w| w >= bits).unwrap_or(64)
}

/// The vectors of `runs`, from a model made by `tool_version` from `source`.
pub fn render(
    tool_version: &str,
    source: &str,
    mode: Mode,
    runs: &[LayerRun],
    arith: Arith,
) -> VectorSet {
    let acc_word = word_bits(arith.acc_bits as u32);
    let mut files = Vec::new();
    let mut layers = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let view = run.view;
        let dir = layer_dir_name(index, view.name());
        let mut entries = Vec::new();
        let mut add =
            |stem: String, kind: &'static str, pe: Option<usize>, bits: u32, words: Vec<u64>| {
                for (encoding, ext, bytes) in [
                    ("binary", "bin", to_le_bytes(&words, bits)),
                    ("readmemh", "hex", to_hex(&words, bits).into_bytes()),
                ] {
                    let path = format!("{dir}/{stem}.{ext}");
                    entries.push(VectorFile {
                        path: path.clone(),
                        kind,
                        pe,
                        encoding,
                        word_bits: bits,
                        words: words.len(),
                        bytes: bytes.len(),
                        sha256: hex(&Sha256::digest(&bytes)),
                    });
                    files.push((path, bytes));
                }
            };
        let q16 = |v: &[i16]| v.iter().map(|&x| x as u16 as u64).collect::<Vec<u64>>();
        add("input".into(), "input", None, 16, q16(&run.input));
        add(
            "output".into(),
            "output",
            None,
            16,
            q16(&run.step.output.outputs),
        );
        let mask = if acc_word == 64 {
            u64::MAX
        } else {
            (1u64 << acc_word) - 1
        };
        let width = (view.pes() - 1).to_string().len().max(2);
        for pe in 0..view.pes() {
            let words: Vec<u64> = run
                .step
                .output
                .accumulators
                .iter()
                .skip(pe)
                .step_by(view.pes())
                .map(|&a| a as u64 & mask)
                .collect();
            add(
                format!("pe{pe:0width$}.acc"),
                "accumulators",
                Some(pe),
                acc_word,
                words,
            );
        }
        layers.push(LayerVectors {
            name: view.name().to_string(),
            dir,
            rows: view.rows(),
            inputs: view.inputs(),
            pes: view.pes(),
            bias: view.has_bias(),
            frac_in: run.f_in,
            frac_weights: view.codebook().frac_bits(),
            frac_acc: run.f_out + arith.guard_bits() as u8,
            frac_out: run.f_out,
            relu: run.relu,
            files: entries,
        });
    }
    VectorSet {
        manifest: VectorManifest {
            format: "eie-vectors",
            format_version: 1,
            tool_version: tool_version.to_string(),
            source: source.to_string(),
            mode: mode.name(),
            byte_order: "little-endian",
            acc_bits: arith.acc_bits,
            layers,
        },
        files,
    }
}

impl VectorSet {
    /// Writes every file and `manifest.json` under `dir` (plain writes: callers that need
    /// all-or-nothing output write into a staging folder).
    pub fn write_into(&self, dir: &Path) -> std::io::Result<()> {
        for (path, bytes) in &self.files {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, bytes)?;
        }
        let json = serde_json::to_string_pretty(&self.manifest).expect("the manifest serialises");
        std::fs::write(dir.join("manifest.json"), json + "\n")
    }
}
