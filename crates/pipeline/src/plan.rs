//! Resolution: which layers a run compresses, with which settings and which biases, decided
//! from the checkpoint's header, the command line and the recipe before any weight is read.
//! Every check that does not need the weights happens here.

use std::collections::BTreeMap;

use eie_checkpoint::{Dtype, Header, Skipped, bias_name, glob_match};
use eie_images::Fit;

use crate::error::{Error, Result};
use crate::provenance::{keys, layer_line};
use crate::recipe::Recipe;
use crate::settings::{Assignments, LayerSettings, PruneScore, Pruning};

/// What a run asks for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Layer patterns (`--layers`); empty: the recipe's `select`, else the default selection.
    pub patterns: &'a [String],
    /// Settings given on the command line.
    pub cli: &'a Assignments<LayerSettings>,
    /// The recipe, if any.
    pub recipe: Option<&'a Recipe>,
    /// Fold each layer's `NAME.bias` in as an extra column.
    pub fold_bias: bool,
}

/// A folded bias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiasPlan {
    /// Its tensor's name.
    pub name: String,
    /// Its tensor's dtype.
    pub dtype: Dtype,
}

/// One layer to compress.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    /// The layer's name (its weight tensor's, unless [`LayerPlan::tensor`] says otherwise).
    pub name: String,
    /// The tensor its weights are read from: its own name, or another's (a tied head reads
    /// the token embeddings).
    pub tensor: String,
    /// Whether the tensor is stored `[inputs, rows]` (GPT-2's `Conv1D`) and is read
    /// transposed.
    pub transposed: bool,
    /// Rows (outputs).
    pub rows: usize,
    /// Columns (inputs), without the bias column.
    pub inputs: usize,
    /// The weight tensor's dtype.
    pub dtype: Dtype,
    /// The bias folded in as the last column, if any.
    pub bias: Option<BiasPlan>,
    /// Its settings.
    pub settings: LayerSettings,
}

impl LayerPlan {
    /// Columns as packed: the inputs, plus one for a folded bias.
    pub fn cols(&self) -> usize {
        self.inputs + usize::from(self.bias.is_some())
    }
}

/// A matrix a model description hands compress (eie-model's matrices: a Linear's or a
/// convolution's weight, an LSTM layer's packed `[W_ih | W_hh]`), before its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixPlan {
    /// Its name.
    pub name: String,
    /// The tensor its values are read from (see [`LayerPlan::tensor`]).
    pub tensor: String,
    /// Whether that tensor is stored `[inputs, rows]` and read transposed.
    pub transposed: bool,
    /// Rows.
    pub rows: usize,
    /// Columns, without a bias column.
    pub inputs: usize,
    /// The dtype its values are written back in.
    pub dtype: Dtype,
    /// Its bias, to fold in as the last column.
    pub bias: Option<BiasPlan>,
    /// Its settings before the command line's and the recipe's (a convolution's codebook
    /// is 8 bits, Deep Compression's).
    pub base: LayerSettings,
}

/// The layers of a run, in model order, and the weights left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The layers, in the order they are packed.
    pub layers: Vec<LayerPlan>,
    /// `*.weight` tensors the default selection left out, with the reason.
    pub skipped: Vec<Skipped>,
}

impl Plan {
    /// Resolves `request` against a checkpoint's header (pure: no weight is read, no file
    /// opened): the selection, every layer's
    /// settings (built-in defaults, the command line, the recipe's `[defaults]`, then each
    /// matching `[[layers]]` rule in file order, later winning; a key both on the command line
    /// and in `[defaults]` is an error rather than a silent override), and the biases.
    pub fn resolve(ck: &Header, request: &Request) -> Result<Self> {
        let recipe = request.recipe;
        let patterns = match (request.patterns, recipe) {
            (p, _) if !p.is_empty() => p.to_vec(),
            (_, Some(r)) => r.select.clone(),
            _ => Vec::new(),
        };
        let selection = ck.select(&patterns)?;
        // Names are bounded before any work (they are repeated in every image's record).
        if let Some((name, reason)) = selection
            .layers
            .iter()
            .find_map(|n| eie_format::bad_name(n).map(|r| (n, r)))
        {
            return Err(Error::Layer {
                layer: eie_format::shown(name),
                reason,
            });
        }
        let settings = resolve_settings(&selection.layers, request.cli, recipe)?;
        let mut layers = Vec::with_capacity(settings.len());
        for (name, settings) in settings {
            let info = ck.info(&name).expect("selected");
            let (rows, inputs) = (info.shape[0], info.shape[1]);
            let bias = if request.fold_bias {
                paired_bias(ck, &name, rows)?
            } else {
                None
            };
            layers.push(LayerPlan {
                tensor: name.clone(),
                transposed: false,
                name,
                rows,
                inputs,
                dtype: info.dtype,
                bias,
                settings,
            });
        }
        let plan = Self {
            layers,
            skipped: selection.skipped,
        };
        plan.check_global()?;
        Ok(plan)
    }

    /// The plan of a model description's `matrices`, in order: the command line's and the
    /// recipe's settings apply over each matrix's own base, by name as for any layer. The
    /// description selects every matrix, so `request.patterns` must be empty; without
    /// `request.fold_bias` no bias is folded.
    pub fn from_matrices(matrices: Vec<MatrixPlan>, request: &Request) -> Result<Self> {
        if !request.patterns.is_empty() {
            return Err(Error::Plan {
                reason: "a model description selects every layer; --layers selects the layers of an MLP; give one of them".into(),
            });
        }
        let count = matrices.len();
        let plan = Self::of_matrices(matrices, request, Vec::new())?;
        if plan.layers.len() != count {
            return Err(Error::Plan {
                reason: "a model description's layers cannot be skipped (every one is part of the network)".into(),
            });
        }
        Ok(plan)
    }

    /// The plan of a model's linear layers (a Hugging Face transformer's, which the host
    /// runs in float where a layer is left out): the layers `--layers` or the recipe's
    /// `select` name (globs, each matching some layer; the layers kept in model order), else
    /// every one; a recipe's `skip` leaves a layer out. `skipped`: the weights the model
    /// leaves out by its kind (embeddings, norms), for the report.
    pub fn from_selected(
        matrices: Vec<MatrixPlan>,
        request: &Request,
        skipped: Vec<Skipped>,
    ) -> Result<Self> {
        let patterns = match (request.patterns, request.recipe) {
            (p, _) if !p.is_empty() => p.to_vec(),
            (_, Some(r)) => r.select.clone(),
            _ => Vec::new(),
        };
        if patterns.len() > eie_checkpoint::MAX_PATTERNS {
            return Err(Error::Plan {
                reason: format!(
                    "{} layer patterns given; at most {} are accepted",
                    patterns.len(),
                    eie_checkpoint::MAX_PATTERNS
                ),
            });
        }
        let mut keep = vec![patterns.is_empty(); matrices.len()];
        for p in &patterns {
            eie_checkpoint::check_pattern(p).map_err(|reason| Error::Plan {
                reason: format!("layer pattern \"{p}\": {reason}"),
            })?;
            let mut any = false;
            for (k, m) in keep.iter_mut().zip(&matrices) {
                if glob_match(p, &m.name) {
                    *k = true;
                    any = true;
                }
            }
            if !any {
                let names: Vec<&str> = matrices.iter().map(|m| m.name.as_str()).collect();
                return Err(Error::Plan {
                    reason: format!(
                        "layer pattern \"{p}\" matches none of the model's linear layers ({})",
                        eie_checkpoint::name_list(&names)
                    ),
                });
            }
        }
        let chosen = matrices
            .into_iter()
            .zip(keep)
            .filter_map(|(m, k)| k.then_some(m))
            .collect();
        Self::of_matrices(chosen, request, skipped)
    }

    /// The plan of `matrices`, each with the command line's and the recipe's settings over its
    /// own base (a recipe's `skip` leaving it out).
    fn of_matrices(
        matrices: Vec<MatrixPlan>,
        request: &Request,
        skipped: Vec<Skipped>,
    ) -> Result<Self> {
        if let Some((name, reason)) = matrices
            .iter()
            .find_map(|m| eie_format::bad_name(&m.name).map(|r| (&m.name, r)))
        {
            return Err(Error::Layer {
                layer: eie_format::shown(name),
                reason,
            });
        }
        let names: Vec<String> = matrices.iter().map(|m| m.name.clone()).collect();
        let bases: BTreeMap<&str, &LayerSettings> = matrices
            .iter()
            .map(|m| (m.name.as_str(), &m.base))
            .collect();
        let settings =
            resolve_settings_from(&names, &|n| bases[n].clone(), request.cli, request.recipe)?;
        let mut settings: BTreeMap<String, LayerSettings> = settings.into_iter().collect();
        let mut layers = Vec::with_capacity(settings.len());
        for m in matrices {
            let Some(settings) = settings.remove(&m.name) else {
                continue;
            };
            layers.push(LayerPlan {
                name: m.name,
                tensor: m.tensor,
                transposed: m.transposed,
                rows: m.rows,
                inputs: m.inputs,
                dtype: m.dtype,
                bias: m.bias.filter(|_| request.fold_bias),
                settings,
            });
        }
        let plan = Self { layers, skipped };
        plan.check_global()?;
        Ok(plan)
    }

    /// A global density applies to every layer or none; the groups and scores of each layer
    /// go together.
    fn check_global(&self) -> Result<()> {
        let global = |l: &LayerPlan| matches!(l.settings.pruning, Pruning::Global(_));
        if self.layers.iter().any(global) && !self.layers.iter().all(global) {
            return Err(Error::Plan {
                reason: "a global density applies to every layer; some layers here set their own pruning".into(),
            });
        }
        for l in &self.layers {
            let st = &l.settings;
            if st.per_row && st.balance {
                return Err(Error::Plan {
                    reason: format!(
                        "layer {}: per_row and balance are two groups to compare scores in; give one",
                        l.name
                    ),
                });
            }
            if st.prune_score != PruneScore::Magnitude && matches!(st.pruning, Pruning::Global(_)) {
                return Err(Error::Plan {
                    reason: format!(
                        "layer {}: prune_score {} compares within a layer, a global density across layers by magnitude; give density",
                        l.name,
                        st.prune_score.name()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether some layer needs calibration statistics.
    pub fn needs_calibration(&self) -> bool {
        self.layers.iter().any(|l| l.settings.needs_calibration())
    }

    /// Bytes the calibration statistics of every layer that needs them hold.
    pub fn calibration_bytes(&self) -> u64 {
        self.layers
            .iter()
            .filter(|l| l.settings.needs_calibration())
            .map(|l| eie_calibrate::Stats::bytes(l.inputs, l.settings.needs_hessian()))
            .sum()
    }

    /// Bytes the largest calibrated layer takes while it is compressed: six f32 copies of
    /// its matrix (original, scores, masked, updated, rounded, shared) and, with the update,
    /// three f64 `inputs x inputs` buffers of its factor.
    pub fn calibrated_working_bytes(&self) -> u64 {
        self.layers
            .iter()
            .filter(|l| l.settings.needs_calibration())
            .map(|l| {
                let (r, c) = (l.rows as u64, l.inputs as u64);
                let factor = if l.settings.needs_hessian() {
                    24u64.saturating_mul(c).saturating_mul(c)
                } else {
                    0
                };
                24u64
                    .saturating_mul(r)
                    .saturating_mul(c)
                    .saturating_add(factor)
            })
            .max()
            .unwrap_or(0)
    }

    /// The layers' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.name.clone()).collect()
    }

    /// The global density, when the layers are pruned with one.
    pub fn global_density(&self) -> Option<f64> {
        self.layers.first().and_then(|l| match l.settings.pruning {
            Pruning::Global(d) => Some(d),
            _ => None,
        })
    }

    /// The pointer SRAM depends only on the columns: checked for every layer before any is
    /// read.
    pub fn check_fits(&self, fit: &Fit) -> Result<()> {
        for l in &self.layers {
            fit.check_pointer_sram(&l.name, l.cols())?;
        }
        Ok(())
    }

    /// The dense checkpoints write every layer back as its own tensor, in the checkpoint's
    /// layout: a layer read from another tensor (a tied head) or transposed (GPT-2's
    /// `Conv1D`) has no such tensor, and is refused before any work.
    pub fn check_dense_checkpoints(&self) -> Result<()> {
        match self
            .layers
            .iter()
            .find(|l| l.transposed || l.tensor != l.name)
        {
            Some(l) => Err(Error::Plan {
                reason: format!(
                    "dense_checkpoints writes each layer back as its own tensor as stored, but {} {}; compress without --dense-checkpoints (eval rebuilds the float stages from the images)",
                    l.name,
                    if l.tensor != l.name {
                        format!("reads the values of {}", l.tensor)
                    } else {
                        "is stored transposed, [inputs, outputs]".into()
                    }
                ),
            }),
            None => Ok(()),
        }
    }

    /// Every layer's settings, for the bundle's provenance (`layer.NAME`).
    pub fn provenance(&self) -> BTreeMap<String, String> {
        self.layers
            .iter()
            .map(|p| {
                let s = &p.settings;
                (
                    format!("{}{}", keys::LAYER_PREFIX, p.name),
                    layer_line(
                        s,
                        (p.tensor != p.name || p.transposed)
                            .then(|| {
                                format!(
                                    "{}{}",
                                    p.tensor,
                                    if p.transposed { " transposed" } else { "" }
                                )
                            })
                            .as_deref(),
                        p.bias.as_ref().map(|b| b.name.as_str()),
                    ),
                )
            })
            .collect()
    }
}

/// The bias that folds into weight `name` of `rows` rows: its `NAME.bias`, if the checkpoint
/// has one, which must be a float tensor of shape `[rows]`. One rule for compress and pack.
pub fn paired_bias(ck: &Header, name: &str, rows: usize) -> Result<Option<BiasPlan>> {
    let Some(b) = bias_name(name) else {
        return Ok(None);
    };
    let Some(bi) = ck.info(&b) else {
        return Ok(None);
    };
    if !bi.is_float() {
        return Err(Error::Plan {
            reason: format!(
                "bias \"{b}\" has dtype {:?}, expected F64, F32, F16 or BF16",
                bi.dtype
            ),
        });
    }
    if bi.shape != [rows] {
        return Err(Error::Plan {
            reason: format!(
                "bias \"{b}\" has shape {:?}, expected [{rows}] to match the {rows} rows of \"{name}\" (or leave biases out with --no-bias-column)",
                bi.shape
            ),
        });
    }
    Ok(Some(BiasPlan {
        name: b,
        dtype: bi.dtype,
    }))
}

/// The layers to compress (after `skip` rules) with their settings, in `selected` order.
pub fn resolve_settings(
    selected: &[String],
    cli: &Assignments<LayerSettings>,
    recipe: Option<&Recipe>,
) -> Result<Vec<(String, LayerSettings)>> {
    resolve_settings_from(selected, &|_| LayerSettings::default(), cli, recipe)
}

/// [`resolve_settings`] with each layer's own built-in settings, `base(name)`, under the
/// command line's and the recipe's.
pub fn resolve_settings_from(
    selected: &[String],
    base: &dyn Fn(&str) -> LayerSettings,
    cli: &Assignments<LayerSettings>,
    recipe: Option<&Recipe>,
) -> Result<Vec<(String, LayerSettings)>> {
    let own = |name: &str| {
        let mut s = base(name);
        cli.apply(&mut s);
        s
    };
    let Some(recipe) = recipe else {
        return Ok(selected.iter().map(|n| (n.clone(), own(n))).collect());
    };
    let both = cli.overlap(&recipe.defaults);
    if !both.is_empty() {
        return Err(Error::Plan {
            reason: format!(
                "{} set both on the command line and in [defaults] of recipe {}; keep one",
                both.join(", "),
                recipe.path.display()
            ),
        });
    }
    let global =
        cli.get("global_density").is_some() || recipe.defaults.get("global_density").is_some();
    if global
        && let Some(r) = recipe
            .rules
            .iter()
            .find(|r| r.set.has_group(crate::settings::PRUNING))
    {
        return Err(Error::Plan {
            reason: format!(
                "recipe {}: [[layers]] pattern \"{}\" sets its own pruning, which a global density cannot combine with",
                recipe.path.display(),
                r.pattern
            ),
        });
    }
    for r in &recipe.rules {
        if !selected.iter().any(|n| glob_match(&r.pattern, n)) {
            return Err(Error::Plan {
                reason: format!(
                    "recipe {}: [[layers]] pattern \"{}\" matches no selected layer (selected: {})",
                    recipe.path.display(),
                    r.pattern,
                    selected.join(", ")
                ),
            });
        }
    }
    let mut out = Vec::new();
    for name in selected {
        let mut s = own(name);
        recipe.defaults.apply(&mut s);
        let mut skip = false;
        for r in recipe.rules.iter().filter(|r| glob_match(&r.pattern, name)) {
            r.set.apply(&mut s);
            skip |= r.skip;
        }
        if !skip {
            out.push((name.clone(), s));
        }
    }
    if out.is_empty() {
        return Err(Error::Plan {
            reason: format!(
                "recipe {}: every selected layer is skipped",
                recipe.path.display()
            ),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::settings::{InitKind, LAYER_KNOBS};

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn header(tensors: &[(&str, Dtype, &[usize])]) -> Header {
        let infos = tensors
            .iter()
            .map(|(n, d, s)| eie_checkpoint::TensorInfo {
                name: n.to_string(),
                dtype: *d,
                shape: s.to_vec(),
            })
            .collect();
        Header::new(Path::new("m.safetensors"), vec![infos], Default::default())
    }

    fn request<'a>(cli: &'a Assignments<LayerSettings>) -> Request<'a> {
        Request {
            patterns: &[],
            cli,
            recipe: None,
            fold_bias: true,
        }
    }

    #[test]
    fn a_plan_pairs_biases_and_lists_what_it_skips() {
        let h = header(&[
            ("embed.weight", Dtype::F32, &[10, 4]),
            ("fc1.weight", Dtype::BF16, &[8, 4]),
            ("fc1.bias", Dtype::F32, &[8]),
            ("norm.weight", Dtype::F32, &[8]),
            ("fc2.weight", Dtype::F32, &[3, 8]),
        ]);
        let mut cli = Assignments::new();
        cli.set_text(LAYER_KNOBS, "density", "0.5").unwrap();
        let plan = Plan::resolve(&h, &request(&cli)).unwrap();
        assert_eq!(plan.names(), ["fc1.weight", "fc2.weight"]);
        let fc1 = &plan.layers[0];
        assert_eq!(
            (fc1.rows, fc1.inputs, fc1.cols(), fc1.dtype),
            (8, 4, 5, Dtype::BF16)
        );
        assert_eq!(
            fc1.bias.as_ref().map(|b| (b.name.as_str(), b.dtype)),
            Some(("fc1.bias", Dtype::F32))
        );
        assert!(plan.layers[1].bias.is_none());
        assert_eq!(fc1.settings.pruning, Pruning::Density(0.5));
        let skipped: Vec<&str> = plan.skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(skipped, ["embed.weight", "norm.weight"]);
        let no_bias = Request {
            fold_bias: false,
            ..request(&cli)
        };
        assert!(
            Plan::resolve(&h, &no_bias).unwrap().layers[0]
                .bias
                .is_none()
        );
        assert!(plan.provenance()["layer.fc1.weight"].ends_with("bias fc1.bias"));
    }

    #[test]
    fn a_bias_that_does_not_fit_its_weight_is_named() {
        let h = header(&[
            ("fc.weight", Dtype::F32, &[8, 4]),
            ("fc.bias", Dtype::F32, &[4]),
        ]);
        let cli = Assignments::new();
        let err = Plan::resolve(&h, &request(&cli)).unwrap_err().to_string();
        assert!(
            err.contains("bias \"fc.bias\" has shape [4], expected [8]"),
            "{err}"
        );
        let h = header(&[
            ("fc.weight", Dtype::F32, &[8, 4]),
            ("fc.bias", Dtype::I32, &[8]),
        ]);
        let err = Plan::resolve(&h, &request(&cli)).unwrap_err().to_string();
        assert!(err.contains("expected F64, F32, F16 or BF16"), "{err}");
    }

    #[test]
    fn the_pointer_sram_is_checked_before_any_weight_is_read() {
        let h = header(&[("wide.weight", Dtype::F32, &[2, 20_000])]);
        let cli = Assignments::new();
        let plan = Plan::resolve(&h, &request(&cli)).unwrap();
        let whole = Fit {
            column_batch: eie_images::ColumnBatch::Columns(0),
            ..Fit::default()
        };
        let err = plan.check_fits(&whole).unwrap_err().to_string();
        assert!(err.contains("20001 pointers"), "{err}");
        assert!(
            plan.check_fits(&Fit::default()).is_ok(),
            "auto batches fit it"
        );
    }

    #[test]
    fn the_alexnet_recipe_resolves_to_the_paper_settings() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/recipes/alexnet.toml"
        ));
        let recipe = Recipe::load(path).unwrap();
        let layers = names(&[
            "classifier.1.weight",
            "classifier.4.weight",
            "classifier.6.weight",
        ]);
        let got = resolve_settings(&layers, &Assignments::new(), Some(&recipe)).unwrap();
        let d: Vec<(String, Pruning, u8)> = got
            .into_iter()
            .map(|(n, s)| (n, s.pruning, s.code_bits))
            .collect();
        assert_eq!(
            d,
            [
                ("classifier.1.weight".to_string(), Pruning::Density(0.09), 4),
                ("classifier.4.weight".to_string(), Pruning::Density(0.09), 4),
                ("classifier.6.weight".to_string(), Pruning::Density(0.25), 4),
            ]
        );
    }

    #[test]
    fn later_rules_win_and_skip_removes() {
        let text = r#"
            [defaults]
            density = 0.1
            code_bits = 5
            [[layers]]
            pattern = "fc*"
            threshold_std = 0.5
            [[layers]]
            pattern = "fc2.weight"
            code_bits = 3
            init = "kmeans++"
            seed = 9
            [[layers]]
            pattern = "head.weight"
            skip = true
        "#;
        let r = Recipe::parse(Path::new("r.toml"), text).unwrap();
        let got = resolve_settings(
            &names(&["fc1.weight", "fc2.weight", "head.weight"]),
            &Assignments::new(),
            Some(&r),
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].1.pruning, got[0].1.code_bits),
            (Pruning::ThresholdStd(0.5), 5)
        );
        assert_eq!(
            (got[1].1.code_bits, got[1].1.init, got[1].1.seed),
            (3, InitKind::KMeansPlusPlus, 9)
        );
    }

    /// A model's linear layers: every one by default; patterns keep model order; a recipe's
    /// `skip` leaves one to the host; a pattern that matches nothing, or skipping them all,
    /// is refused by name.
    #[test]
    fn selected_matrices_keep_model_order_and_may_be_skipped() {
        let m = |name: &str| MatrixPlan {
            name: name.into(),
            tensor: name.into(),
            transposed: false,
            rows: 4,
            inputs: 4,
            dtype: Dtype::F32,
            bias: None,
            base: LayerSettings::default(),
        };
        let all = || {
            vec![
                m("h.0.q.weight"),
                m("h.0.mlp.weight"),
                m("h.1.q.weight"),
                m("lm_head.weight"),
            ]
        };
        let cli = Assignments::new();
        let order = |p: &Plan| p.names();
        let plan = Plan::from_selected(all(), &request(&cli), Vec::new()).unwrap();
        assert_eq!(plan.layers.len(), 4);
        let patterns = names(&["lm_head.weight", "*.q.weight"]);
        let req = Request {
            patterns: &patterns,
            ..request(&cli)
        };
        let plan = Plan::from_selected(all(), &req, Vec::new()).unwrap();
        assert_eq!(
            order(&plan),
            ["h.0.q.weight", "h.1.q.weight", "lm_head.weight"]
        );
        let patterns = names(&["*.k.weight"]);
        let req = Request {
            patterns: &patterns,
            ..request(&cli)
        };
        let err = Plan::from_selected(all(), &req, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"*.k.weight\" matches none") && err.contains("lm_head.weight"),
            "{err}"
        );
        // A recipe skipping the layers `pattern` matches.
        let skip = |pattern: &str| {
            let text = format!("[[layers]]\npattern = \"{pattern}\"\nskip = true\n");
            Recipe::parse(Path::new("r.toml"), &text).unwrap()
        };
        let head = skip("lm_head.weight");
        let req = Request {
            recipe: Some(&head),
            ..request(&cli)
        };
        let plan = Plan::from_selected(all(), &req, Vec::new()).unwrap();
        assert_eq!(
            order(&plan),
            ["h.0.q.weight", "h.0.mlp.weight", "h.1.q.weight"]
        );
        // A model description's matrices cannot be skipped.
        let err = Plan::from_matrices(all(), &req).unwrap_err().to_string();
        assert!(err.contains("cannot be skipped"), "{err}");
        let every = skip("*");
        let req = Request {
            recipe: Some(&every),
            ..request(&cli)
        };
        let err = Plan::from_selected(all(), &req, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("every selected layer is skipped"), "{err}");
    }

    #[test]
    fn conflicts_are_named() {
        let r = Recipe::parse(
            Path::new("r.toml"),
            "[[layers]]\npattern = \"conv*\"\ndensity = 0.5\n",
        )
        .unwrap();
        let err = resolve_settings(&names(&["fc1.weight"]), &Assignments::new(), Some(&r))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"conv*\" matches no selected layer"), "{err}");
        let r = Recipe::parse(
            Path::new("r.toml"),
            "[defaults]\nglobal_density = 0.1\n[[layers]]\npattern = \"fc*\"\ndensity = 0.2\n",
        )
        .unwrap();
        let err = resolve_settings(&names(&["fc1.weight"]), &Assignments::new(), Some(&r))
            .unwrap_err()
            .to_string();
        assert!(err.contains("global density cannot combine"), "{err}");
        let r = Recipe::parse(Path::new("r.toml"), "[defaults]\ncode_bits = 3\n").unwrap();
        let mut cli = Assignments::new();
        cli.set_text(LAYER_KNOBS, "code_bits", "5").unwrap();
        let err = resolve_settings(&names(&["fc1.weight"]), &cli, Some(&r))
            .unwrap_err()
            .to_string();
        assert!(err.contains("code_bits set both"), "{err}");
    }
}
