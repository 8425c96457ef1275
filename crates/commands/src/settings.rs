//! Settings given by name, as a flag or a keyword argument gives them, checked when a
//! request is resolved.

use eie_pipeline::settings::{Assignments, Knob, Value};

use crate::error::Result;

/// Settings given by their key (a recipe key, a flag's name with `_` for `-`), each value of
/// its setting's kind ([`Knob::parse`] makes one from text). Checked, every range and
/// group named, when the request is resolved.
pub type Given = Vec<(String, Value)>;

/// `given` as assignments of the settings in `knobs`: an unknown key, a key given twice, a
/// value of the wrong kind or out of range, or two settings of one group is an error naming
/// the setting.
pub(crate) fn assignments<S: Default>(
    knobs: &'static [Knob<S>],
    given: &Given,
) -> Result<Assignments<S>> {
    let mut a = Assignments::new();
    let place = |reason: String| eie_pipeline::Error::Setting {
        place: "command line".into(),
        reason,
    };
    for (i, (key, value)) in given.iter().enumerate() {
        if given[..i].iter().any(|(k, _)| k == key) {
            return Err(place(format!("{key} is given twice")).into());
        }
        let knob = eie_pipeline::settings::find(knobs, key).map_err(place)?;
        a.set(knobs, knob, value.clone()).map_err(place)?;
    }
    Ok(a)
}
