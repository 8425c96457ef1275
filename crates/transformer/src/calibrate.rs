//! Calibration statistics of a model's linear layers: the float model run on calibration
//! windows, one after another, each chosen layer's inputs accumulated as they arrive (the
//! same calls in the same order on every run, so the same bits).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use eie_calibrate::Stats;

use crate::error::{Error, Result};
use crate::linear::{Dense, Linear};
use crate::model::Folder;

/// A float layer whose inputs are accumulated into statistics.
struct Gathered {
    inner: Dense,
    name: String,
    stats: Arc<Mutex<Stats>>,
}

impl Linear for Gathered {
    fn rows(&self) -> usize {
        self.inner.rows()
    }

    fn cols(&self) -> usize {
        self.inner.cols()
    }

    fn apply(&self, x: &[f32], tokens: usize) -> Result<Vec<f32>> {
        self.stats
            .lock()
            .expect("not poisoned")
            .add(x, tokens)
            .map_err(|e| Error::Input {
                reason: format!("calibrating {}: {e}", self.name),
            })?;
        self.inner.apply(x, tokens)
    }
}

/// Runs `folder`'s float model on every window of `windows` in order and returns the
/// statistics of each layer named in `wanted` (true: with the inputs' Hessian). A name that
/// is not one of the model's linear layers is an error.
pub fn calibrate(
    folder: &Folder,
    windows: &[&[u32]],
    wanted: &BTreeMap<String, bool>,
) -> Result<BTreeMap<String, Stats>> {
    let mut handles: Vec<(String, Arc<Mutex<Stats>>)> = Vec::new();
    let model = folder.model(&mut |spec| {
        let d = Dense::read(&folder.checkpoint, spec)?;
        Ok(match wanted.get(&spec.name) {
            Some(&hessian) => {
                let stats = Arc::new(Mutex::new(Stats::new(d.cols, hessian)));
                handles.push((spec.name.clone(), stats.clone()));
                Box::new(Gathered {
                    inner: d,
                    name: spec.name.clone(),
                    stats,
                }) as Box<dyn Linear>
            }
            None => Box::new(d) as Box<dyn Linear>,
        })
    })?;
    if let Some(missing) = wanted
        .keys()
        .find(|n| !handles.iter().any(|(h, _)| h == *n))
    {
        return Err(Error::Input {
            reason: format!(
                "calibration: {missing} is not a linear layer of the model in {}",
                folder.dir.display()
            ),
        });
    }
    for w in windows {
        model.forward(w)?;
    }
    drop(model);
    Ok(handles
        .into_iter()
        .map(|(name, s)| {
            let stats = Arc::try_unwrap(s)
                .map(|m| m.into_inner().expect("not poisoned"))
                .unwrap_or_else(|a| a.lock().expect("not poisoned").clone());
            (name, stats)
        })
        .collect())
}
