//! The cluster as the compiler sees it: trimmed, validated projections of Namespaces, Pods, Nodes
//! and NetworkPolicies. Plain data (`Clone + Debug + PartialEq + Eq`), sorted, no kube types, so a
//! watch event that changes nothing that matters compares equal and is skipped upstream.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::policy::Policy;

/// Labels of a pod or namespace. Ordered so that everything derived from them is deterministic.
pub type Labels = BTreeMap<String, String>;

/// The label the API server puts on every namespace (since Kubernetes 1.21).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Transport protocols a NetworkPolicy port can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    /// Parses the API spelling (`TCP`, `UDP`, `SCTP`); the API is case-sensitive, and so are we.
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// nftables' name of the protocol (`meta l4proto tcp`).
    pub fn nft_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// The IANA protocol number, as it appears in the IP header.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    pub fn of_net(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::Ipv4,
            IpNet::V6(_) => Family::Ipv6,
        }
    }
}

/// Where an object was read from, for messages that point at `file:line`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Source {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespace {
    pub name: String,
    /// Always holds `kubernetes.io/metadata.name`, as the API server guarantees.
    pub labels: Labels,
    /// True when no Namespace object was given and the namespace was inferred from a reference.
    pub implicit: bool,
}

impl Namespace {
    pub fn new(name: &str, mut labels: Labels, implicit: bool) -> Namespace {
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
        Namespace {
            name: name.to_string(),
            labels,
            implicit,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub node_name: Option<String>,
    pub host_network: bool,
    pub ports: Vec<ContainerPort>,
    /// `status.podIPs` (or `status.podIP`), primary first, duplicates removed.
    pub ips: Vec<IpAddr>,
    pub phase: Option<String>,
    #[serde(skip)]
    pub source: Option<Source>,
}

impl Pod {
    /// `namespace/name`, the way every message names a pod.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// A pod that can send or receive: it has an IP and has not terminated.
    pub fn addressable(&self) -> bool {
        !self.ips.is_empty() && !matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
    }

    /// The pod's address in `family`, if it has one.
    pub fn ip(&self, family: Family) -> Option<IpAddr> {
        self.ips.iter().copied().find(|ip| Family::of(ip) == family)
    }

    /// Resolves a named port the way the kubelet's container spec defines it: same name and protocol.
    pub fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.protocol == protocol && p.name.as_deref() == Some(name))
            .map(|p| p.port)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    /// `status.addresses` that are IP addresses (InternalIP, ExternalIP).
    pub addresses: Vec<IpAddr>,
    pub pod_cidrs: Vec<IpNet>,
}

/// A consistent snapshot: everything the semantics need, sorted by namespace then name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cluster {
    pub namespaces: BTreeMap<String, Namespace>,
    pub pods: Vec<Pod>,
    pub policies: Vec<Policy>,
    pub nodes: BTreeMap<String, Node>,
}

impl Cluster {
    /// Builds a snapshot, sorting everything and adding the namespaces that pods and policies name
    /// but that were not given (with only their `kubernetes.io/metadata.name` label).
    pub fn new(
        namespaces: impl IntoIterator<Item = Namespace>,
        pods: impl IntoIterator<Item = Pod>,
        policies: impl IntoIterator<Item = Policy>,
        nodes: impl IntoIterator<Item = Node>,
    ) -> Cluster {
        let mut namespaces: BTreeMap<String, Namespace> =
            namespaces.into_iter().map(|ns| (ns.name.clone(), ns)).collect();
        let mut pods: Vec<Pod> = pods.into_iter().collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        pods.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
        let mut policies: Vec<Policy> = policies.into_iter().collect();
        policies.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        policies.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
        let referenced: BTreeSet<String> = pods
            .iter()
            .map(|p| p.namespace.clone())
            .chain(policies.iter().map(|p| p.namespace.clone()))
            .collect();
        for name in referenced {
            namespaces
                .entry(name.clone())
                .or_insert_with(|| Namespace::new(&name, Labels::new(), true));
        }
        Cluster {
            namespaces,
            pods,
            policies,
            nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
        }
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Pod> {
        self.pods
            .binary_search_by(|p| (p.namespace.as_str(), p.name.as_str()).cmp(&(namespace, name)))
            .ok()
            .map(|i| &self.pods[i])
    }

    /// Namespaces that were inferred rather than given, for the "treated as existing" notice.
    pub fn implicit_namespaces(&self) -> Vec<&str> {
        self.namespaces
            .values()
            .filter(|ns| ns.implicit)
            .map(|ns| ns.name.as_str())
            .collect()
    }

    /// Every address that belongs to `node`: its `status.addresses`, plus the IPs of hostNetwork
    /// pods scheduled on it (which are node addresses by definition), so that clusters given without
    /// Node objects still know them.
    pub fn node_addresses(&self, node: &str) -> BTreeSet<IpAddr> {
        let mut out: BTreeSet<IpAddr> = self
            .nodes
            .get(node)
            .map(|n| n.addresses.iter().copied().collect())
            .unwrap_or_default();
        out.extend(
            self.pods
                .iter()
                .filter(|p| p.host_network && p.node_name.as_deref() == Some(node))
                .flat_map(|p| p.ips.iter().copied()),
        );
        out
    }
}
