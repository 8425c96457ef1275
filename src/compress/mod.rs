//! The compress pipeline: checkpoint -> prune -> quantize -> pack, one layer resident at a
//! time. Each layer is read, pruned in place, written to `pruned.safetensors`, clustered,
//! turned into codes, written to `quantized.safetensors`, and only then packed, after its
//! f32 weights are dropped; tensors that are not layers are copied to both files as they are.

pub mod recipe;
pub mod report;
pub mod retrain;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use eie_checkpoint::{Checkpoint, Dtype, Writer, check_finite, encode, round_to};
use eie_format::{Codebook, PackedLayer, SparseCodes};
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

/// A layer's weight sharing: the shared values and a code per surviving weight and per bias
/// value (code c stands for `values[c - 1]`; code 0 is zero, a weight that is not stored).
#[derive(Debug, Clone)]
pub struct Shared {
    /// The non-zero shared values, distinct, ascending, representable in the tensors' dtypes.
    pub values: Vec<f32>,
    /// One code per surviving weight, in the survivors' order.
    pub codes: Vec<u8>,
    /// One code per bias value (empty without a folded bias).
    pub bias_codes: Vec<u8>,
    /// What the clustering did.
    pub clustering: Clustering,
}

impl Shared {
    /// The value of code `c`.
    pub fn value(&self, c: u8) -> f32 {
        if c == 0 {
            0.0
        } else {
            self.values[c as usize - 1]
        }
    }
}

/// A layer whose pruning and weight sharing were decided before the pipeline (by
/// retraining): the pipeline writes and packs it as it is.
#[derive(Debug, Clone)]
pub struct Decided {
    /// Flat row-major positions of the surviving weights, ascending.
    pub positions: Vec<u64>,
    /// Their values (after fine-tuning), for pruned.safetensors.
    pub values: Vec<f32>,
    /// The folded bias's values (after fine-tuning), for pruned.safetensors.
    pub bias: Option<Vec<f32>>,
    pub prune: PruneReport,
    pub shared: Shared,
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
///
/// With `retrained`, pruning and clustering are skipped: its decided survivors and codes
/// (one per plan) are written and packed, and its overrides replace the values of other
/// tensors (biases that retraining changed but that are not folded in).
pub fn run(
    ck: &Checkpoint,
    plans: &[LayerPlan],
    pes: usize,
    dir: &Path,
    progress: &Progress,
    timings: &mut Timings,
    retrained: Option<retrain::Retrained>,
) -> Result<Vec<LayerOutcome>> {
    let global = match retrained {
        Some(_) => HashMap::new(),
        None => global_counts(ck, plans, progress)?,
    };
    let (mut decided, overrides): (Vec<Option<Decided>>, HashMap<String, Vec<f32>>) =
        match retrained {
            Some(r) => (r.decided.into_iter().map(Some).collect(), r.overrides),
            None => ((0..plans.len()).map(|_| None).collect(), HashMap::new()),
        };
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
                let source = match decided[i].take() {
                    Some(d) => Source::Decided(Box::new(d)),
                    None => Source::Prune(match plans[i].settings.pruning {
                        Pruning::None => Rule::KeepAll,
                        Pruning::Density(d) => Rule::Density(d),
                        Pruning::ThresholdStd(s) => Rule::ThresholdStd(s),
                        Pruning::Global(_) => Rule::Count(global[&i]),
                    }),
                };
                outcomes[i] = Some(layer(
                    ck,
                    &plans[i],
                    source,
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
                    match overrides.get(name) {
                        Some(v) => {
                            w.write_tensor(&encode(ck.info(name).expect("listed").dtype, v))?
                        }
                        None => w.write_tensor_with(|sink| ck.stream_raw(name, sink))?,
                    }
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

/// Elements per chunk when streaming a dense tensor out of sparse survivors, and per
/// parallel item when summing.
const CHUNK: usize = 1 << 20;

/// The surviving weights of a layer: flat row-major positions (ascending) and values.
struct Survivors {
    positions: Vec<u64>,
    values: Vec<f32>,
    report: PruneReport,
}

/// Prunes a layer. Plain rules select straight from the mapped tensor (two passes, no f32
/// copy); balanced pruning needs every PE's rows at once, so it prunes an f32 copy in place.
fn survivors(
    ck: &Checkpoint,
    name: &str,
    rows: usize,
    inputs: usize,
    rule: Rule,
    balance: Option<usize>,
) -> Result<Survivors> {
    if balance.is_some() {
        let mut w = ck.read_matrix(name)?.data;
        let report = eie_prune::prune(&mut w, rows, inputs, rule, balance)
            .with_context(|| format!("pruning \"{name}\""))?;
        let (positions, values) = w
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v != 0.0)
            .map(|(i, &v)| (i as u64, v))
            .unzip();
        return Ok(Survivors {
            positions,
            values,
            report,
        });
    }
    let reader = ck.reader(name)?;
    match eie_prune::select(reader.len(), &|first, out| reader.read(first, out), rule) {
        Ok(sel) => Ok(Survivors {
            positions: sel.positions,
            values: sel.values,
            report: sel.report,
        }),
        Err(eie_prune::Error::NonFinite { index, value }) => {
            Err(eie_checkpoint::Error::NonFinite {
                tensor: name.to_string(),
                index,
                row: index / inputs.max(1),
                col: index % inputs.max(1),
                value,
            }
            .into())
        }
        Err(e) => Err(e).with_context(|| format!("pruning \"{name}\"")),
    }
}

/// Where a layer's survivors and codes come from.
enum Source {
    /// Prune the checkpoint's tensor by this rule, then cluster.
    Prune(Rule),
    /// Decided already (retraining).
    Decided(Box<Decided>),
}

/// Clusters a layer's surviving weights and its folded bias's non-zero values (they share the
/// codebook) and gives every one of them a code. The shared values are made representable in
/// the weight's dtype (and the bias's, when it differs), so quantized.safetensors holds
/// exactly the images' values; a shared value that is zero would store pruned weights as
/// entries, so the values nearest to it become zeros (code 0) instead.
pub fn share(
    name: &str,
    values: &[f32],
    bias_values: &[f32],
    settings: &LayerSettings,
    dtype: Dtype,
    bias_dtype: Option<Dtype>,
) -> Result<Shared> {
    let mut data = values.to_vec();
    data.extend(bias_values.iter().copied().filter(|&v| v != 0.0));
    let k = (1usize << settings.code_bits) - 1;
    let clustering =
        cluster(&data, k, settings.method()).with_context(|| format!("clustering \"{name}\""))?;
    drop(data);
    let mut centroids = Vec::with_capacity(clustering.centroids.len());
    for &c in &clustering.centroids {
        centroids.push(representable(name, c, dtype, bias_dtype)?);
    }
    centroids.dedup();
    let zero = centroids.iter().position(|&c| c == 0.0);
    let shared: Vec<f32> = centroids.iter().copied().filter(|&c| c != 0.0).collect();

    let assigner = Assigner::new(&centroids);
    let code_of = |v: f32| {
        if v == 0.0 {
            return 0u8;
        }
        let i = assigner.index(v);
        match zero {
            Some(z) if i == z => 0,
            Some(z) if i > z => i as u8,
            _ => i as u8 + 1,
        }
    };
    Ok(Shared {
        values: shared,
        codes: values.par_iter().map(|&v| code_of(v)).collect(),
        bias_codes: bias_values.iter().map(|&v| code_of(v)).collect(),
        clustering,
    })
}

/// `c` rounded to the weight's dtype (and to the bias's, when a folded bias has another).
pub fn representable(name: &str, c: f32, dtype: Dtype, bias_dtype: Option<Dtype>) -> Result<f32> {
    let stored = match bias_dtype {
        Some(b) if b != dtype => round_to(b, round_to(dtype, c)),
        _ => round_to(dtype, c),
    };
    if round_to(dtype, stored) != stored
        || bias_dtype.is_some_and(|b| round_to(b, stored) != stored)
    {
        bail!(
            "layer \"{name}\": its weights ({dtype:?}) and bias ({:?}) have no common value near the shared value {c}; leave the bias out with --no-bias-column",
            bias_dtype.unwrap_or(dtype)
        );
    }
    Ok(stored)
}

fn layer(
    ck: &Checkpoint,
    plan: &LayerPlan,
    source: Source,
    pes: usize,
    pruned: &mut Writer,
    quantized: &mut Writer,
    timings: &mut Timings,
) -> Result<LayerOutcome> {
    let s = &plan.settings;
    let name = &plan.name;
    let info = ck.info(name).expect("selected");
    let (rows, inputs, dtype) = (info.shape[0], info.shape[1], info.dtype);
    let bias_dtype = plan
        .bias
        .as_ref()
        .map(|b| ck.info(b).expect("planned").dtype);

    // Prune (or take the decided survivors), in storage order, and the folded bias.
    let t = Instant::now();
    let (positions, values, prune, bias, decided_shared) = match source {
        Source::Prune(rule) => {
            let sv = survivors(ck, name, rows, inputs, rule, s.balance.then_some(pes))?;
            timings.prune += t.elapsed();
            let t = Instant::now();
            let bias = match &plan.bias {
                Some(b) => {
                    let v = ck.read_f32(b)?;
                    check_finite(b, &v, 1)?;
                    Some(v)
                }
                None => None,
            };
            timings.read += t.elapsed();
            (sv.positions, sv.values, sv.report, bias, None)
        }
        Source::Decided(d) => {
            let d = *d;
            (d.positions, d.values, d.prune, d.bias, Some(d.shared))
        }
    };
    let t = Instant::now();
    pruned.write_sparse(dtype, rows * inputs, &positions, |i| values[i])?;
    if let (Some(b), Some(bias_dtype)) = (&bias, bias_dtype) {
        if decided_shared.is_some() {
            pruned.write_tensor(&encode(bias_dtype, b))?;
        } else {
            let bname = plan.bias.as_ref().expect("planned");
            pruned.write_tensor_with(|sink| ck.stream_raw(bname, sink))?;
        }
    }
    timings.write += t.elapsed();

    // Cluster the survivors and the non-zero biases (folded in, they share the codebook).
    let bias_values: &[f32] = bias.as_deref().unwrap_or(&[]);
    let t = Instant::now();
    let shared = match decided_shared {
        Some(sh) => sh,
        None => share(name, &values, bias_values, s, dtype, bias_dtype)?,
    };
    let codebook = Codebook::new(s.code_bits, &shared.values)
        .with_context(|| format!("codebook of \"{name}\""))?;
    timings.cluster += t.elapsed();
    let t = Instant::now();
    let value_of = |c: u8| shared.value(c);
    let (codes, bias_codes) = (&shared.codes, &shared.bias_codes);
    let sse =
        sum_sq_err(&values, codes, &value_of) + sum_sq_err(bias_values, bias_codes, &value_of);
    timings.assign += t.elapsed();

    // The quantized checkpoint: every weight replaced by its shared value.
    let t = Instant::now();
    quantized.write_sparse(dtype, rows * inputs, &positions, |i| value_of(codes[i]))?;
    if let Some(bias_dtype) = bias_dtype {
        let v: Vec<f32> = bias_codes.iter().map(|&c| value_of(c)).collect();
        quantized.write_tensor(&encode(bias_dtype, &v))?;
    }
    timings.write += t.elapsed();

    // The layer's sparse codes, the bias as one more column.
    let t = Instant::now();
    let sparse = if bias.is_some() {
        let cols = inputs as u64 + 1;
        let mut pos = Vec::with_capacity(positions.len() + rows);
        let mut out = Vec::with_capacity(positions.len() + rows);
        let mut at = 0;
        for (r, &bc) in bias_codes.iter().enumerate() {
            let (start, end) = ((r * inputs) as u64, ((r + 1) * inputs) as u64);
            while at < positions.len() && positions[at] < end {
                if codes[at] != 0 {
                    pos.push(r as u64 * cols + (positions[at] - start));
                    out.push(codes[at]);
                }
                at += 1;
            }
            if bc != 0 {
                pos.push(r as u64 * cols + inputs as u64);
                out.push(bc);
            }
        }
        SparseCodes::new(rows, inputs + 1, pos, out).with_context(|| format!("layer \"{name}\""))?
    } else {
        // Survivors whose shared value is zero (see `share`) are not stored.
        let (pos, out): (Vec<u64>, Vec<u8>) = positions
            .into_iter()
            .zip(codes.iter().copied())
            .filter(|&(_, c)| c != 0)
            .unzip();
        SparseCodes::new(rows, inputs, pos, out).with_context(|| format!("layer \"{name}\""))?
    };
    drop(values);
    let dc_entries = deep_compression_entries(sparse.positions(), s.index_bits);
    let mut layer = PackedLayer::encode_sparse(name.clone(), &sparse, codebook, pes, s.index_bits)?;
    if let Some(b) = &plan.bias {
        layer = layer.with_bias(b.clone())?;
    }
    timings.encode += t.elapsed();
    Ok(LayerOutcome {
        layer,
        rows,
        inputs,
        prune,
        clustering: shared.clustering,
        centroids: shared.values,
        sse,
        clustered: (codes.len() + bias_values.iter().filter(|&&v| v != 0.0).count()) as u64,
        dc_entries,
        settings: s.clone(),
    })
}

/// Sum of (value - shared value)^2, in fixed chunks summed in order (the same bits however
/// the chunks are scheduled).
fn sum_sq_err(values: &[f32], codes: &[u8], value_of: &(dyn Fn(u8) -> f32 + Sync)) -> f64 {
    let partials: Vec<f64> = values
        .par_chunks(CHUNK)
        .zip(codes.par_chunks(CHUNK))
        .map(|(v, c)| {
            v.iter()
                .zip(c)
                .map(|(&v, &c)| (v as f64 - value_of(c) as f64).powi(2))
                .sum()
        })
        .collect();
    partials.iter().sum()
}

/// Entries of Deep Compression's relative-index stream over row-major sparse positions:
/// each non-zero, plus a padding entry per 2^index_bits zeros of the gap before it.
pub fn deep_compression_entries(positions: &[u64], index_bits: u8) -> u64 {
    let period = 1u64 << index_bits;
    let mut next = 0u64;
    positions
        .iter()
        .map(|&p| {
            let n = 1 + (p - next) / period;
            next = p + 1;
            n
        })
        .sum()
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
