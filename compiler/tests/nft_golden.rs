//! Golden rulesets: every fixture cluster under `tests/fixtures/<case>/` (and `examples/`) rendered
//! for each of its nodes into `tests/golden/<case>-<node>.nft` (plus one `.json`), and every golden
//! accepted by the real `nft -c` in a throwaway network namespace.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p policyc-compiler --test nft_golden`.

mod common;

use std::path::{Path, PathBuf};

use common::{have_nft, load_dir, manifest_dir, node_names, NetNs};
use policyc_compiler::nft::{render, RenderOptions, UnprogrammedPods};
use policyc_compiler::Cluster;

/// Cases whose input is deliberately invalid (the ruleset must still fail closed).
const INVALID_CASES: [&str; 1] = ["invalid-rule"];

/// The one case also rendered as JSON.
const JSON_CASE: (&str, &str) = ("examples", "node-1");

fn cases() -> Vec<(String, PathBuf)> {
    let dir = manifest_dir().join("tests/fixtures");
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.push(("examples".into(), manifest_dir().join("../examples")));
    out.sort();
    out
}

/// The render options a case directory asks for with its marker files.
fn case_options(dir: &Path, node: &str) -> RenderOptions {
    let mut opts = RenderOptions::new(node);
    opts.log_drops = dir.join("LOG_DROPS").exists();
    if dir.join("UNPROGRAMMED_DROP").exists() {
        opts.unprogrammed_pods = UnprogrammedPods::Drop;
    }
    opts
}

fn load_case(name: &str, dir: &Path) -> Cluster {
    load_dir(dir, INVALID_CASES.contains(&name))
}

fn golden_dir() -> PathBuf {
    manifest_dir().join("tests/golden")
}

fn check_golden(path: &Path, actual: &str, mismatches: &mut Vec<String>) {
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => {}
        Ok(_) => mismatches.push(format!("{} differs", path.display())),
        Err(_) => mismatches.push(format!("{} is missing", path.display())),
    }
}

#[test]
fn goldens_match() {
    std::fs::create_dir_all(golden_dir()).unwrap();
    let mut mismatches = Vec::new();
    let mut written = 0;
    for (name, dir) in cases() {
        let cluster = load_case(&name, &dir);
        for node in node_names(&cluster) {
            let opts = case_options(&dir, &node);
            let rs = render(&cluster, &opts);
            let tx = rs.replace();
            check_golden(
                &golden_dir().join(format!("{name}-{node}.nft")),
                &tx.script,
                &mut mismatches,
            );
            if (name.as_str(), node.as_str()) == JSON_CASE {
                let json = serde_json::to_string_pretty(&tx.json()).unwrap() + "\n";
                check_golden(
                    &golden_dir().join(format!("{name}-{node}.json")),
                    &json,
                    &mut mismatches,
                );
            }
            written += 1;
        }
    }
    assert!(written >= 20, "only {written} goldens");
    assert!(
        mismatches.is_empty(),
        "golden mismatches (rerun with UPDATE_GOLDEN=1 and review the diff):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn invalid_cases_have_diagnostics() {
    for name in INVALID_CASES {
        let dir = manifest_dir().join("tests/fixtures").join(name);
        let texts: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
            .collect();
        let (_, _, diags) =
            policyc_compiler::load::load_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        assert!(!diags.is_empty(), "{name} should have diagnostics");
    }
}

#[test]
fn goldens_are_accepted_by_nft() {
    if !have_nft() {
        return;
    }
    let ns = NetNs::new("golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut checked = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        match f.extension().and_then(|e| e.to_str()) {
            Some("nft") => {
                ns.nft_ok(&["-c", "-f", "-"], &text);
            }
            Some("json") => {
                ns.nft_ok(&["-j", "-c", "-f", "-"], &text);
            }
            _ => continue,
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} golden files checked");
}

/// Only one case has a JSON golden; every case's JSON form must still be accepted.
#[test]
fn every_case_as_json_is_accepted_by_nft() {
    if !have_nft() {
        return;
    }
    let ns = NetNs::new("json");
    for (name, dir) in cases() {
        let cluster = load_case(&name, &dir);
        for node in node_names(&cluster) {
            let opts = case_options(&dir, &node);
            let json = render(&cluster, &opts).replace().json_text();
            ns.nft_ok(&["-j", "-c", "-f", "-"], &json);
        }
    }
}
