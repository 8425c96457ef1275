//! Running a packed model: the functional and the timing model together, layer by layer,
//! on a chain of layers (a network) or on layers side by side; and the activation fractions
//! of a run, given or calibrated. What `simulate`, `vectors` and the accuracy of the EIE
//! model share.

use crate::error::{Error, Result};
use crate::fixed::{Arith, check_fractions, quantize};
use crate::float::{calibrate, relu_at};
use crate::functional::{self, LayerOutput};
use crate::layer::{LayerView, check_chain};
use crate::timing::{self, LayerTiming, TimingParams};

/// One layer on one input: the functional model's outputs and accumulators, and the timing.
#[derive(Debug, Clone)]
pub struct LayerStep {
    /// What the functional model computed.
    pub output: LayerOutput,
    /// What the timing model counted.
    pub timing: LayerTiming,
}

/// Runs a layer: functional and timing models on the same 16-bit input, with `f_in` and
/// `f_out` fractional bits at its input and output.
pub fn step(
    view: LayerView,
    input: &[i16],
    f_in: u8,
    f_out: u8,
    arith: Arith,
    relu: bool,
    params: &TimingParams,
) -> Result<LayerStep> {
    arith.validate()?;
    view.check_input(input.len())?;
    params.validate()?;
    // One walk of the streams for both models.
    let active = functional::active(view, input);
    let (output, walks) = functional::walked(
        view,
        input,
        &active,
        f_in,
        f_out,
        arith,
        relu,
        params.spmat_width,
    );
    let walks: Vec<&crate::walk::PeWalk> = walks.iter().collect();
    let timing = timing::schedule(view, &active, params, &walks)?;
    Ok(LayerStep { output, timing })
}

/// Activation fractions for a chain of layers, one per layer boundary: `given`, checked, or
/// when none are given calibrated on `inputs` (docs/fixed-point.md section 1).
pub fn fractions(
    views: &[LayerView],
    inputs: &[Vec<f32>],
    given: &[u8],
    relu_last: bool,
) -> Result<Vec<u8>> {
    if given.is_empty() {
        // Calibration runs the float model, which takes inputs of the first layer's width.
        let first = views.first().ok_or(Error::NoLayers)?;
        for x in inputs {
            first.check_input(x.len())?;
        }
        return Ok(calibrate(views, inputs, relu_last));
    }
    check_fractions(given, views.len())?;
    Ok(given.to_vec())
}

/// Runs a chain of layers on one float input: each layer's output feeds the next. Returns
/// the quantized input and every layer's step.
pub fn run_chain(
    views: &[LayerView],
    x: &[f32],
    fracs: &[u8],
    arith: Arith,
    params: &TimingParams,
) -> Result<(Vec<i16>, Vec<LayerStep>)> {
    views.first().ok_or(Error::NoLayers)?.check_input(x.len())?;
    check_fractions(fracs, views.len())?;
    let input = quantize(x, fracs[0])?;
    let mut a = input.clone();
    let mut steps = Vec::with_capacity(views.len());
    for (i, view) in views.iter().enumerate() {
        let relu = relu_at(i, views.len(), arith.relu_last);
        let s = step(*view, &a, fracs[i], fracs[i + 1], arith, relu, params)?;
        a = s.output.outputs.clone();
        steps.push(s);
    }
    Ok((input, steps))
}

/// How a model's layers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A network: each layer's outputs are the next one's inputs.
    Chained,
    /// Layers that do not chain, side by side, each on an input of its own.
    Independent,
}

impl Mode {
    /// The mode's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Chained => "chained",
            Mode::Independent => "independent",
        }
    }

    /// How `views` run: chained when they chain; side by side otherwise, which only
    /// generated inputs can feed (`external`: the caller has inputs of its own, for the first
    /// layer, which then must chain).
    pub fn of(views: &[LayerView], external: bool) -> Result<Self> {
        match check_chain(views) {
            Ok(()) => Ok(Mode::Chained),
            Err(Error::Chain { prev, next, reason }) if external => {
                Err(Error::NotANetwork { prev, next, reason })
            }
            Err(_) => Ok(Mode::Independent),
        }
    }
}

/// One layer of an independent run: its input, its fractions and its step.
#[derive(Debug, Clone)]
pub struct Independent {
    /// The quantized input.
    pub input: Vec<i16>,
    /// Fractional bits of the input and of the output.
    pub fracs: [u8; 2],
    /// The layer's run.
    pub step: LayerStep,
}

/// Runs every layer on its own float input (`inputs[i]` for layer i), each calibrated on its
/// input alone.
pub fn run_independent(
    views: &[LayerView],
    inputs: &[Vec<f32>],
    arith: Arith,
    params: &TimingParams,
) -> Result<Vec<Independent>> {
    views
        .iter()
        .zip(inputs)
        .enumerate()
        .map(|(i, (view, x))| {
            let f = calibrate(
                std::slice::from_ref(view),
                std::slice::from_ref(x),
                arith.relu_last,
            );
            let relu = relu_at(i, views.len(), arith.relu_last);
            let input = quantize(x, f[0])?;
            let step = step(*view, &input, f[0], f[1], arith, relu, params)?;
            Ok(Independent {
                input,
                fracs: [f[0], f[1]],
                step,
            })
        })
        .collect()
}
