//! The cluster's API objects as the tests declare them, written to the agent's manifest directory
//! (Namespaces, Nodes, Pods with nodeName/IPs/container ports/phase Running, NetworkPolicies).
//! Each file is replaced atomically (write + rename) so a watcher never reads half a file.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::probe::Proto;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub name: Option<String>,
    pub port: u16,
    pub proto: Proto,
}

pub fn port(name: &str, port: u16, proto: Proto) -> PortSpec {
    PortSpec {
        name: (!name.is_empty()).then(|| name.to_string()),
        port,
        proto,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub node: usize,
    /// Host part of the pod's address in its node's pod CIDR; unused for hostNetwork pods.
    pub host: u8,
    pub host_network: bool,
    pub ports: Vec<PortSpec>,
}

impl PodSpec {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Everything the tests put in the manifest directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Namespace name → labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub pods: Vec<PodSpec>,
    /// NetworkPolicy documents (YAML), in file order.
    pub policies: Vec<String>,
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl State {
    pub fn pod_mut(&mut self, key: &str) -> &mut PodSpec {
        self.pods
            .iter_mut()
            .find(|p| p.key() == key)
            .unwrap_or_else(|| panic!("no pod {key} in the test state"))
    }
}

fn pod_object(p: &PodSpec, ips: &[IpAddr]) -> Value {
    let ports: Vec<Value> = p
        .ports
        .iter()
        .map(|c| {
            let mut v = json!({"containerPort": c.port, "protocol": match c.proto {
                Proto::Tcp => "TCP", Proto::Udp => "UDP", Proto::Sctp => "SCTP" }});
            if let Some(n) = &c.name {
                v["name"] = json!(n);
            }
            v
        })
        .collect();
    let pod_ips: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": p.name, "namespace": p.namespace, "labels": p.labels},
        "spec": {
            "nodeName": crate::topology::node_name(p.node),
            "hostNetwork": p.host_network,
            "containers": [{"name": "main", "image": "e2e-pod", "ports": ports}],
        },
        "status": {"phase": "Running", "podIP": ips.first().map(|i| i.to_string()), "podIPs": pod_ips},
    })
}

fn write_atomic(dir: &Path, name: &str, text: &str) -> Result<()> {
    // The temporary name does not end in .yaml, so a reader walking the directory ignores it.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name)).with_context(|| format!("renaming to {name}"))
}

fn list(items: Vec<Value>) -> Result<String> {
    Ok(serde_yaml::to_string(
        &json!({"apiVersion": "v1", "kind": "List", "items": items}),
    )?)
}

/// Writes the state. `ips(pod)` gives each pod's addresses (from the topology); `nodes` lists
/// each node's addresses.
pub fn write(
    dir: &Path,
    state: &State,
    nodes: &[Vec<IpAddr>],
    ips: impl Fn(&PodSpec) -> Vec<IpAddr>,
) -> Result<()> {
    let namespaces = state
        .namespaces
        .iter()
        .map(|(name, l)| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": l}}))
        .collect();
    let node_objs = nodes
        .iter()
        .enumerate()
        .map(|(i, addrs)| {
            let a: Vec<Value> = addrs
                .iter()
                .map(|ip| json!({"type": "InternalIP", "address": ip.to_string()}))
                .collect();
            // Dual-stack nodes list both families, as the node IPAM controller does.
            let mut cidrs = vec![format!("10.244.{i}.0/24")];
            if addrs.iter().any(IpAddr::is_ipv6) {
                cidrs.push(format!("fd00:10:244:{i}::/64"));
            }
            json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": crate::topology::node_name(i)},
                "spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs},
                "status": {"addresses": a}})
        })
        .collect();
    let pods = state.pods.iter().map(|p| pod_object(p, &ips(p))).collect();
    write_atomic(dir, "namespaces.yaml", &list(namespaces)?)?;
    write_atomic(dir, "nodes.yaml", &list(node_objs)?)?;
    write_atomic(dir, "pods.yaml", &list(pods)?)?;
    let mut policies = String::new();
    for p in &state.policies {
        policies.push_str("---\n");
        policies.push_str(p);
        if !p.ends_with('\n') {
            policies.push('\n');
        }
    }
    write_atomic(dir, "policies.yaml", &policies)
}
