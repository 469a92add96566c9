//! The watch path against a mocked API server (tower-test `mock::pair` behind a real
//! `kube::Client`, as in kube-rs's own client tests): initial list, watch events, and a relist
//! after a 410 Gone that drops what was deleted while disconnected.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use k8s_openapi::api::core::v1 as corev1;
use kube::client::Body;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tower_test::mock;

use super::*;
use crate::agent::index::Index;
use crate::agent::testutil::k8s_pod;

type Handle = mock::Handle<Request<Body>, Response<Body>>;

fn pod_json(name: &str, ip: &str, rv: &str) -> serde_json::Value {
    serde_json::to_value(k8s_pod("prod", name, "n1", ip, rv)).unwrap()
}

fn list(rv: &str, items: Vec<serde_json::Value>) -> Response<Body> {
    let body =
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": rv}, "items": items});
    Response::new(Body::from(serde_json::to_vec(&body).unwrap()))
}

fn events(events: &[serde_json::Value]) -> Response<Body> {
    let mut body = Vec::new();
    for e in events {
        body.extend(serde_json::to_vec(e).unwrap());
        body.push(b'\n');
    }
    Response::new(Body::from(body))
}

/// Answers the next request, after checking it is a list (`watch: false`) or a watch.
async fn serve(handle: &mut Handle, watch: bool, response: Response<Body>) -> String {
    let (req, send) = timeout(Duration::from_secs(10), handle.next_request())
        .await
        .expect("the watcher sends a request")
        .expect("service open");
    let uri = req.uri().to_string();
    assert!(uri.starts_with("/api/v1/pods"), "{uri}");
    assert_eq!(uri.contains("watch=true"), watch, "{uri}");
    send.send_response(response);
    uri
}

async fn recv(rx: &mut mpsc::Receiver<Update>) -> Update {
    timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an update")
        .expect("watch running")
}

fn names(c: &Change<policyc_compiler::model::Pod>) -> Vec<String> {
    match c {
        Change::Reset(pods) => pods.iter().map(|p| p.name.clone()).collect(),
        other => panic!("expected a reset, got {other:?}"),
    }
}

#[tokio::test]
async fn list_watch_and_relist_after_410() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let metrics = Arc::new(Metrics::new());
    let (tx, mut rx) = mpsc::channel(16);
    let task = tokio::spawn(watch::<corev1::Pod>(Api::all(client), tx, metrics.clone()));
    let mut idx = Index::new();

    // Initial list: a and b, handed over as one reset.
    serve(
        &mut handle,
        false,
        list(
            "10",
            vec![pod_json("a", "10.244.1.2", "5"), pod_json("b", "10.244.1.3", "6")],
        ),
    )
    .await;
    let u = recv(&mut rx).await;
    let Update::Pod(c) = &u else { panic!("{u:?}") };
    assert_eq!(names(c), ["a", "b"]);
    idx.update(u);

    // Watch from the list's resourceVersion: add c, change a, delete b, then the watch expires.
    let uri = serve(
        &mut handle,
        true,
        events(&[
            json!({"type": "ADDED", "object": pod_json("c", "10.244.1.4", "11")}),
            json!({"type": "MODIFIED", "object": pod_json("a", "10.244.1.2", "12")}),
            json!({"type": "MODIFIED", "object": pod_json("a", "10.244.1.9", "13")}),
            json!({"type": "DELETED", "object": pod_json("b", "10.244.1.3", "14")}),
            json!({"type": "ERROR", "object": {
                "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "message": "too old resource version: 10 (20)", "reason": "Expired", "code": 410}}),
        ]),
    )
    .await;
    assert!(uri.contains("resourceVersion=10"), "{uri}");

    let u = recv(&mut rx).await;
    assert!(
        matches!(&u, Update::Pod(Change::Apply(p)) if p.name == "c"),
        "{u:?}"
    );
    assert!(idx.update(u));
    // The first MODIFIED changes nothing the model keeps (only the resourceVersion): no change.
    let u = recv(&mut rx).await;
    assert!(
        matches!(&u, Update::Pod(Change::Apply(p)) if p.name == "a"),
        "{u:?}"
    );
    assert!(!idx.update(u), "a resourceVersion-only change must compare equal");
    let u = recv(&mut rx).await;
    assert!(idx.update(u));
    assert_eq!(
        idx.snapshot().pod("prod", "a").unwrap().ips[0].to_string(),
        "10.244.1.9"
    );
    let u = recv(&mut rx).await;
    assert_eq!(u, Update::Pod(Change::Delete(Key::new("prod", "b"))));
    idx.update(u);

    // 410 Gone: the watcher relists (after kube-runtime's backoff). Meanwhile c was deleted and a
    // new pod d appeared; the reset must drop c.
    serve(
        &mut handle,
        false,
        list(
            "30",
            vec![
                pod_json("a", "10.244.1.9", "13"),
                pod_json("d", "10.244.1.5", "25"),
            ],
        ),
    )
    .await;
    let u = recv(&mut rx).await;
    let Update::Pod(c) = &u else { panic!("{u:?}") };
    assert_eq!(names(c), ["a", "d"]);
    assert!(idx.update(u));
    let snap = idx.snapshot();
    let pods: Vec<_> = snap.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(pods, ["a", "d"], "c was deleted while disconnected");
    assert_eq!(metrics.watch_restarts(Kind::Pod), 1);
    assert!(metrics
        .encode()
        .contains("policyc_watch_errors_total{kind=\"Pod\"} 1"));

    // And it watches again from the new list.
    let uri = serve(&mut handle, true, events(&[])).await;
    assert!(uri.contains("resourceVersion=30"), "{uri}");
    task.abort();
}

#[tokio::test]
async fn nothing_is_sent_before_the_list_completes() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let (tx, mut rx) = mpsc::channel(16);
    let task = tokio::spawn(watch::<corev1::Pod>(
        Api::all(client),
        tx,
        Arc::new(Metrics::new()),
    ));
    // The list fails (apiserver down): no update, in particular no empty reset.
    let (_req, send) = handle.next_request().await.unwrap();
    send.send_response(
        Response::builder()
            .status(500)
            .body(Body::from(
                serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                    "message": "etcd unavailable", "reason": "InternalError", "code": 500}))
                .unwrap(),
            ))
            .unwrap(),
    );
    assert!(timeout(Duration::from_millis(300), rx.recv()).await.is_err());
    // The retry succeeds: now the (empty) list is reported.
    serve(&mut handle, false, list("1", vec![])).await;
    let u = recv(&mut rx).await;
    assert_eq!(u, Update::Pod(Change::Reset(vec![])));
    task.abort();
}

#[test]
fn rbac_rules_cover_exactly_the_watched_types() {
    let rules = rbac_rules();
    let got: Vec<(&str, &str)> = rules.iter().map(|(g, r, _)| (g.as_str(), r.as_str())).collect();
    assert_eq!(
        got,
        [
            ("", "namespaces"),
            ("", "pods"),
            ("networking.k8s.io", "networkpolicies"),
            ("", "nodes")
        ]
    );
    assert!(rules.iter().all(|(_, _, v)| v == &["get", "list", "watch"]));
}

#[tokio::test]
async fn kubeconfig_and_context_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        r#"apiVersion: v1
kind: Config
clusters:
- {name: c1, cluster: {server: "http://127.0.0.1:1"}}
users:
- {name: u1, user: {token: not-a-real-token}}
contexts:
- {name: one, context: {cluster: c1, user: u1}}
- {name: two, context: {cluster: c1, user: u1, namespace: kube-system}}
current-context: one
"#,
    )
    .unwrap();
    let c = client(Some(path.clone()), None).await.unwrap();
    assert_eq!(c.default_namespace(), "default");
    let c = client(Some(path.clone()), Some("two".into())).await.unwrap();
    assert_eq!(c.default_namespace(), "kube-system");
    let err = client(Some(path.clone()), Some("three".into()))
        .await
        .err()
        .expect("unknown context");
    assert!(format!("{err:#}").contains("--kubeconfig"), "{err:#}");
    let err = client(Some(dir.path().join("missing")), None)
        .await
        .err()
        .expect("missing file");
    assert!(format!("{err:#}").contains("cannot read --kubeconfig"), "{err:#}");
}

#[tokio::test]
async fn spawn_all_lists_every_kind_at_its_api_path() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let (tx, mut rx) = mpsc::channel(16);
    let tasks = spawn_all(client, tx, Arc::new(Metrics::new()));
    assert_eq!(tasks.len(), rbac_rules().len());

    let mut listed = Vec::new();
    let mut held = Vec::new(); // open watches, never answered
    while listed.len() < 4 {
        let (req, send) = timeout(Duration::from_secs(10), handle.next_request())
            .await
            .expect("requests")
            .expect("service open");
        let path = req.uri().path().to_string();
        if req.uri().query().unwrap_or_default().contains("watch=true") {
            held.push(send);
            continue;
        }
        let body =
            json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []});
        send.send_response(Response::new(Body::from(serde_json::to_vec(&body).unwrap())));
        listed.push(path);
    }
    listed.sort();
    assert_eq!(
        listed,
        [
            "/api/v1/namespaces",
            "/api/v1/nodes",
            "/api/v1/pods",
            "/apis/networking.k8s.io/v1/networkpolicies"
        ]
    );
    let mut idx = Index::new();
    for _ in 0..4 {
        idx.update(recv(&mut rx).await);
    }
    assert!(idx.synced(), "one reset per kind: {:?}", idx.pending());
    for t in tasks {
        t.abort();
    }
}
