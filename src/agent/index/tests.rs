//! The index: per-kind apply/delete/reset, "no change" detection, and the synced gate.

use serde_json::json;

use super::*;
use crate::agent::testutil::*;

fn synced_index() -> Index {
    let mut idx = Index::new();
    for u in [
        Update::Namespace(Change::Reset(vec![])),
        Update::Pod(Change::Reset(vec![])),
        Update::Policy(Change::Reset(vec![])),
        Update::Node(Change::Reset(vec![])),
    ] {
        idx.update(u);
    }
    idx
}

#[test]
fn apply_update_delete() {
    let mut idx = synced_index();
    assert!(idx.update(Update::Pod(Change::Apply(mk_pod(
        "prod",
        "web",
        "n1",
        "10.244.1.2",
        &[("app", "web")]
    )))));
    assert_eq!(idx.snapshot().pods.len(), 1);

    // A relabel is a change and replaces the stored pod.
    assert!(idx.update(Update::Pod(Change::Apply(mk_pod(
        "prod",
        "web",
        "n1",
        "10.244.1.2",
        &[("app", "api")]
    )))));
    let snap = idx.snapshot();
    assert_eq!(snap.pods.len(), 1);
    assert_eq!(snap.pods[0].labels["app"], "api");

    assert!(idx.update(Update::Pod(Change::Delete(Key::new("prod", "web")))));
    assert!(idx.snapshot().pods.is_empty());
    // Deleting what is not there is no change.
    assert!(!idx.update(Update::Pod(Change::Delete(Key::new("prod", "web")))));
}

#[test]
fn identical_update_is_no_change() {
    let mut idx = synced_index();
    let pod = mk_pod("prod", "web", "n1", "10.244.1.2", &[("app", "web")]);
    assert!(idx.update(Update::Pod(Change::Apply(pod.clone()))));
    assert!(!idx.update(Update::Pod(Change::Apply(pod))));
    let np = deny_all("prod");
    assert!(idx.update(Update::Policy(Change::Apply(np.clone()))));
    assert!(!idx.update(Update::Policy(Change::Apply(np))));
}

#[test]
fn irrelevant_api_change_projects_equal() {
    // A status-only change the semantics ignore (a new condition, another resourceVersion) must
    // project to the same model pod, so the index reports no change.
    let mut idx = synced_index();
    let a = k8s_pod("prod", "web", "n1", "10.244.1.2", "1");
    let mut b = k8s_pod("prod", "web", "n1", "10.244.1.2", "2");
    b.status.as_mut().unwrap().conditions = Some(vec![k8s_openapi::api::core::v1::PodCondition {
        type_: "Ready".into(),
        status: "True".into(),
        ..Default::default()
    }]);
    let (pa, _) = policyc_compiler::convert::pod_from_k8s(&a, None);
    let (pb, _) = policyc_compiler::convert::pod_from_k8s(&b, None);
    assert!(idx.update(Update::Pod(Change::Apply(pa))));
    assert!(!idx.update(Update::Pod(Change::Apply(pb))));
}

#[test]
fn reset_removes_vanished_objects() {
    let mut idx = synced_index();
    for (name, ip) in [("a", "10.244.1.2"), ("b", "10.244.1.3"), ("c", "10.244.1.4")] {
        idx.update(Update::Pod(Change::Apply(mk_pod("prod", name, "n1", ip, &[]))));
    }
    // Relist after a disconnect: b was deleted meanwhile, c changed.
    let changed = idx.update(Update::Pod(Change::Reset(vec![
        mk_pod("prod", "a", "n1", "10.244.1.2", &[]),
        mk_pod("prod", "c", "n1", "10.244.1.9", &[]),
    ])));
    assert!(changed);
    let snap = idx.snapshot();
    let names: Vec<_> = snap.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(snap.pods[1].ips[0].to_string(), "10.244.1.9");

    // The same list again changes nothing.
    assert!(!idx.update(Update::Pod(Change::Reset(vec![
        mk_pod("prod", "c", "n1", "10.244.1.9", &[]),
        mk_pod("prod", "a", "n1", "10.244.1.2", &[]),
    ]))));
}

#[test]
fn synced_only_after_every_kind_listed() {
    let mut idx = Index::new();
    assert!(!idx.synced());
    // Watch events before the initial list completes do not make a kind synced.
    idx.update(Update::Pod(Change::Apply(mk_pod(
        "prod",
        "a",
        "n1",
        "10.244.1.2",
        &[],
    ))));
    idx.update(Update::Namespace(Change::Reset(vec![mk_ns("prod", &[])])));
    idx.update(Update::Pod(Change::Reset(vec![])));
    idx.update(Update::Policy(Change::Reset(vec![])));
    assert_eq!(idx.pending(), [Kind::Node]);
    assert!(!idx.synced());
    idx.update(Update::Node(Change::Reset(vec![mk_node("n1", "198.18.0.1")])));
    assert!(idx.synced());
    // An empty list is still a completed list: it is a change only if something was there.
    assert!(!idx.update(Update::Policy(Change::Reset(vec![]))));
}

#[test]
fn snapshot_is_a_cluster() {
    let mut idx = synced_index();
    idx.update(Update::Namespace(Change::Apply(mk_ns("prod", &[("team", "a")]))));
    idx.update(Update::Pod(Change::Apply(mk_pod(
        "prod",
        "web",
        "n1",
        "10.244.1.2",
        &[],
    ))));
    idx.update(Update::Pod(Change::Apply(mk_pod(
        "dev",
        "x",
        "n2",
        "10.244.2.2",
        &[],
    ))));
    idx.update(Update::Policy(Change::Apply(deny_all("prod"))));
    idx.update(Update::Node(Change::Apply(mk_node("n1", "198.18.0.1"))));
    let snap = idx.snapshot();
    assert_eq!(snap.policies.len(), 1);
    assert_eq!(snap.nodes.len(), 1);
    // `dev` is referenced by a pod only: Cluster::new adds it as implicit.
    assert!(snap.namespaces["dev"].implicit);
    assert_eq!(snap.namespaces["prod"].labels["team"], "a");
    assert_eq!(snap, idx.snapshot(), "snapshots are deterministic");
}

#[test]
fn invalid_policies_are_counted() {
    let mut idx = synced_index();
    let bad = mk_policy(
        "prod",
        "bad",
        json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0/8"}}]}]}),
    );
    assert!(
        !bad.diagnostics.is_empty(),
        "the builder must produce an invalid policy"
    );
    assert!(bad.diagnostics.iter().any(|d| d.field.contains("ipBlock")));
    idx.update(Update::Policy(Change::Apply(bad)));
    idx.update(Update::Policy(Change::Apply(deny_all("prod"))));
    assert_eq!(idx.invalid_policies(), 1);
    assert_eq!(
        idx.snapshot().policies.len(),
        2,
        "an invalid policy is kept (it fails closed)"
    );
    idx.update(Update::Policy(Change::Delete(Key::new("prod", "bad"))));
    assert_eq!(idx.invalid_policies(), 0);
}

#[test]
fn node_heartbeat_projects_equal() {
    let node = |heartbeat: &str| -> k8s_openapi::api::core::v1::Node {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "resourceVersion": heartbeat},
            "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "198.18.0.1"}, {"type": "Hostname", "address": "n1"}],
                "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": heartbeat}],
            },
        }))
        .unwrap()
    };
    let mut idx = synced_index();
    let (a, _) = policyc_compiler::convert::node_from_k8s(&node("2024-01-01T00:00:00Z"), None);
    let (b, _) = policyc_compiler::convert::node_from_k8s(&node("2024-01-01T00:00:10Z"), None);
    assert!(idx.update(Update::Node(Change::Apply(a))));
    assert!(!idx.update(Update::Node(Change::Apply(b))));
    assert_eq!(idx.snapshot().node_addresses("n1").len(), 1);
}

/// The incrementally kept snapshot is the one built from scratch, whatever the order of
/// applies, deletes and relists (implicit namespaces coming and going included).
#[test]
fn incremental_snapshot_equals_a_rebuilt_one() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let ns = prop_oneof![Just("a"), Just("b"), Just("c")];
    let op = (0..9usize, ns, 0..3usize, 0..2usize);
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(op, 1..30), |ops| {
            let mut idx = synced_index();
            for (kind, ns, n, v) in ops {
                let name = format!("x{n}");
                let ip = format!("10.244.0.{}", n + 10);
                let u = match kind {
                    0 => Update::Pod(Change::Apply(mk_pod(
                        ns,
                        &name,
                        "n1",
                        &ip,
                        &[("v", &v.to_string())],
                    ))),
                    1 => Update::Pod(Change::Delete(Key::new(ns, &name))),
                    2 => Update::Policy(Change::Apply(deny_all(ns))),
                    3 => Update::Policy(Change::Delete(Key::new(ns, "deny-all"))),
                    4 => Update::Namespace(Change::Apply(mk_ns(ns, &[("v", &v.to_string())]))),
                    5 => Update::Namespace(Change::Delete(Key::cluster(ns))),
                    6 => Update::Node(Change::Apply(mk_node(&format!("n{n}"), &format!("198.18.0.{v}")))),
                    7 => Update::Node(Change::Delete(Key::cluster(format!("n{n}")))),
                    _ => Update::Pod(Change::Reset(vec![mk_pod(ns, &name, "n1", &ip, &[])])),
                };
                idx.update(u);
                prop_assert_eq!(&*idx.snapshot(), &idx.rebuilt());
            }
            Ok(())
        })
        .unwrap();
}
