//! Where the agent's objects come from: the Kubernetes API ([`kube`]) or a directory of
//! manifests ([`files`]). Both convert API objects to the compiler's model types through the same
//! converters as `policyc -f` and hand the index [`Update`]s; neither keeps API objects around.

use k8s_openapi::api::{core::v1 as corev1, networking::v1 as netv1};
use policyc_compiler::convert::{namespace_from_k8s, node_from_k8s, pod_from_k8s};
use policyc_compiler::model::{Namespace, Node, Pod, Source};
use policyc_compiler::{Diagnostic, Policy};

use super::index::PolicyEntry;

pub mod files;
pub mod kube;

pub fn namespace(ns: &corev1::Namespace) -> Namespace {
    namespace_from_k8s(ns)
}

/// Converts a pod; problems (an unparsable IP, a bad port) are logged, the rest of the pod kept.
pub fn pod(pod: &corev1::Pod, source: Option<&Source>) -> Pod {
    let (p, diags) = pod_from_k8s(pod, source);
    log_diagnostics("pod", &p.namespace, &p.name, &diags);
    p
}

/// Converts a policy, keeping its problems with it: the index logs them once per change.
pub fn policy(np: &netv1::NetworkPolicy, source: Option<&Source>) -> PolicyEntry {
    let (policy, diagnostics) = Policy::from_k8s(np, source);
    PolicyEntry { policy, diagnostics }
}

pub fn node(node: &corev1::Node, source: Option<&Source>) -> Node {
    let (n, diags) = node_from_k8s(node, source);
    log_diagnostics("node", "", &n.name, &diags);
    n
}

fn log_diagnostics(kind: &'static str, namespace: &str, name: &str, diags: &[Diagnostic]) {
    if diags.is_empty() {
        return;
    }
    let span = tracing::info_span!("object", kind, namespace, name);
    let _enter = span.enter();
    for d in diags {
        tracing::info!(field = %d.field, "{}", d.message);
    }
}
