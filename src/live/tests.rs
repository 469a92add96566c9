//! Live mode against a mocked API server (tower-test `mock::pair` behind a real `kube::Client`, as
//! in kube-rs's testing guide): the same objects read live and from files give the same snapshot,
//! hence the same trace, matrix, explain and lint results; lists are paged; files overlay.

use std::collections::BTreeMap;

use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use policyc_compiler::lint::{self, Config};
use policyc_compiler::load::{load_texts, parse_documents};
use policyc_compiler::matrix::{default_family, default_ports, matrix};
use policyc_compiler::Engine;
use serde_json::{json, Value};
use tower_test::mock;

use super::*;

const NAMESPACES: &str = include_str!("../../examples/namespaces.yaml");
const PODS: &str = include_str!("../../examples/pods.yaml");
const POLICIES: &str = include_str!("../../examples/policies.yaml");

fn example_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("examples/namespaces.yaml", NAMESPACES),
        ("examples/pods.yaml", PODS),
        ("examples/policies.yaml", POLICIES),
    ]
}

/// The examples' objects by list path, as the API server would serve them.
fn served() -> BTreeMap<&'static str, Vec<Value>> {
    let mut by_path: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    for (name, text) in example_files() {
        let (docs, diags) = parse_documents(text, name);
        assert!(diags.is_empty());
        for d in docs {
            let path = match d.value["kind"].as_str() {
                Some("Namespace") => "/api/v1/namespaces",
                Some("Pod") => "/api/v1/pods",
                Some("NetworkPolicy") => "/apis/networking.k8s.io/v1/networkpolicies",
                Some("Node") => "/api/v1/nodes",
                other => panic!("unexpected kind {other:?}"),
            };
            by_path.entry(path).or_default().push(d.value);
        }
    }
    by_path.entry("/api/v1/nodes").or_default();
    by_path
}

/// Answers list requests from `objects`; with `page`, lists are cut into pages of that size and
/// continued with the page number as the token.
fn serve(
    objects: BTreeMap<&'static str, Vec<Value>>,
    page: Option<usize>,
) -> (Client, tokio::task::JoinHandle<Vec<String>>) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let uri = req.uri().clone();
            seen.push(uri.to_string());
            let path = uri.path().to_string();
            let query = uri.query().unwrap_or_default().to_string();
            let items = objects
                .iter()
                .find(|(p, _)| path == **p)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("unexpected request {uri}"));
            let start: usize = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("continue="))
                .map(|t| t.parse().expect("our token"))
                .unwrap_or(0);
            let size = page.unwrap_or(items.len().max(1));
            let end = (start + size).min(items.len());
            let next = (end < items.len()).then(|| end.to_string());
            let body = json!({
                "apiVersion": "v1",
                "kind": "List",
                "metadata": {"resourceVersion": "1", "continue": next},
                "items": items[start..end],
            });
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&body).expect("json"),
            )));
        }
        seen
    });
    (Client::new(service, "default"), task)
}

fn offline() -> Loaded {
    let (mut cluster, objects, mut diagnostics) = load_texts(example_files());
    // Offline objects carry file:line; the live ones cannot. Everything else must agree.
    for p in &mut cluster.policies {
        p.source = None;
    }
    for p in &mut cluster.pods {
        p.source = None;
    }
    for d in &mut diagnostics {
        d.source = None;
    }
    Loaded {
        cluster,
        objects,
        diagnostics,
    }
}

#[tokio::test]
async fn live_and_offline_snapshots_of_the_same_objects_are_identical() {
    let (client, task) = serve(served(), None);
    let objects = fetch(client, None).await.expect("fetch");
    let live = loaded_from(objects, Vec::new());
    let off = offline();
    assert_eq!(live.cluster, off.cluster);
    assert_eq!(live.diagnostics, off.diagnostics);
    assert!(!live.cluster.pods.is_empty() && !live.cluster.policies.is_empty());

    // So every view agrees: the matrix, every trace verdict, explain, and lint's findings.
    let (el, eo) = (Engine::indexed(&live.cluster), Engine::indexed(&off.cluster));
    let ports = default_ports(&off.cluster);
    let family = default_family(&off.cluster);
    assert_eq!(matrix(&el, &ports, family), matrix(&eo, &ports, family));
    for i in 0..off.cluster.pods.len() {
        assert_eq!(
            policyc_compiler::explain::explain_pod(&el, i),
            policyc_compiler::explain::explain_pod(&eo, i)
        );
    }
    let config = Config {
        all: true,
        ..Config::default()
    };
    let findings = |l: &Loaded| {
        lint::lint(
            &lint::Input {
                cluster: &l.cluster,
                objects: &l.objects,
                diagnostics: &l.diagnostics,
                spans: None,
            },
            &config,
        )
        .into_iter()
        .map(|f| (f.code, f.object, f.field, f.message))
        // Offline findings are ordered by file position, live ones by object.
        .collect::<std::collections::BTreeSet<_>>()
    };
    let live_findings = findings(&live);
    assert_eq!(live_findings, findings(&off));
    assert!(
        !live_findings.is_empty(),
        "the opt-in checks have something to say"
    );
    task.abort();
}

#[tokio::test]
async fn lists_are_paged_and_namespace_scoped() {
    let mut objects = served();
    let scoped_pods: Vec<Value> = objects["/api/v1/pods"]
        .iter()
        .filter(|p| p["metadata"]["namespace"] == "shop")
        .cloned()
        .collect();
    let scoped_policies = objects["/apis/networking.k8s.io/v1/networkpolicies"].clone();
    objects.insert("/api/v1/namespaces/shop/pods", scoped_pods);
    objects.insert(
        "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies",
        scoped_policies,
    );
    let (client, task) = serve(objects, Some(1));
    let fetched = fetch(client, Some("shop")).await.expect("fetch");
    assert_eq!(fetched.pods.len(), 3, "every page read");
    assert!(fetched
        .pods
        .iter()
        .all(|(p, _)| p.metadata.namespace.as_deref() == Some("shop")));
    assert_eq!(fetched.policies.len(), 4);
    assert_eq!(fetched.namespaces.len(), 2);
    task.abort();
}

#[tokio::test]
async fn files_overlay_the_live_state() {
    let (client, task) = serve(served(), None);
    let live = fetch(client, None).await.expect("fetch");
    task.abort();
    // The file replaces shop/allow-db (now admitting tools too) and adds a policy.
    let file = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-db, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{namespaceSelector: {}}]}]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: new, namespace: tools}\nspec: {podSelector: {}}\n";
    let (_, file_objects, diags) = load_texts([("change.yaml", file)]);
    assert!(diags.is_empty());
    let loaded = loaded_from(overlay(live, &file_objects), Vec::new());
    let keys: Vec<String> = loaded.cluster.policies.iter().map(|p| p.key()).collect();
    assert_eq!(
        keys,
        [
            "shop/allow-api",
            "shop/allow-db",
            "shop/allow-web",
            "shop/default-deny",
            "tools/new"
        ]
    );
    let db = loaded
        .cluster
        .policies
        .iter()
        .find(|p| p.name == "allow-db")
        .expect("allow-db");
    assert_eq!(
        db.source.as_ref().map(|s| s.file.as_str()),
        Some("change.yaml"),
        "the file's copy wins and keeps its line"
    );
    let api = loaded
        .cluster
        .policies
        .iter()
        .find(|p| p.name == "allow-api")
        .expect("allow-api");
    assert_eq!(api.source, None, "live objects cite no file");
    let engine = Engine::new(&loaded.cluster);
    let (debug, db) = (
        engine.pod_index("tools", "debug").expect("debug"),
        engine.pod_index("shop", "db").expect("db"),
    );
    let src = engine
        .pod_endpoint(debug, policyc_compiler::Family::Ipv4)
        .expect("ip");
    let dst = engine
        .pod_endpoint(db, policyc_compiler::Family::Ipv4)
        .expect("ip");
    assert!(engine.allowed(&src, &dst, policyc_compiler::Protocol::Tcp, 5432));
}
