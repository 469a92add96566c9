//! Figures and the BENCHMARKS.md they end up in: medians with min–max over repeated runs, tables
//! per section, and a summary of every target with the measured value next to it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::gen::Params;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

/// Median (mean of the middle two for an even count), min and max. Bench code: an empty sample
/// set is a bug in the caller.
pub fn stat(samples: &[f64]) -> Stat {
    assert!(!samples.is_empty(), "no samples");
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Stat {
        median,
        min: s[0],
        max: s[n - 1],
        n,
    }
}

/// The `q`-quantile (0..=1) by nearest rank.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    assert!(!samples.is_empty(), "no samples");
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

impl Stat {
    /// `12.3 ms (10.1–15.0, n=5)`.
    pub fn show(&self, unit: &str) -> String {
        let sep = if unit.is_empty() { "" } else { " " };
        if self.n == 1 {
            return format!("{}{sep}{unit} (n=1)", num(self.median));
        }
        format!(
            "{}{sep}{unit} ({}–{}, n={})",
            num(self.median),
            num(self.min),
            num(self.max),
            self.n
        )
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[derive(Clone, Debug, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn markdown(&self, out: &mut String) {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.header));
        out.push_str(&line(&vec!["---".to_string(); self.header.len()]));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out.push('\n');
    }
}

/// One target of the issue and what was measured against it.
#[derive(Clone, Debug)]
pub struct Check {
    pub figure: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Section {
    pub title: String,
    /// How it was measured (markdown).
    pub text: String,
    pub tables: Vec<Table>,
    pub checks: Vec<Check>,
}

/// What every section gets: the sizes to run, how many repetitions, the binary under test.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub sizes: Vec<Params>,
    pub runs: usize,
    /// The release `policyc` binary.
    pub policyc: PathBuf,
}

/// Facts about the machine, for the report header.
pub fn machine() -> Vec<(String, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    let os = read("/etc/os-release")
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| l.trim_start_matches("PRETTY_NAME=").trim_matches('"').to_string())
        .unwrap_or_default();
    let nft = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "not found".into());
    let load = read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        ("CPU".into(), format!("{cpu}, {cores} cores")),
        ("memory".into(), format!("{:.1} GiB", mem_kib as f64 / 1048576.0)),
        ("OS / kernel".into(), format!("{os}, Linux {kernel}")),
        ("nft".into(), nft),
        ("load average at start".into(), load),
    ]
}

/// The whole BENCHMARKS.md.
pub fn markdown(command: &str, started: &str, took: Duration, ctx: &Ctx, sections: &[Section]) -> String {
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str("Written by the benchmark command; edit the code in `bench/`, not this file.\n\n");
    let _ = writeln!(out, "```sh\n{command}\n```\n");
    let _ = writeln!(out, "Run {started}, took {:.0} s. Machine:\n", took.as_secs_f64());
    for (k, v) in machine() {
        let _ = writeln!(out, "- {k}: {v}");
    }
    let sizes: Vec<String> = ctx
        .sizes
        .iter()
        .map(|p| format!("{} ({} namespaces, {} nodes)", p.label(), p.namespaces, p.nodes))
        .collect();
    let _ = writeln!(
        out,
        "- clusters (`bench/src/gen.rs`, seed 42): {}\n- every figure: median (min–max, n = runs) over \
         repeated runs in this one invocation; ratios compare figures measured side by side\n",
        sizes.join("; ")
    );
    out.push_str("## Targets\n\n");
    let mut t = Table::new(&["figure", "target", "measured", "met"]);
    for s in sections {
        for c in &s.checks {
            let met = if c.met { "yes" } else { "**no**" };
            t.row(vec![
                c.figure.clone(),
                c.target.clone(),
                c.measured.clone(),
                met.into(),
            ]);
        }
    }
    t.markdown(&mut out);
    for s in sections {
        let _ = writeln!(out, "## {}\n", s.title);
        if !s.text.is_empty() {
            out.push_str(s.text.trim_end());
            out.push_str("\n\n");
        }
        for t in &s.tables {
            t.markdown(&mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = stat(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(stat(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(stat(&[12.34, 10.0, 15.0]).show("ms"), "12.3 ms (10.0–15.0, n=3)");
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }
}
