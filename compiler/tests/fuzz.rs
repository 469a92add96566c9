//! Fuzzing the whole pure pipeline: text → load → model → lint, oracle (matrix, explain) →
//! nft render (text and JSON), on structured random Kubernetes objects full of odd and invalid
//! values and on byte-level mutations of valid YAML. Two properties: nothing panics (proptest
//! catches the panic and shrinks the input), and every rendered ruleset is accepted by `nft -c`
//! (text, and JSON with `-j`), checked in batches in a throwaway network namespace.
//!
//! `POLICYC_FUZZ_CASES` sets the number of cases per generator (default 300, about 20-40 s of
//! debug build on the development machine); e.g. `POLICYC_FUZZ_CASES=20000` for a long run.

mod common;
#[path = "common/fuzzgen.rs"]
mod fuzzgen;

use std::cell::RefCell;

use common::{have_nft, manifest_dir, NetNs};
use fuzzgen::Input;
use policyc_compiler::explain::explain_pod;
use policyc_compiler::lint::{self, Config};
use policyc_compiler::load::load_texts;
use policyc_compiler::matrix::{default_family, default_ports, matrix};
use policyc_compiler::nft::{render, RenderOptions, UnprogrammedPods};
use policyc_compiler::spans::Spans;
use policyc_compiler::{Engine, Family};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::Value;

fn cases() -> u32 {
    std::env::var("POLICYC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// One ruleset to check with nft: the script and JSON of its replace transaction, and the input.
struct Rendered {
    /// A policy group chain (`ing-*`, `egr-*`): some policy selects a pod of this node.
    enforcing: bool,
    script: String,
    json: Value,
    input: usize,
}

/// The pipeline on one input; panics are the failures proptest looks for. Each ruleset gets its
/// own table name, so many can be checked in one nft transaction.
fn pipeline(input: &Input, case: usize, out: &mut Vec<Rendered>) {
    let (cluster, objects, diags) = load_texts(input.files.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    // Every diagnostic names something and prints.
    for d in &diags {
        let _ = d.to_string();
    }
    let mut spans = Spans::new();
    for (n, t) in &input.files {
        spans.add_file(n, t);
    }
    let findings = lint::lint(
        &lint::Input {
            cluster: &cluster,
            objects: &objects,
            diagnostics: &diags,
            spans: Some(&spans),
        },
        &Config {
            all: true,
            ..Config::default()
        },
    );
    let _ = lint::report::json(&findings);
    let _ = lint::report::sarif(&findings, "fuzz");

    let engine = Engine::new(&cluster);
    let ports = default_ports(&cluster);
    for family in [default_family(&cluster), Family::Ipv4, Family::Ipv6] {
        let _ = matrix(&engine, &ports, family);
    }
    for i in 0..cluster.pods.len() {
        let _ = explain_pod(&engine, i);
    }

    let mut nodes: Vec<String> = cluster
        .nodes
        .keys()
        .cloned()
        .chain(cluster.pods.iter().filter_map(|p| p.node_name.clone()))
        .chain(["node-0".to_string()])
        .collect();
    nodes.sort();
    nodes.dedup();
    for (k, node) in nodes.iter().enumerate() {
        // Every other ruleset drops traffic of unprogrammed addresses in the node's pod CIDRs
        // (from the Node, or given), which adds its own sets and rules.
        let unprogrammed = (case / 2 + k).is_multiple_of(2);
        let opts = RenderOptions {
            table: format!("fz{case}n{k}"),
            log_drops: (case + k).is_multiple_of(2),
            unprogrammed_pods: if unprogrammed {
                UnprogrammedPods::Drop
            } else {
                UnprogrammedPods::Allow
            },
            pod_cidrs: if unprogrammed && case.is_multiple_of(3) {
                vec![
                    "10.244.0.0/24".parse().unwrap(),
                    "fd00:10:244::/64".parse().unwrap(),
                ]
            } else {
                Vec::new()
            },
            ..RenderOptions::new(node.clone())
        };
        let rs = render(&cluster, &opts);
        assert_eq!(rs, render(&cluster, &opts), "render is deterministic");
        let tx = rs.replace();
        let _ = rs.stats();
        // A delta from an empty table must also be well formed.
        let _ = rs.update_from(&Default::default());
        out.push(Rendered {
            enforcing: rs
                .chains
                .iter()
                .any(|c| c.name.starts_with("ing-") || c.name.starts_with("egr-")),
            script: tx.script.clone(),
            json: tx.json(),
            input: case,
        });
    }
}

/// Runs `cases()` inputs from `strategy` through the pipeline (failing, with a shrunk input, on
/// the first panic), then checks every ruleset with `nft -c`.
fn fuzz(label: &str, strategy: impl Strategy<Value = Input>) {
    let inputs: RefCell<Vec<Input>> = RefCell::new(Vec::new());
    let rendered: RefCell<Vec<Rendered>> = RefCell::new(Vec::new());
    let mut runner = TestRunner::new(RunnerConfig {
        cases: cases(),
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |input| {
        let case = inputs.borrow().len();
        let mut out = Vec::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pipeline(&input, case, &mut out)));
        if let Err(p) = r {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(TestCaseError::fail(format!(
                "panic: {msg}\ninput:\n{}",
                input.describe()
            )));
        }
        inputs.borrow_mut().push(input);
        rendered.borrow_mut().extend(out);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{label}: {e}");
    }
    let inputs = inputs.into_inner();
    let rendered = rendered.into_inner();
    // How much of the renderer the inputs reached, so a generator gone dull is visible.
    let enforcing = rendered.iter().filter(|r| r.enforcing).count();
    let ranges = rendered.iter().filter(|r| has_port_range(&r.script)).count();
    let rules: usize = rendered.iter().map(|r| r.script.matches('\n').count()).sum();
    eprintln!(
        "{label}: {} inputs through the pipeline without a panic, {} rulesets ({enforcing} with \
         policy chains, {ranges} with port ranges, {rules} script lines), in {:.1?}",
        inputs.len(),
        rendered.len(),
        started.elapsed()
    );
    if !have_nft() {
        return;
    }
    let started = std::time::Instant::now();
    let ns = NetNs::new("fuzz");
    let mut bad = Vec::new();
    for chunk in rendered.chunks(150) {
        check_text(&ns, chunk, &inputs, &mut bad);
        check_json(&ns, chunk, &inputs, &mut bad);
    }
    assert!(
        bad.is_empty(),
        "{label}: {} rulesets rejected by nft -c; first:\n{}",
        bad.len(),
        bad[0]
    );
    eprintln!(
        "{label}: {} rulesets accepted by nft -c as text and as JSON, in {:.1?}",
        rendered.len(),
        started.elapsed()
    );
}

fn has_port_range(script: &str) -> bool {
    script.lines().filter(|l| l.contains("dport")).any(|l| {
        let b = l.as_bytes();
        b.windows(3)
            .any(|w| w[0].is_ascii_digit() && w[1] == b'-' && w[2].is_ascii_digit())
    })
}

fn nft_check(ns: &NetNs, json: bool, input: &str) -> Result<(), String> {
    let args: &[&str] = if json {
        &["-j", "-c", "-f", "-"]
    } else {
        &["-c", "-f", "-"]
    };
    let out = ns.nft(args, input);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).chars().take(3000).collect())
    }
}

/// One `nft -c` for the whole chunk; on failure each ruleset alone, to name the culprit.
fn check_text(ns: &NetNs, chunk: &[Rendered], inputs: &[Input], bad: &mut Vec<String>) {
    let all: String = chunk.iter().map(|r| r.script.as_str()).collect();
    if nft_check(ns, false, &all).is_ok() {
        return;
    }
    for r in chunk {
        if let Err(e) = nft_check(ns, false, &r.script) {
            bad.push(format!(
                "text: {e}\nscript:\n{}\ninput:\n{}",
                r.script.chars().take(6000).collect::<String>(),
                inputs[r.input].describe()
            ));
        }
    }
}

fn check_json(ns: &NetNs, chunk: &[Rendered], inputs: &[Input], bad: &mut Vec<String>) {
    let commands = |r: &Rendered| -> Vec<Value> {
        r.json["nftables"]
            .as_array()
            .expect("a transaction is {\"nftables\": [...]}")
            .iter()
            .filter(|c| c.get("metainfo").is_none())
            .cloned()
            .collect()
    };
    let all: Vec<Value> = chunk.iter().flat_map(commands).collect();
    let text = serde_json::json!({ "nftables": all }).to_string();
    if nft_check(ns, true, &text).is_ok() {
        return;
    }
    for r in chunk {
        if let Err(e) = nft_check(ns, true, &r.json.to_string()) {
            bad.push(format!(
                "json: {e}\nscript:\n{}\ninput:\n{}",
                r.script.chars().take(6000).collect::<String>(),
                inputs[r.input].describe()
            ));
        }
    }
}

/// The YAML files of the examples and of each fixture directory: valid inputs to mutate.
fn corpus() -> Vec<Vec<(String, String)>> {
    fuzzgen::corpus(
        &manifest_dir().join("../examples"),
        &manifest_dir().join("tests/fixtures"),
    )
}

#[test]
fn structured_random_objects_never_panic_and_render_valid_nft() {
    fuzz("structured", fuzzgen::structured());
}

#[test]
fn mutated_yaml_never_panics_and_renders_valid_nft() {
    fuzz("mutated", fuzzgen::mutated(corpus()));
}
