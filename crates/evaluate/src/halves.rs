//! A training step's examples in two fixed halves on up to two threads, the second on a fork
//! of the parameters: burn's autodiff merges graphs that share a node and runs a graph's
//! backward pass under one lock, so two halves on the same leaves ran one after the other.

use std::ops::Range;

use burn::module::{Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::error::Result;
use crate::model::Tape;

/// A module trained in two halves a step: a decoder, an encoder, or a described network (an
/// MLP, a CNN, an LSTM, an LSTM language model).
pub(crate) trait Streamed: burn::module::Module + Sync {
    /// The same values as new leaves of their own, with the parameters' ids: a step's
    /// second half runs its forward and backward passes on it, in a graph that shares no
    /// node with the first half's (burn's autodiff merges graphs that share a node and runs a
    /// graph's backward pass under one lock).
    fn fork(&self) -> Self;
    /// Every parameter's id, and whether it is a matrix (weight decay applies to those).
    fn ids(&self) -> Vec<(ParamId, bool)>;
    /// Every matrix parameter, mutably.
    fn matrices_mut(&mut self) -> Vec<&mut Param<Tensor<2>>>;
}

/// The mean loss of a half of a step's examples (`loss` of a range of them), and what its
/// backward pass needs beyond burn's graph.
pub(crate) type HalfLoss<'a, M> = dyn Fn(&M, Range<usize>) -> (Tensor<1>, Tape) + Sync + 'a;

/// One step's `n` examples, split in two fixed halves that run on up to two threads: each
/// half's mean loss weighted by its share of the examples, so the two gradients add up to
/// the whole batch's; the split never depends on the thread count, so neither do the
/// results. Returns the batch's mean loss and its gradients.
pub(crate) fn split_gradients<M: Streamed>(
    model: &M,
    n: usize,
    loss: &HalfLoss<M>,
) -> Result<(f32, GradientsParams)> {
    let half = |model: &M, r: Range<usize>| -> Result<(f32, GradientsParams)> {
        let share = r.len() as f64 / n as f64;
        let (loss, tape) = loss(model, r);
        let loss = loss.mul_scalar(share);
        let value: f32 = loss.clone().into_scalar();
        Ok((value, tape.gradients(&loss, model)?))
    };
    let a = 0..n.div_ceil(2);
    let b = a.end..n;
    let ((la, mut ga), second) = if b.is_empty() {
        (half(model, a)?, None)
    } else {
        let fork = model.fork();
        let (first, second) = rayon::join(|| half(model, a), || half(&fork, b));
        (first?, Some(second?))
    };
    let mut loss = la;
    if let Some((lb, mut gb)) = second {
        loss += lb;
        for (id, matrix) in model.ids() {
            match matrix {
                true => add_half::<2>(&mut ga, &mut gb, id),
                false => add_half::<1>(&mut ga, &mut gb, id),
            }
        }
    }
    Ok((loss, ga))
}

/// Parameter `id`'s gradient in `b` added into `a`; one with a gradient in one half only
/// keeps that one.
fn add_half<const D: usize>(a: &mut GradientsParams, b: &mut GradientsParams, id: ParamId) {
    match (a.remove::<D>(id), b.remove::<D>(id)) {
        (Some(x), Some(y)) => a.register(id, x + y),
        (Some(x), None) | (None, Some(x)) => a.register(id, x),
        (None, None) => {}
    }
}
