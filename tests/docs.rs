//! The operator docs quote the real thing: every metric the agent exposes is documented, and the
//! nft excerpts in docs/troubleshooting.md are lines `policyc render` really prints.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn troubleshooting_documents_every_metric() {
    let text = doc("troubleshooting.md");
    for name in policyc::agent::METRIC_NAMES {
        assert!(text.contains(&format!("`{name}")), "{name} is not documented");
    }
}

fn render(extra: &[&str]) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_policyc"))
        .args(["render", "--node-name", "node-1", "-f"])
        .arg(root.join("examples"))
        .args(extra)
        .output()
        .expect("run policyc");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

/// The ```text blocks of the doc that quote a table: each line, without the `#` annotations the
/// doc adds, must be a line of the rendered ruleset. Lines eliding with `...` are skipped.
fn check_excerpts(marker: &str, rendered: &BTreeSet<String>) -> usize {
    let text = doc("troubleshooting.md");
    let mut checked = 0;
    for block in text.split("```text\n").skip(1) {
        let block = block.split("```").next().unwrap();
        if !block.contains(marker) {
            continue;
        }
        for line in block.lines() {
            let line = line.split(" #").next().unwrap().trim();
            if line.is_empty() || line.contains("...") || line == "}" {
                continue;
            }
            assert!(
                rendered.contains(line),
                "not in `policyc render` output: {line:?}"
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn troubleshooting_excerpts_are_real_render_output() {
    let plain = render(&[]);
    assert!(check_excerpts("table inet policyc {", &plain) > 20);
    let logged = render(&["--log-drops"]);
    assert!(check_excerpts("map ingress-log4 {", &logged) > 10);
    // The prefix format the doc states.
    let prefix = "log prefix \"policyc drop ingress shop/db: \"";
    assert!(logged.iter().any(|l| l.contains(prefix)));
    assert!(doc("troubleshooting.md").contains("`policyc drop ingress NAMESPACE/POD: `"));
}

#[test]
fn troubleshooting_trace_example_is_real_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Run from the repository root so the cited paths read `examples/...` as in the doc.
    let out = Command::new(env!("CARGO_BIN_EXE_policyc"))
        .current_dir(root)
        .args([
            "trace",
            "tools/debug",
            "shop/db",
            "--port",
            "5432",
            "-f",
            "examples/",
        ])
        .output()
        .expect("run policyc");
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let text = doc("troubleshooting.md");
    let block = text
        .split("```text\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains("tools/debug (10.244.0.20) -> shop/db"))
        .expect("the trace example");
    let want: Vec<String> = block
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(want, got);
}
