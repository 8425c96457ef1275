//! The compressed stages' linear layers, from a layer's packed images: the float stages
//! rebuilt from what the images store ([`rebuilt`]), and the EIE path ([`Eie`]), where every
//! token's vector is one run of the bit-exact functional model. A window's tokens are
//! independent runs: the forward pass over a window computes exactly what generating its
//! tokens one at a time with a key/value cache computes, and only the attention (on the
//! host, in float) mixes tokens.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use eie_simulate::fixed::{MAX_ACT_FRAC, fraction_for, from_q16, quantize};
use eie_simulate::{Arith, LayerView, functional};

use crate::error::{Error, Result};
use crate::linear::{Dense, Linear};

/// Which float stage to rebuild from a layer's images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuilt {
    /// The original weights where the images store a weight, zero elsewhere; the bias as it
    /// was (pruning never touches a bias).
    Pruned,
    /// Every stored weight's shared value; a folded bias its column's shared values, a bias
    /// the images do not hold as it was.
    Shared,
}

/// `original`'s stage `which`, as `view` stores it. The view must be the same layer:
/// `[rows, inputs]` as `original`.
pub fn rebuilt(original: &Dense, view: &LayerView, which: Rebuilt) -> Result<Dense> {
    check_shape(original, view)?;
    let stored = view.stored().map_err(|source| Error::Simulate {
        layer: original.name.clone(),
        source,
    })?;
    let mut w = vec![0f32; original.w.len()];
    for (&p, &v) in stored.positions.iter().zip(&stored.values) {
        let p = p as usize;
        w[p] = match which {
            Rebuilt::Pruned => original.w[p],
            Rebuilt::Shared => v,
        };
    }
    let b = match (which, stored.bias) {
        (Rebuilt::Shared, Some(shared)) => Some(shared),
        _ => original.b.clone(),
    };
    Ok(Dense {
        name: original.name.clone(),
        rows: original.rows,
        cols: original.cols,
        w,
        b,
    })
}

fn check_shape(original: &Dense, view: &LayerView) -> Result<()> {
    if (view.rows(), view.inputs()) != (original.rows, original.cols) {
        return Err(Error::Input {
            reason: format!(
                "the images of layer {} are {} x {}, but the model's layer is {} x {}",
                view.name(),
                view.rows(),
                view.inputs(),
                original.rows,
                original.cols
            ),
        });
    }
    if original.b.is_none() && view.has_bias() {
        return Err(Error::Input {
            reason: format!(
                "the images of layer {} hold a bias column, but the model's layer has no bias",
                view.name()
            ),
        });
    }
    Ok(())
}

/// A linear layer on EIE: every token's vector quantized to 16 bits at `f_in` fraction bits,
/// run through the functional model on the images (products, accumulation and the output's
/// rounding and saturation to 16 bits at `f_out`, bit-exact with the hardware), and read back
/// as floats for the host. A bias the images do not hold is added on the host.
#[derive(Debug, Clone)]
pub struct Eie<'a> {
    view: LayerView<'a>,
    /// The streams decoded once: every token runs the functional model's arithmetic on
    /// them.
    compiled: functional::Compiled,
    f_in: u8,
    f_out: u8,
    arith: Arith,
    host_bias: Option<Vec<f32>>,
}

impl<'a> Eie<'a> {
    /// Layer `original` on its images `view`, with activation fractions `f_in` and `f_out`
    /// (each at most [`MAX_ACT_FRAC`]).
    pub fn new(
        original: &Dense,
        view: LayerView<'a>,
        [f_in, f_out]: [u8; 2],
        arith: Arith,
    ) -> Result<Self> {
        check_shape(original, &view)?;
        if f_in > MAX_ACT_FRAC || f_out > MAX_ACT_FRAC {
            return Err(Error::Input {
                reason: format!(
                    "layer {}: activation fractions {f_in} and {f_out}; each must be at most {MAX_ACT_FRAC}",
                    view.name()
                ),
            });
        }
        Ok(Self {
            view,
            compiled: functional::Compiled::new(view),
            f_in,
            f_out,
            arith,
            host_bias: if view.has_bias() {
                None
            } else {
                original.b.clone()
            },
        })
    }
}

impl Linear for Eie<'_> {
    fn rows(&self) -> usize {
        self.view.rows()
    }

    fn cols(&self) -> usize {
        self.view.inputs()
    }

    fn apply(&self, x: &[f32], tokens: usize) -> Result<Vec<f32>> {
        let (rows, cols) = (self.rows(), self.cols());
        if x.len() != tokens * cols {
            return Err(Error::Input {
                reason: format!(
                    "layer {} takes {cols} inputs a token, given {} values for {tokens} tokens",
                    self.view.name(),
                    x.len()
                ),
            });
        }
        let err = |source| Error::Simulate {
            layer: self.view.name().to_string(),
            source,
        };
        let mut y = vec![0f32; tokens * rows];
        y.par_chunks_mut(rows)
            .zip(x.par_chunks(cols))
            .try_for_each(|(out, xt)| -> Result<()> {
                let q = quantize(xt, self.f_in).map_err(err)?;
                let run = self
                    .compiled
                    .run(&q, self.f_in, self.f_out, self.arith, false)
                    .map_err(err)?;
                for (o, &v) in out.iter_mut().zip(&run) {
                    *o = from_q16(v, self.f_out);
                }
                if let Some(b) = &self.host_bias {
                    out.iter_mut().zip(b).for_each(|(o, b)| *o += b);
                }
                Ok(())
            })?;
        Ok(y)
    }
}

/// The largest |input| and |output| each layer of a stage has seen, shared by the layers
/// that record into it ([`Recorded`]): the activation fractions' calibration.
#[derive(Debug, Clone, Default)]
pub struct Ranges(Arc<Mutex<Vec<[f64; 2]>>>);

impl Ranges {
    /// Ranges for `layers` layers, none seen yet.
    pub fn new(layers: usize) -> Self {
        Self(Arc::new(Mutex::new(vec![[0.0; 2]; layers])))
    }

    /// Layer `index` of `inner`, recording here.
    pub fn record<L: Linear>(&self, index: usize, inner: L) -> Recorded<L> {
        Recorded {
            inner,
            index,
            ranges: self.clone(),
        }
    }

    /// Every layer's largest |input| and |output|.
    pub fn seen(&self) -> Vec<[f64; 2]> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// The activation fractions (input, output, per layer) at which everything seen fits
    /// 16 bits (docs/fixed-point.md section 1).
    pub fn fractions(&self) -> Vec<u8> {
        self.seen()
            .iter()
            .flat_map(|r| r.map(fraction_for))
            .collect()
    }
}

/// A linear layer whose inputs' and outputs' largest magnitudes are recorded.
#[derive(Debug)]
pub struct Recorded<L> {
    inner: L,
    index: usize,
    ranges: Ranges,
}

impl<L: Linear> Linear for Recorded<L> {
    fn rows(&self) -> usize {
        self.inner.rows()
    }

    fn cols(&self) -> usize {
        self.inner.cols()
    }

    fn apply(&self, x: &[f32], tokens: usize) -> Result<Vec<f32>> {
        let y = self.inner.apply(x, tokens)?;
        let max = |v: &[f32]| v.iter().fold(0f64, |m, &a| m.max((a as f64).abs()));
        let (i, o) = (max(x), max(&y));
        let mut r = self.ranges.0.lock().expect("not poisoned");
        let seen = &mut r[self.index];
        seen[0] = seen[0].max(i);
        seen[1] = seen[1].max(o);
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use eie_format::{CodeMatrix, Codebook, PackedLayer};

    use super::*;

    /// A 6 x 5 layer with its bias column: codes of a 4-bit book, some zero.
    fn packed(bias: bool) -> (PackedLayer, Codebook) {
        let cols = 5 + usize::from(bias);
        let codes: Vec<u8> = (0..6 * cols).map(|i| ((i * 7 + 3) % 5) as u8).collect();
        let book = Codebook::new(4, &[-0.5, 0.25, 0.75, 1.5]).unwrap();
        let layer = PackedLayer::encode(
            "l",
            &CodeMatrix::new(6, cols, codes).unwrap(),
            book.clone(),
            3,
            4,
        )
        .unwrap();
        let layer = if bias {
            layer.with_bias("l.bias").unwrap()
        } else {
            layer
        };
        (layer, book)
    }

    fn original() -> Dense {
        Dense {
            name: "l".into(),
            rows: 6,
            cols: 5,
            w: (0..30).map(|i| i as f32 / 10.0 - 1.0).collect(),
            b: Some(vec![0.5, -0.25, 1.0, 0.0, 2.0, -1.0]),
        }
    }

    #[test]
    fn the_float_stages_are_rebuilt_from_what_the_images_store() {
        let (layer, book) = packed(true);
        let view = LayerView::new(std::slice::from_ref(&layer));
        let d = original();
        let pruned = rebuilt(&d, &view, Rebuilt::Pruned).unwrap();
        let shared = rebuilt(&d, &view, Rebuilt::Shared).unwrap();
        for r in 0..6 {
            for c in 0..5 {
                let code = ((r * 6 + c) * 7 + 3) % 5;
                let i = r * 5 + c;
                let (p, s) = if code == 0 {
                    (0.0, 0.0)
                } else {
                    (d.w[i], book.values()[code])
                };
                assert_eq!((pruned.w[i], shared.w[i]), (p, s), "row {r} col {c}");
            }
            let code = ((r * 6 + 5) * 7 + 3) % 5;
            assert_eq!(pruned.b.as_ref().unwrap()[r], d.b.as_ref().unwrap()[r]);
            assert_eq!(shared.b.as_ref().unwrap()[r], book.values()[code]);
        }
        let mut wide = original();
        wide.cols = 4;
        assert!(rebuilt(&wide, &view, Rebuilt::Pruned).is_err());
    }

    /// The EIE layer is the shared float layer up to 16-bit rounding of its inputs and
    /// outputs; a bias the images do not hold is added on the host; the recorded ranges
    /// give the fractions at which what was seen fits 16 bits.
    #[test]
    fn the_eie_layer_is_the_shared_layer_in_fixed_point() {
        for with_column in [true, false] {
            let (layer, _) = packed(with_column);
            let view = LayerView::new(std::slice::from_ref(&layer));
            let d = original();
            let shared = rebuilt(&d, &view, Rebuilt::Shared).unwrap();
            let ranges = Ranges::new(1);
            let recorded = ranges.record(0, shared.clone());
            let x: Vec<f32> = (0..10).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
            let want = recorded.apply(&x, 2).unwrap();
            let fracs = ranges.fractions();
            let max = |v: &[f32]| v.iter().fold(0f64, |m, &a| m.max(a.abs() as f64));
            assert_eq!(fracs, [fraction_for(max(&x)), fraction_for(max(&want))]);
            assert_eq!(ranges.seen(), [[max(&x), max(&want)]]);
            let eie = Eie::new(&d, view, [fracs[0], fracs[1]], Arith::default()).unwrap();
            let got = eie.apply(&x, 2).unwrap();
            let step = (-(fracs[0].min(fracs[1]) as f32)).exp2();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 8.0 * step, "{g} against {w}");
            }
            assert!(eie.apply(&x[..9], 2).is_err());
            assert!(Eie::new(&d, view, [15, 10], Arith::default()).is_err());
        }
    }
}
