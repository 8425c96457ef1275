//! `inspect`: what a packed model holds, as a table or JSON.

use std::path::PathBuf;

use anyhow::Result;
use eie_commands::inspect::{Pes, Request};
use eie_commands::report::to_json;

use crate::render::summary::{pe_arrays, summary};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder of `pack` or `compress` (or a model.eie file).
    pub dir: PathBuf,
    /// Print JSON: every layer with its codebook and every PE's codes, z and pointers.
    #[arg(long)]
    pub json: bool,
    /// Only this layer.
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Only this PE (its arrays are printed in the table view too).
    #[arg(long, value_name = "K")]
    pub pe: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    let pes = match (args.pe, args.json) {
        (Some(k), _) => Pes::One(k),
        (None, true) => Pes::All,
        (None, false) => Pes::None,
    };
    let request = Request {
        dir: args.dir,
        layer: args.layer,
        pes,
    };
    let report = request.run()?;
    if args.json {
        out!("{}", to_json(&report)?);
    } else {
        out!("{}", summary(&report));
        for l in &report.layers {
            for pe in &l.pe {
                out!("{}", pe_arrays(l, pe));
            }
        }
    }
    Ok(())
}
