//! Command-line flags derived from the libraries' setting definitions ([`Knob`]): one flag
//! per setting, named, documented and defaulted by its definition, so a flag and its recipe
//! key cannot drift apart. What the user typed is kept as given; it becomes an
//! [`Assignments`] (with every range check, naming the setting) in a command's resolve step.

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};
use eie_pipeline::settings::{Kind, Knob, Scope, Value};
use eie_pipeline::{Assignments, LAYER_KNOBS, LayerSettings, RUN_KNOBS, RunSettings};

/// The flags of `knobs` (those that may be given on the command line), under `heading`;
/// `configure` adds what a command needs (e.g. `requires`).
fn augment<S: Default>(
    mut cmd: Command,
    knobs: &'static [Knob<S>],
    keep: fn(&Knob<S>) -> bool,
    heading: &'static str,
    configure: fn(Arg) -> Arg,
) -> Command {
    for k in knobs
        .iter()
        .filter(|k| k.scope != Scope::RecipeOnly && keep(k))
    {
        let mut help = k.doc.to_string();
        if let Some(d) = k.default_text() {
            help.push_str(&format!(" [default: {d}]"));
        }
        // clap keeps flag names as static strings; these are made once per process.
        let long: &'static str = Box::leak(k.flag().into_boxed_str());
        let mut arg = Arg::new(k.key).long(long).help(help).help_heading(heading);
        arg = match k.kind {
            Kind::Switch => arg.action(ArgAction::SetTrue),
            kind => arg
                .action(ArgAction::Set)
                .value_name(k.value_name)
                .allow_negative_numbers(kind == Kind::Float)
                .value_parser(clap::builder::ValueParser::new(move |s: &str| k.parse(s))),
        };
        if let Some(group) = k.group {
            let others: Vec<&'static str> = knobs
                .iter()
                .filter(|o| {
                    o.group == Some(group) && o.key != k.key && o.scope != Scope::RecipeOnly
                })
                .map(|o| o.key)
                .collect();
            arg = arg.conflicts_with_all(others);
        }
        cmd = cmd.arg(configure(arg));
    }
    cmd
}

/// The values given on the command line to `knobs`, in the table's order.
fn given<S: Default>(
    matches: &ArgMatches,
    knobs: &'static [Knob<S>],
    keep: fn(&Knob<S>) -> bool,
) -> Vec<(&'static str, Value)> {
    knobs
        .iter()
        .filter(|k| k.scope != Scope::RecipeOnly && keep(k))
        .filter_map(|k| match k.kind {
            Kind::Switch => matches
                .get_flag(k.key)
                .then_some((k.key, Value::Switch(true))),
            _ => matches.get_one::<Value>(k.key).map(|v| (k.key, v.clone())),
        })
        .collect()
}

/// Settings given on the command line, kept as given until they are checked.
#[derive(Debug, Clone, Default)]
pub struct Given<S: 'static> {
    values: Vec<(&'static str, Value)>,
    knobs: Option<&'static [Knob<S>]>,
}

impl<S: Default> Given<S> {
    /// The assignments, every value checked; errors name the setting.
    pub fn assignments(&self) -> anyhow::Result<Assignments<S>> {
        let mut a = Assignments::new();
        if let Some(knobs) = self.knobs {
            for (key, value) in &self.values {
                let knob = knobs
                    .iter()
                    .find(|k| k.key == *key)
                    .expect("from the table");
                a.set(knobs, knob, value.clone())
                    .map_err(|e| anyhow::anyhow!("command line: {e}"))?;
            }
        }
        Ok(a)
    }
}

/// Defines a flattenable group of flags from a table of settings.
macro_rules! knob_group {
    ($(#[$doc:meta])* $name:ident, $settings:ty, $table:expr, $keep:expr, $heading:expr, $configure:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default)]
        pub struct $name(pub Given<$settings>);

        impl clap::Args for $name {
            fn augment_args(cmd: Command) -> Command {
                augment(cmd, $table, $keep, $heading, $configure)
            }

            fn augment_args_for_update(cmd: Command) -> Command {
                Self::augment_args(cmd)
            }
        }

        impl FromArgMatches for $name {
            fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
                Ok(Self(Given {
                    values: given(matches, $table, $keep),
                    knobs: Some($table),
                }))
            }

            fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
                *self = Self::from_arg_matches(matches)?;
                Ok(())
            }
        }
    };
}

knob_group!(
    /// Every per-layer setting (`compress`).
    LayerFlags,
    LayerSettings,
    LAYER_KNOBS,
    |_| true,
    "Per-layer settings (also a recipe's [defaults] and [[layers]] keys)",
    |a| a
);

knob_group!(
    /// The settings `pack` takes: the widths of the packed entries.
    PackFlags,
    LayerSettings,
    LAYER_KNOBS,
    |k| matches!(k.key, "code_bits" | "index_bits"),
    "Packing",
    |a| a
);

knob_group!(
    /// Run-wide settings (`compress`; a recipe's top-level keys).
    RunFlags,
    RunSettings,
    RUN_KNOBS,
    |_| true,
    "Outputs (also recipe keys)",
    |a| a
);

knob_group!(
    /// Retraining settings (`compress --retrain`; a recipe's `[retrain]` keys).
    RetrainFlags,
    eie_evaluate::RetrainChoices,
    eie_evaluate::RETRAIN_KNOBS,
    |_| true,
    "Retraining (with --retrain; also a recipe's [retrain] keys)",
    |a| a.requires("retrain")
);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::CommandFactory;
    use eie_pipeline::Recipe;

    use super::*;

    /// A value a setting's kind accepts, as TOML.
    fn toml_value<S: Default>(k: &Knob<S>) -> String {
        match k.kind {
            Kind::Switch => "true".into(),
            Kind::Int { min, .. } => min.max(1).to_string(),
            Kind::Float => "0.5".into(),
            // A pruning schedule ends at 1; a share schedule stays below it.
            Kind::Floats if k.key == "share_schedule" => "[0.5]".into(),
            Kind::Floats => "[0.5, 1.0]".into(),
            Kind::Choice(words) => format!("\"{}\"", words[0]),
        }
    }

    fn compress_flags() -> Vec<String> {
        let cli = crate::Cli::command();
        let compress = cli.find_subcommand("compress").expect("compress exists");
        compress
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect()
    }

    /// clap's own consistency checks on every command (conflicting short flags, `requires`
    /// naming an argument that does not exist, ...), which otherwise fire only when the
    /// command is run.
    #[test]
    fn the_command_line_is_consistent() {
        crate::Cli::command().debug_assert();
    }

    /// Every per-layer flag is a recipe key and every recipe key a flag: both come from the
    /// one table, and this checks the derivation on both sides.
    #[test]
    fn every_per_layer_flag_is_a_recipe_key_and_back() {
        let flags = compress_flags();
        for k in LAYER_KNOBS {
            assert!(flags.contains(&k.flag()), "--{} missing", k.flag());
            let text = format!("[defaults]\n{} = {}\n", k.key, toml_value(k));
            Recipe::parse(Path::new("r.toml"), &text)
                .unwrap_or_else(|e| panic!("[defaults] {}: {e}", k.key));
            if k.scope == Scope::Everywhere {
                let text = format!(
                    "[[layers]]\npattern = \"*\"\n{} = {}\n",
                    k.key,
                    toml_value(k)
                );
                Recipe::parse(Path::new("r.toml"), &text)
                    .unwrap_or_else(|e| panic!("[[layers]] {}: {e}", k.key));
            }
        }
        let cli = crate::Cli::command();
        let compress = cli.find_subcommand("compress").unwrap();
        let per_layer: Vec<String> = compress
            .get_arguments()
            .filter(|a| {
                a.get_help_heading()
                    .is_some_and(|h| h.starts_with("Per-layer settings"))
            })
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        assert_eq!(per_layer.len(), LAYER_KNOBS.len());
        for f in per_layer {
            let key = f.replace('-', "_");
            let text = format!(
                "[defaults]\n{key} = {}\n",
                toml_value(LAYER_KNOBS.iter().find(|k| k.key == key).expect("a knob"))
            );
            assert!(Recipe::parse(Path::new("r.toml"), &text).is_ok(), "--{f}");
        }
    }

    #[test]
    fn every_retraining_flag_is_a_retrain_key_and_back() {
        let flags = compress_flags();
        for k in eie_evaluate::RETRAIN_KNOBS {
            let t: toml::Table =
                toml::from_str(&format!("{} = {}\n", k.key, toml_value(k))).unwrap();
            Assignments::from_toml(eie_evaluate::RETRAIN_KNOBS, &t, |_| true)
                .unwrap_or_else(|e| panic!("[retrain] {}: {e}", k.key));
            assert_eq!(
                flags.contains(&k.flag()),
                k.scope != Scope::RecipeOnly,
                "--{}",
                k.flag()
            );
        }
        for k in RUN_KNOBS {
            assert!(flags.contains(&k.flag()), "--{}", k.flag());
            let text = format!("{} = {}\n", k.key, toml_value(k));
            Recipe::parse(Path::new("r.toml"), &text).unwrap();
        }
    }
}
