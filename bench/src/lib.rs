//! `policyc-bench`: every benchmark of the data plane and the control plane in one command, written
//! to BENCHMARKS.md. Not a test: nothing is asserted, CI does not run it; data-plane and apply runs
//! need root (network namespaces, nft), like the e2e suite.
//!
//! ```text
//!  gen::generate(size) ──► sections (compile, agent, dataplane), each repeated `--runs` times
//!                               └──► report::Section (tables + target checks) ──► BENCHMARKS.md
//! ```

pub mod clusters;
pub mod gen;
pub mod report;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use report::{Ctx, Section};

pub type Run = fn(&Ctx) -> Result<Section>;

/// The sections, in report order: name for `--only`, and the function that measures it.
pub const SECTIONS: &[(&str, Run)] = &[("clusters", clusters::run)];

#[derive(clap::Parser, Debug)]
#[command(about = "Benchmarks of policyc; writes BENCHMARKS.md")]
pub struct Args {
    /// Cluster sizes (pods); policies, namespaces and nodes scale with them.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
    sizes: Vec<usize>,
    /// Repetitions of every figure.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only these sections (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where the report goes.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
}

/// Runs the sections `args` asks for and writes the report.
pub fn run(args: Args) -> Result<()> {
    let command = std::iter::once("sudo cargo run --release -p policyc-bench --".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let ctx = Ctx {
        sizes: args.sizes.iter().map(|&n| gen::Params::scaled(n)).collect(),
        runs: args.runs.max(1),
        policyc: build_policyc()?,
    };
    for name in &args.only {
        if !SECTIONS.iter().any(|(n, _)| n == name) {
            bail!(
                "unknown section {name}; known: {:?}",
                SECTIONS.iter().map(|s| s.0).collect::<Vec<_>>()
            );
        }
    }
    let started = utc_now();
    let t0 = Instant::now();
    let mut sections = Vec::new();
    for (name, run) in SECTIONS {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("== {name}");
        let t = Instant::now();
        sections.push(run(&ctx).with_context(|| format!("section {name}"))?);
        eprintln!("== {name}: {:.0} s", t.elapsed().as_secs_f64());
    }
    let text = report::markdown(&command, &started, t0.elapsed(), &ctx, &sections);
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// Builds the release `policyc` the sections run (a no-op when fresh).
fn build_policyc() -> Result<PathBuf> {
    let root = policyc_e2e::policyc::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "-q", "--release", "-p", "policyc", "--bin", "policyc"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release of policyc failed ({status})");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = if target.is_absolute() {
        target
    } else {
        root.join(target)
    }
    .join("release/policyc");
    anyhow::ensure!(bin.exists(), "{} was not built", bin.display());
    Ok(bin)
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
