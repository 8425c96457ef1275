//! Report pieces several commands share, and the schema every report's JSON names.

pub mod cpu;
pub mod energy;
pub mod table;
pub mod text;
pub mod timing;

use serde::{Serialize, Serializer};

/// The version of the reports' JSON schema. It goes up when a field is removed, renamed or
/// changes meaning; adding a field does not change it.
pub const SCHEMA_VERSION: u32 = 1;

/// Which report a JSON document is, and in which schema version: serialised as the first
/// field, `"schema": "eie-compress.simulate.v1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema(pub &'static str);

impl Schema {
    /// The text written into the JSON.
    pub fn text(&self) -> String {
        format!("eie-compress.{}.v{SCHEMA_VERSION}", self.0)
    }
}

impl Serialize for Schema {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

/// A value with the layer it is of.
#[derive(Debug, Clone, Serialize)]
pub struct Named<T> {
    /// The layer.
    pub name: String,
    /// The value, its fields beside the name.
    #[serde(flatten)]
    pub value: T,
}

/// Pretty JSON of `report`, ending in a new line.
pub fn to_json<T: Serialize>(report: &T) -> crate::Result<String> {
    Ok(serde_json::to_string_pretty(report)? + "\n")
}
