//! Command-line flags derived from the libraries' setting definitions ([`Knob`]): one flag
//! per setting, named, documented and defaulted by its definition, so a flag and its recipe
//! key cannot drift apart. What the user typed is kept as given ([`Given`]); the commands
//! library checks every range, naming the setting, when it resolves the request.

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};
use eie_commands::Given;
use eie_pipeline::settings::{Knob, Scope, Value, ValueKind};
use eie_pipeline::{LAYER_KNOBS, RUN_KNOBS};

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
            ValueKind::Switch => arg.action(ArgAction::SetTrue),
            kind => arg
                .action(ArgAction::Set)
                .value_name(k.value_name)
                .allow_negative_numbers(kind == ValueKind::Float)
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
) -> Given {
    knobs
        .iter()
        .filter(|k| k.scope != Scope::RecipeOnly && keep(k))
        .filter_map(|k| match k.kind {
            ValueKind::Switch => matches
                .get_flag(k.key)
                .then_some((k.key.to_string(), Value::Switch(true))),
            _ => matches
                .get_one::<Value>(k.key)
                .map(|v| (k.key.to_string(), v.clone())),
        })
        .collect()
}

/// Defines a flattenable group of flags from a table of settings.
macro_rules! knob_group {
    ($(#[$doc:meta])* $name:ident, $table:expr, $keep:expr, $heading:expr, $configure:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default)]
        pub struct $name(pub Given);

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
                Ok(Self(given(matches, $table, $keep)))
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
    LAYER_KNOBS,
    |_| true,
    "Per-layer settings (also a recipe's [defaults] and [[layers]] keys)",
    |a| a
);

knob_group!(
    /// The settings `pack` takes: the widths of the packed entries.
    PackFlags,
    LAYER_KNOBS,
    |k| matches!(k.key, "code_bits" | "index_bits"),
    "Packing",
    |a| a
);

knob_group!(
    /// Run-wide settings (`compress`; a recipe's top-level keys).
    RunFlags,
    RUN_KNOBS,
    |_| true,
    "Outputs (also recipe keys)",
    |a| a
);

knob_group!(
    /// Retraining settings (`compress --retrain`; a recipe's `[retrain]` keys).
    RetrainFlags,
    eie_evaluate::RETRAIN_KNOBS,
    |_| true,
    "Retraining (with --retrain; also a recipe's [retrain] keys)",
    |a| a.requires("retrain")
);

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks on every command (conflicting short flags, `requires`
    /// naming an argument that does not exist, ...), which otherwise fire only when the
    /// command is run. (tests/flags.rs checks that every flag is its setting's.)
    #[test]
    fn the_command_line_is_consistent() {
        crate::Cli::command().debug_assert();
    }
}
