//! Running the testbench in Icarus Verilog or Verilator, and reading what it printed.

use std::path::Path;
use std::process::Command;

use crate::design::{DESCRIPTORS_FILE, Rendered};
use crate::error::{Error, Result};
use crate::sources::SOURCES;

/// The file in the work folder that keeps everything the tools printed.
pub const LOG_FILE: &str = "simulation.log";

/// A Verilog simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulator {
    /// Icarus Verilog (`iverilog -g2012`, then `vvp`).
    Iverilog,
    /// Verilator (`verilator --binary`), compiled to C++: much faster on large models.
    Verilator,
}

impl Simulator {
    /// Both, in the order the command line lists them.
    pub const ALL: [Simulator; 2] = [Simulator::Iverilog, Simulator::Verilator];

    /// The simulator of `name` ([`Simulator::name`]).
    pub fn named(name: &str) -> Option<Simulator> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Simulator::Iverilog => "iverilog",
            Simulator::Verilator => "verilator",
        }
    }
}

/// What a testbench run printed and meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRun {
    /// Every output and accumulator matched.
    pub pass: bool,
    /// The cycle count of each layer that finished, in order.
    pub cycles: Vec<u64>,
    /// The FAIL lines (empty on PASS).
    pub failures: Vec<String>,
    /// Everything the testbench printed.
    pub log: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

fn run_tool(
    tool: &'static str,
    simulator: Simulator,
    command: &mut Command,
) -> Result<std::process::Output> {
    command.output().map_err(|source| Error::NoSimulator {
        tool,
        simulator: simulator.name(),
        source,
    })
}

/// Runs a build step, appending what it printed to `log`; a failure is the tool's error with
/// the end of what it printed.
fn build(
    tool: &'static str,
    simulator: Simulator,
    command: &mut Command,
    log: &mut String,
) -> Result<()> {
    let out = run_tool(tool, simulator, command)?;
    *log += &String::from_utf8_lossy(&out.stdout);
    *log += &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Tool {
        tool,
        status: out.status.to_string(),
        output: tail(&String::from_utf8_lossy(&out.stderr), 30),
    })
}

/// How the testbench loads the design's memories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loading {
    /// Written directly into the memories (fast).
    Direct,
    /// Through the design's host write port, one word a cycle, as a chip is loaded.
    HostPort,
}

/// Writes the RTL and the testbench files into `work` (an empty folder), builds the
/// testbench with `simulator` and runs it, loading the memories as `loading` says.
pub fn run(
    work: &Path,
    rendered: &Rendered,
    simulator: Simulator,
    loading: Loading,
) -> Result<SimRun> {
    let plusargs: &[&str] = match loading {
        Loading::Direct => &[],
        Loading::HostPort => &["+host_load"],
    };
    let work = &std::fs::canonicalize(work).map_err(io(work))?;
    let rtl = work.join("rtl");
    std::fs::create_dir_all(rtl.join("tb")).map_err(io(&rtl))?;
    let mut sources = Vec::new();
    for (name, text) in SOURCES {
        let path = rtl.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
        // relative to the work folder, where the tools run
        sources.push(format!("rtl/{name}"));
    }
    for (name, text) in [
        ("tb_params.vh", &rendered.params),
        ("tb_model.vh", &rendered.model),
        (DESCRIPTORS_FILE, &rendered.descriptors),
    ] {
        let path = work.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    // Everything the tools print, kept in the work folder whatever happens.
    let mut build_log = String::new();
    let result = simulate(work, &sources, simulator, plusargs, &mut build_log);
    let log = match &result {
        Ok(out) => {
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        }
        Err(_) => String::new(),
    };
    let log_path = work.join(LOG_FILE);
    std::fs::write(&log_path, build_log + &log).map_err(io(&log_path))?;
    let output = result?;
    let parsed = parse(&log);
    if !parsed.pass && parsed.failures.is_empty() {
        return Err(Error::Tool {
            tool: simulator.name(),
            status: output.status.to_string(),
            output: tail(&log, 30),
        });
    }
    if parsed.pass && !output.status.success() {
        return Err(Error::Tool {
            tool: simulator.name(),
            status: output.status.to_string(),
            output: tail(&log, 30),
        });
    }
    Ok(parsed)
}

/// Builds the testbench and runs it.
fn simulate(
    work: &Path,
    sources: &[String],
    simulator: Simulator,
    plusargs: &[&str],
    log: &mut String,
) -> Result<std::process::Output> {
    Ok(match simulator {
        Simulator::Iverilog => {
            build(
                "iverilog",
                simulator,
                Command::new("iverilog")
                    .args(["-g2012", "-s", "eie_tb", "-o", "eie_tb.vvp", "-I", "."])
                    .args(sources)
                    .current_dir(work),
                log,
            )?;
            run_tool(
                "vvp",
                simulator,
                Command::new("vvp")
                    .args(["-n", "eie_tb.vvp"])
                    .args(plusargs)
                    .current_dir(work),
            )?
        }
        Simulator::Verilator => {
            build(
                "verilator",
                simulator,
                Command::new("verilator")
                    .args([
                        "--binary",
                        "-j",
                        "2",
                        "-O2",
                        "-Wno-fatal",
                        "-Wno-lint",
                        "-Wno-style",
                        // an out-of-range select is a design bug, never noise
                        "-Werror-SELRANGE",
                        "--top-module",
                        "eie_tb",
                        "--Mdir",
                        "obj",
                        "-o",
                        "eie_tb",
                        "-I.",
                    ])
                    .args(sources)
                    .current_dir(work),
                log,
            )?;
            // Built a moment ago: failing to start it is an I/O error, not a missing tool.
            let binary = work.join("obj").join("eie_tb");
            Command::new(&binary)
                .args(plusargs)
                .current_dir(work)
                .output()
                .map_err(io(&binary))?
        }
    })
}

/// Reads a testbench's log: `EIE-RTL layer L cycles C NAME` per layer, `EIE-RTL PASS`, and
/// `FAIL: ...` lines.
pub fn parse(log: &str) -> SimRun {
    let mut run = SimRun {
        pass: false,
        cycles: Vec::new(),
        failures: Vec::new(),
        log: log.to_string(),
    };
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("EIE-RTL layer ") {
            let mut words = rest.split_whitespace();
            if let (Some(_), Some("cycles"), Some(c)) = (words.next(), words.next(), words.next())
                && let Ok(c) = c.parse()
            {
                run.cycles.push(c);
            }
        } else if line.trim() == "EIE-RTL PASS" {
            run.pass = true;
        } else if let Some(at) = line.find("FAIL: ") {
            run.failures.push(line[at..].to_string());
        }
    }
    if !run.failures.is_empty() {
        run.pass = false;
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_read_line_by_line() {
        let run =
            parse("EIE-RTL layer 0 cycles 37 fc1\nEIE-RTL layer 1 cycles 12 fc 2\nEIE-RTL PASS\n");
        assert!(run.pass);
        assert_eq!(run.cycles, vec![37, 12]);
        let run =
            parse("EIE-RTL layer 0 cycles 37 fc1\nFATAL: tb.sv:9: FAIL: layer 0 (fc1) PE 1\n");
        assert!(!run.pass);
        assert_eq!(run.failures, vec!["FAIL: layer 0 (fc1) PE 1".to_string()]);
        // a PASS after a FAIL is no pass
        assert!(!parse("FAIL: x\nEIE-RTL PASS\n").pass);
    }
}
