//! The network as a burn module (the only place burn's types appear): one parameter per
//! weight matrix and bias, and the forward pass of [`Network::ops`] over a batch.
//!
//! A Linear's and an LSTM's matrices live in burn's `[in, out]` layout (the transpose of
//! PyTorch's, what burn's `linear` takes); a convolution's kernel stays PyTorch's
//! `[out, in*kh*kw]` and is viewed as `[out, in, kh, kw]`. [`burn_layout`] and
//! [`pytorch_layout`] are the one place that knows which.

use burn::module::{Module, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::module::{avg_pool2d, conv2d, linear, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};
use eie_dataset::Dataset;
use eie_model::{Dense, Network, Op, Shape};

use crate::error::{Error, Result};
use crate::lstm;

/// Every weight matrix and bias of a [`Network`], in its order.
#[derive(Module, Debug)]
pub(crate) struct Model {
    /// Each layer's W in burn's layout ([`burn_layout`]).
    pub weights: Vec<Param<Tensor<2>>>,
    /// Each layer's b.
    pub biases: Vec<Option<Param<Tensor<1>>>>,
}

/// `rows x cols` row-major to `cols x rows` row-major.
pub(crate) fn transpose<T: Copy + Default>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut t = vec![T::default(); m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// The dimensions of layer `l`'s matrix in burn's layout.
pub(crate) fn burn_dims(l: &Dense) -> [usize; 2] {
    if l.is_conv() {
        [l.outputs, l.inputs]
    } else {
        [l.inputs, l.outputs]
    }
}

/// Values in PyTorch's layout (`[out, in]` row-major) to burn's.
pub(crate) fn burn_layout<T: Copy + Default>(l: &Dense, v: &[T]) -> Vec<T> {
    if l.is_conv() {
        v.to_vec()
    } else {
        transpose(v, l.outputs, l.inputs)
    }
}

/// Values in burn's layout back to PyTorch's.
pub(crate) fn pytorch_layout<T: Copy + Default>(l: &Dense, v: &[T]) -> Vec<T> {
    if l.is_conv() {
        v.to_vec()
    } else {
        transpose(v, l.inputs, l.outputs)
    }
}

/// A batch's activations between operations.
enum Act {
    Vector(Tensor<2>),
    Sequence(Tensor<3>),
    Image(Tensor<4>),
}

impl Act {
    fn of(x: Tensor<2>, shape: Shape) -> Self {
        let [b, _] = x.dims();
        match shape {
            Shape::Vector(_) => Act::Vector(x),
            Shape::Sequence { steps, features } => Act::Sequence(x.reshape([b, steps, features])),
            Shape::Image {
                channels,
                height,
                width,
            } => Act::Image(x.reshape([b, channels, height, width])),
        }
    }

    fn vector(self) -> Tensor<2> {
        match self {
            Act::Vector(x) => x,
            Act::Sequence(x) => {
                let [b, t, f] = x.dims();
                x.reshape([b, t * f])
            }
            Act::Image(x) => {
                let [b, c, h, w] = x.dims();
                x.reshape([b, c * h * w])
            }
        }
    }

    fn image(self) -> Tensor<4> {
        match self {
            Act::Image(x) => x,
            _ => unreachable!("the network's shapes were checked when it was built"),
        }
    }

    fn sequence(self) -> Tensor<3> {
        match self {
            Act::Sequence(x) => x,
            _ => unreachable!("the network's shapes were checked when it was built"),
        }
    }
}

impl Model {
    /// The module holding `net`'s values on `device` (an autodiff device to train).
    pub fn new(net: &Network, device: &Device) -> Self {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for l in net.layers() {
            let w = burn_layout(l, &l.weight);
            weights.push(Param::from_tensor(Tensor::<2>::from_data(
                TensorData::new(w, burn_dims(l)),
                device,
            )));
            biases.push(l.bias.as_ref().map(|b| {
                Param::from_tensor(Tensor::<1>::from_data(
                    TensorData::new(b.clone(), [l.outputs]),
                    device,
                ))
            }));
        }
        Self { weights, biases }
    }

    fn bias(&self, i: usize) -> Option<Tensor<1>> {
        self.biases[i].as_ref().map(|b| b.val())
    }

    /// The logits of a batch `x` (`[batch, inputs]`, each row a sample's values in order).
    pub fn forward(&self, net: &Network, x: Tensor<2>) -> Tensor<2> {
        let (out, tape) = self.forward_taped(net, x);
        debug_assert!(
            tape.0.is_none(),
            "a training forward pass must keep its tape"
        );
        out
    }

    /// [`Model::forward`], and what its backward pass needs beyond burn's graph
    /// ([`Tape::gradients`]).
    pub(crate) fn forward_taped(&self, net: &Network, x: Tensor<2>) -> (Tensor<2>, Tape) {
        let (mut a, tape, skip) = match fused_lstms(net, 0) {
            Some(lstms) => {
                let [b, _] = x.dims();
                let steps = match net.input() {
                    Shape::Sequence { steps, .. } => steps,
                    _ => unreachable!("an LSTM's input is a sequence"),
                };
                let (out, tape) = self.fused(&lstms, values(x.inner()), b, steps, None);
                (Act::Sequence(out), tape, lstms.len())
            }
            None => (Act::of(x, net.input()), Tape::default(), 0),
        };
        for (op, &input) in net.ops().iter().zip(net.shapes()).skip(skip) {
            a = match *op {
                // An embedding's input is a one-hot vector: its product is the column.
                Op::Linear { layer } | Op::Embed { layer } => Act::Vector(linear(
                    a.vector(),
                    self.weights[layer].val(),
                    self.bias(layer),
                )),
                Op::Conv {
                    layer,
                    kernel,
                    stride,
                    padding,
                } => {
                    let l = &net.layers()[layer];
                    let channels = l.inputs / (kernel * kernel);
                    let w = self.weights[layer]
                        .val()
                        .reshape([l.outputs, channels, kernel, kernel]);
                    let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
                    Act::Image(conv2d(a.image(), w, self.bias(layer), options))
                }
                Op::MaxPool { kernel, stride } => Act::Image(max_pool2d(
                    a.image(),
                    MaxPoolOptions::new([kernel; 2]).with_stride([stride; 2]),
                )),
                Op::AvgPool { kernel, stride } => Act::Image(avg_pool2d(
                    a.image(),
                    AvgPoolOptions::new([kernel; 2]).with_stride([stride; 2]),
                )),
                Op::Relu => match a {
                    Act::Vector(x) => Act::Vector(relu(x)),
                    Act::Sequence(x) => Act::Sequence(relu(x)),
                    Act::Image(x) => Act::Image(relu(x)),
                },
                Op::Flatten => Act::Vector(a.vector()),
                Op::LastStep => {
                    let x = a.sequence();
                    let [b, t, f] = x.dims();
                    Act::Vector(x.narrow(1, t - 1, 1).reshape([b, f]))
                }
                Op::Lstm { layer, hidden } => {
                    let Shape::Sequence { steps, features } = input else {
                        unreachable!("the network's shapes were checked when it was built")
                    };
                    Act::Sequence(self.lstm(a.sequence(), layer, steps, features, hidden))
                }
            };
        }
        (a.vector(), tape)
    }

    /// The LSTM stack `lstms` (`(layer, hidden)`, in order) over `x` (`[batch, steps,
    /// features]`, sample-major values) as one fused operation ([`crate::lstm`]): its output
    /// `[batch, steps, H]`, a leaf of burn's graph when the model trains, and the tape that
    /// carries that leaf's gradient back through the stack (and into `embed`'s rows).
    fn fused(
        &self,
        lstms: &[(usize, usize)],
        x: Vec<f32>,
        batch: usize,
        steps: usize,
        embed: Option<Embedded>,
    ) -> (Tensor<3>, Tape) {
        let weights: Vec<lstm::Weights> = lstms
            .iter()
            .map(|&(layer, hidden)| {
                // The packed matrix is `[features + H, 4H]` in burn's layout.
                let w = self.weights[layer].val();
                lstm::Weights {
                    features: w.dims()[0] - hidden,
                    w: values(w.inner()),
                    b: self.bias(layer).map(|b| values(b.inner())),
                    hidden,
                }
            })
            .collect();
        let features = lstms.last().map_or(0, |&(_, hidden)| hidden);
        let (out, saved) = lstm::stack_forward(&weights, &x, batch, steps);
        let first = &self.weights[lstms[0].0];
        let device = first.val().device();
        let out = Tensor::<3>::from_data(TensorData::new(out, [batch, steps, features]), &device);
        if !first.val().is_require_grad() {
            return (out, Tape::default());
        }
        let out = out.require_grad();
        let params = lstms
            .iter()
            .map(|&(layer, _)| {
                (
                    self.weights[layer].id,
                    self.biases[layer].as_ref().map(|b| b.id),
                )
            })
            .collect();
        let tape = Tape(Some(Box::new(Fused {
            out: out.clone(),
            weights,
            saved,
            params,
            batch,
            steps,
            embed,
        })));
        (out, tape)
    }

    /// One LSTM layer over `x` (`[batch, steps, features]`) with packed matrix `layer`
    /// (burn's layout `[features + H, 4H]`: the `W_ih` rows, then the `W_hh` rows), zero
    /// initial state, PyTorch's gate order i, f, g, o: every step's `h_t`.
    fn lstm(
        &self,
        x: Tensor<3>,
        layer: usize,
        steps: usize,
        features: usize,
        hidden: usize,
    ) -> Tensor<3> {
        let [b, _, _] = x.dims();
        let device = x.device();
        let w = self.weights[layer].val();
        let (wih, whh) = (
            w.clone().narrow(0, 0, features),
            w.narrow(0, features, hidden),
        );
        // Every step's input part of the gates, and the bias, in one product.
        let xg = linear(x.reshape([b * steps, features]), wih, self.bias(layer)).reshape([
            b,
            steps,
            4 * hidden,
        ]);
        let mut h = Tensor::<2>::zeros([b, hidden], &device);
        let mut c = Tensor::<2>::zeros([b, hidden], &device);
        let mut out = Vec::with_capacity(steps);
        for t in 0..steps {
            let g = xg.clone().narrow(1, t, 1).reshape([b, 4 * hidden]) + h.matmul(whh.clone());
            let gate = |k: usize| g.clone().narrow(1, k * hidden, hidden);
            let (i, f, gg, o) = (
                sigmoid(gate(0)),
                sigmoid(gate(1)),
                tanh(gate(2)),
                sigmoid(gate(3)),
            );
            c = f * c + i * gg;
            h = o * tanh(c.clone());
            out.push(h.clone());
        }
        Tensor::stack(out, 1)
    }

    /// A token model's logits `[batch * t, V]` of token ids `[batch, t]`, every window from a
    /// zero state: the embedding's rows (burn's layout of its `[E, V]` matrix is the table
    /// `[V, E]`), each LSTM over the window, each Linear and ReLU at every token.
    pub fn forward_tokens(&self, net: &Network, ids: Tensor<2, Int>) -> Tensor<2> {
        let (out, tape) = self.forward_tokens_taped(net, ids);
        debug_assert!(
            tape.0.is_none(),
            "a training forward pass must keep its tape"
        );
        out
    }

    /// [`Model::forward_tokens`], and what its backward pass needs beyond burn's graph.
    pub(crate) fn forward_tokens_taped(
        &self,
        net: &Network,
        ids: Tensor<2, Int>,
    ) -> (Tensor<2>, Tape) {
        let [b, t] = ids.dims();
        let flat = ids.reshape([b * t]);
        let mut x: Option<Tensor<3>> = None;
        let mut tape = Tape::default();
        let mut skip = 0;
        if let (Some(&Op::Embed { layer }), Some(lstms)) = (net.ops().first(), fused_lstms(net, 1))
        {
            let table = self.weights[layer].val();
            let [vocab, width] = table.dims();
            let rows = values(table.inner().select(0, flat.clone()));
            let ids = flat.to_data().iter::<i64>().map(|i| i as usize).collect();
            let embed = Embedded {
                id: self.weights[layer].id,
                ids,
                vocab,
                width,
            };
            let (out, taped) = self.fused(&lstms, rows, b, t, Some(embed));
            (x, tape, skip) = (Some(out), taped, 1 + lstms.len());
        }
        for op in net.ops().iter().skip(skip) {
            x = Some(match *op {
                Op::Embed { layer } => {
                    let e = net.layers()[layer].outputs;
                    self.weights[layer]
                        .val()
                        .select(0, flat.clone())
                        .reshape([b, t, e])
                }
                Op::Lstm { layer, hidden } => {
                    let features = net.layers()[layer].inputs - hidden;
                    self.lstm(x.expect("after the embedding"), layer, t, features, hidden)
                }
                Op::Linear { layer } => {
                    let l = &net.layers()[layer];
                    let y = linear(
                        x.expect("after the embedding").reshape([b * t, l.inputs]),
                        self.weights[layer].val(),
                        self.bias(layer),
                    );
                    y.reshape([b, t, l.outputs])
                }
                Op::Relu => relu(x.expect("after the embedding")),
                _ => unreachable!("a token model has embeddings, LSTMs, Linears and ReLUs"),
            });
        }
        let v = net.outputs();
        (
            x.expect("a token model has layers").reshape([b * t, v]),
            tape,
        )
    }

    /// The same values as new leaves of their own (`Streamed::fork`).
    pub fn fork(&self) -> Self {
        Self {
            weights: self
                .weights
                .iter()
                .map(|p| Param::initialized(p.id, p.val().detach().require_grad()))
                .collect(),
            biases: self
                .biases
                .iter()
                .map(|b| {
                    b.as_ref()
                        .map(|p| Param::initialized(p.id, p.val().detach().require_grad()))
                })
                .collect(),
        }
    }

    /// Copies the module's values back into `net` (PyTorch layout).
    pub fn store(&self, net: &mut Network) -> Result<()> {
        let layers: Vec<Dense> = net.layers().to_vec();
        for ((i, mut l), d) in net.layers_mut().enumerate().zip(&layers) {
            let w = to_vec(self.weights[i].val())?;
            *l.weight = pytorch_layout(d, &w);
            if let (Some(b), Some(mb)) = (l.bias.as_mut(), &self.biases[i]) {
                **b = to_vec(mb.val())?;
            }
        }
        Ok(())
    }
}

/// The LSTM ops from op `start` (`(layer, hidden)` each) when there are any and no other
/// LSTM op follows them: a stack the fused LSTM runs, its input the network's (or the
/// embedding's) and its output burn's.
fn fused_lstms(net: &Network, start: usize) -> Option<Vec<(usize, usize)>> {
    #[cfg(test)]
    if UNFUSED.get() {
        return None;
    }
    let ops = net.ops().get(start..)?;
    let lstms: Vec<(usize, usize)> = ops
        .iter()
        .map_while(|op| match *op {
            Op::Lstm { layer, hidden } => Some((layer, hidden)),
            _ => None,
        })
        .collect();
    let later = ops[lstms.len()..]
        .iter()
        .any(|op| matches!(op, Op::Lstm { .. }));
    (!lstms.is_empty() && !later).then_some(lstms)
}

#[cfg(test)]
thread_local! {
    /// Tests set it to run burn's own LSTM, the reference of the fused one.
    pub(crate) static UNFUSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// An f32 tensor's values (every tensor the model makes is f32).
fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    to_vec(t).expect("the model's tensors are f32")
}

/// The embedding a fused LSTM stack reads: its parameter, the rows read (one per position,
/// sample-major) and the table's `[vocab, width]`.
struct Embedded {
    id: ParamId,
    ids: Vec<usize>,
    vocab: usize,
    width: usize,
}

/// What a fused LSTM stack's forward pass leaves for its backward pass.
struct Fused {
    /// The stack's output as a leaf of burn's graph: its gradient is where the stack's
    /// backward pass starts.
    out: Tensor<3>,
    weights: Vec<lstm::Weights>,
    saved: Vec<lstm::Saved>,
    /// Each layer's matrix and bias parameters.
    params: Vec<(ParamId, Option<ParamId>)>,
    batch: usize,
    steps: usize,
    embed: Option<Embedded>,
}

/// What a forward pass leaves for its backward pass beyond burn's graph: a fused LSTM
/// stack's saved states, or nothing.
#[derive(Default)]
pub(crate) struct Tape(Option<Box<Fused>>);

impl Tape {
    /// `loss`'s gradients of `model`'s parameters: burn's backward pass, then the fused
    /// stack's from its output's gradient (its matrices', biases' and embedding rows').
    pub(crate) fn gradients<M: Module>(
        self,
        loss: &Tensor<1>,
        model: &M,
    ) -> Result<GradientsParams> {
        let grads = loss.backward();
        let Some(f) = self.0 else {
            return Ok(GradientsParams::from_grads(grads, model));
        };
        let dout = f.out.grad(&grads);
        let mut params = GradientsParams::from_grads(grads, model);
        // An output the loss does not read gives the stack no gradient.
        let Some(dout) = dout else {
            return Ok(params);
        };
        let device = dout.device();
        let (layers, dx) = lstm::stack_backward(
            &f.weights,
            f.saved,
            &to_vec(dout)?,
            f.batch,
            f.steps,
            f.embed.is_some(),
        );
        for (((w, b), (dw, db)), l) in f.params.iter().zip(layers).zip(&f.weights) {
            let rows = l.features + l.hidden;
            let dims = [rows, 4 * l.hidden];
            params.register(
                *w,
                Tensor::<2>::from_data(TensorData::new(dw, dims), &device),
            );
            if let (Some(b), Some(db)) = (b, db) {
                params.register(
                    *b,
                    Tensor::<1>::from_data(TensorData::new(db, [dims[1]]), &device),
                );
            }
        }
        if let (Some(e), Some(dx)) = (f.embed, dx) {
            let mut table = vec![0.0f32; e.vocab * e.width];
            for (&id, d) in e.ids.iter().zip(dx.chunks_exact(e.width)) {
                for (a, &v) in table[id * e.width..(id + 1) * e.width].iter_mut().zip(d) {
                    *a += v;
                }
            }
            let dims = [e.vocab, e.width];
            params.register(
                e.id,
                Tensor::<2>::from_data(TensorData::new(table, dims), &device),
            );
        }
        Ok(params)
    }
}

/// A tensor's values as f32.
pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Tensor {
            reason: format!("{e:?}"),
        })
}

/// Samples `idx` of `data` as an input batch and its targets.
pub(crate) fn batch(data: &Dataset, idx: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let w = data.width();
    let mut x = Vec::with_capacity(idx.len() * w);
    let mut y = Vec::with_capacity(idx.len());
    for &i in idx {
        x.extend_from_slice(data.input(i));
        y.push(data.labels()[i] as i64);
    }
    (
        Tensor::<2>::from_data(TensorData::new(x, [idx.len(), w]), device),
        Tensor::<1, Int>::from_data(TensorData::new(y, [idx.len()]), device),
    )
}

/// The predicted class (first largest logit) of each row.
pub(crate) fn argmax_rows(logits: Tensor<2>) -> Result<Vec<usize>> {
    let [rows, cols] = logits.dims();
    let v = to_vec(logits)?;
    Ok((0..rows)
        .map(|r| first_max(&v[r * cols..(r + 1) * cols]))
        .collect())
}

/// Index of the first largest value.
pub(crate) fn first_max<T: PartialOrd + Copy>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
