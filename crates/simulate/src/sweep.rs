//! `sweep`: the timing model over one parameter (PEs, queue depth, index bits, Spmat width),
//! on the paper's layers or a packed model: what the EIE paper's Figures 8, 11 and 12 plot.

use eie_format::{Bundle, Codebook, PackedLayer, SparseCodes};
use eie_images::Fit;

use crate::error::{Error, Result};
use crate::layer::LayerView;
use crate::timing::{self, LayerTiming, TimingParams};
use crate::workload::{PAPER_INDEX_BITS, PAPER_LAYERS, paper_layer, random_activations};

/// The parameter a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Processing elements (layers re-packed for each).
    Pes,
    /// Activation queue depth.
    Fifo,
    /// Relative-index width (layers re-packed for each).
    IndexBits,
    /// Spmat SRAM line width in bits.
    SpmatWidth,
}

impl Param {
    /// Every parameter, in the order the command line lists them.
    pub const ALL: [Param; 4] = [Param::Pes, Param::Fifo, Param::IndexBits, Param::SpmatWidth];

    /// The parameter of `name` ([`Param::name`]).
    pub fn named(name: &str) -> Option<Param> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Its name in files and plots, and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Param::Pes => "pes",
            Param::Fifo => "fifo",
            Param::IndexBits => "index-bits",
            Param::SpmatWidth => "spmat-width",
        }
    }
}

/// One layer of a sweep's workload: its codes, codebook, base packing and input activations.
#[derive(Debug, Clone)]
pub struct Work {
    /// The layer's name.
    pub name: String,
    /// Its codes (the bias column included).
    pub codes: SparseCodes,
    /// Its codebook.
    pub codebook: Codebook,
    /// PEs it is packed for when PEs are not swept.
    pub pes: usize,
    /// Index bits when they are not swept.
    pub index_bits: u8,
    /// Its folded bias, if any.
    pub bias: Option<String>,
    /// Its input activations.
    pub input: Vec<i16>,
}

/// The paper's nine layers (Table III), generated from `seed` as every benchmark does, on
/// 64 PEs with 4-bit indices.
pub fn paper_workload(seed: u64) -> Vec<Work> {
    PAPER_LAYERS
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let (codes, codebook, input) = paper_layer(i, seed);
            Work {
                name: spec.name.to_string(),
                codes,
                codebook,
                pes: 64,
                index_bits: PAPER_INDEX_BITS,
                bias: None,
                input,
            }
        })
        .collect()
}

/// A packed model's layers (column batches joined back), each on generated activations of
/// density `act_density` (seeded `seed + layer index`).
pub fn model_workload(bundle: &Bundle, act_density: f64, seed: u64) -> Result<Vec<Work>> {
    crate::workload::check_act_density(act_density)?;
    LayerView::all(bundle)
        .into_iter()
        .enumerate()
        .map(|(i, view)| {
            let first = &view.parts()[0];
            Ok(Work {
                name: view.name().to_string(),
                codes: PackedLayer::join_columns(view.parts())?,
                codebook: view.codebook().clone(),
                pes: view.pes(),
                index_bits: first.index_bits(),
                bias: first.bias().map(str::to_string),
                input: random_activations(view.inputs(), act_density, seed + i as u64),
            })
        })
        .collect()
}

/// One point of a sweep: a layer at one value of the parameter.
#[derive(Debug, Clone)]
pub struct Point {
    /// The layer.
    pub layer: String,
    /// The parameter's value.
    pub value: u32,
    /// What the timing model counted.
    pub timing: LayerTiming,
    /// Entries of the layer as packed for this point.
    pub entries: usize,
    /// Their padding.
    pub padding: usize,
    /// The layer as packed for this point (its column batches).
    pub parts: Vec<PackedLayer>,
    /// The Spmat line width of this point, bits.
    pub spmat_width: u32,
}

impl Point {
    /// The layer as packed for this point.
    pub fn view(&self) -> LayerView<'_> {
        LayerView::new(&self.parts)
    }
}

/// Checks one swept value before any work: the re-packed layers' limits for PEs and index
/// bits, [`TimingParams::validate`] for the queue depth and the Spmat width.
pub fn check_value(param: Param, value: u32, base: &TimingParams) -> Result<()> {
    let mut params = *base;
    match param {
        Param::Pes if value == 0 || value as usize > eie_format::MAX_PES => Err(Error::Parameter {
            what: "PEs",
            expected: "in 1..=4096",
            got: value.to_string(),
        }),
        Param::IndexBits if !(1..=8).contains(&value) => Err(Error::Parameter {
            what: "index bits",
            expected: "in 1..=8",
            got: value.to_string(),
        }),
        Param::Fifo => {
            params.fifo_depth = value as usize;
            params.validate()
        }
        Param::SpmatWidth => {
            params.spmat_width = value;
            params.validate()
        }
        _ => Ok(()),
    }
}

/// Runs `work` with `param` at `value` (the layer re-packed when the parameter changes its
/// packing), other parameters as in `base`, column batches as `fit` says.
pub fn point(
    work: &Work,
    param: Param,
    value: u32,
    base: &TimingParams,
    fit: &Fit,
) -> Result<Point> {
    let (pes, index_bits) = match param {
        Param::Pes => (value as usize, work.index_bits),
        Param::IndexBits => {
            if !(1..=8).contains(&value) {
                return Err(Error::Parameter {
                    what: "index bits",
                    expected: "in 1..=8",
                    got: value.to_string(),
                });
            }
            (work.pes, value as u8)
        }
        _ => (work.pes, work.index_bits),
    };
    let mut params = *base;
    match param {
        Param::Fifo => params.fifo_depth = value as usize,
        Param::SpmatWidth => params.spmat_width = value,
        _ => {}
    }
    let mut layer = PackedLayer::encode_sparse(
        work.name.clone(),
        &work.codes,
        work.codebook.clone(),
        pes,
        index_bits,
    )?;
    if let Some(b) = &work.bias {
        layer = layer.with_bias(b.clone())?;
    }
    let (entries, padding) = (layer.entries(), layer.padding());
    let batch = fit.batch_for(&layer);
    let parts = layer.split_columns(batch)?;
    let view = LayerView::new(&parts);
    let mut active: Vec<bool> = work.input.iter().map(|&a| a != 0).collect();
    if view.has_bias() {
        active.push(true);
    }
    let timing = timing::layer(view, &active, &params)?;
    Ok(Point {
        layer: work.name.clone(),
        value,
        timing,
        entries,
        padding,
        parts,
        spmat_width: params.spmat_width,
    })
}
