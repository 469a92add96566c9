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

#[derive(Clone, Default)]
struct Recorder(Arc<std::sync::Mutex<Vec<policyc_compiler::nft::Transaction>>>);

impl crate::agent::dataplane::Dataplane<policyc_compiler::nft::Transaction> for Recorder {
    async fn apply(
        &mut self,
        txn: &policyc_compiler::nft::Transaction,
    ) -> Result<(), crate::agent::dataplane::ApplyError> {
        self.0.lock().unwrap().push(txn.clone());
        Ok(())
    }
}

impl Recorder {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    async fn wait_len(&self, n: usize) {
        timeout(Duration::from_secs(20), async {
            while self.len() < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} transactions expected, got {}", self.len()));
    }
}

fn reset<K: Watched>(items: &[serde_json::Value]) -> Update {
    K::wrap(Change::Reset(
        items
            .iter()
            .map(|v| serde_json::from_value::<K>(v.clone()).unwrap().project())
            .collect(),
    ))
}

fn any_list(items: Vec<serde_json::Value>) -> Response<Body> {
    let body =
        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items});
    Response::new(Body::from(serde_json::to_vec(&body).unwrap()))
}

/// Issue 8, "API failures", end to end down to what reaches the kernel: the agent's four
/// watchers against a mocked API server, the real sync loop and nft planner, a dataplane that
/// records the transactions. The pod watch (1) ends (the API server closing it), (2) fails to
/// re-establish once (500), reconnects from the last resourceVersion without a relist, then
/// (3) expires (410 Gone); the relist finds that c was deleted meanwhile and d created. The
/// transactions must be exactly the compiler's: replace {a,b}, then the deltas to {a,b,c},
/// {b,c} and {b,d}: the deleted-while-disconnected pod leaves the applied ruleset.
#[tokio::test]
async fn a_broken_watch_and_a_410_relist_reach_the_applied_ruleset() {
    use crate::agent::sync::{Health, NftPlanner, SyncLoop, Timing};
    use policyc_compiler::nft::{render, RenderOptions};

    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = mpsc::channel(64);
    let tasks = spawn_all(client, tx, metrics.clone());
    let rec = Recorder::default();
    let opts = RenderOptions::new("n1");
    let sync = SyncLoop::new(
        NftPlanner { opts: opts.clone() },
        rec.clone(),
        metrics.clone(),
        Arc::new(Health::default()),
        Timing::default(),
    );
    let sync_task = tokio::spawn(sync.run(rx));

    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "resourceVersion": "1"}});
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "resourceVersion": "1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "198.18.0.1"}]}});
    let policy = serde_json::to_value(crate::agent::testutil::k8s_policy(
        "prod",
        "deny-all",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    ))
    .unwrap();
    let (a, b) = (pod_json("a", "10.244.1.2", "5"), pod_json("b", "10.244.1.3", "6"));
    let (c, d) = (
        pod_json("c", "10.244.1.4", "11"),
        pod_json("d", "10.244.1.5", "25"),
    );
    let ruleset = |pods: &[&serde_json::Value]| {
        let mut idx = Index::new();
        idx.update(reset::<corev1::Namespace>(std::slice::from_ref(&ns)));
        idx.update(reset::<corev1::Node>(std::slice::from_ref(&node)));
        idx.update(reset::<netv1::NetworkPolicy>(std::slice::from_ref(&policy)));
        let pods: Vec<serde_json::Value> = pods.iter().map(|p| (*p).clone()).collect();
        idx.update(reset::<corev1::Pod>(&pods));
        render(&idx.snapshot(), &opts)
    };

    let mut held = Vec::new(); // watches of the other kinds, open and silent
    let mut pod_requests = 0;
    while pod_requests < 6 {
        let (req, send) = timeout(Duration::from_secs(20), handle.next_request())
            .await
            .expect("requests")
            .expect("service open");
        let uri = req.uri().to_string();
        let watch = uri.contains("watch=true");
        if !req.uri().path().ends_with("/pods") {
            if watch {
                held.push(send);
            } else {
                let items = if uri.contains("namespaces") {
                    vec![ns.clone()]
                } else if uri.contains("nodes") {
                    vec![node.clone()]
                } else {
                    vec![policy.clone()]
                };
                send.send_response(any_list(items));
            }
            continue;
        }
        let step = pod_requests;
        pod_requests += 1;
        let expect = |want_watch: bool, rv: &str| {
            assert_eq!(watch, want_watch, "pod request {step}: {uri}");
            assert!(
                uri.contains(&format!("resourceVersion={rv}")) || rv.is_empty(),
                "pod request {step}: {uri}"
            );
        };
        match step {
            0 => {
                expect(false, "");
                send.send_response(list("10", vec![a.clone(), b.clone()]));
            }
            1 => {
                expect(true, "10");
                rec.wait_len(1).await;
                // One event, then the response ends: the API server closed the watch.
                send.send_response(events(&[json!({"type": "ADDED", "object": c.clone()})]));
            }
            2 => {
                expect(true, "11");
                rec.wait_len(2).await;
                let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                    "message": "connection reset", "reason": "InternalError", "code": 500});
                send.send_response(
                    Response::builder()
                        .status(500)
                        .body(Body::from(serde_json::to_vec(&status).unwrap()))
                        .unwrap(),
                );
            }
            3 => {
                expect(true, "11");
                send.send_response(events(&[
                    json!({"type": "DELETED", "object": pod_json("a", "10.244.1.2", "12")}),
                    json!({"type": "ERROR", "object": {
                        "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                        "message": "too old resource version: 12 (30)", "reason": "Expired", "code": 410}}),
                ]));
            }
            4 => {
                expect(false, "");
                rec.wait_len(3).await;
                // c was deleted and d created while the watch was down.
                send.send_response(list("30", vec![b.clone(), d.clone()]));
            }
            _ => {
                expect(true, "30");
                held.push(send);
            }
        }
    }
    rec.wait_len(4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = rec.0.lock().unwrap().clone();
    let (r1, r2, r3, r4) = (
        ruleset(&[&a, &b]),
        ruleset(&[&a, &b, &c]),
        ruleset(&[&b, &c]),
        ruleset(&[&b, &d]),
    );
    assert!(r3 != r4 && r2 != r3 && r1 != r2, "each step changes the ruleset");
    let want = [
        r1.replace(),
        r2.update_from(&r1),
        r3.update_from(&r2),
        r4.update_from(&r3),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "transaction {i}:\n{}\nexpected:\n{}", g.script, w.script);
    }
    assert!(
        got[3].script.contains("10.244.1.4") && !r4.replace().script.contains("10.244.1.4"),
        "the last delta removes c, which the applied ruleset no longer has:\n{}",
        got[3].script
    );
    assert_eq!(metrics.watch_restarts(Kind::Pod), 1, "only the 410 relists");
    assert!(metrics
        .encode()
        .contains("policyc_watch_errors_total{kind=\"Pod\"} 2"));
    sync_task.abort();
    for t in tasks {
        t.abort();
    }
}
