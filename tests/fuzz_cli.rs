//! The CLI entry points on fuzzed inputs (the generators of `compiler/tests/fuzz.rs`): `policyc
//! lint`, `policyc render -f` (text and `--json`) and `policyc matrix` on structured random objects
//! and on mutated fixture files, written to a directory. Never a panic (a Rust panic exits with
//! 101 and prints "panicked"); the exit code is one the commands document (0, 1 findings, 2 input
//! error); a successful render prints a table. `POLICYC_FUZZ_CLI_CASES` (default 80 per
//! generator) sets the number of inputs.

#[path = "../compiler/tests/common/fuzzgen.rs"]
mod fuzzgen;

use std::path::{Path, PathBuf};
use std::process::Command;

use fuzzgen::Input;
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn cases() -> u32 {
    std::env::var("POLICYC_FUZZ_CLI_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(80)
}

fn policyc(args: &[&str], dir: &Path) -> Result<(i32, String), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_policyc"))
        .args(args)
        .arg(dir)
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    if stderr.contains("panicked") || !(0..=2).contains(&code) {
        return Err(format!("policyc {args:?}: exit {code}\n{stderr}"));
    }
    Ok((code, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn run_cli(input: &Input) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for (i, (name, text)) in input.files.iter().enumerate() {
        let base = Path::new(name).file_name().unwrap_or_default().to_string_lossy();
        std::fs::write(dir.path().join(format!("{i}-{base}")), text).map_err(|e| e.to_string())?;
    }
    let d = dir.path();
    policyc(&["lint", "--format", "json", "--all"], d)?;
    policyc(&["lint", "--format", "sarif"], d)?;
    for extra in [&[][..], &["--json", "--log-drops"][..]] {
        let mut args = vec!["render", "--node-name", "node-0"];
        args.extend_from_slice(extra);
        args.push("-f");
        let (code, out) = policyc(&args, d)?;
        if code == 0 && !out.contains("policyc") {
            return Err(format!("render {extra:?} succeeded but printed no table: {out}"));
        }
    }
    policyc(&["matrix", "-o", "json", "-f"], d)?;
    Ok(())
}

fn fuzz(label: &str, strategy: impl Strategy<Value = Input>) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |input| {
        run_cli(&input).map_err(|e| TestCaseError::fail(format!("{e}\ninput:\n{}", input.describe())))
    });
    if let Err(e) = result {
        panic!("{label}: {e}");
    }
    eprintln!(
        "{label}: {} inputs through policyc lint/render/matrix in {:.1?}",
        cases(),
        started.elapsed()
    );
}

fn corpus() -> Vec<Vec<(String, String)>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    fuzzgen::corpus(&root.join("examples"), &root.join("compiler/tests/fixtures"))
}

#[test]
fn cli_never_panics_on_structured_random_objects() {
    fuzz("cli structured", fuzzgen::structured());
}

#[test]
fn cli_never_panics_on_mutated_yaml() {
    fuzz("cli mutated", fuzzgen::mutated(corpus()));
}
