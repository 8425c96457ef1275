//! Building and running the authors' simulator itself on [`AuthorsData`], for the tests and
//! the benchmark that compare these rules with it (docs/timing-model.md "The authors'
//! rules"). It needs `make` and a C++ compiler, and a checkout of their repository
//! (RalphMao/EIE-simulator: `src/`, `Makefile`), which this project does not ship.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::files::AuthorsData;
use crate::error::{Error, Result};

/// Their `main`'s call that starts the layer; its last argument says whether a bias group
/// follows the inputs.
const SET_STATE: &str = "set_state(1, ACT_length, 0, 1)";

/// Their simulator, built for one layer and queue depth in a folder of its own.
#[derive(Debug)]
pub struct Built {
    dir: PathBuf,
}

/// One run of their simulator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    /// The cycles it printed ("One layer done, cycles:N").
    pub cycles: u64,
    /// Wall time of its process, seconds.
    pub seconds: f64,
}

fn failed(dir: &Path, reason: String) -> Error {
    Error::AuthorsFile {
        file: dir.to_path_buf(),
        reason,
    }
}

impl Built {
    /// Copies `checkout`'s `src/` and `Makefile` into `dir` (created; it must not exist),
    /// writes `data`'s files and `params.h` for `rows` outputs and `fifo_depth` slots (and,
    /// for a layer without bias, `set_state`'s bias argument 0 in their `main`), and builds
    /// it as their Makefile does without debugging (`make DEBUG=0 link`: -O3; their default
    /// PROFILE=1 stays, whose registers start at 0: with PROFILE=0 some never get a first
    /// value, `valid_p_p` among them, and a run can write anywhere).
    pub fn new(
        checkout: &Path,
        dir: &Path,
        data: &AuthorsData,
        rows: usize,
        fifo_depth: usize,
    ) -> Result<Self> {
        let io = |p: &Path, e: std::io::Error| failed(p, e.to_string());
        std::fs::create_dir(dir).map_err(|e| io(dir, e))?;
        std::fs::create_dir(dir.join("src")).map_err(|e| io(dir, e))?;
        let src = checkout.join("src");
        for entry in std::fs::read_dir(&src).map_err(|e| io(&src, e))? {
            let entry = entry.map_err(|e| io(&src, e))?;
            let name = entry.file_name();
            let to = dir.join("src").join(&name);
            std::fs::copy(entry.path(), &to).map_err(|e| io(&entry.path(), e))?;
        }
        let makefile = checkout.join("Makefile");
        std::fs::copy(&makefile, dir.join("Makefile")).map_err(|e| io(&makefile, e))?;
        if !data.bias {
            let main = dir.join("src/system.cpp");
            let text = std::fs::read_to_string(&main).map_err(|e| io(&main, e))?;
            if !text.contains(SET_STATE) {
                return Err(failed(
                    &main,
                    format!("no call `{SET_STATE}` to turn the bias off in"),
                ));
            }
            let off = text.replace(SET_STATE, "set_state(1, ACT_length, 0, 0)");
            std::fs::write(&main, off).map_err(|e| io(&main, e))?;
        }
        data.write(dir, rows, fifo_depth)?;
        let out = Command::new("make")
            .args(["-j2", "DEBUG=0", "link"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| failed(dir, format!("make: {e}")))?;
        if !out.status.success() {
            return Err(failed(
                dir,
                format!(
                    "make failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Runs it once (killed after `limit`: a ring of one slot never ends), and reads the
    /// cycles it prints.
    pub fn run(&self, limit: Duration) -> Result<Run> {
        // Their messages go to a file: a pipe nobody reads while it runs could fill and stall
        // it.
        let log = self.dir.join("simulation.log");
        let stderr = std::fs::File::create(&log).map_err(|e| failed(&log, e.to_string()))?;
        let start = Instant::now();
        let mut child = Command::new(self.dir.join("build/simulation"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| failed(&self.dir, format!("running build/simulation: {e}")))?;
        loop {
            if child
                .try_wait()
                .map_err(|e| failed(&self.dir, e.to_string()))?
                .is_some()
            {
                break;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(
                    &self.dir,
                    format!("their simulator ran past {} s", limit.as_secs_f64()),
                ));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        let seconds = start.elapsed().as_secs_f64();
        let status = child.wait().map_err(|e| failed(&self.dir, e.to_string()))?;
        let text = std::fs::read_to_string(&log).map_err(|e| failed(&log, e.to_string()))?;
        if !status.success() {
            return Err(failed(
                &self.dir,
                format!("their simulator failed ({status}): {}", text.trim()),
            ));
        }
        let cycles = text
            .split("cycles:")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                failed(
                    &self.dir,
                    format!("no \"cycles:N\" in their output: {}", text.trim()),
                )
            })?;
        Ok(Run { cycles, seconds })
    }
}
