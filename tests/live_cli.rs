//! The read commands against a live cluster, end to end: a fake API server on 127.0.0.1 serves the
//! examples' objects, `--kubeconfig` points the binary at it, and every command's output equals its
//! output on the same objects read from files (minus file:line citations, which live objects lack).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Output};

use axum::extract::Request;
use policyc_compiler::load::parse_documents;
use serde_json::{json, Value};

fn examples() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples").to_string()
}

fn objects_by_path() -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for f in ["namespaces.yaml", "pods.yaml", "policies.yaml"] {
        let text = std::fs::read_to_string(format!("{}/{f}", examples())).expect("read example");
        for d in parse_documents(&text, f).0 {
            let path = match d.value["kind"].as_str().expect("kind") {
                "Namespace" => "/api/v1/namespaces",
                "Pod" => "/api/v1/pods",
                "NetworkPolicy" => "/apis/networking.k8s.io/v1/networkpolicies",
                other => panic!("{other}"),
            };
            out.entry(path.into()).or_default().push(d.value);
        }
    }
    out.insert("/api/v1/nodes".into(), Vec::new());
    out
}

/// Starts the fake API server on a loopback port, in its own thread for the test's lifetime.
fn fake_api_server() -> SocketAddr {
    let objects = objects_by_path();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send addr");
            let app = axum::Router::new().fallback(move |req: Request| {
                let items = objects.get(req.uri().path()).cloned();
                async move {
                    match items {
                        Some(items) => Ok((
                            [(axum::http::header::CONTENT_TYPE, "application/json")],
                            json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})
                                .to_string(),
                        )),
                        None => Err(axum::http::StatusCode::NOT_FOUND),
                    }
                }
            });
            axum::serve(listener, app).await.expect("serve");
        });
    });
    rx.recv().expect("server address")
}

fn kubeconfig(dir: &tempfile::TempDir, addr: SocketAddr) -> String {
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster: {{server: \"http://{addr}\"}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: me}}\nusers:\n- name: me\n  user: {{token: test}}\n"
        ),
    )
    .expect("write kubeconfig");
    path.display().to_string()
}

fn policyc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_policyc"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("policyc runs")
}

fn out(o: &Output) -> String {
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes what only files have: `source` fields and `(file:line)` citations.
fn without_sources(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("source");
            m.remove("location");
            m.remove("object_location");
            m.values_mut().for_each(without_sources);
        }
        Value::Array(a) => a.iter_mut().for_each(without_sources),
        _ => {}
    }
}

fn json_of(args: &[&str]) -> Value {
    let mut v: Value = serde_json::from_str(&out(&policyc(args))).expect("json");
    without_sources(&mut v);
    v
}

#[test]
fn live_output_equals_offline_output() {
    let addr = fake_api_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(&dir, addr);
    let ex = examples();
    let live = ["--kubeconfig", kc.as_str()];
    let files = ["-f", ex.as_str()];
    let with = |cmd: &[&str], input: &[&str]| -> Vec<String> {
        cmd.iter().chain(input).map(|s| s.to_string()).collect()
    };
    let run = |a: Vec<String>| out(&policyc(&a.iter().map(String::as_str).collect::<Vec<_>>()));

    // matrix has no citations: byte-identical text.
    let m = ["matrix"];
    assert_eq!(run(with(&m, &live)), run(with(&m, &files)));
    for cmd in [
        vec!["trace", "tools/debug", "shop/db", "-p", "5432", "-o", "json"],
        vec!["trace", "shop/web", "shop/api", "-p", "9090", "-o", "json"],
        vec!["explain", "pod", "shop/api", "-o", "json"],
        vec!["matrix", "-o", "json"],
    ] {
        let a = with(&cmd, &live);
        let b = with(&cmd, &files);
        let (a, b): (Vec<&str>, Vec<&str>) = (
            a.iter().map(String::as_str).collect(),
            b.iter().map(String::as_str).collect(),
        );
        assert_eq!(json_of(&a), json_of(&b), "{cmd:?}");
    }
    // lint: the same findings, without locations live.
    let lint_live = json_of(&[
        "lint",
        "--cluster",
        "--kubeconfig",
        &kc,
        "--all",
        "--format",
        "json",
    ]);
    let lint_files = json_of(&["lint", &ex, "--all", "--format", "json"]);
    assert_eq!(lint_live, lint_files);
    assert!(lint_live["findings"].as_array().is_some_and(|f| !f.is_empty()));
    // Text trace live: the same sentences, no (file:line).
    let text = out(&policyc(&[
        "trace",
        "tools/debug",
        "shop/db",
        "-p",
        "5432",
        "--kubeconfig",
        &kc,
    ]));
    assert!(
        text.contains("denied: shop/allow-db and shop/default-deny select shop/db for ingress"),
        "{text}"
    );
    assert!(!text.contains(".yaml"), "{text}");
}

#[test]
fn files_overlay_the_live_cluster_and_diff_against_it() {
    let addr = fake_api_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(&dir, addr);
    let change = dir.path().join("change.yaml");
    std::fs::write(
        &change,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-db, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 5432}]}]\n",
    )
    .expect("write");
    let change = change.display().to_string();
    let before = out(&policyc(&[
        "trace",
        "tools/debug",
        "shop/db",
        "-p",
        "5432",
        "--kubeconfig",
        &kc,
    ]));
    assert!(before.contains(": DENIED"), "{before}");
    let after = out(&policyc(&[
        "trace",
        "tools/debug",
        "shop/db",
        "-p",
        "5432",
        "--kubeconfig",
        &kc,
        "-f",
        &change,
    ]));
    assert!(after.contains(": ALLOWED"), "{after}");
    assert!(
        after.contains("change.yaml:6)"),
        "the overlaid rule is cited: {after}"
    );
    let d = policyc(&["diff", "--live", "--kubeconfig", &kc, &change]);
    assert_eq!(d.status.code(), Some(1));
    let text = String::from_utf8_lossy(&d.stdout);
    assert!(
        text.contains("this change opens 5432/TCP from tools/debug to shop/db"),
        "{text}"
    );
    assert!(!text.contains("closes"), "{text}");
}

#[test]
fn unreachable_cluster_is_an_input_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on: bind, read the port, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let kc = kubeconfig(&dir, addr);
    let o = policyc(&["matrix", "--kubeconfig", &kc]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot list namespaces"));
    assert_eq!(
        policyc(&["lint", "--cluster", "--kubeconfig", &kc]).status.code(),
        Some(2)
    );
}
