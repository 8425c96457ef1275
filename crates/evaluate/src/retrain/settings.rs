//! How to retrain: the settings as given (flags and a recipe's `[retrain]` keys, each
//! defined once) and resolved.

use eie_pipeline::settings::{Knob, Scope, Value, ValueKind, any};

use crate::error::{Error, Result};
use crate::share::CentroidConfig;
use crate::train::TrainConfig;

/// The most pruning rounds a schedule may have.
pub const MAX_ROUNDS: usize = 1000;

/// How to retrain, as given (on the command line or in a recipe's `[retrain]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainChoices {
    /// Masked fine-tuning epochs after each pruning round.
    pub epochs: usize,
    /// Centroid fine-tuning epochs (None: as many as `epochs`).
    pub centroid_epochs: Option<usize>,
    /// Adam's learning rate for masked fine-tuning.
    pub lr: f64,
    /// SGD's learning rate for centroid fine-tuning.
    pub centroid_lr: f64,
    /// Samples per step.
    pub batch_size: usize,
    /// L2 penalty of masked fine-tuning.
    pub weight_decay: f64,
    /// Pruning rounds, evenly spaced toward the target (None: one, or `schedule`).
    pub rounds: Option<usize>,
    /// Progress of each pruning round toward the target.
    pub schedule: Option<Vec<f64>>,
    /// Fractions of each matrix's surviving weights shared and held, step by step, before
    /// the final sharing (none: Deep Compression's sharing at once).
    pub share_schedule: Option<Vec<f64>>,
    /// Retrain against the original model's outputs instead of the labels.
    pub distill: bool,
}

impl Default for RetrainChoices {
    fn default() -> Self {
        let t = TrainConfig::default();
        Self {
            epochs: 3,
            centroid_epochs: None,
            lr: t.lr,
            centroid_lr: 1e-3,
            batch_size: t.batch_size,
            weight_decay: t.weight_decay,
            rounds: None,
            schedule: None,
            share_schedule: None,
            distill: false,
        }
    }
}

fn positive(key: &'static str) -> impl Fn(&Value) -> Result<(), String> {
    move |v| match v {
        Value::Float(x) if x.is_finite() && *x > 0.0 && (*x as f32).is_normal() => Ok(()),
        Value::Float(x) if x.is_finite() && *x > 0.0 => Err(format!(
            "{key} {x:e} is below a 32-bit float's smallest normal value ({:e}): training in f32 would move no weight",
            f32::MIN_POSITIVE
        )),
        other => Err(format!("{key} {other} must be finite and > 0")),
    }
}

fn int(v: &Value) -> usize {
    // Every integer knob here is capped at u32::MAX or MAX_ROUNDS, so this cannot truncate.
    v.int() as usize
}

/// The rounds group: a schedule is given either way.
const SCHEDULE: &str = "rounds / schedule";

/// Checks a share schedule: increasing fractions strictly between 0 and 1 (the final sharing
/// is the whole), at most [`MAX_ROUNDS`] steps.
fn check_share_schedule(schedule: &[f64]) -> Result<(), String> {
    if schedule.len() > MAX_ROUNDS {
        return Err(format!(
            "a share schedule of {} steps is over {MAX_ROUNDS}",
            schedule.len()
        ));
    }
    let increasing = schedule.windows(2).all(|w| w[0] < w[1]);
    if !increasing || schedule.iter().any(|&f| !(f > 0.0 && f < 1.0)) {
        return Err(format!(
            "share_schedule {schedule:?}: expected increasing fractions in (0, 1) (e.g. [0.5, 0.75, 0.9]; the final sharing is the whole)"
        ));
    }
    Ok(())
}

/// Checks a schedule: increasing steps in (0, 1] ending at 1, at most [`MAX_ROUNDS`].
fn check_schedule(schedule: &[f64]) -> Result<(), String> {
    if schedule.len() > MAX_ROUNDS {
        return Err(format!(
            "a schedule of {} rounds is over {MAX_ROUNDS}",
            schedule.len()
        ));
    }
    let increasing = schedule.windows(2).all(|w| w[0] < w[1]);
    if schedule.is_empty() || !increasing || schedule[0] <= 0.0 || schedule.last() != Some(&1.0) {
        return Err(format!(
            "schedule {schedule:?}: expected increasing steps in (0, 1] ending at 1 (e.g. [0.5, 0.8, 1.0])"
        ));
    }
    Ok(())
}

/// Every retraining setting: the command line's flags and the keys of a recipe's `[retrain]`.
pub static RETRAIN_KNOBS: &[Knob<RetrainChoices>] = &[
    Knob {
        key: "epochs",
        value_name: "E",
        doc: "Masked fine-tuning epochs after each pruning round.",
        kind: ValueKind::Int {
            min: 0,
            max: u32::MAX as u64,
        },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.epochs = int(v),
        show: |s| Some(s.epochs.to_string()),
    },
    Knob {
        key: "centroid_epochs",
        value_name: "E",
        doc: "Centroid fine-tuning epochs (default: --epochs).",
        kind: ValueKind::Int {
            min: 0,
            max: u32::MAX as u64,
        },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.centroid_epochs = Some(int(v)),
        show: |s| s.centroid_epochs.map(|e| e.to_string()),
    },
    Knob {
        key: "lr",
        value_name: "LR",
        doc: "Adam's learning rate for masked fine-tuning (docs/decisions.md says why this default).",
        kind: ValueKind::Float,
        group: None,
        scope: Scope::Everywhere,
        check: |v| positive("lr")(v),
        apply: |s, v| s.lr = v.float(),
        show: |s| Some(s.lr.to_string()),
    },
    Knob {
        key: "centroid_lr",
        value_name: "LR",
        doc: "SGD's learning rate for centroid fine-tuning.",
        kind: ValueKind::Float,
        group: None,
        scope: Scope::Everywhere,
        check: |v| positive("centroid_lr")(v),
        apply: |s, v| s.centroid_lr = v.float(),
        show: |s| Some(s.centroid_lr.to_string()),
    },
    Knob {
        key: "batch_size",
        value_name: "N",
        doc: "Samples per step of both fine-tunings.",
        kind: ValueKind::Int {
            min: 1,
            max: u32::MAX as u64,
        },
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.batch_size = int(v),
        show: |s| Some(s.batch_size.to_string()),
    },
    Knob {
        key: "weight_decay",
        value_name: "L2",
        doc: "L2 penalty of masked fine-tuning.",
        kind: ValueKind::Float,
        group: None,
        scope: Scope::Everywhere,
        check: |v| match v {
            Value::Float(x) if x.is_finite() && *x >= 0.0 => Ok(()),
            other => Err(format!("weight_decay {other} must be finite and >= 0")),
        },
        apply: |s, v| s.weight_decay = v.float(),
        show: |s| Some(s.weight_decay.to_string()),
    },
    Knob {
        key: "rounds",
        value_name: "R",
        doc: "Iterative pruning: prune and retrain in R rounds toward the target (1 by default).",
        kind: ValueKind::Int {
            min: 0,
            max: u64::MAX,
        },
        group: Some(SCHEDULE),
        scope: Scope::Everywhere,
        check: |v| match int(v) {
            0 => Err("rounds must be at least 1".into()),
            r if r > MAX_ROUNDS => Err(format!("rounds {r} is over {MAX_ROUNDS}")),
            _ => Ok(()),
        },
        apply: |s, v| s.rounds = Some(int(v)),
        show: |s| s.rounds.map(|r| r.to_string()),
    },
    Knob {
        key: "schedule",
        value_name: "T,T,...",
        doc: "The progress of each pruning round toward the target, increasing, ending at 1.",
        kind: ValueKind::Floats,
        group: Some(SCHEDULE),
        scope: Scope::RecipeOnly,
        check: |v| check_schedule(v.floats()),
        apply: |s, v| s.schedule = Some(v.floats().to_vec()),
        show: |s| s.schedule.as_ref().map(|v| format!("{v:?}")),
    },
    Knob {
        key: "share_schedule",
        value_name: "F,F,...",
        doc: "Incremental weight sharing (docs/accuracy.md): before the final sharing, the largest of each matrix's surviving weights, these fractions of them in turn, take their shared values and stay there while masked fine-tuning (epochs) retrains the rest. Increasing, in (0, 1).",
        kind: ValueKind::Floats,
        group: None,
        scope: Scope::RecipeOnly,
        check: |v| check_share_schedule(v.floats()),
        apply: |s, v| s.share_schedule = Some(v.floats().to_vec()),
        show: |s| s.share_schedule.as_ref().map(|v| format!("{v:?}")),
    },
    Knob {
        key: "distill",
        value_name: "",
        doc: "Distillation: retrain against the original model's outputs (a decoder: the cross-entropy to its next-token distribution, temperature 1, instead of the training text's next tokens; a sentence encoder, which has no labels: its sentence embeddings of the training text's lines), in masked and centroid fine-tuning alike; --teacher names another teacher.",
        kind: ValueKind::Switch,
        group: None,
        scope: Scope::Everywhere,
        check: any,
        apply: |s, v| s.distill = v.switch(),
        show: |s| s.distill.then(|| "true".into()),
    },
];

/// How to retrain, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainSettings {
    /// Progress of each pruning round toward the target, increasing, ending at 1: round r
    /// keeps density `D^t_r` (of a per-layer or global density D) or prunes at `t_r x S`
    /// standard deviations.
    pub schedule: Vec<f64>,
    /// Fractions of each matrix's surviving weights shared and held before the final
    /// sharing, increasing, in (0, 1); empty: all shared at once.
    pub share_schedule: Vec<f64>,
    /// Masked fine-tuning after each pruning round (and each incremental sharing step).
    pub fine_tune: TrainConfig,
    /// Centroid fine-tuning after weight sharing.
    pub centroids: CentroidConfig,
    /// Distillation: the original model's outputs are the targets, not the labels.
    pub distill: bool,
    /// The teacher distillation learns from, as given (`--teacher`); none: the original.
    pub teacher: Option<String>,
}

impl RetrainChoices {
    /// The settings, with `seed` for the sample order of both fine-tunings.
    pub fn resolve(&self, seed: u64) -> Result<RetrainSettings> {
        let schedule = match (&self.schedule, self.rounds) {
            (Some(s), _) => s.clone(),
            (None, r) => {
                let r = r.unwrap_or(1);
                (1..=r).map(|i| i as f64 / r as f64).collect()
            }
        };
        check_schedule(&schedule).map_err(|reason| Error::Config {
            what: "retraining",
            reason,
        })?;
        let share_schedule = self.share_schedule.clone().unwrap_or_default();
        check_share_schedule(&share_schedule).map_err(|reason| Error::Config {
            what: "retraining",
            reason,
        })?;
        if !share_schedule.is_empty() && self.epochs == 0 {
            return Err(Error::Config {
                what: "retraining",
                reason: "share_schedule retrains the unshared weights after each step: it needs masked fine-tuning epochs (epochs is 0)".into(),
            });
        }
        let settings = RetrainSettings {
            schedule,
            share_schedule,
            fine_tune: TrainConfig {
                epochs: self.epochs,
                batch_size: self.batch_size,
                lr: self.lr,
                weight_decay: self.weight_decay,
                seed,
            },
            centroids: CentroidConfig {
                epochs: self.centroid_epochs.unwrap_or(self.epochs),
                batch_size: self.batch_size,
                lr: self.centroid_lr,
                seed,
            },
            distill: self.distill,
            teacher: None,
        };
        settings.fine_tune.validate()?;
        settings.centroids.validate()?;
        Ok(settings)
    }
}

impl RetrainSettings {
    /// Settings that prune and share once, with no training (compress without `--retrain`
    /// of a described model, which is pruned and shared in memory).
    pub fn prune_and_share_only(seed: u64) -> Self {
        Self {
            schedule: vec![1.0],
            share_schedule: Vec::new(),
            fine_tune: TrainConfig {
                epochs: 0,
                seed,
                ..TrainConfig::default()
            },
            centroids: CentroidConfig {
                epochs: 0,
                batch_size: TrainConfig::default().batch_size,
                lr: 1e-3,
                seed,
            },
            distill: false,
            teacher: None,
        }
    }

    /// How it retrained, in words, on the samples named `train` (what a bundle records).
    pub fn describe(&self, train: &str) -> String {
        format!(
            "on {train}{}: schedule {:?}, masked fine-tuning {} epochs at lr {} (weight decay {}), share schedule {:?}, centroid fine-tuning {} epochs at lr {}, batch {}, seed {}",
            match (self.distill, &self.teacher) {
                (false, _) => String::new(),
                (true, None) => ", distilled from the original".into(),
                (true, Some(t)) => format!(", distilled from {t}"),
            },
            self.schedule,
            self.fine_tune.epochs,
            self.fine_tune.lr,
            self.fine_tune.weight_decay,
            self.share_schedule,
            self.centroids.epochs,
            self.centroids.lr,
            self.fine_tune.batch_size,
            self.fine_tune.seed
        )
    }
}
