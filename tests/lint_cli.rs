//! `policyc lint` as a user runs it: exit codes, formats, --explain, --list, suppression flags.

use std::process::{Command, Output};

fn policyc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_policyc"))
        .args(args)
        .output()
        .expect("policyc runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write fixture");
    path.display().to_string()
}

const WARNING_ONLY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 203.0.113.7/24}}]\n";
const ERROR: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{}]\n";

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warn = write(&dir, "warn.yaml", WARNING_ONLY);
    let err = write(&dir, "err.yaml", ERROR);
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    assert_eq!(code(&policyc(&["lint", examples])), 0, "examples are clean");
    assert_eq!(
        code(&policyc(&["lint", &warn])),
        0,
        "warnings do not fail by default"
    );
    assert_eq!(code(&policyc(&["lint", &warn, "--fail-on", "warning"])), 1);
    assert_eq!(code(&policyc(&["lint", &err])), 1);
    assert_eq!(code(&policyc(&["lint", &err, "--fail-on", "none"])), 0);
    assert_eq!(
        code(&policyc(&[
            "lint",
            &err,
            "--disable",
            "empty-peer",
            "--disable",
            "invalid-field"
        ])),
        0
    );
    assert_eq!(
        code(&policyc(&["lint", "/nonexistent/policies"])),
        2,
        "unreadable input"
    );
    assert_eq!(
        code(&policyc(&["lint", &warn, "--format", "nope"])),
        2,
        "bad flag"
    );
    assert_eq!(
        code(&policyc(&["lint", &warn, "--disable", "no-such-code"])),
        2,
        "unknown code"
    );
    assert_eq!(code(&policyc(&["lint"])), 2, "nothing to lint");
}

#[test]
fn formats_and_locations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warn = write(&dir, "warn.yaml", WARNING_ONLY);
    let text = stdout(&policyc(&["lint", &warn, "--color", "always"]));
    assert!(text.contains(&format!("{warn}:7:")), "{text}");
    assert!(text.contains("\u{1b}["), "--color always colours: {text}");
    let plain = stdout(&policyc(&["lint", &warn]));
    assert!(!plain.contains('\u{1b}'), "piped output has no colour: {plain}");
    assert!(plain.contains("warning[cidr-host-bits]"), "{plain}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&policyc(&["lint", &warn, "--format", "json"]))).expect("json");
    assert_eq!(json["findings"][0]["code"], "cidr-host-bits");
    assert_eq!(json["findings"][0]["location"]["line"], 7);
    let sarif: serde_json::Value =
        serde_json::from_str(&stdout(&policyc(&["lint", &warn, "--format", "sarif"]))).expect("sarif");
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        7
    );
    let gh = stdout(&policyc(&["lint", &warn, "--format", "github"]));
    assert!(gh.starts_with("::warning file="), "{gh}");
    assert!(gh.contains(",line=7,"), "{gh}");
}

#[test]
fn explain_and_list() {
    let o = policyc(&["lint", "--explain", "and-or-slip"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("ORed"), "{}", stdout(&o));
    assert_eq!(code(&policyc(&["lint", "--explain", "no-such-code"])), 2);
    let list = stdout(&policyc(&["lint", "--list"]));
    assert!(list.lines().count() >= 20, "{list}");
    assert!(
        list.contains("unisolated-pod") && list.contains("(opt-in)"),
        "{list}"
    );
}

#[test]
fn trace_and_explain_colour_only_when_asked_or_on_a_terminal() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    for cmd in [
        vec!["trace", "tools/debug", "shop/db", "-p", "5432", "-f", examples],
        vec!["explain", "pod", "shop/db", "-f", examples],
        vec!["diff", examples, examples],
    ] {
        let piped = stdout(&policyc(&cmd));
        assert!(!piped.contains('\u{1b}'), "{cmd:?} coloured when piped: {piped}");
        let mut always = cmd.clone();
        always.extend(["--color", "always"]);
        let coloured = stdout(&policyc(&always));
        if cmd[0] != "diff" {
            assert!(coloured.contains("\u{1b}["), "{cmd:?} --color always: {coloured}");
        }
        let mut never = cmd.clone();
        never.extend(["--color", "never"]);
        assert_eq!(stdout(&policyc(&never)), piped);
    }
}
