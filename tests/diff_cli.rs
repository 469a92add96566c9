//! `policyc diff BASE HEAD`: opened and closed connections, cross-checked against two `matrix`
//! runs, and exit codes (0 no change, 1 changes, 2 errors).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn policyc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_policyc"))
        .args(args)
        .output()
        .expect("policyc runs")
}

fn examples() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples")
}

/// A copy of the examples plus `extra` as another file.
fn side(dir: &Path, name: &str, extra: &str) -> String {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("mkdir");
    for f in ["namespaces.yaml", "pods.yaml", "policies.yaml"] {
        std::fs::copy(Path::new(examples()).join(f), d.join(f)).expect("copy");
    }
    if !extra.is_empty() {
        std::fs::write(d.join("extra.yaml"), extra).expect("write");
    }
    d.display().to_string()
}

const OPEN_METRICS_TO_DB: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: debug-db, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {team: platform}}}]\n    ports: [{port: 5432}]\n";
const DENY_TOOLS: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: tools}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n";

type Cells = BTreeSet<(String, String, u64)>;

fn diff_json(base: &str, head: &str) -> (i32, Cells, Cells) {
    let o = policyc(&["diff", base, head, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let cells = |k: &str| -> Cells {
        v[k].as_array()
            .expect("list")
            .iter()
            .map(|c| {
                (
                    c["from"].as_str().expect("from").to_string(),
                    c["to"].as_str().expect("to").to_string(),
                    c["port"].as_u64().expect("port"),
                )
            })
            .collect()
    };
    (o.status.code().expect("exit"), cells("opened"), cells("closed"))
}

/// Allowed cells of `policyc matrix` over the given ports.
fn matrix(path: &str, ports: &[u64]) -> Cells {
    let mut args = vec![
        "matrix".to_string(),
        "-f".into(),
        path.into(),
        "-o".into(),
        "json".into(),
    ];
    for p in ports {
        args.push("-p".into());
        args.push(p.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v: serde_json::Value = serde_json::from_slice(&policyc(&args).stdout).expect("matrix json");
    let pods: Vec<String> = v["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .map(|p| p.as_str().expect("pod").to_string())
        .collect();
    let mut out = Cells::new();
    for r in v["results"].as_array().expect("results") {
        let port = r["port"].as_u64().expect("port");
        for (i, row) in r["allowed"].as_array().expect("rows").iter().enumerate() {
            for (j, cell) in row.as_array().expect("row").iter().enumerate() {
                if cell.as_bool().expect("bool") {
                    out.insert((pods[i].clone(), pods[j].clone(), port));
                }
            }
        }
    }
    out
}

#[test]
fn opened_and_closed_agree_with_two_matrices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = side(dir.path(), "base", "");
    for (name, extra) in [("open", OPEN_METRICS_TO_DB), ("close", DENY_TOOLS)] {
        let head = side(dir.path(), name, extra);
        let (code, opened, closed) = diff_json(&base, &head);
        assert_eq!(code, 1, "{name}: changes exit 1");
        let ports = [5432, 8080, 9090, 9100];
        let (before, after) = (matrix(&base, &ports), matrix(&head, &ports));
        assert_eq!(opened, &after - &before, "{name}: opened");
        assert_eq!(closed, &before - &after, "{name}: closed");
        assert!(!opened.is_empty() || !closed.is_empty());
    }
    let (_, opened, closed) = diff_json(&base, &side(dir.path(), "open2", OPEN_METRICS_TO_DB));
    assert_eq!(
        opened,
        Cells::from([("tools/debug".into(), "shop/db".into(), 5432)])
    );
    assert!(closed.is_empty());
}

#[test]
fn text_names_both_pods_the_port_and_the_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = side(dir.path(), "base", "");
    let head = side(dir.path(), "head", OPEN_METRICS_TO_DB);
    let o = policyc(&["diff", &base, &head]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("this change opens 5432/TCP from tools/debug to shop/db: allowed by shop/debug-db ingress rule 0 ("),
        "{text}"
    );
    assert!(text.contains("extra.yaml:7)"), "cites the rule's line: {text}");
    let head = side(dir.path(), "closed", DENY_TOOLS);
    let o = policyc(&["diff", "--base", &base, "--head", &head]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("this change closes 5432/TCP, 8080/TCP, 9090/TCP, 9100/TCP from shop/web to tools/debug: tools/debug's ingress is isolated by tools/deny ("), "{text}");
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = side(dir.path(), "base", "");
    let o = policyc(&["diff", &base, examples()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("no change in connectivity"));
    assert_eq!(policyc(&["diff", &base]).status.code(), Some(2), "one side only");
    assert_eq!(
        policyc(&["diff", &base, "/nonexistent"]).status.code(),
        Some(2),
        "unreadable"
    );
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{}]}]}\n").expect("write");
    assert_eq!(
        policyc(&["diff", &base, &bad.display().to_string()])
            .status
            .code(),
        Some(2),
        "invalid head"
    );
}
