//! Top-1 accuracy: of the float network (burn), and of the bit-exact fixed-point EIE model
//! (the functional simulator, on the packed layers).

use burn::tensor::Device;
use eie_dataset::Dataset;
use eie_energy::{Counts, Runs};
use eie_images::Capacity;
use eie_simulate::fixed::quantize;
use eie_simulate::run::step;
use eie_simulate::{Arith, LayerView, TimingParams, check_chain, float::relu_at, functional};
use rayon::prelude::*;

use crate::error::Result;
use crate::model::{Model, argmax_rows, batch, first_max, to_vec};
use eie_model::Network;

/// Samples per forward pass when evaluating.
const EVAL_BATCH: usize = 1000;

/// Correct and total predictions of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassCount {
    /// Samples of the class predicted as the class.
    pub correct: u64,
    /// Samples of the class.
    pub total: u64,
}

/// Top-1 accuracy, overall and per class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accuracy {
    /// Correct predictions.
    pub correct: u64,
    /// Samples.
    pub total: u64,
    /// Per class (label), for every class of the network's output.
    pub per_class: Vec<ClassCount>,
}

impl Accuracy {
    /// Counts `predictions` against `labels`, over `classes` classes.
    pub fn count(predictions: &[usize], labels: &[u32], classes: usize) -> Self {
        let mut per_class = vec![ClassCount::default(); classes];
        let mut correct = 0;
        for (&p, &l) in predictions.iter().zip(labels) {
            let c = &mut per_class[l as usize];
            c.total += 1;
            if p == l as usize {
                c.correct += 1;
                correct += 1;
            }
        }
        Self {
            correct,
            total: labels.len() as u64,
            per_class,
        }
    }

    /// correct / total (0 when there are no samples).
    pub fn top1(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// The float network's predictions on every sample.
pub fn predict(net: &Network, data: &Dataset) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(data.len());
    for_each_batch(net, data, &mut |logits| {
        out.extend(argmax_rows(logits)?);
        Ok(())
    })?;
    Ok(out)
}

/// The float network's logits (burn) of every sample, row after row.
pub fn logits(net: &Network, data: &Dataset) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(data.len() * net.outputs());
    for_each_batch(net, data, &mut |logits| {
        out.extend(to_vec(logits)?);
        Ok(())
    })?;
    Ok(out)
}

/// Runs `data` through burn's model of `net` in batches, in order.
fn for_each_batch(
    net: &Network,
    data: &Dataset,
    sink: &mut dyn FnMut(burn::tensor::Tensor<2>) -> Result<()>,
) -> Result<()> {
    net.check_dataset(data)?;
    let device = Device::flex();
    let model = Model::new(net, &device);
    let order: Vec<usize> = (0..data.len()).collect();
    for idx in order.chunks(EVAL_BATCH) {
        let (x, _) = batch(data, idx, &device);
        sink(model.forward(net, x))?;
    }
    Ok(())
}

/// Top-1 accuracy of the float network.
pub fn float_accuracy(net: &Network, data: &Dataset) -> Result<Accuracy> {
    let p = predict(net, data)?;
    Ok(Accuracy::count(&p, data.labels(), net.outputs()))
}

/// Checks that packed `layers` can classify `data`: they chain, take the dataset's width, and
/// have an output for every label.
pub fn check_packed(layers: &[LayerView], data: &Dataset) -> Result<()> {
    let first = layers.first().ok_or(eie_model::Error::NoLayers)?;
    check_chain(layers)?;
    if data.width() != first.inputs() {
        return Err(eie_model::Error::Width {
            dataset: data.name().to_string(),
            width: data.width(),
            layer: first.name().to_string(),
            inputs: first.inputs(),
        }
        .into());
    }
    let last = layers.last().expect("non-empty");
    if let Some(i) = data
        .labels()
        .iter()
        .position(|&l| l as usize >= last.rows())
    {
        return Err(eie_model::Error::Label {
            dataset: data.name().to_string(),
            index: data.first() + i,
            label: data.labels()[i],
            outputs: last.rows(),
            layer: last.name().to_string(),
        }
        .into());
    }
    Ok(())
}

/// The bit-exact EIE model's prediction for one sample: the input quantized with `fracs[0]`
/// fractional bits, every layer through the functional model, the first largest 16-bit
/// output of the last layer.
pub fn eie_predict(layers: &[LayerView], x: &[f32], fracs: &[u8], arith: Arith) -> Result<usize> {
    let mut a = quantize(x, fracs[0])?;
    for (i, view) in layers.iter().enumerate() {
        let relu = relu_at(i, layers.len(), arith.relu_last);
        a = functional::layer(*view, &a, fracs[i], fracs[i + 1], arith, relu)?.outputs;
    }
    Ok(first_max(&a))
}

/// Top-1 accuracy of the bit-exact fixed-point EIE model on packed `layers`, with activation
/// fractions `fracs` (one per layer boundary). Samples run in parallel; each is independent,
/// so the result does not depend on the thread count.
pub fn eie_accuracy(
    layers: &[LayerView],
    data: &Dataset,
    fracs: &[u8],
    arith: Arith,
) -> Result<Accuracy> {
    check_packed(layers, data)?;
    eie_simulate::fixed::check_fractions(fracs, layers.len())?;
    let predictions = (0..data.len())
        .into_par_iter()
        .map(|i| eie_predict(layers, data.input(i), fracs, arith))
        .collect::<Result<Vec<_>>>()?;
    let classes = layers.last().expect("checked").rows();
    Ok(Accuracy::count(&predictions, data.labels(), classes))
}

/// How to count the bit-exact runs for the energy model.
#[derive(Debug, Clone, Copy)]
pub struct EnergySetup {
    /// The timing model's parameters.
    pub params: TimingParams,
    /// The images' pointer width.
    pub pointer_bits: u8,
    /// The SRAMs they were packed for.
    pub capacity: Capacity,
}

/// [`eie_accuracy`], each sample also run through the timing model and counted for the energy
/// model: the same predictions (the timing model does not change the arithmetic), and every
/// sample's counts added up layer by layer (in sample order, so the sums do not depend on the
/// thread count).
pub fn eie_accuracy_counted(
    layers: &[LayerView],
    data: &Dataset,
    fracs: &[u8],
    arith: Arith,
    counting: &EnergySetup,
) -> Result<(Accuracy, Runs)> {
    check_packed(layers, data)?;
    eie_simulate::fixed::check_fractions(fracs, layers.len())?;
    counting.params.validate()?;
    let per_sample = (0..data.len())
        .into_par_iter()
        .map(|i| -> Result<(usize, Vec<Counts>)> {
            let mut a = quantize(data.input(i), fracs[0])?;
            let mut counts = Vec::with_capacity(layers.len());
            for (l, view) in layers.iter().enumerate() {
                let relu = relu_at(l, layers.len(), arith.relu_last);
                let s = step(
                    *view,
                    &a,
                    fracs[l],
                    fracs[l + 1],
                    arith,
                    relu,
                    &counting.params,
                )?;
                counts.push(Counts::of(
                    *view,
                    &s.timing,
                    counting.params.spmat_width,
                    counting.pointer_bits,
                    &counting.capacity,
                ));
                a = s.output.outputs;
            }
            Ok((first_max(&a), counts))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut runs = Runs::new();
    let mut predictions = Vec::with_capacity(per_sample.len());
    for (p, counts) in &per_sample {
        predictions.push(*p);
        runs.add(counts);
    }
    let classes = layers.last().expect("checked").rows();
    Ok((Accuracy::count(&predictions, data.labels(), classes), runs))
}
