//! End-to-end tests of the `eie-compress` binary: each runs the real executable in a
//! temporary folder. Modules by command; `bad_input` holds one test per hostile input;
//! `regression` one test per fixed bug.

mod util;

mod accuracy;
mod bad_input;
mod calibrated;
mod compress;
mod cpu;
mod energy;
mod flags;
mod language;
mod layout;
mod models;
mod pack;
mod regression;
mod report;
mod rtl;
mod simulate;
mod tokens;
mod unpack;
