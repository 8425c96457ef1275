//! The float forward pass on the host, one sample at a time, every sum accumulated in f64
//! and every activation stored as f32: the reference burn's batched model is tested against,
//! and the host's share of a network whose matrices run on EIE (convolutions, pooling, an
//! LSTM's gates and cell).

use crate::arch::Shape;
use crate::network::{Dense, Network, Op};

impl Network {
    /// The float forward pass on the host ([`forward`]): the reference the burn model is
    /// tested against.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        forward(self, x)
    }

    /// A token model's float logits for `ids` ([`run_tokens`] with every matrix in float; an
    /// embedding's column read as it is, which is what its product with the one-hot vector
    /// gives): `ids.len() x V`. Ids past the vocabulary select nothing (callers check them).
    pub fn forward_tokens(&self, ids: &[u32]) -> Vec<f32> {
        let layers = self.layers();
        let run = run_tokens(
            self,
            ids,
            |layer, x| {
                let l = &layers[layer];
                // A one-hot vector: its product is the column itself.
                let hot =
                    l.table && l.bias.is_none() && x.iter().filter(|&&v| v != 0.0).count() == 1;
                Ok::<_, std::convert::Infallible>(match x.iter().position(|&v| v == 1.0) {
                    Some(j) if hot => (0..l.outputs).map(|r| l.weight[r * l.inputs + j]).collect(),
                    _ => linear(l, x),
                })
            },
            |_, _| Ok(()),
        );
        match run {
            Ok(logits) => logits,
            Err(never) => match never {},
        }
    }
}

/// A token model's run over `ids` from a zero state, one token after another (the one loop
/// the float reference and the EIE path share): a token's one-hot vector through the ops,
/// `matrix(layer, x)` computing a matrix's `W x + b` (an embedding's on the one-hot vector,
/// an LSTM's on `[x_t; h_{t-1}]`), the host applying ReLUs and the LSTM cell, `carry(layer,
/// h)` changing an LSTM's `h_t` (quantizing it) before it is output and fed back. Returns
/// every token's logits, `ids.len() x V`. An id past the vocabulary is a zero vector
/// (callers check ids first).
pub fn run_tokens<E>(
    net: &Network,
    ids: &[u32],
    mut matrix: impl FnMut(usize, &[f32]) -> Result<Vec<f32>, E>,
    mut carry: impl FnMut(usize, &mut [f32]) -> Result<(), E>,
) -> Result<Vec<f32>, E> {
    let vocab = net.inputs();
    // Each LSTM layer's (h, c), carried from one token to the next.
    let mut state: Vec<Option<(Vec<f32>, Vec<f32>)>> = net
        .ops()
        .iter()
        .map(|op| match *op {
            Op::Lstm { hidden, .. } => Some((vec![0f32; hidden], vec![0f32; hidden])),
            _ => None,
        })
        .collect();
    let mut logits = Vec::with_capacity(ids.len() * net.outputs());
    for &id in ids {
        let mut x = vec![0f32; vocab];
        if let Some(v) = x.get_mut(id as usize) {
            *v = 1.0;
        }
        for (i, op) in net.ops().iter().enumerate() {
            x = match *op {
                Op::Embed { layer } | Op::Linear { layer } => matrix(layer, &x)?,
                Op::Lstm { layer, .. } => {
                    let (h, c) = state[i].as_mut().expect("an LSTM's state");
                    let input = [&x[..], &h[..]].concat();
                    let g = matrix(layer, &input)?;
                    lstm_cell(&g, c, h);
                    carry(layer, h)?;
                    h.clone()
                }
                Op::Relu => x.iter().map(|&v| v.max(0.0)).collect(),
                _ => unreachable!("a token model has embeddings, LSTMs, Linears and ReLUs"),
            };
        }
        logits.extend_from_slice(&x);
    }
    Ok(logits)
}

/// `y = W x + b` of one matrix, f64 sums.
pub fn linear(l: &Dense, x: &[f32]) -> Vec<f32> {
    (0..l.outputs)
        .map(|i| {
            let row = &l.weight[i * l.inputs..(i + 1) * l.inputs];
            let mut s: f64 = l.bias.as_ref().map_or(0.0, |b| b[i] as f64);
            for (w, v) in row.iter().zip(x) {
                s += *w as f64 * *v as f64;
            }
            s as f32
        })
        .collect()
}

/// The im2col vector of output position `(oy, ox)` of a square window over image `x`
/// (`input`, NCHW): the values under the window, `[channel][ky][kx]` (a kernel's matrix
/// columns), `T::default()` (zero) where it lies on the padding. What a convolution's row
/// multiplies, on the host and on EIE.
pub fn patch<T: Copy + Default>(
    x: &[T],
    input: Shape,
    kernel: usize,
    stride: usize,
    padding: usize,
    oy: usize,
    ox: usize,
) -> Vec<T> {
    let Shape::Image {
        channels,
        height,
        width,
    } = input
    else {
        panic!("a window over {input:?}: the network's shapes were checked when it was built")
    };
    let mut v = Vec::with_capacity(channels * kernel * kernel);
    for c in 0..channels {
        for ky in 0..kernel {
            let iy = (oy * stride + ky) as isize - padding as isize;
            for kx in 0..kernel {
                let ix = (ox * stride + kx) as isize - padding as isize;
                let inside = iy >= 0 && ix >= 0 && (iy as usize) < height && (ix as usize) < width;
                v.push(if inside {
                    x[(c * height + iy as usize) * width + ix as usize]
                } else {
                    T::default()
                });
            }
        }
    }
    v
}

/// The output sides of a square window over `input` (an image).
pub fn out_sides(input: Shape, kernel: usize, stride: usize, padding: usize) -> (usize, usize) {
    let Shape::Image { height, width, .. } = input else {
        panic!("a window over {input:?}: the network's shapes were checked when it was built")
    };
    (
        (height + 2 * padding - kernel) / stride + 1,
        (width + 2 * padding - kernel) / stride + 1,
    )
}

/// A convolution of image `x` (`channels x height x width`, NCHW) by `l` (`[out, channels,
/// k, k]`), zero padding, f64 sums over each position's [`patch`]; output `out x oh x ow`.
pub fn conv2d(l: &Dense, x: &[f32], input: Shape, stride: usize, padding: usize) -> Vec<f32> {
    let k = l.shape[2];
    let (oh, ow) = out_sides(input, k, stride, padding);
    let mut y = vec![0f32; l.outputs * oh * ow];
    for oy in 0..oh {
        for ox in 0..ow {
            let p = patch(x, input, k, stride, padding, oy, ox);
            for o in 0..l.outputs {
                let w = &l.weight[o * l.inputs..(o + 1) * l.inputs];
                let mut s = l.bias.as_ref().map_or(0.0, |b| b[o] as f64);
                for (wv, v) in w.iter().zip(&p) {
                    s += *wv as f64 * *v as f64;
                }
                y[(o * oh + oy) * ow + ox] = s as f32;
            }
        }
    }
    y
}

/// Max (`max`) or average pooling of image `x`, square window `kernel`, no padding.
pub fn pool(x: &[f32], input: Shape, kernel: usize, stride: usize, max: bool) -> Vec<f32> {
    let (oh, ow) = out_sides(input, kernel, stride, 0);
    let Shape::Image {
        channels,
        height,
        width,
    } = input
    else {
        unreachable!("out_sides took an image")
    };
    let mut y = Vec::with_capacity(channels * oh * ow);
    for c in 0..channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let window = (0..kernel).flat_map(|ky| {
                    (0..kernel).map(move |kx| {
                        x[(c * height + oy * stride + ky) * width + ox * stride + kx]
                    })
                });
                y.push(if max {
                    window.fold(f32::NEG_INFINITY, f32::max)
                } else {
                    (window.map(f64::from).sum::<f64>() / (kernel * kernel) as f64) as f32
                });
            }
        }
    }
    y
}

/// The logistic function.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One LSTM cell update from its gate pre-activations `gates` (`4H`, PyTorch's order i, f,
/// g, o): `c = f c + i g`, `h = o tanh(c)`, in f64, stored as f32.
pub fn lstm_cell(gates: &[f32], c: &mut [f32], h: &mut [f32]) {
    let hidden = c.len();
    for j in 0..hidden {
        let i = sigmoid(gates[j] as f64);
        let f = sigmoid(gates[hidden + j] as f64);
        let g = (gates[2 * hidden + j] as f64).tanh();
        let o = sigmoid(gates[3 * hidden + j] as f64);
        let cj = f * c[j] as f64 + i * g;
        c[j] = cj as f32;
        h[j] = (o * (cj as f32 as f64).tanh()) as f32;
    }
}

/// An LSTM layer over sequence `x` (`steps x features`) with its packed matrix `l`
/// (`[4H, features + H]`, bias `b_ih + b_hh`), zero initial state: every step's `h_t`,
/// `steps x hidden`. Each step's gates are `l` times `[x_t; h_{t-1}]`, as EIE computes them.
pub fn lstm(l: &Dense, x: &[f32], steps: usize, hidden: usize) -> Vec<f32> {
    let run = lstm_over(
        x,
        steps,
        l.inputs - hidden,
        hidden,
        |v| Ok::<_, std::convert::Infallible>(linear(l, v)),
        |_| Ok(()),
    );
    match run {
        Ok(h) => h,
        Err(never) => match never {},
    }
}

/// The LSTM recurrence, the one loop every LSTM runs through (the float reference, the
/// calibration, the compressed model with its gates on EIE): for each step `gates` computes
/// the gate pre-activations from `[x_t; h_{t-1}]`, the host updates the cell
/// ([`lstm_cell`]), and `carry` may change `h_t` (quantize it) before it is output and fed
/// back. Returns every step's `h_t`.
pub fn lstm_over<E>(
    x: &[f32],
    steps: usize,
    features: usize,
    hidden: usize,
    mut gates: impl FnMut(&[f32]) -> Result<Vec<f32>, E>,
    mut carry: impl FnMut(&mut [f32]) -> Result<(), E>,
) -> Result<Vec<f32>, E> {
    let (mut h, mut c) = (vec![0f32; hidden], vec![0f32; hidden]);
    let mut out = Vec::with_capacity(steps * hidden);
    let mut input = vec![0f32; features + hidden];
    for t in 0..steps {
        input[..features].copy_from_slice(&x[t * features..(t + 1) * features]);
        input[features..].copy_from_slice(&h);
        let g = gates(&input)?;
        lstm_cell(&g, &mut c, &mut h);
        carry(&mut h)?;
        out.extend_from_slice(&h);
    }
    Ok(out)
}

/// One operation of `net` in float on activations `a`, whose shape is `input`.
pub fn op(net: &Network, op: Op, input: Shape, a: &[f32]) -> Vec<f32> {
    let layers = net.layers();
    match op {
        Op::Linear { layer } | Op::Embed { layer } => linear(&layers[layer], a),
        Op::Conv {
            layer,
            stride,
            padding,
            ..
        } => conv2d(&layers[layer], a, input, stride, padding),
        Op::Lstm { layer, hidden } => {
            let Shape::Sequence { steps, .. } = input else {
                panic!("an LSTM of {input:?}: checked when the network was built")
            };
            lstm(&layers[layer], a, steps, hidden)
        }
        Op::MaxPool { kernel, stride } => pool(a, input, kernel, stride, true),
        Op::AvgPool { kernel, stride } => pool(a, input, kernel, stride, false),
        Op::Relu => a.iter().map(|&v| v.max(0.0)).collect(),
        Op::Flatten => a.to_vec(),
        Op::LastStep => {
            let Shape::Sequence { steps, features } = input else {
                panic!("the last step of {input:?}: checked when the network was built")
            };
            a[(steps - 1) * features..].to_vec()
        }
    }
}

impl Network {
    /// The float forward pass on sample `x`, handing `record` every vector each matrix
    /// multiplies, with the matrix's layer index: a linear layer's input, each of a
    /// convolution's patches (its im2col rows), each step's `[x_t; h_{t-1}]` of an LSTM.
    /// What calibration gathers; returns the logits.
    pub fn inputs_of(&self, x: &[f32], record: &mut dyn FnMut(usize, &[f32])) -> Vec<f32> {
        let layers = self.layers();
        let mut a: Vec<f32> = x.to_vec();
        for (&o, &input) in self.ops().iter().zip(self.shapes()) {
            a = match o {
                Op::Linear { layer } | Op::Embed { layer } => {
                    record(layer, &a);
                    linear(&layers[layer], &a)
                }
                Op::Conv {
                    layer,
                    stride,
                    padding,
                    ..
                } => {
                    let k = layers[layer].shape[2];
                    let (oh, ow) = out_sides(input, k, stride, padding);
                    for oy in 0..oh {
                        for ox in 0..ow {
                            record(layer, &patch(&a, input, k, stride, padding, oy, ox));
                        }
                    }
                    op(self, o, input, &a)
                }
                Op::Lstm { layer, hidden } => {
                    let Shape::Sequence { steps, features } = input else {
                        panic!("an LSTM of {input:?}: checked when the network was built")
                    };
                    let l = &layers[layer];
                    let run = lstm_over(
                        &a,
                        steps,
                        features,
                        hidden,
                        |v| {
                            record(layer, v);
                            Ok::<_, std::convert::Infallible>(linear(l, v))
                        },
                        |_| Ok(()),
                    );
                    match run {
                        Ok(h) => h,
                        Err(never) => match never {},
                    }
                }
                _ => op(self, o, input, &a),
            };
        }
        a
    }
}

/// The network's logits for one sample `x` (its input's values, in order).
pub fn forward(net: &Network, x: &[f32]) -> Vec<f32> {
    let mut a: Vec<f32> = x.to_vec();
    for (&o, &input) in net.ops().iter().zip(net.shapes()) {
        a = op(net, o, input, &a);
    }
    a
}
