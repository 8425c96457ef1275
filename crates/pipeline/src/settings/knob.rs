//! The machinery every setting shares: what a value may be, where it may be given, one
//! definition per setting ([`Knob`]), and the values given in one place ([`Assignments`]).

/// What a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A switch: a flag without a value on the command line, `true` or `false` in a recipe.
    Switch,
    /// A whole number in `min..=max`.
    Int {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// A number (the setting checks its range).
    Float,
    /// A list of numbers (recipes only).
    Floats,
    /// One word of a fixed set.
    Choice(&'static [&'static str]),
}

/// A value given to a setting.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Of a [`ValueKind::Switch`].
    Switch(bool),
    /// Of a [`ValueKind::Int`].
    Int(u64),
    /// Of a [`ValueKind::Float`].
    Float(f64),
    /// Of a [`ValueKind::Floats`].
    Floats(Vec<f64>),
    /// Of a [`ValueKind::Choice`].
    Choice(&'static str),
}

impl Value {
    // The accessors are only called by a knob on its own kind's values, which
    // `Assignments::set` checked, so a mismatch is a bug in a knob table.

    /// The integer of a [`Value::Int`].
    pub fn int(&self) -> u64 {
        match self {
            Value::Int(v) => *v,
            other => unreachable!("an integer setting got {other:?}"),
        }
    }

    /// The number of a [`Value::Float`].
    pub fn float(&self) -> f64 {
        match self {
            Value::Float(v) => *v,
            other => unreachable!("a number setting got {other:?}"),
        }
    }

    /// The state of a [`Value::Switch`].
    pub fn switch(&self) -> bool {
        match self {
            Value::Switch(v) => *v,
            other => unreachable!("a switch setting got {other:?}"),
        }
    }

    /// The word of a [`Value::Choice`].
    pub fn choice(&self) -> &'static str {
        match self {
            Value::Choice(v) => v,
            other => unreachable!("a choice setting got {other:?}"),
        }
    }

    /// The numbers of a [`Value::Floats`].
    pub fn floats(&self) -> &[f64] {
        match self {
            Value::Floats(v) => v,
            other => unreachable!("a list setting got {other:?}"),
        }
    }

    /// Whether the value is of `kind` and within it: an integer in its range, a word of its
    /// choice. (Text and TOML are parsed to such values; a library caller gives them as they
    /// are, and they are checked again when given.)
    fn fits(&self, kind: ValueKind) -> Result<(), String> {
        match (self, kind) {
            (Value::Int(v), ValueKind::Int { min, max }) if !(min..=max).contains(v) => {
                Err(format!("{v} is outside {min}..={max}"))
            }
            (Value::Choice(w), ValueKind::Choice(words)) if !words.contains(w) => {
                Err(format!("expected one of {}, got \"{w}\"", words.join(", ")))
            }
            (Value::Switch(_), ValueKind::Switch)
            | (Value::Int(_), ValueKind::Int { .. })
            | (Value::Float(_), ValueKind::Float)
            | (Value::Floats(_), ValueKind::Floats)
            | (Value::Choice(_), ValueKind::Choice(_)) => Ok(()),
            _ => Err(format!("a value of the wrong kind ({self})")),
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Switch(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Floats(v) => write!(f, "{v:?}"),
            Value::Choice(v) => f.write_str(v),
        }
    }
}

/// Where a setting may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// On the command line, in a recipe's table and in its `[[layers]]` rules.
    Everywhere,
    /// On the command line and in a recipe's table, not per layer.
    NotPerLayer,
    /// In a recipe only.
    RecipeOnly,
}

/// One setting of the settings type `S`, defined once.
pub struct Knob<S: 'static> {
    /// The recipe key; the command-line flag is `--` and the key with `-` for `_`.
    pub key: &'static str,
    /// The value's name in help text (empty for a switch).
    pub value_name: &'static str,
    /// What it does (the flag's help; the default is added from `S::default()`).
    pub doc: &'static str,
    /// What it takes.
    pub kind: ValueKind,
    /// Settings of one group set the same thing: one replaces another, and a source may give
    /// at most one of them. The group's description, for messages.
    pub group: Option<&'static str>,
    /// Where it may be given.
    pub scope: Scope,
    /// A range check beyond the kind's, naming the key.
    pub check: fn(&Value) -> Result<(), String>,
    /// Sets it.
    pub apply: fn(&mut S, &Value),
    /// Its value in `s`, as text (None when `s` does not set it), for help and provenance.
    pub show: fn(&S) -> Option<String>,
}

impl<S> std::fmt::Debug for Knob<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knob").field("key", &self.key).finish()
    }
}

/// No check beyond the kind's.
pub fn any(_: &Value) -> Result<(), String> {
    Ok(())
}

impl<S: Default> Knob<S> {
    /// The command-line flag's long name, without the dashes.
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The default, as text (None: no default, or a switch that is off).
    pub fn default_text(&self) -> Option<String> {
        (self.show)(&S::default())
    }

    /// The value of command-line text: a number, an integer in range, or one of the words.
    pub fn parse(&self, text: &str) -> Result<Value, String> {
        match self.kind {
            ValueKind::Switch => match text {
                "true" => Ok(Value::Switch(true)),
                "false" => Ok(Value::Switch(false)),
                _ => Err(format!("expected true or false, got \"{text}\"")),
            },
            ValueKind::Int { min, max } => match text.parse::<u64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(Value::Int(v)),
                _ => Err(format!(
                    "expected an integer in {min}..={max}, got \"{text}\""
                )),
            },
            ValueKind::Float => text
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| format!("expected a number, got \"{text}\"")),
            ValueKind::Floats => text
                .split(',')
                .map(|t| t.trim().parse::<f64>())
                .collect::<Result<Vec<f64>, _>>()
                .map(Value::Floats)
                .map_err(|_| format!("expected numbers separated by commas, got \"{text}\"")),
            ValueKind::Choice(words) => words
                .iter()
                .find(|&&w| w == text)
                .map(|&w| Value::Choice(w))
                .ok_or_else(|| format!("expected one of {}, got \"{text}\"", words.join(", "))),
        }
    }

    /// The value of a recipe's TOML value.
    pub fn from_toml(&self, value: &toml::Value) -> Result<Value, String> {
        let wrong = || {
            let what = match self.kind {
                ValueKind::Switch => "true or false".to_string(),
                ValueKind::Int { .. } => "an integer".to_string(),
                ValueKind::Float => "a number".to_string(),
                ValueKind::Floats => "a list of numbers".to_string(),
                ValueKind::Choice(words) => format!("one of {}", words.join(", ")),
            };
            format!("{}: expected {what}, got {}", self.key, describe(value))
        };
        match (self.kind, value) {
            (ValueKind::Switch, toml::Value::Boolean(b)) => Ok(Value::Switch(*b)),
            (ValueKind::Int { min, max }, toml::Value::Integer(i)) => match u64::try_from(*i) {
                Ok(v) if (min..=max).contains(&v) => Ok(Value::Int(v)),
                _ => Err(format!("{} {i} is outside {min}..={max}", self.key)),
            },
            (ValueKind::Float, toml::Value::Float(f)) => Ok(Value::Float(*f)),
            (ValueKind::Float, toml::Value::Integer(i)) => Ok(Value::Float(*i as f64)),
            (ValueKind::Floats, toml::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    toml::Value::Float(f) => Some(*f),
                    toml::Value::Integer(i) => Some(*i as f64),
                    _ => None,
                })
                .collect::<Option<Vec<f64>>>()
                .map(Value::Floats)
                .ok_or_else(wrong),
            (ValueKind::Choice(_), toml::Value::String(s)) => {
                self.parse(s).map_err(|e| format!("{}: {e}", self.key))
            }
            _ => Err(wrong()),
        }
    }
}

/// A TOML value as a message shows it.
pub(crate) fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("a {}", other.type_str()),
    }
}

/// Values given to settings of type `S` in one place (the command line, a recipe table, a
/// rule), each checked when given.
pub struct Assignments<S: 'static> {
    items: Vec<(&'static Knob<S>, Value)>,
}

impl<S> Clone for Assignments<S> {
    fn clone(&self) -> Self {
        Self {
            items: self.items.clone(),
        }
    }
}

impl<S> Default for Assignments<S> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<S> std::fmt::Debug for Assignments<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.items.iter().map(|(k, v)| (k.key, v)))
            .finish()
    }
}

/// "a, b and c".
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl<S: Default> Assignments<S> {
    /// Nothing given.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives `knob` the value `value`, checking its kind and range and that no other setting
    /// of its group is given here (`knobs`: the table, to name the group's members).
    pub fn set(
        &mut self,
        knobs: &'static [Knob<S>],
        knob: &'static Knob<S>,
        value: Value,
    ) -> Result<(), String> {
        value
            .fits(knob.kind)
            .map_err(|e| format!("{}: {e}", knob.key))?;
        (knob.check)(&value)?;
        if let Some(group) = knob.group
            && self
                .items
                .iter()
                .any(|(k, _)| k.group == Some(group) && k.key != knob.key)
        {
            let members: Vec<&str> = knobs
                .iter()
                .filter(|k| k.group == Some(group))
                .map(|k| k.key)
                .collect();
            return Err(format!("give one of {}", and_list(&members)));
        }
        self.items.retain(|(k, _)| k.key != knob.key);
        self.items.push((knob, value));
        Ok(())
    }

    /// Gives `key` the value of command-line text `text` (see [`Knob::parse`]).
    pub fn set_text(
        &mut self,
        knobs: &'static [Knob<S>],
        key: &str,
        text: &str,
    ) -> Result<(), String> {
        let knob = find(knobs, key)?;
        let value = knob.parse(text).map_err(|e| format!("{key}: {e}"))?;
        self.set(knobs, knob, value)
    }

    /// The settings of a recipe table. `allowed` says which knobs may appear there; any other
    /// key is an error naming it and the keys that may.
    pub fn from_toml(
        knobs: &'static [Knob<S>],
        table: &toml::Table,
        allowed: impl Fn(&Knob<S>) -> bool,
    ) -> Result<Self, String> {
        let mut out = Self::new();
        for (key, value) in table {
            let Some(knob) = knobs.iter().find(|k| k.key == key && allowed(k)) else {
                let keys: Vec<&str> = knobs.iter().filter(|k| allowed(k)).map(|k| k.key).collect();
                return Err(format!(
                    "unknown key \"{key}\" (expected one of {})",
                    keys.join(", ")
                ));
            };
            let value = knob.from_toml(value)?;
            out.set(knobs, knob, value)?;
        }
        Ok(out)
    }

    /// Whether nothing is given.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The value given to `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.items
            .iter()
            .find(|(k, _)| k.key == key)
            .map(|(_, v)| v)
    }

    /// The keys given, in the order given.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.items.iter().map(|(k, _)| k.key)
    }

    /// Whether any key of `group` is given.
    pub fn has_group(&self, group: &str) -> bool {
        self.items.iter().any(|(k, _)| k.group == Some(group))
    }

    /// What both give: a key, or a group (one setting of it in each).
    pub fn overlap(&self, other: &Self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for (k, _) in &self.items {
            let both = match k.group {
                Some(g) => other.has_group(g),
                None => other.get(k.key).is_some(),
            };
            let what = k.group.unwrap_or(k.key);
            if both && !out.contains(&what) {
                out.push(what);
            }
        }
        out
    }

    /// Applies every given value to `s`, in the order given.
    pub fn apply(&self, s: &mut S) {
        for (k, v) in &self.items {
            (k.apply)(s, v);
        }
    }

    /// `self` with `later`'s values on top.
    pub fn merged(&self, later: &Self) -> Self {
        let mut out = self.clone();
        for (k, v) in &later.items {
            out.items
                .retain(|(o, _)| o.key != k.key && (k.group.is_none() || o.group != k.group));
            out.items.push((k, v.clone()));
        }
        out
    }
}

/// The knob called `key`.
pub fn find<S>(knobs: &'static [Knob<S>], key: &str) -> Result<&'static Knob<S>, String> {
    knobs
        .iter()
        .find(|k| k.key == key)
        .ok_or_else(|| format!("no setting \"{key}\""))
}
