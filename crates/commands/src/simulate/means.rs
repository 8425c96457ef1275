//! A simulation in one line per layer: the means over its vectors (a chain's) or its
//! inferences (a described model's), what the HTML report shows.

use serde::Serialize;

use super::Report;

/// A simulation's means per inference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Means {
    /// Vectors (a chain) or inferences (a described model) simulated.
    pub vectors: usize,
    /// The clock, MHz.
    pub clock_mhz: f64,
    /// PEs.
    pub pes: usize,
    /// Cycles per inference.
    pub cycles: f64,
    /// Time per inference, us.
    pub time_us: f64,
    /// Every EIE layer.
    pub layers: Vec<LayerMeans>,
}

/// One layer's means per inference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerMeans {
    /// The layer.
    pub name: String,
    /// Cycles.
    pub cycles: f64,
    /// The most cycles of one vector (a chain's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycles_max: Option<u64>,
    /// Time, us.
    pub time_us: f64,
    /// Busy PE cycles over all PE cycles.
    pub load_efficiency: f64,
    /// Multiply-accumulates (a chain's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macs: Option<f64>,
}

impl Report {
    /// The means per inference, per layer and in all.
    pub fn means(&self) -> Means {
        match self {
            Report::Chain(c) => {
                let n = c.vectors.len().max(1) as f64;
                let first = c.vectors.first().map_or(&[][..], |v| &v.layers[..]);
                let layers = (0..first.len())
                    .map(|l| {
                        let runs = || c.vectors.iter().map(move |v| &v.layers[l].timing);
                        let mean = |f: fn(&crate::report::timing::TimingReport) -> f64| {
                            runs().map(f).sum::<f64>() / n
                        };
                        LayerMeans {
                            name: first[l].name.clone(),
                            cycles: mean(|t| t.cycles as f64),
                            cycles_max: runs().map(|t| t.cycles).max(),
                            time_us: mean(|t| t.time_us),
                            load_efficiency: mean(|t| t.load_efficiency),
                            macs: Some(mean(|t| t.macs as f64)),
                        }
                    })
                    .collect();
                Means {
                    vectors: c.vectors.len(),
                    clock_mhz: c.clock_mhz,
                    pes: c.pes,
                    cycles: self.cycles_per_inference(),
                    time_us: c.vectors.iter().map(|v| v.total_time_us).sum::<f64>() / n,
                    layers,
                }
            }
            Report::Described(d) => Means {
                vectors: d.inferences,
                clock_mhz: d.clock_mhz,
                pes: d.pes,
                cycles: d.cycles_per_inference,
                time_us: d.time_per_inference_us,
                layers: d
                    .layers
                    .iter()
                    .map(|l| LayerMeans {
                        name: l.name.clone(),
                        cycles: l.cycles_per_inference,
                        cycles_max: None,
                        time_us: l.time_per_inference_us,
                        load_efficiency: l.load_efficiency,
                        macs: None,
                    })
                    .collect(),
            },
        }
    }
}
