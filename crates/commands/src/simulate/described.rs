//! A described model (a CNN, an LSTM) through its program: each input is a whole sample,
//! host layers in float, every EIE layer through the functional and timing models, an LSTM
//! once per time step; figures per inference (docs/accuracy.md).

use eie_energy::Runs;
use eie_evaluate::EnergySetup;
use eie_evaluate::program::Program;
use eie_pipeline::recorded_capacity;
use eie_simulate::timing::load_efficiency;
use serde::Serialize;

use super::Request;
use crate::error::{Error, Result};
use crate::packed::{PackedModel, check_pes};
use crate::report::Schema;
use crate::report::energy::CostReport;

/// Every sample through the program, per inference.
#[derive(Debug, Clone, Serialize)]
pub struct DescribedReport {
    /// The report's schema.
    pub schema: Schema,
    /// The model description.
    pub model: String,
    /// PEs.
    pub pes: usize,
    /// The clock.
    pub clock_mhz: f64,
    /// Activation queue depth.
    pub fifo: usize,
    /// Accumulator width.
    pub acc_bits: u8,
    /// The layers the host runs (in float, not timed).
    pub host_layers: Vec<String>,
    /// Per matrix its input's and output's fraction (host layers: 0, 0).
    pub fractions: Vec<u8>,
    /// Inferences (images, sequences; a token model's tokens) run.
    pub inferences: usize,
    /// A token model (`tokV`): an inference is a token, run from the state the tokens
    /// before it left, and this is tokens a second at the timing model's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_second: Option<f64>,
    /// Per EIE layer, the mean over inferences.
    pub layers: Vec<DescribedLayer>,
    /// Mean cycles per inference, every EIE layer together.
    pub cycles_per_inference: f64,
    /// Mean time per inference, us.
    pub time_per_inference_us: f64,
    /// What the runs cost.
    pub energy: CostReport,
}

/// An EIE layer of a described model, per inference.
#[derive(Debug, Clone, Serialize)]
pub struct DescribedLayer {
    /// The layer.
    pub name: String,
    /// EIE runs per inference (an LSTM layer: one per time step).
    pub runs_per_inference: f64,
    /// Cycles per inference.
    pub cycles_per_inference: f64,
    /// Cycles per run.
    pub cycles_per_run: f64,
    /// Time per inference, us.
    pub time_per_inference_us: f64,
    /// Busy PE cycles over all PE cycles.
    pub load_efficiency: f64,
    /// Broadcast stalls per inference.
    pub stall_cycles_per_inference: f64,
}

/// An EIE layer's runs, cycles, busy PE cycles and stalls over every inference.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    runs: u64,
    cycles: u64,
    busy: u64,
    stalls: u64,
}

impl Request {
    pub(super) fn described(
        &self,
        model: &PackedModel,
        program: &Program,
        table: &eie_energy::Table,
    ) -> Result<DescribedReport> {
        let what = || {
            format!(
                "{} is a described model ({})",
                self.dir.display(),
                program.network().describe()
            )
        };
        if self.cpu {
            return Err(Error::Option {
                option: "--cpu".into(),
                reason: format!("the CPU baseline times chains of layers; {}", what()),
            });
        }
        if self.layer.is_some() {
            return Err(Error::Option {
                option: "--layer".into(),
                reason: format!("{}, simulated whole, one sample at a time", what()),
            });
        }
        let views = program.views();
        let pes = views[0].pes();
        check_pes(self.pes, pes)?;
        let params = self.timing;
        let net = program.network();
        // Each inference's runs: a sample's, or a token model's token's.
        let (fracs, inferences) = match net.vocab() {
            Some(vocab) => {
                let ids = self.input.token_ids(vocab)?;
                let fracs =
                    program.token_fractions(&self.input.act_frac, std::iter::once(&ids[..]))?;
                let (_, all) = program.token_run(&ids, &fracs, self.arith, Some(&params))?;
                let mut per_token = Vec::with_capacity(ids.len());
                let mut all = all.into_iter();
                for _ in 0..ids.len() {
                    per_token.push(all.by_ref().take(views.len()).collect::<Vec<_>>());
                }
                (fracs, per_token)
            }
            None => {
                let samples = self.input.samples(net, model.settings())?;
                let fracs =
                    program.fractions(&self.input.act_frac, samples.iter().map(Vec::as_slice))?;
                let mut each = Vec::with_capacity(samples.len());
                for x in &samples {
                    each.push(program.run(x, &fracs, self.arith, Some(&params))?.1);
                }
                (fracs, each)
            }
        };
        let eie = program.eie_layers();
        let pointer_bits = model.bundle.meta().pointer_bits;
        let counting = EnergySetup {
            params,
            pointer_bits,
            capacity: recorded_capacity(model.settings()),
        };
        let mut runs = Runs::new();
        let mut sums = vec![Sums::default(); eie.len()];
        for eie_runs in &inferences {
            for r in eie_runs {
                let k = eie
                    .iter()
                    .position(|&l| l == r.layer)
                    .expect("an EIE layer");
                let t = r.timing();
                let s = &mut sums[k];
                s.runs += 1;
                s.cycles += t.cycles;
                s.busy += t.busy();
                s.stalls += t.stall_cycles;
            }
            let (counts, repeats) = program.energy_counts(eie_runs, &counting);
            runs.add_repeated(&counts, &repeats);
        }
        let costed = runs.costed(&program.eie_views(), pointer_bits, table);
        let n = inferences.len() as f64;
        let layers: Vec<DescribedLayer> = eie
            .iter()
            .zip(&sums)
            .map(|(&l, s)| DescribedLayer {
                name: views[l].name().to_string(),
                runs_per_inference: s.runs as f64 / n,
                cycles_per_inference: s.cycles as f64 / n,
                cycles_per_run: s.cycles as f64 / s.runs.max(1) as f64,
                time_per_inference_us: s.cycles as f64 / n / params.clock_mhz,
                load_efficiency: load_efficiency(s.busy, s.cycles, pes),
                stall_cycles_per_inference: s.stalls as f64 / n,
            })
            .collect();
        let cycles: f64 = layers.iter().map(|l| l.cycles_per_inference).sum();
        Ok(DescribedReport {
            schema: Schema("simulate"),
            model: net.describe(),
            pes,
            clock_mhz: params.clock_mhz,
            fifo: params.fifo_depth,
            acc_bits: self.arith.acc_bits,
            host_layers: program.host_layers(),
            fractions: fracs,
            inferences: inferences.len(),
            tokens_per_second: net
                .vocab()
                .map(|_| 1e6 * params.clock_mhz / cycles.max(1.0)),
            cycles_per_inference: cycles,
            time_per_inference_us: cycles / params.clock_mhz,
            layers,
            energy: CostReport::new(&costed, table),
        })
    }
}
