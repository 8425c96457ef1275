//! `vectors`: RTL test vectors from the functional model: per layer the input activations,
//! the expected outputs and every PE's expected accumulators, as `$readmemh` text and
//! little-endian binary, with a manifest.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use eie_format::hex;
use eie_images::{layer_dir_name, to_hex, to_le_bytes};
use eie_simulate::{check_chain, fixed::quantize, float};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::output::{Staging, load_bundle};
use crate::sim::{InputOptions, SimOptions, fractions, run_chain, select_views, step};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (or a model.eie file).
    pub dir: PathBuf,
    /// Folder for the vectors.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Only this layer.
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Replace eie-compress's vector files in a non-empty folder.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub input: InputOptions,
    #[command(flatten)]
    pub sim: SimOptions,
}

#[derive(Serialize)]
struct Manifest {
    format: &'static str,
    format_version: u32,
    tool_version: String,
    source: String,
    /// "chained": layer L's expected outputs are layer L+1's inputs; "independent": every
    /// layer has its own generated input.
    mode: &'static str,
    byte_order: &'static str,
    acc_bits: u8,
    layers: Vec<LayerVectors>,
}

#[derive(Serialize)]
struct LayerVectors {
    name: String,
    dir: String,
    rows: usize,
    inputs: usize,
    pes: usize,
    bias: bool,
    /// Fractional bits of the input activations, the codebook, the accumulators and the outputs.
    frac_in: u8,
    frac_weights: u8,
    frac_acc: u8,
    frac_out: u8,
    relu: bool,
    files: Vec<VectorFile>,
}

#[derive(Serialize)]
struct VectorFile {
    path: String,
    /// "input", "output", or "accumulators" (of one PE, its rows in local order).
    kind: &'static str,
    pe: Option<usize>,
    encoding: &'static str,
    word_bits: u32,
    words: usize,
    bytes: usize,
    sha256: String,
}

/// Width of a file word holding a W-bit value: the next of 16, 32, 64 bits.
fn word_bits(bits: u32) -> u32 {
    [16, 32, 64].into_iter().find(|&w| w >= bits).unwrap_or(64)
}

pub fn run(args: Args) -> Result<()> {
    let (_, bundle) = load_bundle(&args.dir)?;
    let views = select_views(&bundle, args.layer.as_deref())?;
    let params = args.sim.timing()?;
    let arith = args.sim.arith()?;
    // (view, input, f_in, f_out, relu, output) per layer.
    let mut runs = Vec::new();
    let mode = match check_chain(&views) {
        Ok(()) => {
            let vectors = args
                .input
                .vectors(views[0].inputs(), &bundle.meta().settings)?;
            let fracs = fractions(&views, &vectors[..1], &args.input.act_frac, arith.relu_last)?;
            let (input, steps) = run_chain(&views, &vectors[0], &fracs, arith, &params)?;
            let mut a = input;
            for (i, (view, s)) in views.iter().zip(steps).enumerate() {
                let relu = float::relu_at(i, views.len(), arith.relu_last);
                let next = s.output.outputs.clone();
                runs.push((*view, a, fracs[i], fracs[i + 1], relu, s));
                a = next;
            }
            "chained"
        }
        Err(e) => {
            if args.input.input.is_some() || args.input.dataset.is_some() {
                bail!(
                    "{e}; the layers do not form a network, so give --layer NAME to feed one of them"
                );
            }
            for (i, view) in views.iter().enumerate() {
                let x = args.input.vectors(view.inputs(), &bundle.meta().settings)?;
                let fracs = float::calibrate(std::slice::from_ref(view), &x, arith.relu_last);
                let relu = float::relu_at(i, views.len(), arith.relu_last);
                let input = quantize(&x[0], fracs[0])?;
                let s = step(*view, &input, fracs[0], fracs[1], arith, relu, &params)?;
                runs.push((*view, input, fracs[0], fracs[1], relu, s));
            }
            "independent"
        }
    };

    let staging = Staging::create(&args.out, args.force)?;
    let acc_word = word_bits(arith.acc_bits as u32);
    let mut layers = Vec::new();
    for (index, (view, input, f_in, f_out, relu, s)) in runs.iter().enumerate() {
        let dir = layer_dir_name(index, view.name());
        std::fs::create_dir(staging.path().join(&dir)).context("cannot create a vector folder")?;
        let mut files = Vec::new();
        let mut add = |stem: String,
                       kind: &'static str,
                       pe: Option<usize>,
                       bits: u32,
                       words: Vec<u64>|
         -> Result<()> {
            for (encoding, ext, bytes) in [
                ("binary", "bin", to_le_bytes(&words, bits)),
                ("readmemh", "hex", to_hex(&words, bits).into_bytes()),
            ] {
                let path = format!("{dir}/{stem}.{ext}");
                std::fs::write(staging.path().join(&path), &bytes)
                    .with_context(|| format!("cannot write {path}"))?;
                files.push(VectorFile {
                    path,
                    kind,
                    pe,
                    encoding,
                    word_bits: bits,
                    words: words.len(),
                    bytes: bytes.len(),
                    sha256: hex(&Sha256::digest(&bytes)),
                });
            }
            Ok(())
        };
        let q16 = |v: &[i16]| v.iter().map(|&x| x as u16 as u64).collect::<Vec<u64>>();
        add("input".into(), "input", None, 16, q16(input))?;
        add("output".into(), "output", None, 16, q16(&s.output.outputs))?;
        let mask = if acc_word == 64 {
            u64::MAX
        } else {
            (1u64 << acc_word) - 1
        };
        let width = (view.pes() - 1).to_string().len().max(2);
        for pe in 0..view.pes() {
            let words: Vec<u64> = s
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
            )?;
        }
        layers.push(LayerVectors {
            name: view.name().to_string(),
            dir,
            rows: view.rows(),
            inputs: view.inputs(),
            pes: view.pes(),
            bias: view.has_bias(),
            frac_in: *f_in,
            frac_weights: view.codebook().frac_bits(),
            frac_acc: f_out + arith.guard_bits() as u8,
            frac_out: *f_out,
            relu: *relu,
            files,
        });
    }
    let manifest = Manifest {
        format: "eie-vectors",
        format_version: 1,
        tool_version: bundle.meta().tool_version.clone(),
        source: bundle.meta().source.name.clone(),
        mode,
        byte_order: "little-endian",
        acc_bits: arith.acc_bits,
        layers,
    };
    std::fs::write(
        staging.path().join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )
    .context("cannot write the vector manifest")?;
    staging.publish_all()?;
    let files: usize = manifest.layers.iter().map(|l| l.files.len()).sum();
    println!(
        "wrote {} ({} layers, {files} vector files, manifest.json)",
        args.out.display(),
        manifest.layers.len()
    );
    Ok(())
}
