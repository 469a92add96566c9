//! Snapshots of every lint output format, and the SARIF log validated against the SARIF 2.1.0
//! JSON schema (tests/sarif/sarif-2.1.0-rtm.5.json, from the npm package
//! @microsoft/jest-sarif 1.0.0-beta.0, lib/schemas/; MIT, Microsoft's sarif-js-sdk).

use policyc_compiler::lint::{self, report, Config, Finding, Severity};
use policyc_compiler::load::load_texts;
use policyc_compiler::spans::Spans;

const POLICIES: &str = r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: ops}}
    - podSelector: {matchLabels: {app: probe}}
  egress:
  - to:
    - ipBlock: {cidr: "10.0.0.1/8", except: ["192.168.0.0/16"]}
    ports:
    - {port: 8080, endPort: 8080}
"#;

const PODS: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: 10.244.0.10}
"#;

fn findings(config: &Config) -> Vec<Finding> {
    let files = [("deploy/policies.yaml", POLICIES), ("deploy/pods.yaml", PODS)];
    let mut spans = Spans::new();
    for (n, t) in files {
        spans.add_file(n, t);
    }
    let (cluster, objects, diagnostics) = load_texts(files);
    lint::lint(
        &lint::Input {
            cluster: &cluster,
            objects: &objects,
            diagnostics: &diagnostics,
            spans: Some(&spans),
        },
        config,
    )
}

fn all() -> Config {
    Config {
        all: true,
        ..Config::default()
    }
}

#[test]
fn text_format() {
    let plain = report::text(&findings(&all()), &|_, t| t.to_string());
    insta::assert_snapshot!(plain);
    let none = report::text(&[], &|_, t| t.to_string());
    assert_eq!(none, "no findings\n");
}

#[test]
fn text_format_paints_only_the_tag() {
    let painted = report::text(&findings(&Config::default()), &|s, t| format!("<{s}>{t}</>"));
    let first = painted.lines().next().expect("a finding");
    assert!(first.contains(": <"), "{first}");
    assert!(first.contains("</>: NetworkPolicy"), "{first}");
}

#[test]
fn json_format() {
    insta::assert_snapshot!(report::json(&findings(&all())));
}

#[test]
fn github_format() {
    insta::assert_snapshot!(report::github(&findings(&all())));
}

#[test]
fn sarif_format() {
    insta::assert_snapshot!(report::sarif(&findings(&all()), "0.0.0-test"));
}

#[test]
fn sarif_validates_against_the_2_1_0_schema() {
    // The schema's run.language pattern has an unescaped `]`, which ECMA-262 regexes accept as a
    // literal and Rust's regex engines reject; escape it (same meaning) before compiling.
    let text = include_str!("sarif/sarif-2.1.0-rtm.5.json").replace(
        r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#,
        r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$""#,
    );
    assert!(
        text.contains(r#"[a-zA-Z]{2}\\]?$"#),
        "the schema changed upstream; revisit"
    );
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema parses");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let mut found = findings(&all());
    // Findings about live objects have no file; they must validate too.
    let mut live = found[0].clone();
    live.location = None;
    found.push(live);
    assert!(found.iter().any(|f| f.severity == Severity::Info));
    for log in [report::sarif(&found, "0.1.0"), report::sarif(&[], "0.1.0")] {
        let value: serde_json::Value = serde_json::from_str(&log).expect("SARIF is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "SARIF invalid:\n{}", errors.join("\n"));
        let rules = value["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        assert_eq!(rules.len(), lint::CHECKS.len());
    }
    // The validator is not vacuous: a log without `version` fails.
    let mut broken: serde_json::Value = serde_json::from_str(&report::sarif(&found, "0.1.0")).expect("json");
    broken.as_object_mut().expect("object").remove("version");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn github_escapes_properties_and_data() {
    let mut f = findings(&Config::default()).remove(0);
    f.message = "50% done\nnext, line".into();
    f.location.as_mut().expect("located").file = "a,b:c.yaml".into();
    let out = report::github(&[f]);
    assert!(out.contains("file=a%2Cb%3Ac.yaml,"), "{out}");
    assert!(out.contains("50%25 done%0Anext, line"), "{out}");
}
