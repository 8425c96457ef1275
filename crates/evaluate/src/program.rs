//! A described network's compressed model as it runs (docs/accuracy.md, "How each layer meets
//! EIE"): the host computes convolutions, pooling, flattening, an LSTM's gates and cell update
//! in float; every other matrix runs bit-exact through the functional model on its packed
//! layer. Each EIE layer has its own input and output fraction (one pair per layer); two
//! Linears in a row share the boundary, the output handed on as it is.
//!
//! - A Linear is one EIE run; a ReLU right after it is EIE's (on write-back).
//! - An LSTM layer is one EIE run per time step of its packed matrix on `[x_t; h_{t-1}]` (and
//!   the bias column's 1): the gate pre-activations come back as 16-bit values, the host
//!   applies the sigmoids and tanh and the cell update in f64, and `h_t` is quantized to the
//!   next step's input fraction.
//! - A host layer (a convolution) runs in float with its shared values (the codebook's float
//!   values, as the bundle holds them); whatever reaches an EIE layer is quantized to its
//!   input fraction.

use eie_format::Bundle;
use eie_model::{Arch, Dense, Network, Op, Shape, matrix_specs, reference};
use eie_pipeline::provenance::{recorded_description, recorded_host_layers};
use eie_simulate::fixed::{MAX_ACT_FRAC, fraction_for, quantize};
use eie_simulate::run::step;
use eie_simulate::vectors::LayerRun;
use eie_simulate::{Arith, LayerTiming, LayerView, TimingParams, functional};

use crate::accuracy::EnergySetup;
use crate::error::{Error, Result};
use crate::model::first_max;
use eie_energy::Counts;

/// A described network over its bundle.
pub struct Program<'a> {
    /// The structure, and every matrix's shared float values (what host layers compute with).
    net: Network,
    views: Vec<LayerView<'a>>,
    /// Per matrix: runs on the host.
    host: Vec<bool>,
}

/// One EIE run of a sample, timed: which matrix, and the run as the vectors record it (its
/// 16-bit input, an LSTM's `[x_t; h_{t-1}]`; its fractions; the functional and timing
/// models' results).
pub struct Run<'a> {
    /// Index of the matrix (the bundle's layer).
    pub layer: usize,
    /// The run.
    pub record: LayerRun<'a>,
}

impl Run<'_> {
    /// What the timing model counted.
    pub fn timing(&self) -> &LayerTiming {
        &self.record.step.timing
    }
}

/// What an EIE layer saw in float during calibration: largest |input| and |output|.
#[derive(Default, Clone, Copy)]
struct Range {
    input: f64,
    output: f64,
}

impl<'a> Program<'a> {
    /// The program of `bundle` when it records a model description that is not an MLP
    /// (`compress` of a CNN or an LSTM); `None` for a plain chain of layers.
    pub fn of(bundle: &'a Bundle) -> Result<Option<Self>> {
        let settings = &bundle.meta().settings;
        let Some(text) = recorded_description(settings) else {
            return Ok(None);
        };
        let arch: Arch = text.parse()?;
        if arch.mlp_widths().is_some() {
            return Ok(None);
        }
        // The recorded description and host layers describe the layers, in order and shape,
        // and the host runs the convolutions or nothing (verify's rule, its one home).
        eie_pipeline::check_provenance(bundle)?;
        let views = LayerView::all(bundle);
        let host_names = recorded_host_layers(settings);
        let mut layers = Vec::with_capacity(views.len());
        for (spec, view) in matrix_specs(&arch)?.into_iter().zip(&views) {
            let (weight, bias) = view.dense()?;
            layers.push(Dense {
                bias_name: view.parts()[0].bias().map(str::to_string),
                outputs: spec.rows(),
                inputs: view.inputs(),
                table: spec.table,
                shape: spec.shape,
                name: spec.name,
                lstm: None,
                weight,
                bias,
            });
        }
        let net = Network::from_parts(&arch, layers)?;
        let host = net
            .layers()
            .iter()
            .map(|l| host_names.contains(&l.name))
            .collect();
        Ok(Some(Self { net, views, host }))
    }

    /// The network: structure and shared float values.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The EIE layers (not on the host), in order.
    pub fn eie_layers(&self) -> Vec<usize> {
        (0..self.views.len()).filter(|&i| !self.host[i]).collect()
    }

    /// The packed layers.
    pub fn views(&self) -> &[LayerView<'a>] {
        &self.views
    }

    /// The EIE layers' views, in order: what the energy model counts.
    pub fn eie_views(&self) -> Vec<LayerView<'a>> {
        self.eie_layers().iter().map(|&l| self.views[l]).collect()
    }

    /// One sample's EIE `runs` counted for the energy model ([`EnergySetup`]), per EIE layer in
    /// [`Program::eie_layers`] order: the counts of all its runs added (an LSTM's every step,
    /// a convolution's every position), and how many runs that is (for
    /// [`eie_energy::Runs::add_repeated`]).
    pub fn energy_counts(&self, runs: &[Run], counting: &EnergySetup) -> (Vec<Counts>, Vec<u64>) {
        let eie = self.eie_layers();
        let mut counts = vec![Counts::default(); eie.len()];
        let mut repeats = vec![0u64; eie.len()];
        for r in runs {
            let k = eie
                .iter()
                .position(|&l| l == r.layer)
                .expect("an EIE layer ran");
            let one = Counts::of(
                self.views[r.layer],
                r.timing(),
                counting.params.spmat_width,
                counting.pointer_bits,
                &counting.capacity,
            );
            counts[k] = if repeats[k] == 0 {
                one
            } else {
                counts[k].plus(&one)
            };
            repeats[k] += 1;
        }
        (counts, repeats)
    }

    /// Whether op `i` runs on EIE and the ReLU after it is EIE's (on write-back): a Linear, or
    /// a convolution run as im2col products.
    fn fused_relu(&self, i: usize) -> bool {
        let ops = self.net.ops();
        let on_eie = match ops[i] {
            Op::Linear { .. } => true,
            Op::Conv { layer, .. } => !self.host[layer],
            _ => false,
        };
        on_eie && matches!(ops.get(i + 1), Some(Op::Relu))
    }

    /// The layers that run on the host (convolutions, unless compressed to run on EIE).
    pub fn host_layers(&self) -> Vec<String> {
        self.views
            .iter()
            .zip(&self.host)
            .filter(|&(_, &h)| h)
            .map(|(v, _)| v.name().to_string())
            .collect()
    }

    /// Activation fractions calibrated on `inputs` (docs/fixed-point.md section 1): per
    /// matrix, the largest fraction at which the largest |input| and |output| seen in the float
    /// run of the shared values fit 16 bits; a Linear that feeds a Linear hands its output on,
    /// so the next input takes the smaller of the two. Host layers get `[0, 0]` (unused).
    pub fn calibrate<'x>(&self, inputs: impl Iterator<Item = &'x [f32]>) -> Vec<u8> {
        let mut ranges = vec![Range::default(); self.views.len()];
        for x in inputs {
            self.float_run(x, &mut ranges);
        }
        self.fractions_of(&ranges)
    }

    /// Per matrix, the largest fraction at which its largest |input| and |output| fit 16
    /// bits; chained Linears share the smaller; host layers get `[0, 0]` (unused).
    fn fractions_of(&self, ranges: &[Range]) -> Vec<u8> {
        let frac = |m: f64| {
            if m.is_finite() {
                fraction_for(m)
            } else {
                MAX_ACT_FRAC
            }
        };
        let mut fracs: Vec<u8> = ranges
            .iter()
            .flat_map(|r| [frac(r.input), frac(r.output)])
            .collect();
        self.tie_chained(&mut fracs);
        for (i, &h) in self.host.iter().enumerate() {
            if h {
                fracs[2 * i] = 0;
                fracs[2 * i + 1] = 0;
            }
        }
        fracs
    }

    /// The activation fractions: `given`, checked ([`Program::check_fractions`]), or when none
    /// are given calibrated on `inputs` ([`Program::calibrate`]).
    pub fn fractions<'x>(
        &self,
        given: &[u8],
        inputs: impl Iterator<Item = &'x [f32]>,
    ) -> Result<Vec<u8>> {
        self.not_tokens()?;
        if given.is_empty() {
            return Ok(self.calibrate(inputs));
        }
        self.check_fractions(given)?;
        Ok(given.to_vec())
    }

    /// Two Linears in a row share their boundary's fraction: the smaller one.
    fn tie_chained(&self, fracs: &mut [u8]) {
        for (a, b) in self.chained() {
            let f = fracs[2 * a + 1].min(fracs[2 * b]);
            fracs[2 * a + 1] = f;
            fracs[2 * b] = f;
        }
    }

    /// Pairs of matrices (a, b) where a Linear's output (after its ReLU) is b's input.
    fn chained(&self) -> Vec<(usize, usize)> {
        let ops = self.net.ops();
        let mut out = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let Op::Linear { layer: a } = *op else {
                continue;
            };
            let next = if self.fused_relu(i) { i + 2 } else { i + 1 };
            if let Some(Op::Linear { layer: b }) = ops.get(next) {
                out.push((a, *b));
            }
        }
        out
    }

    /// Checks given fractions: two per matrix ([`check_fraction_count`]), chained boundaries
    /// equal.
    pub fn check_fractions(&self, fracs: &[u8]) -> Result<()> {
        check_fraction_count(fracs, self.views.len())?;
        for (a, b) in self.chained() {
            if fracs[2 * a + 1] != fracs[2 * b] {
                return Err(Error::Config {
                    what: "activation fractions",
                    reason: format!(
                        "{} feeds {} as it is: its output fraction {} must equal the next input fraction {}",
                        self.views[a].name(),
                        self.views[b].name(),
                        fracs[2 * a + 1],
                        fracs[2 * b]
                    ),
                });
            }
        }
        Ok(())
    }

    /// The float run of the shared values, recording every EIE layer's ranges.
    fn float_run(&self, x: &[f32], ranges: &mut [Range]) {
        let max_abs = |v: &[f32]| v.iter().fold(0f64, |m, &a| m.max((a as f64).abs()));
        let layers = self.net.layers();
        let mut a = x.to_vec();
        for (i, (op, &input)) in self.net.ops().iter().zip(self.net.shapes()).enumerate() {
            a = match *op {
                Op::Linear { layer } => {
                    let r = &mut ranges[layer];
                    r.input = r.input.max(max_abs(&a));
                    let mut y = reference::linear(&layers[layer], &a);
                    if self.fused_relu(i) {
                        y.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                    r.output = r.output.max(max_abs(&y));
                    y
                }
                Op::Conv {
                    layer,
                    stride,
                    padding,
                    ..
                } if !self.host[layer] => {
                    // im2col: every patch is an input vector (its values are the image's,
                    // and the padding's zeros), every output position an output vector.
                    let r = &mut ranges[layer];
                    r.input = r.input.max(max_abs(&a));
                    let mut y = reference::conv2d(&layers[layer], &a, input, stride, padding);
                    if self.fused_relu(i) {
                        y.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                    r.output = r.output.max(max_abs(&y));
                    y
                }
                Op::Lstm { layer, hidden } => {
                    let l = &layers[layer];
                    let Shape::Sequence { steps, features } = input else {
                        unreachable!("checked when the network was built")
                    };
                    let r = &mut ranges[layer];
                    let gates = |v: &[f32]| {
                        let g = reference::linear(l, v);
                        r.input = r.input.max(max_abs(v));
                        r.output = r.output.max(max_abs(&g));
                        Ok::<_, std::convert::Infallible>(g)
                    };
                    match reference::lstm_over(&a, steps, features, hidden, gates, |_| Ok(())) {
                        Ok(h) => h,
                        Err(never) => match never {},
                    }
                }
                _ => reference::op(&self.net, *op, input, &a),
            };
        }
    }

    /// One sample through the program: the predicted class (the first largest 16-bit logit),
    /// and with `params` every EIE run in order, each also through the timing model.
    pub fn run(
        &self,
        x: &[f32],
        fracs: &[u8],
        arith: Arith,
        params: Option<&TimingParams>,
    ) -> Result<(usize, Vec<Run<'a>>)> {
        self.not_tokens()?;
        let mut runs = Vec::new();
        let mut eie = |layer: usize, input: &[i16], relu: bool| -> Result<Vec<i16>> {
            let (view, f_in, f_out) = (self.views[layer], fracs[2 * layer], fracs[2 * layer + 1]);
            Ok(match params {
                Some(p) => {
                    let s = step(view, input, f_in, f_out, arith, relu, p)?;
                    let out = s.output.outputs.clone();
                    runs.push(Run {
                        layer,
                        record: LayerRun {
                            view,
                            input: input.to_vec(),
                            f_in,
                            f_out,
                            relu,
                            step: s,
                        },
                    });
                    out
                }
                None => functional::layer(view, input, f_in, f_out, arith, relu)?.outputs,
            })
        };
        let ops = self.net.ops();
        // Activations are float on the host, or 16-bit with a fraction after an EIE layer.
        let mut float: Vec<f32> = x.to_vec();
        let mut fixed: Option<(Vec<i16>, u8)> = None;
        let mut skip_relu = false;
        for (i, (op, &input)) in ops.iter().zip(self.net.shapes()).enumerate() {
            if skip_relu {
                skip_relu = false;
                continue;
            }
            match *op {
                Op::Linear { layer } => {
                    let f_in = fracs[2 * layer];
                    let q = match fixed.take() {
                        Some((q, f)) if f == f_in => q,
                        Some((q, f)) => quantize(&dequantize(&q, f), f_in)?,
                        None => quantize(&float, f_in)?,
                    };
                    let fused = self.fused_relu(i);
                    skip_relu = fused;
                    // --relu-last: the classifier's ReLU, as for an MLP.
                    let relu = fused || (arith.relu_last && i + 1 == ops.len());
                    fixed = Some((eie(layer, &q, relu)?, fracs[2 * layer + 1]));
                }
                Op::Conv {
                    layer,
                    kernel,
                    stride,
                    padding,
                } if !self.host[layer] => {
                    if let Some((q, f)) = fixed.take() {
                        float = dequantize(&q, f);
                    }
                    let (f_in, f_out) = (fracs[2 * layer], fracs[2 * layer + 1]);
                    let fused = self.fused_relu(i);
                    skip_relu = fused;
                    let image = quantize(&float, f_in)?;
                    let outputs = self.net.layers()[layer].outputs;
                    let (oh, ow) = reference::out_sides(input, kernel, stride, padding);
                    let mut y = vec![0f32; outputs * oh * ow];
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let patch =
                                reference::patch(&image, input, kernel, stride, padding, oy, ox);
                            let out = dequantize(&eie(layer, &patch, fused)?, f_out);
                            for (o, &v) in out.iter().enumerate() {
                                y[(o * oh + oy) * ow + ox] = v;
                            }
                        }
                    }
                    float = y;
                }
                Op::Lstm { layer, hidden } => {
                    if let Some((q, f)) = fixed.take() {
                        float = dequantize(&q, f);
                    }
                    let Shape::Sequence { steps, features } = input else {
                        unreachable!("checked when the network was built")
                    };
                    let (f_in, f_out) = (fracs[2 * layer], fracs[2 * layer + 1]);
                    let gates = |v: &[f32]| -> Result<Vec<f32>> {
                        Ok(dequantize(&eie(layer, &quantize(v, f_in)?, false)?, f_out))
                    };
                    // h_t as the next step's 16-bit input.
                    let carry = |h: &mut [f32]| -> Result<()> {
                        let q = dequantize(&quantize(h, f_in)?, f_in);
                        h.copy_from_slice(&q);
                        Ok(())
                    };
                    let out = reference::lstm_over(&float, steps, features, hidden, gates, carry)?;
                    float = out;
                }
                _ => {
                    if let Some((q, f)) = fixed.take() {
                        float = dequantize(&q, f);
                    }
                    float = reference::op(&self.net, *op, input, &float);
                }
            }
        }
        let prediction = match &fixed {
            Some((q, _)) => first_max(q),
            None => first_max(&float),
        };
        Ok((prediction, runs))
    }
}

impl<'a> Program<'a> {
    /// A token model runs token by token ([`Program::token_run`]), not sample by sample.
    fn not_tokens(&self) -> Result<()> {
        match self.net.vocab() {
            Some(_) => Err(Error::Config {
                what: "model description",
                reason: format!(
                    "{} is a token model: it runs on token ids, one token after another, not on samples",
                    self.net.describe()
                ),
            }),
            None => Ok(()),
        }
    }

    /// A token model's logits for the window `ids` (`ids.len() x V`) with every matrix on
    /// EIE ([`reference::run_tokens`], the loop the float reference runs): each matrix's
    /// input quantized to its input fraction (an embedding's one-hot vector, an LSTM's
    /// `[x_t; h_{t-1}]`), run bit-exact through the functional model on its images, its
    /// 16-bit outputs read back as floats; the host applies ReLUs (equal to EIE's on
    /// write-back: rounding commutes with them) and the LSTM cell, and quantizes `h_t` to the
    /// next step's input fraction. With `--relu-last`, the last matrix's ReLU is EIE's.
    pub fn token_logits(&self, ids: &[u32], fracs: &[u8], arith: Arith) -> Result<Vec<f32>> {
        Ok(self.token_run(ids, fracs, arith, None)?.0)
    }

    /// [`Program::token_logits`], and with `params` every EIE run in order (each token's
    /// matrices in the network's order, one run each), each also through the timing model.
    pub fn token_run(
        &self,
        ids: &[u32],
        fracs: &[u8],
        arith: Arith,
        params: Option<&TimingParams>,
    ) -> Result<(Vec<f32>, Vec<Run<'a>>)> {
        let last = self.views.len() - 1;
        let mut runs = Vec::new();
        let matrix = |layer: usize, x: &[f32]| -> Result<Vec<f32>> {
            let (view, f_in, f_out) = (self.views[layer], fracs[2 * layer], fracs[2 * layer + 1]);
            let relu = arith.relu_last && layer == last;
            let input = quantize(x, f_in)?;
            let out = match params {
                Some(p) => {
                    let s = step(view, &input, f_in, f_out, arith, relu, p)?;
                    let out = s.output.outputs.clone();
                    runs.push(Run {
                        layer,
                        record: LayerRun {
                            view,
                            input,
                            f_in,
                            f_out,
                            relu,
                            step: s,
                        },
                    });
                    out
                }
                None => functional::layer(view, &input, f_in, f_out, arith, relu)?.outputs,
            };
            Ok(dequantize(&out, f_out))
        };
        let carry = |layer: usize, h: &mut [f32]| -> Result<()> {
            let f = fracs[2 * layer];
            let q = dequantize(&quantize(h, f)?, f);
            h.copy_from_slice(&q);
            Ok(())
        };
        let logits = reference::run_tokens(&self.net, ids, matrix, carry)?;
        Ok((logits, runs))
    }

    /// A token model's activation fractions: `given`, checked, or when none are given
    /// calibrated on the float run of the shared values over `windows` (as
    /// [`Program::calibrate`] does for samples: per matrix, the largest fraction at which
    /// the largest |input| and |output| seen fit 16 bits; chained Linears share theirs).
    pub fn token_fractions<'x>(
        &self,
        given: &[u8],
        windows: impl Iterator<Item = &'x [u32]>,
    ) -> Result<Vec<u8>> {
        if !given.is_empty() {
            self.check_fractions(given)?;
            return Ok(given.to_vec());
        }
        let max_abs = |v: &[f32]| v.iter().fold(0f64, |m, &a| m.max((a as f64).abs()));
        let ranges = std::cell::RefCell::new(vec![Range::default(); self.views.len()]);
        let layers = self.net.layers();
        for ids in windows {
            let matrix = |layer: usize, x: &[f32]| {
                let y = reference::linear(&layers[layer], x);
                let r = &mut ranges.borrow_mut()[layer];
                r.input = r.input.max(max_abs(x));
                r.output = r.output.max(max_abs(&y));
                Ok::<_, std::convert::Infallible>(y)
            };
            if let Err(never) = reference::run_tokens(&self.net, ids, matrix, |_, _| Ok(())) {
                match never {}
            }
        }
        Ok(self.fractions_of(&ranges.into_inner()))
    }
}

/// A described model's activation fractions: two per matrix (input, output), each at most
/// [`MAX_ACT_FRAC`].
pub fn check_fraction_count(fracs: &[u8], matrices: usize) -> Result<()> {
    if fracs.len() != 2 * matrices {
        return Err(Error::Config {
            what: "activation fractions",
            reason: format!(
                "{} given; a described model takes two per layer (input, output), {} for its {matrices} layers",
                fracs.len(),
                2 * matrices,
            ),
        });
    }
    if let Some(&f) = fracs.iter().find(|&&f| f > MAX_ACT_FRAC) {
        return Err(Error::Config {
            what: "activation fractions",
            reason: format!("{f} is over {MAX_ACT_FRAC}"),
        });
    }
    Ok(())
}

/// A float value of 16-bit `q` with `frac` fractional bits.
fn dequantize(q: &[i16], frac: u8) -> Vec<f32> {
    let scale = (-(frac as f64)).exp2();
    q.iter().map(|&v| (v as f64 * scale) as f32).collect()
}
