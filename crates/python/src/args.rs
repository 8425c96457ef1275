//! Keyword arguments as the commands library's request fields. A keyword is named as the
//! command line's flag (`--act-frac` is `act_frac`) or a recipe key (`density`); each value
//! is checked where the command line's is, in the commands library, so both refuse the same
//! values with the same message. A keyword a call does not take is an error naming it.

use std::path::PathBuf;
use std::str::FromStr;

use eie_commands::{CalibrationRequest, DatasetRequest, Given, Value};
use eie_dataset::{SampleRange, ScalingRequest, Spec};
use eie_images::{Capacity, ColumnBatch, Fit};
use eie_pipeline::settings::{Knob, Scope, ValueKind};
use eie_simulate::{Arith, Rules, TimingParams};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error;

/// Most calibration samples (`--calibration-samples`' range on the command line).
const MAX_CALIBRATION_SAMPLES: usize = 65536;

/// How `compress` and `pack` lay a model out.
pub struct Packing {
    /// Layer patterns.
    pub layers: Vec<String>,
    /// Fold each layer's bias in as a last column.
    pub fold_bias: bool,
    /// PEs, when given.
    pub pes: Option<u32>,
    /// How layers are fitted to the memories.
    pub fit: Fit,
}

/// The keyword arguments of one call, taken one by one; [`Options::finish`] refuses any left.
pub struct Options<'py> {
    call: &'static str,
    left: Vec<(String, Bound<'py, PyAny>)>,
}

impl<'py> Options<'py> {
    /// The keywords given to `call`.
    pub fn new(call: &'static str, kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<Self> {
        let mut left = Vec::new();
        if let Some(kwargs) = kwargs {
            for (k, v) in kwargs.iter() {
                left.push((k.extract::<String>()?, v));
            }
        }
        Ok(Self { call, left })
    }

    /// Takes the keyword `key`, if given and not None.
    fn take(&mut self, key: &str) -> Option<Bound<'py, PyAny>> {
        let i = self.left.iter().position(|(k, _)| k == key)?;
        let (_, v) = self.left.remove(i);
        (!v.is_none()).then_some(v)
    }

    /// The keyword `key` as a `T`, described as `what` when it is not one; `number`: a
    /// number is expected, so True and False, which Python takes for 1 and 0, are refused.
    fn typed<T: for<'a> FromPyObject<'a, 'py>>(
        &mut self,
        key: &str,
        what: &str,
        number: bool,
    ) -> PyResult<Option<T>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) if number && v.is_instance_of::<pyo3::types::PyBool>() => Err(error::new(
                format!("{}: {key} must be {what}, not {v}", self.call),
            )),
            Some(v) => v.extract::<T>().map(Some).map_err(|_| {
                let given = v.repr().map_or_else(|_| "?".into(), |r| r.to_string());
                error::new(format!("{}: {key} must be {what}, not {given}", self.call))
            }),
        }
    }

    /// A whole number.
    pub fn int<T: for<'a> FromPyObject<'a, 'py>>(&mut self, key: &str) -> PyResult<Option<T>> {
        self.typed(key, "a whole number that fits the setting", true)
    }

    /// A number.
    pub fn float(&mut self, key: &str) -> PyResult<Option<f64>> {
        self.typed(key, "a number", true)
    }

    /// A switch.
    pub fn flag(&mut self, key: &str) -> PyResult<Option<bool>> {
        self.typed(key, "True or False", false)
    }

    /// A string.
    pub fn text(&mut self, key: &str) -> PyResult<Option<String>> {
        self.typed(key, "a string", false)
    }

    /// A path (a string or an `os.PathLike`).
    pub fn path(&mut self, key: &str) -> PyResult<Option<PathBuf>> {
        self.typed(key, "a path", false)
    }

    /// A value parsed from its text as the command line parses the flag's.
    pub fn parsed<T: FromStr>(&mut self, key: &str) -> PyResult<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        let Some(text) = self.text(key)? else {
            return Ok(None);
        };
        T::from_str(&text)
            .map(Some)
            .map_err(|e| error::new(format!("{}: {key}: {e}", self.call)))
    }

    /// A list of strings (one string is a list of one).
    pub fn texts(&mut self, key: &str) -> PyResult<Vec<String>> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(v) => match v.extract::<String>() {
                Ok(one) => Ok(vec![one]),
                Err(_) => v.extract::<Vec<String>>().map_err(|_| {
                    error::new(format!(
                        "{}: {key} must be a string or a list of strings",
                        self.call
                    ))
                }),
            },
        }
    }

    /// Activation fractions: a list of whole numbers.
    pub fn act_frac(&mut self) -> PyResult<Vec<u8>> {
        Ok(self
            .typed::<Vec<u8>>("act_frac", "a list of whole numbers 0..=255", false)?
            .unwrap_or_default())
    }

    /// The settings of `knobs` given by their keys, each parsed from its text as the flag's
    /// value is (a switch from True, left out when False).
    pub fn knobs<S: Default>(&mut self, knobs: &'static [Knob<S>]) -> PyResult<Given> {
        let mut given = Given::new();
        for knob in knobs.iter().filter(|k| k.scope != Scope::RecipeOnly) {
            let Some(v) = self.take(knob.key) else {
                continue;
            };
            let value = match knob.kind {
                ValueKind::Switch => match v.extract::<bool>() {
                    Ok(true) => Value::Switch(true),
                    Ok(false) => continue,
                    Err(_) => {
                        return Err(error::new(format!(
                            "{}: {} is a switch: True or False",
                            self.call, knob.key
                        )));
                    }
                },
                _ => {
                    if v.is_instance_of::<pyo3::types::PyBool>() {
                        return Err(error::new(format!(
                            "{}: {} takes {}, not True or False",
                            self.call, knob.key, knob.value_name
                        )));
                    }
                    let text = v.str()?.to_string();
                    knob.parse(&text).map_err(|reason| {
                        error::new(format!("{}: {} {text}: {reason}", self.call, knob.key))
                    })?
                }
            };
            given.push((knob.key.to_string(), value));
        }
        Ok(given)
    }

    /// The EIE model's arithmetic: `acc_bits`, `relu_last`.
    pub fn arith(&mut self) -> PyResult<Arith> {
        let d = Arith::default();
        Ok(Arith {
            acc_bits: self.int("acc_bits")?.unwrap_or(d.acc_bits),
            relu_last: self.flag("relu_last")?.unwrap_or(d.relu_last),
        })
    }

    /// The timing model's hardware: `fifo`, `clock_mhz`, `spmat_width`, `pipeline_depth`,
    /// `queue_ring`, `no_group_advance`, `timing_rules` ("rtl" or "authors").
    pub fn timing(&mut self) -> PyResult<TimingParams> {
        let d = TimingParams::default();
        let rules = match self.text("timing_rules")? {
            None => d.rules,
            Some(name) => Rules::named(&name).ok_or_else(|| {
                let names: Vec<&str> = Rules::ALL.iter().map(|r| r.name()).collect();
                error::new(format!(
                    "{}: timing_rules {name:?}: one of {}",
                    self.call,
                    names.join(", ")
                ))
            })?,
        };
        Ok(TimingParams {
            fifo_depth: self.int("fifo")?.unwrap_or(d.fifo_depth),
            clock_mhz: self.float("clock_mhz")?.unwrap_or(d.clock_mhz),
            spmat_width: self.int("spmat_width")?.unwrap_or(d.spmat_width),
            pipeline_depth: self.int("pipeline_depth")?.unwrap_or(d.pipeline_depth),
            queue_ring: self.flag("queue_ring")?.unwrap_or(d.queue_ring),
            group_advance: !self.flag("no_group_advance")?.unwrap_or(!d.group_advance),
            rules,
        })
    }

    /// How layers are fitted to the memories: `pointer_bits`, `spmat_kib`, `pointer_kib`,
    /// `column_batch` ("auto" or a number), `allow_overflow`.
    pub fn fit(&mut self) -> PyResult<Fit> {
        let d = Fit::default();
        let kib = |v: Option<u64>, default: u64| {
            v.map_or(Ok(default), |k: u64| {
                k.checked_mul(1024)
                    .ok_or_else(|| error::new("a SRAM size in KiB overflows"))
            })
        };
        let spmat = self.int::<u64>("spmat_kib")?;
        let pointer = self.int::<u64>("pointer_kib")?;
        let batch = match self.take("column_batch") {
            None => d.column_batch,
            Some(v) => ColumnBatch::from_str(&v.str()?.to_string())
                .map_err(|e| error::new(format!("{}: column_batch: {e}", self.call)))?,
        };
        Ok(Fit {
            pointer_bits: self.int("pointer_bits")?.unwrap_or(d.pointer_bits),
            capacity: Capacity {
                spmat_bytes: kib(spmat, d.capacity.spmat_bytes)?,
                pointer_bytes: kib(pointer, d.capacity.pointer_bytes)?,
            },
            column_batch: batch,
            allow_overflow: self.flag("allow_overflow")?.unwrap_or(false),
        })
    }

    /// What `compress` and `pack` share: `layers`, `no_bias_column`, `pes` and the fitting
    /// ([`Options::fit`]).
    pub fn packing(&mut self) -> PyResult<Packing> {
        Ok(Packing {
            layers: self.texts("layers")?,
            fold_bias: !self.flag("no_bias_column")?.unwrap_or(false),
            pes: self.int("pes")?,
            fit: self.fit()?,
        })
    }

    /// The input scaling: `scale` ("unit" or "raw"), `mean`, `std`.
    pub fn scaling(&mut self) -> PyResult<ScalingRequest> {
        let unit = match self.text("scale")?.as_deref() {
            None => None,
            Some("unit") => Some(true),
            Some("raw") => Some(false),
            Some(other) => {
                return Err(error::new(format!(
                    "{}: scale {other:?}: \"unit\" or \"raw\"",
                    self.call
                )));
            }
        };
        Ok(ScalingRequest {
            unit,
            mean: self.float("mean")?.map(|m| m as f32),
            std: self.float("std")?.map(|s| s as f32),
        })
    }

    /// The most memory the work may take: `max_memory`, bytes or a size such as "4G".
    pub fn max_memory(&mut self) -> PyResult<u64> {
        match self.take("max_memory") {
            None => Ok(eie_commands::DEFAULT_MAX_MEMORY),
            Some(v) => eie_commands::parse_size(&v.str()?.to_string())
                .map_err(|e| error::new(format!("{}: max_memory: {e}", self.call))),
        }
    }

    /// A dataset given as its specification (`dataset`, `range`), scaled and bounded as
    /// `scale` and `max_memory` say.
    pub fn dataset(
        &mut self,
        spec: Option<Spec>,
        scale: ScalingRequest,
        max_memory: u64,
    ) -> PyResult<Option<DatasetRequest>> {
        let range = self.parsed::<SampleRange>("range")?;
        if spec.is_none() && (range.is_some() || scale.is_set()) {
            return Err(error::new(format!(
                "{}: range, scale, mean and std apply to a dataset: give dataset too",
                self.call
            )));
        }
        Ok(spec.map(|spec| DatasetRequest {
            spec,
            range,
            scale,
            max_memory,
        }))
    }

    /// Calibration samples: `calibration` (a dataset specification), `calibration_range`,
    /// `calibration_samples`.
    pub fn calibration(
        &mut self,
        scale: ScalingRequest,
        max_memory: u64,
    ) -> PyResult<Option<CalibrationRequest>> {
        let spec = self.parsed::<Spec>("calibration")?;
        let range = self.parsed::<SampleRange>("calibration_range")?;
        let samples = self.int::<usize>("calibration_samples")?;
        if spec.is_none() && (range.is_some() || samples.is_some()) {
            return Err(error::new(format!(
                "{}: calibration_range and calibration_samples apply to calibration samples: give calibration too",
                self.call
            )));
        }
        let samples = samples.unwrap_or(eie_commands::DEFAULT_CALIBRATION_SAMPLES);
        if !(1..=MAX_CALIBRATION_SAMPLES).contains(&samples) {
            return Err(error::new(format!(
                "{}: calibration_samples {samples}: expected 1..={MAX_CALIBRATION_SAMPLES}",
                self.call
            )));
        }
        Ok(spec.map(|spec| CalibrationRequest {
            data: DatasetRequest {
                spec,
                range,
                scale,
                max_memory,
            },
            samples,
        }))
    }

    /// Refuses any keyword not taken, naming it.
    pub fn finish(self) -> PyResult<()> {
        match self.left.first() {
            None => Ok(()),
            Some((key, _)) => Err(error::new(format!(
                "{}() got an unknown keyword argument {key:?} (keywords are the command line's flags with _ for -, and recipe keys: docs/python.md)",
                self.call
            ))),
        }
    }
}
