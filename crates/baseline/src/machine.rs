//! The machine the baseline runs on: its CPU, its threads, an energy counter if it exposes
//! one (Linux powercap, e.g. Intel RAPL), and whether it has a GPU. Nothing is assumed: what
//! the machine does not say is reported as unknown or unavailable.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// What the baseline knows of the machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// The CPU's model name (`/proc/cpuinfo`), or "unknown".
    pub cpu: String,
    /// Threads the products may use.
    pub threads: usize,
    /// Where energy is measured, or why it is not.
    pub energy: String,
    /// Whether a GPU was found, and that none is measured.
    pub gpu: String,
    /// The energy counter, if readable.
    #[serde(skip)]
    pub counter: Option<EnergyCounter>,
}

/// A cumulative energy counter in microjoules: the CPU package zones of Linux's powercap
/// interface (named `package-N`), summed; other top-level zones (`psys`, which already holds
/// the packages, and the MMIO copies of the package counters) are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyCounter {
    /// `energy_uj` files, one per package zone.
    pub files: Vec<PathBuf>,
    /// Each zone's wrap-around range, microjoules.
    pub ranges: Vec<u64>,
}

impl EnergyCounter {
    /// The package zones under `root` (normally `/sys/class/powercap`) whose counters and
    /// wrap-around ranges can be read; none if there are none.
    pub fn find(root: &Path) -> Option<Self> {
        let mut zones: Vec<PathBuf> = std::fs::read_dir(root)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            // Top-level RAPL zones only (intel-rapl:0, not its sub-zone intel-rapl:0:0, nor
            // intel-rapl-mmio:0, a second view of the same package).
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.matches(':').count() == 1 && !n.contains("mmio"))
            })
            .filter(|p| {
                std::fs::read_to_string(p.join("name"))
                    .is_ok_and(|name| name.trim().starts_with("package"))
            })
            .collect();
        zones.sort();
        let mut files = Vec::new();
        let mut ranges = Vec::new();
        for z in zones {
            let file = z.join("energy_uj");
            // Without its range a wrap-around cannot be undone: no reading rather than a
            // wrong one.
            if let (Some(_), Some(range)) =
                (read_u64(&file), read_u64(&z.join("max_energy_range_uj")))
            {
                files.push(file);
                ranges.push(range);
            }
        }
        (!files.is_empty()).then_some(Self { files, ranges })
    }

    /// Every zone's counter now, microjoules.
    pub fn read(&self) -> Option<Vec<u64>> {
        self.files.iter().map(|f| read_u64(f)).collect()
    }

    /// Joules between two readings, each zone's wrap-around undone.
    pub fn joules_between(&self, before: Vec<u64>, after: Vec<u64>) -> f64 {
        let uj: u64 = before
            .iter()
            .zip(&after)
            .zip(&self.ranges)
            .map(|((&b, &a), &range)| {
                if a >= b {
                    a - b
                } else {
                    range.saturating_sub(b) + a
                }
            })
            .sum();
        uj as f64 / 1e6
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Machine {
    /// This machine, as Linux describes it.
    pub fn this() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let powercap = Path::new("/sys/class/powercap");
        let counter = EnergyCounter::find(powercap);
        let energy = match &counter {
            Some(c) => format!(
                "measured with {} (the whole package, other work included)",
                c.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
            None => "unavailable: this machine exposes no readable energy counter (/sys/class/powercap/*/energy_uj)".into(),
        };
        let gpu = if ["/dev/nvidia0", "/dev/dri", "/dev/kfd"]
            .iter()
            .any(|p| Path::new(p).exists())
        {
            "a GPU device is present, but no GPU baseline is measured".into()
        } else {
            "none on this machine: not measured".into()
        };
        Self {
            cpu,
            threads,
            energy,
            gpu,
            counter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_powercap_tree_is_read_and_wraps() {
        let dir = std::env::temp_dir().join(format!("eie-powercap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (zone, name, uj, range) in [
            ("intel-rapl:0", "package-0", 900, 1000),
            ("intel-rapl:1", "package-1", 50, 1000),
            // psys holds the packages already; the MMIO zone repeats package 0.
            ("intel-rapl:2", "psys", 5000, 10000),
            ("intel-rapl-mmio:0", "package-0", 900, 1000),
        ] {
            let z = dir.join(zone);
            std::fs::create_dir_all(&z).unwrap();
            std::fs::write(z.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(z.join("energy_uj"), format!("{uj}\n")).unwrap();
            std::fs::write(z.join("max_energy_range_uj"), format!("{range}\n")).unwrap();
        }
        // A sub-zone is part of its package: not counted twice.
        std::fs::create_dir_all(dir.join("intel-rapl:0:0")).unwrap();
        std::fs::write(dir.join("intel-rapl:0:0").join("energy_uj"), "7\n").unwrap();
        let c = EnergyCounter::find(&dir).unwrap();
        assert_eq!(c.files.len(), 2);
        let before = c.read().unwrap();
        assert_eq!(before, [900, 50]);
        // Zone 0 wraps past 1000 to 100: 200 uJ; zone 1 goes to 350: 300 uJ.
        assert!((c.joules_between(before, vec![100, 350]) - 500e-6).abs() < 1e-12);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(EnergyCounter::find(&dir).is_none());
    }
}
