//! Builders for the agent's unit tests: model objects and the API objects they come from.

use std::net::IpAddr;

use k8s_openapi::api::{core::v1 as corev1, networking::v1 as netv1};
use policyc_compiler::model::{Labels, Namespace, Node, Pod};
use policyc_compiler::Policy;
use serde_json::json;

use super::index::PolicyEntry;

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn mk_ns(name: &str, l: &[(&str, &str)]) -> Namespace {
    Namespace::new(name, labels(l), false)
}

pub fn mk_pod(ns: &str, name: &str, node: &str, ip: &str, l: &[(&str, &str)]) -> Pod {
    Pod {
        namespace: ns.into(),
        name: name.into(),
        labels: labels(l),
        node_name: Some(node.into()),
        host_network: false,
        ports: vec![],
        ips: vec![ip.parse::<IpAddr>().expect("test IP")],
        phase: Some("Running".into()),
        source: None,
    }
}

pub fn mk_node(name: &str, ip: &str) -> Node {
    Node {
        name: name.into(),
        addresses: vec![ip.parse().expect("test IP")],
        pod_cidrs: vec![],
    }
}

pub fn k8s_policy(ns: &str, name: &str, spec: serde_json::Value) -> netv1::NetworkPolicy {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": ns, "name": name},
        "spec": spec,
    }))
    .expect("test policy")
}

pub fn mk_policy(ns: &str, name: &str, spec: serde_json::Value) -> PolicyEntry {
    let (policy, diagnostics) = Policy::from_k8s(&k8s_policy(ns, name, spec), None);
    PolicyEntry { policy, diagnostics }
}

/// A policy that isolates every pod of `ns` for ingress and admits nothing.
pub fn deny_all(ns: &str) -> PolicyEntry {
    mk_policy(
        ns,
        "deny-all",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    )
}

pub fn k8s_pod(ns: &str, name: &str, node: &str, ip: &str, rv: &str) -> corev1::Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": ns, "name": name, "resourceVersion": rv, "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }))
    .expect("test pod")
}
