//! The compress pipeline: checkpoint -> prune -> quantize -> pack, one layer resident at a
//! time. Each layer is read, pruned in place, written to `pruned.safetensors`, clustered,
//! turned into codes, written to `quantized.safetensors`, and only then packed, after its
//! f32 weights are dropped; tensors that are not layers are copied to both files as they are.

pub mod recipe;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use eie_checkpoint::{Checkpoint, Dtype, Writer, check_finite, encode, round_to};
use eie_format::{CodeMatrix, Codebook, PackedLayer};
use eie_prune::{Global, PruneReport, Rule};
use eie_quantize::{Assigner, Clustering, cluster};
use rayon::prelude::*;

use crate::progress::Progress;
use recipe::{LayerSettings, Pruning};

/// File names of the two checkpoints compress writes beside the images.
pub const PRUNED_FILE: &str = "pruned.safetensors";
/// See [`PRUNED_FILE`].
pub const QUANTIZED_FILE: &str = "quantized.safetensors";

/// One layer to compress.
#[derive(Debug, Clone)]
pub struct LayerPlan {
    pub name: String,
    /// The bias folded in as the last column, if any.
    pub bias: Option<String>,
    pub settings: LayerSettings,
}

/// What compressing one layer produced.
pub struct LayerOutcome {
    pub layer: PackedLayer,
    pub rows: usize,
    /// Input columns (without the bias column).
    pub inputs: usize,
    pub prune: PruneReport,
    pub clustering: Clustering,
    /// The centroids actually stored (rounded to the weight's dtype when it is narrower
    /// than f32), ascending.
    pub centroids: Vec<f32>,
    /// SSE of the stored centroids over the surviving weights and the bias values.
    pub sse: f64,
    /// Values clustered (surviving weights plus non-zero biases).
    pub clustered: u64,
    /// Entries of Deep Compression's own sparse layout of the same codes: one stream over
    /// the row-major matrix, relative indices of the layer's width, padding where a gap
    /// exceeds them (no per-PE interleaving, no pointers).
    pub dc_entries: u64,
    pub settings: LayerSettings,
}

/// Wall time per stage, summed over layers.
#[derive(Debug, Default, Clone)]
pub struct Timings {
    pub read: Duration,
    pub prune: Duration,
    pub cluster: Duration,
    pub assign: Duration,
    pub encode: Duration,
    pub write: Duration,
}

/// Pairs every selected weight with its bias `NAME.bias` (for `NAME.weight`), checking the
/// bias is a 1-D float tensor with one value per row.
pub fn plan(
    ck: &Checkpoint,
    layers: Vec<(String, LayerSettings)>,
    fold_bias: bool,
) -> Result<Vec<LayerPlan>> {
    let mut out = Vec::with_capacity(layers.len());
    for (name, settings) in layers {
        let rows = ck.info(&name).expect("selected").shape[0];
        let bias = match name
            .strip_suffix(".weight")
            .map(|stem| format!("{stem}.bias"))
        {
            Some(b) if fold_bias && ck.info(&b).is_some() => {
                let info = ck.info(&b).expect("checked");
                if !info.is_float() {
                    bail!(
                        "bias \"{b}\" has dtype {:?}, expected a float tensor",
                        info.dtype
                    );
                }
                if info.shape != [rows] {
                    bail!(
                        "bias \"{b}\" has shape {:?}, expected [{rows}] to match the {rows} rows of \"{name}\" (or leave biases out with --no-bias-column)",
                        info.shape
                    );
                }
                Some(b)
            }
            _ => None,
        };
        out.push(LayerPlan {
            name,
            bias,
            settings,
        });
    }
    Ok(out)
}

/// Runs the pipeline; writes `pruned.safetensors` and `quantized.safetensors` into `dir`.
/// Returns the outcomes in plan order.
pub fn run(
    ck: &Checkpoint,
    plans: &[LayerPlan],
    pes: usize,
    dir: &Path,
    progress: &Progress,
    timings: &mut Timings,
) -> Result<Vec<LayerOutcome>> {
    let global = global_counts(ck, plans, progress)?;
    let by_name: HashMap<&str, usize> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let biases: HashMap<&str, usize> = plans
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.bias.as_deref().map(|b| (b, i)))
        .collect();

    // Output order: the input's, with each folded bias moved right after its weight.
    let mut order: Vec<String> = Vec::new();
    for t in ck.tensors() {
        if biases.contains_key(t.name.as_str()) {
            continue;
        }
        order.push(t.name.clone());
        if let Some(&i) = by_name.get(t.name.as_str())
            && let Some(b) = &plans[i].bias
        {
            order.push(b.clone());
        }
    }
    let specs: Vec<(String, Dtype, Vec<usize>)> = order
        .iter()
        .map(|n| {
            let i = ck.info(n).expect("listed");
            (n.clone(), i.dtype, i.shape)
        })
        .collect();
    let metadata = ck.metadata();
    let mut pruned = Writer::create(&dir.join(PRUNED_FILE), &metadata, &specs)?;
    let mut quantized = Writer::create(&dir.join(QUANTIZED_FILE), &metadata, &specs)?;

    let bar = progress.bar(plans.len() as u64, "compress");
    let mut outcomes: Vec<Option<LayerOutcome>> = (0..plans.len()).map(|_| None).collect();
    for name in &order {
        if biases.contains_key(name.as_str()) {
            continue; // written with its weight
        }
        match by_name.get(name.as_str()) {
            Some(&i) => {
                bar.set_message(name.clone());
                let rule = match plans[i].settings.pruning {
                    Pruning::None => Rule::KeepAll,
                    Pruning::Density(d) => Rule::Density(d),
                    Pruning::ThresholdStd(s) => Rule::ThresholdStd(s),
                    Pruning::Global(_) => Rule::Count(global[&i]),
                };
                outcomes[i] = Some(layer(
                    ck,
                    &plans[i],
                    rule,
                    pes,
                    &mut pruned,
                    &mut quantized,
                    timings,
                )?);
                bar.inc(1);
            }
            None => {
                let t = Instant::now();
                for w in [&mut pruned, &mut quantized] {
                    w.write_tensor_with(|sink| ck.stream_raw(name, sink))?;
                }
                timings.write += t.elapsed();
            }
        }
    }
    bar.finish_and_clear();
    let t = Instant::now();
    pruned.finish()?;
    quantized.finish()?;
    timings.write += t.elapsed();
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every layer is in the output order"))
        .collect())
}

/// For a global density: the count each layer keeps (two streaming passes over the layers).
fn global_counts(
    ck: &Checkpoint,
    plans: &[LayerPlan],
    progress: &Progress,
) -> Result<HashMap<usize, u64>> {
    let global: Vec<usize> = (0..plans.len())
        .filter(|&i| matches!(plans[i].settings.pruning, Pruning::Global(_)))
        .collect();
    let Some(&first) = global.first() else {
        return Ok(HashMap::new());
    };
    if global.len() != plans.len() {
        bail!("a global density applies to every layer; some layers here set their own pruning");
    }
    let Pruning::Global(density) = plans[first].settings.pruning else {
        unreachable!()
    };
    let total: u64 = plans
        .iter()
        .map(|p| ck.info(&p.name).expect("selected").elements() as u64)
        .sum();
    let mut g = Global::new(density, total)?;
    let bar = progress.bar(2 * plans.len() as u64, "global threshold");
    for pass in 0..2 {
        for p in plans {
            let m = ck.read_matrix(&p.name)?;
            if pass == 0 {
                g.first_pass(&m.data)
            } else {
                g.second_pass(&m.data)
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(g.counts().into_iter().enumerate().collect())
}

/// Rows of `data` per parallel work item in the conversions below.
const ROWS_PER_CHUNK: usize = 64;

fn layer(
    ck: &Checkpoint,
    plan: &LayerPlan,
    rule: Rule,
    pes: usize,
    pruned: &mut Writer,
    quantized: &mut Writer,
    timings: &mut Timings,
) -> Result<LayerOutcome> {
    let s = &plan.settings;
    let name = &plan.name;
    let t = Instant::now();
    let info = ck.info(name).expect("selected");
    let m = ck.read_matrix(name)?;
    let (rows, inputs, dtype) = (m.rows, m.cols, info.dtype);
    let mut w = m.data;
    let bias: Option<(String, Dtype, Vec<f32>)> = match &plan.bias {
        Some(b) => {
            let values = ck.read_f32(b)?;
            check_finite(b, &values, 1)?;
            Some((b.clone(), ck.info(b).expect("planned").dtype, values))
        }
        None => None,
    };
    timings.read += t.elapsed();

    // Prune, in place.
    let t = Instant::now();
    let prune = eie_prune::prune(&mut w, rows, inputs, rule, s.balance.then_some(pes))
        .with_context(|| format!("pruning \"{name}\""))?;
    timings.prune += t.elapsed();
    let t = Instant::now();
    write_values(pruned, dtype, &w)?;
    if let Some((b, _, _)) = &bias {
        pruned.write_tensor_with(|sink| ck.stream_raw(b, sink))?;
    }
    timings.write += t.elapsed();

    // Cluster the survivors (and the biases, which share the layer's codebook once folded).
    let t = Instant::now();
    let mut survivors: Vec<f32> = w.par_iter().copied().filter(|&v| v != 0.0).collect();
    if let Some((_, _, b)) = &bias {
        survivors.extend(b.iter().copied().filter(|&v| v != 0.0));
    }
    let clustered = survivors.len() as u64;
    let k = (1usize << s.code_bits) - 1;
    let clustering =
        cluster(&survivors, k, s.method()).with_context(|| format!("clustering \"{name}\""))?;
    drop(survivors);
    // Stored centroids: in the weight's own dtype, so quantized.safetensors holds exactly the
    // values the images hold.
    let mut centroids: Vec<f32> = clustering
        .centroids
        .iter()
        .map(|&c| round_to(dtype, c))
        .collect();
    centroids.dedup();
    let codebook = Codebook::new(s.code_bits, &centroids)
        .with_context(|| format!("codebook of \"{name}\""))?;
    timings.cluster += t.elapsed();

    // Codes: nearest centroid, 0 where pruned; the bias, if any, is the last column.
    let t = Instant::now();
    let assigner = Assigner::new(&centroids);
    let cols = inputs + usize::from(bias.is_some());
    let code_of = |v: f32| {
        if v == 0.0 {
            0u8
        } else {
            assigner.index(v) as u8 + 1
        }
    };
    let err = |v: f32, c: u8| {
        if c == 0 {
            0.0
        } else {
            (v as f64 - centroids[c as usize - 1] as f64).powi(2)
        }
    };
    let mut codes = vec![0u8; rows * cols];
    let bias_values = bias.as_ref().map(|(_, _, b)| b.as_slice());
    let mut sse: f64 = 0.0;
    if cols > 0 {
        sse = codes
            .par_chunks_mut(cols * ROWS_PER_CHUNK)
            .enumerate()
            .map(|(chunk, out)| {
                let mut sse = 0.0;
                for (r, row) in out.chunks_mut(cols).enumerate() {
                    let r = chunk * ROWS_PER_CHUNK + r;
                    for (c, &v) in row[..inputs]
                        .iter_mut()
                        .zip(&w[r * inputs..(r + 1) * inputs])
                    {
                        *c = code_of(v);
                        sse += err(v, *c);
                    }
                    if let Some(b) = bias_values {
                        row[inputs] = code_of(b[r]);
                        sse += err(b[r], row[inputs]);
                    }
                }
                sse
            })
            .sum();
    }
    drop(w);
    timings.assign += t.elapsed();

    // The quantized checkpoint: every weight replaced by its centroid.
    let t = Instant::now();
    let value = |c: u8| {
        if c == 0 {
            0.0
        } else {
            centroids[c as usize - 1]
        }
    };
    quantized.write_tensor_with(|sink| {
        for rows_chunk in codes.chunks((cols * ROWS_PER_CHUNK).max(1)) {
            let values: Vec<f32> = rows_chunk
                .chunks(cols.max(1))
                .flat_map(|row| row[..inputs].iter().map(|&c| value(c)))
                .collect();
            sink(&encode(dtype, &values))?;
        }
        Ok(())
    })?;
    if let Some((_, bias_dtype, _)) = &bias {
        let values: Vec<f32> = (0..rows).map(|r| value(codes[r * cols + inputs])).collect();
        quantized.write_tensor(&encode(*bias_dtype, &values))?;
    }
    timings.write += t.elapsed();

    let dc_entries = deep_compression_entries(&codes, s.index_bits);
    let t = Instant::now();
    let matrix = CodeMatrix::new(rows, cols, codes)?;
    let mut layer = PackedLayer::encode(name.clone(), &matrix, codebook, pes, s.index_bits)?;
    if let Some((b, _, _)) = &bias {
        layer = layer.with_bias(b.clone())?;
    }
    timings.encode += t.elapsed();
    Ok(LayerOutcome {
        layer,
        rows,
        inputs,
        prune,
        clustering,
        centroids,
        sse,
        clustered,
        dc_entries,
        settings: s.clone(),
    })
}

/// Entries of Deep Compression's relative-index stream over row-major `codes`: each
/// non-zero, plus a padding entry per 2^index_bits zeros of a gap.
pub fn deep_compression_entries(codes: &[u8], index_bits: u8) -> u64 {
    let period = 1u64 << index_bits;
    let (mut entries, mut gap) = (0u64, 0u64);
    for &c in codes {
        if c == 0 {
            gap += 1;
        } else {
            entries += 1 + gap / period;
            gap = 0;
        }
    }
    entries
}

/// Writes f32 values as the next tensor, converted to `dtype`, chunk by chunk.
fn write_values(w: &mut Writer, dtype: Dtype, values: &[f32]) -> Result<()> {
    w.write_tensor_with(|sink| {
        for chunk in values.chunks(1 << 20) {
            sink(&encode(dtype, chunk))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Settings of the run, recorded in the bundle.
pub fn settings_map(plans: &[LayerPlan]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for p in plans {
        let s = &p.settings;
        m.insert(
            format!("layer.{}", p.name),
            format!(
                "pruning {}; {} bits, {}; index {} bits; balance {}; bias {}",
                s.pruning,
                s.code_bits,
                s.method_name(),
                s.index_bits,
                s.balance,
                p.bias.as_deref().unwrap_or("none")
            ),
        );
    }
    m
}
