//! Weight sharing of one layer: its surviving weights and its folded bias clustered into one
//! codebook, every value given a code.

use eie_checkpoint::{Dtype, round_to};
use eie_quantize::{Assigner, Clustering, cluster, cluster_weighted};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::settings::LayerSettings;

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

    /// The codes renumbered for fine-tuned values `tuned` (indexed by old code, `tuned[0]` =
    /// 0): values that became zero give code 0, equal values one code, ascending.
    pub fn renumbered(&self, tuned: &[f32]) -> Self {
        let mut values: Vec<f32> = tuned[1..].iter().copied().filter(|&v| v != 0.0).collect();
        values.sort_by(f32::total_cmp);
        values.dedup();
        let map: Vec<u8> = tuned
            .iter()
            .map(|&v| match values.iter().position(|&u| u == v) {
                Some(i) if v != 0.0 => i as u8 + 1,
                _ => 0,
            })
            .collect();
        Self {
            values,
            codes: self.codes.iter().map(|&c| map[c as usize]).collect(),
            bias_codes: self.bias_codes.iter().map(|&c| map[c as usize]).collect(),
            clustering: self.clustering.clone(),
        }
    }
}

/// Clusters a layer's surviving weights and its folded bias's non-zero values (they share the
/// codebook) and gives every one of them a code: [`codebook`], then [`assign`].
pub fn share(
    name: &str,
    values: &[f32],
    bias_values: &[f32],
    settings: &LayerSettings,
    dtype: Dtype,
    bias_dtype: Option<Dtype>,
) -> Result<Shared> {
    let book = codebook(name, values, bias_values, settings, dtype, bias_dtype)?;
    Ok(assign(&book, values, bias_values))
}

/// A layer's codebook before any value has its code: the clustering and its centroids made
/// representable (ascending, distinct; one may be zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    /// The centroids as the tensors' dtypes hold them.
    pub centroids: Vec<f32>,
    /// What the clustering did.
    pub clustering: Clustering,
}

/// Clusters a layer's surviving weights and its folded bias's non-zero values into one
/// codebook. The shared values are made representable in the weight's dtype (and the
/// bias's, when it differs), so the quantized checkpoint holds exactly the images' values.
pub fn codebook(
    name: &str,
    values: &[f32],
    bias_values: &[f32],
    settings: &LayerSettings,
    dtype: Dtype,
    bias_dtype: Option<Dtype>,
) -> Result<Codebook> {
    weighted_codebook(name, values, bias_values, None, settings, dtype, bias_dtype)
}

/// [`codebook`] with a weight per value (`weights.0`, one per survivor) and one for every
/// bias value (`weights.1`): the codebook then minimises the weighted squared error.
pub fn weighted_codebook(
    name: &str,
    values: &[f32],
    bias_values: &[f32],
    weights: Option<(&[f64], f64)>,
    settings: &LayerSettings,
    dtype: Dtype,
    bias_dtype: Option<Dtype>,
) -> Result<Codebook> {
    let k = (1usize << settings.code_bits) - 1;
    let biased = bias_values.iter().any(|&v| v != 0.0);
    let mut data = values.to_vec();
    if biased {
        data.extend(bias_values.iter().copied().filter(|&v| v != 0.0));
    }
    let clustering = match weights {
        None => cluster(&data, k, settings.method()),
        Some((w, bias_weight)) => {
            let mut all = w.to_vec();
            if biased {
                all.extend(
                    bias_values
                        .iter()
                        .filter(|&&v| v != 0.0)
                        .map(|_| bias_weight),
                );
            }
            cluster_weighted(&data, &all, k, settings.method())
        }
    }
    .map_err(|error| Error::Cluster {
        layer: name.to_string(),
        error,
    })?;
    let mut centroids = Vec::with_capacity(clustering.centroids.len());
    for &c in &clustering.centroids {
        centroids.push(representable(name, c, dtype, bias_dtype)?);
    }
    centroids.dedup();
    Ok(Codebook {
        centroids,
        clustering,
    })
}

impl Codebook {
    /// Rounds a value to its nearest centroid (zero stays zero, and so does a value whose
    /// nearest centroid is zero), by the rule [`assign`] gives codes by.
    pub fn rounding(&self) -> impl Fn(f32) -> f32 + Sync + '_ {
        let a = Assigner::new(&self.centroids);
        move |v| {
            if v == 0.0 || self.centroids.is_empty() {
                0.0
            } else {
                self.centroids[a.index(v)]
            }
        }
    }
}

/// Gives every weight and bias value the code of its nearest centroid in `book` (a zero
/// value code 0). A centroid that is zero would store pruned weights as entries, so the
/// values nearest to it become zeros (code 0) instead.
pub fn assign(book: &Codebook, values: &[f32], bias_values: &[f32]) -> Shared {
    let centroids = &book.centroids;
    let zero = centroids.iter().position(|&c| c == 0.0);
    let shared: Vec<f32> = centroids.iter().copied().filter(|&c| c != 0.0).collect();
    let assigner = Assigner::new(centroids);
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
    Shared {
        values: shared,
        codes: values.par_iter().map(|&v| code_of(v)).collect(),
        bias_codes: bias_values.iter().map(|&v| code_of(v)).collect(),
        clustering: book.clustering.clone(),
    }
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
        return Err(Error::Layer {
            layer: name.to_string(),
            reason: format!(
                "its weights ({dtype:?}) and bias ({:?}) have no common value near the shared value {c}; leave the bias out with --no-bias-column",
                bias_dtype.unwrap_or(dtype)
            ),
        });
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_folds_zeros_and_duplicates() {
        let sh = Shared {
            values: vec![-1.0, 0.5, 2.0],
            codes: vec![1, 2, 3, 0, 3],
            bias_codes: vec![2],
            clustering: Clustering {
                centroids: vec![-1.0, 0.5, 2.0],
                sse: 0.0,
                iterations: 1,
                converged: true,
                optimal_bound: None,
            },
        };
        // Fine-tuning moved 0.5 to zero and -1.0 onto 2.0's value.
        let r = sh.renumbered(&[0.0, 2.0, 0.0, 2.0]);
        assert_eq!(r.values, [2.0]);
        assert_eq!(r.codes, [1, 0, 1, 0, 1]);
        assert_eq!(r.bias_codes, [0]);
    }

    #[test]
    fn every_weight_gets_the_code_of_its_nearest_value() {
        let s = LayerSettings {
            code_bits: 2,
            ..LayerSettings::default()
        };
        let w = [-1.0f32, -0.9, 0.5, 0.6, 2.0, 2.1];
        let sh = share("fc", &w, &[0.55], &s, Dtype::F32, Some(Dtype::F32)).unwrap();
        assert_eq!(sh.values.len(), 3);
        assert_eq!(sh.codes, [1, 1, 2, 2, 3, 3]);
        assert_eq!(sh.bias_codes, [2]);
    }
}
