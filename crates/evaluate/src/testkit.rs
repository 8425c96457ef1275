//! Shared by the unit tests and the benchmark (`#[path]`-included there): a network's weights
//! shared on fixed values and packed into EIE layers, without the compress pipeline.

use eie_evaluate::{Network, SharedLayer};
use eie_format::{CodeMatrix, Codebook, PackedLayer};

/// Every layer's `density` largest weights (all of them at 1.0) and its whole bias shared on
/// 15 evenly spaced non-zero values, ±1/8 ... of the layer's largest magnitude; the rest
/// pruned (code 0).
pub fn share_evenly(net: &Network, density: f64) -> Vec<SharedLayer> {
    net.layers()
        .iter()
        .map(|l| {
            let mut mags: Vec<f32> = l.weight.iter().map(|w| w.abs()).collect();
            mags.sort_by(|a, b| b.total_cmp(a));
            let keep = ((density * mags.len() as f64) as usize).min(mags.len());
            let threshold = if keep == 0 {
                f32::INFINITY
            } else {
                mags[keep - 1]
            };
            let max = l
                .weight
                .iter()
                .chain(l.bias.iter().flatten())
                .fold(0f32, |m, v| m.max(v.abs()));
            let values: Vec<f32> = std::iter::once(0.0)
                .chain(
                    (0..15).map(|i| max * (i as f32 - 7.0 + if i >= 7 { 1.0 } else { 0.0 }) / 8.0),
                )
                .collect();
            let code = |v: f32| -> u8 {
                (1..16)
                    .min_by(|&a, &b| (values[a] - v).abs().total_cmp(&(values[b] - v).abs()))
                    .unwrap() as u8
            };
            SharedLayer {
                codes: l
                    .weight
                    .iter()
                    .map(|&w| if w.abs() >= threshold { code(w) } else { 0 })
                    .collect(),
                bias_codes: l
                    .bias
                    .as_ref()
                    .map(|b| b.iter().map(|&v| code(v)).collect()),
                values,
            }
        })
        .collect()
}

/// Packs a network's shared layers (bias folded as the last column) for `pes` PEs.
pub fn pack(net: &Network, shared: &[SharedLayer], pes: usize) -> Vec<PackedLayer> {
    net.layers()
        .iter()
        .zip(shared)
        .map(|(l, s)| {
            let cols = l.inputs + 1;
            let mut codes = vec![0u8; l.outputs * cols];
            for r in 0..l.outputs {
                codes[r * cols..r * cols + l.inputs]
                    .copy_from_slice(&s.codes[r * l.inputs..(r + 1) * l.inputs]);
                codes[r * cols + l.inputs] = s.bias_codes.as_ref().unwrap()[r];
            }
            let m = CodeMatrix::new(l.outputs, cols, codes).unwrap();
            let book = Codebook::new(4, &s.values[1..]).unwrap();
            PackedLayer::encode(l.name.clone(), &m, book, pes, 4)
                .unwrap()
                .with_bias(l.bias_name.clone().unwrap())
                .unwrap()
        })
        .collect()
}
