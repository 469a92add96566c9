//! The compiler's matrix and `Engine::check` against a second, deliberately naive evaluation that
//! works directly on the k8s-openapi objects (its own selector matching, named-port resolution,
//! CIDR arithmetic and validation of the few invalid forms generated), over random clusters.
//! Nothing from the compiler but `load_texts` (to read the same text) is used on the naive side.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::api::networking::v1 as netv1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use policyc_compiler::load::load_texts;
use policyc_compiler::matrix::matrix;
use policyc_compiler::{Engine, Family, Protocol};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Generation: small domains so that selectors, ports and blocks actually hit.

const NAMESPACES: [&str; 3] = ["n0", "n1", "n2"];
/// Pods may also live in `n3`, which is never given as an object (an implicit namespace).
const POD_NAMESPACES: [&str; 4] = ["n0", "n1", "n2", "n3"];
const KEYS: [&str; 4] = ["app", "tier", "team", "env"];
const VALUES: [&str; 3] = ["a", "b", "c"];
const CIDRS: [&str; 7] = [
    "10.244.0.0/16",
    "10.244.0.0/29",
    "10.244.0.4/30",
    "198.18.0.0/24",
    "0.0.0.0/0",
    "fd00:10:244::/64",
    "fd00:10:244::/126",
];
const EXCEPTS: [&str; 5] = [
    "10.244.0.2/32",
    "10.244.0.0/30",
    "10.0.0.0/8",
    "fd00:10:244::2/128",
    "198.18.0.1/32",
];
const MATRIX_PORTS: [(u16, Protocol); 6] = [
    (80, Protocol::Tcp),
    (8080, Protocol::Tcp),
    (53, Protocol::Udp),
    (81, Protocol::Tcp),
    (9, Protocol::Sctp),
    (5353, Protocol::Udp),
];

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(&KEYS[..]).prop_map(str::to_string),
        prop::sample::select(&VALUES[..]).prop_map(str::to_string),
        0..3,
    )
}

fn selector() -> impl Strategy<Value = LabelSelector> {
    let expr = (
        prop::sample::select(&KEYS[..]),
        // "Equals" is invalid: the API server rejects it, and the rule must then admit nothing.
        prop::sample::select(&["In", "NotIn", "Exists", "DoesNotExist", "In", "NotIn", "Equals"][..]),
        prop::collection::btree_set(prop::sample::select(&VALUES[..]), 1..3),
    )
        .prop_map(|(key, op, values)| LabelSelectorRequirement {
            key: key.to_string(),
            operator: op.to_string(),
            values: match op {
                "Exists" | "DoesNotExist" => None,
                _ => Some(values.into_iter().map(str::to_string).collect()),
            },
        });
    (
        prop::option::of(labels()),
        prop::option::of(prop::collection::vec(expr, 0..3)),
    )
        .prop_map(|(match_labels, match_expressions)| LabelSelector {
            match_labels,
            match_expressions,
        })
}

fn peer() -> impl Strategy<Value = netv1::NetworkPolicyPeer> {
    let block = (
        prop::sample::select(&CIDRS[..]),
        prop::option::of(prop::collection::vec(prop::sample::select(&EXCEPTS[..]), 0..2)),
    )
        .prop_map(|(cidr, except)| netv1::IPBlock {
            cidr: cidr.to_string(),
            except: except.map(|e| e.into_iter().map(str::to_string).collect()),
        });
    prop_oneof![
        3 => selector().prop_map(|s| netv1::NetworkPolicyPeer { pod_selector: Some(s), ..Default::default() }),
        2 => selector().prop_map(|s| netv1::NetworkPolicyPeer { namespace_selector: Some(s), ..Default::default() }),
        2 => (selector(), selector()).prop_map(|(n, p)| netv1::NetworkPolicyPeer {
            namespace_selector: Some(n),
            pod_selector: Some(p),
            ..Default::default()
        }),
        3 => block.prop_map(|b| netv1::NetworkPolicyPeer { ip_block: Some(b), ..Default::default() }),
        // Invalid: a peer with nothing set.
        1 => Just(netv1::NetworkPolicyPeer::default()),
    ]
}

fn policy_port() -> impl Strategy<Value = netv1::NetworkPolicyPort> {
    let port = |p: Option<IntOrString>, proto: Option<&str>, end: Option<i32>| netv1::NetworkPolicyPort {
        port: p,
        protocol: proto.map(str::to_string),
        end_port: end,
    };
    prop_oneof![
        Just(port(Some(IntOrString::Int(80)), None, None)),
        Just(port(Some(IntOrString::Int(53)), Some("UDP"), None)),
        Just(port(Some(IntOrString::Int(80)), Some("TCP"), Some(8080))),
        Just(port(Some(IntOrString::String("http".into())), None, None)),
        Just(port(Some(IntOrString::String("dns".into())), Some("UDP"), None)),
        Just(port(Some(IntOrString::String("dns".into())), Some("TCP"), None)),
        Just(port(None, Some("UDP"), None)),
        Just(port(None, Some("SCTP"), None)),
        // Invalid: endPort with a named port.
        Just(port(Some(IntOrString::String("http".into())), None, Some(90))),
    ]
}

#[derive(Clone, Debug)]
struct GenRule {
    peers: Option<Vec<netv1::NetworkPolicyPeer>>,
    ports: Option<Vec<netv1::NetworkPolicyPort>>,
}

fn rule() -> impl Strategy<Value = GenRule> {
    (
        prop::option::of(prop::collection::vec(peer(), 0..3)),
        prop::option::of(prop::collection::vec(policy_port(), 0..3)),
    )
        .prop_map(|(peers, ports)| GenRule { peers, ports })
}

fn policy(i: usize) -> impl Strategy<Value = netv1::NetworkPolicy> {
    (
        prop::sample::select(&NAMESPACES[..]),
        selector(),
        prop_oneof![
            Just(None),
            Just(Some(vec![])),
            Just(Some(vec!["Ingress"])),
            Just(Some(vec!["Egress"])),
            Just(Some(vec!["Ingress", "Egress"])),
        ],
        prop::option::of(prop::collection::vec(rule(), 0..3)),
        prop::option::of(prop::collection::vec(rule(), 0..3)),
    )
        .prop_map(move |(ns, sel, types, ingress, egress)| netv1::NetworkPolicy {
            metadata: ObjectMeta {
                name: Some(format!("np{i}")),
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            spec: Some(netv1::NetworkPolicySpec {
                pod_selector: Some(sel),
                policy_types: types.map(|t| t.into_iter().map(str::to_string).collect()),
                ingress: ingress.map(|rs| {
                    rs.into_iter()
                        .map(|r| netv1::NetworkPolicyIngressRule {
                            from: r.peers,
                            ports: r.ports,
                        })
                        .collect()
                }),
                egress: egress.map(|rs| {
                    rs.into_iter()
                        .map(|r| netv1::NetworkPolicyEgressRule {
                            to: r.peers,
                            ports: r.ports,
                        })
                        .collect()
                }),
            }),
        })
}

/// Container port sets: `http` and `dns` mean different numbers (and protocols) on different pods.
fn container_ports() -> impl Strategy<Value = Vec<corev1::ContainerPort>> {
    let cp = |name: Option<&str>, port: i32, proto: &str| corev1::ContainerPort {
        name: name.map(str::to_string),
        container_port: port,
        protocol: Some(proto.to_string()),
        ..Default::default()
    };
    prop::sample::select(vec![
        vec![],
        vec![cp(Some("http"), 80, "TCP")],
        vec![cp(Some("http"), 8080, "TCP"), cp(Some("dns"), 53, "UDP")],
        vec![cp(Some("dns"), 5353, "TCP"), cp(None, 81, "TCP")],
        vec![cp(Some("http"), 81, "TCP"), cp(Some("dns"), 5353, "UDP")],
    ])
}

#[derive(Clone, Debug)]
struct GenPod {
    ns: &'static str,
    labels: BTreeMap<String, String>,
    ports: Vec<corev1::ContainerPort>,
    node: usize,
    kind: PodKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum PodKind {
    V4,
    Dual,
    V6,
    HostNetwork,
    Failed,
    NoIp,
}

fn gen_pod() -> impl Strategy<Value = GenPod> {
    (
        prop::sample::select(&POD_NAMESPACES[..]),
        labels(),
        container_ports(),
        0..2usize,
        prop::sample::select(vec![
            PodKind::V4,
            PodKind::V4,
            PodKind::Dual,
            PodKind::Dual,
            PodKind::V6,
            PodKind::HostNetwork,
            PodKind::Failed,
            PodKind::NoIp,
        ]),
    )
        .prop_map(|(ns, labels, ports, node, kind)| GenPod {
            ns,
            labels,
            ports,
            node,
            kind,
        })
}

#[derive(Clone, Debug)]
struct World {
    namespaces: Vec<corev1::Namespace>,
    pods: Vec<corev1::Pod>,
    nodes: Vec<corev1::Node>,
    policies: Vec<netv1::NetworkPolicy>,
}

fn node_ip(node: usize) -> String {
    format!("198.18.0.{}", node + 1)
}

fn world() -> impl Strategy<Value = World> {
    let namespaces = prop::collection::vec(labels(), 3).prop_map(|ls| {
        ls.into_iter()
            .zip(NAMESPACES)
            .map(|(labels, name)| corev1::Namespace {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    labels: Some(labels),
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect::<Vec<_>>()
    });
    let policies = (0..7usize).prop_flat_map(|n| (0..n).map(policy).collect::<Vec<_>>());
    (
        namespaces,
        prop::collection::vec(gen_pod(), 2..12),
        policies,
        // Whether Node objects are given; without them node addresses come from hostNetwork pods.
        any::<bool>(),
    )
        .prop_map(|(namespaces, pods, policies, with_nodes)| {
            let pods = pods.into_iter().enumerate().map(|(i, p)| k8s_pod(i, p)).collect();
            let nodes = if with_nodes {
                (0..2)
                    .map(|n| corev1::Node {
                        metadata: ObjectMeta {
                            name: Some(format!("node{n}")),
                            ..Default::default()
                        },
                        status: Some(corev1::NodeStatus {
                            addresses: Some(vec![corev1::NodeAddress {
                                type_: "InternalIP".into(),
                                address: node_ip(n),
                            }]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect()
            } else {
                Vec::new()
            };
            World {
                namespaces,
                pods,
                nodes,
                policies,
            }
        })
}

fn k8s_pod(i: usize, p: GenPod) -> corev1::Pod {
    let v4 = format!("10.244.0.{}", i + 1);
    let v6 = format!("fd00:10:244::{:x}", i + 1);
    let ips: Vec<String> = match p.kind {
        PodKind::V4 | PodKind::Failed => vec![v4],
        PodKind::Dual => vec![v4, v6],
        PodKind::V6 => vec![v6],
        PodKind::HostNetwork => vec![node_ip(p.node)],
        PodKind::NoIp => vec![],
    };
    corev1::Pod {
        metadata: ObjectMeta {
            name: Some(format!("p{i}")),
            namespace: Some(p.ns.to_string()),
            labels: Some(p.labels),
            ..Default::default()
        },
        spec: Some(corev1::PodSpec {
            node_name: Some(format!("node{}", p.node)),
            host_network: Some(p.kind == PodKind::HostNetwork),
            containers: vec![corev1::Container {
                name: "c".into(),
                ports: Some(p.ports),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(corev1::PodStatus {
            phase: Some(
                if p.kind == PodKind::Failed {
                    "Failed"
                } else {
                    "Running"
                }
                .into(),
            ),
            pod_ip: ips.first().cloned(),
            pod_ips: Some(ips.iter().map(|ip| corev1::PodIP { ip: ip.clone() }).collect()),
            ..Default::default()
        }),
    }
}

fn to_yaml(w: &World) -> String {
    let mut docs: Vec<String> = Vec::new();
    docs.extend(w.namespaces.iter().map(|o| serde_yaml::to_string(o).unwrap()));
    docs.extend(w.pods.iter().map(|o| serde_yaml::to_string(o).unwrap()));
    docs.extend(w.nodes.iter().map(|o| serde_yaml::to_string(o).unwrap()));
    docs.extend(w.policies.iter().map(|o| serde_yaml::to_string(o).unwrap()));
    docs.join("---\n")
}

// ---------------------------------------------------------------------------------------------
// The naive evaluation, straight from the API reference's wording.

/// A rule's peers and ports, borrowed from either direction's rule type.
type RuleRefs<'a> = (
    Option<&'a Vec<netv1::NetworkPolicyPeer>>,
    Option<&'a Vec<netv1::NetworkPolicyPort>>,
);

struct Naive<'w> {
    w: &'w World,
}

fn meta_labels(m: &ObjectMeta) -> BTreeMap<String, String> {
    m.labels.clone().unwrap_or_default()
}

/// `Some(matches)`, or `None` when the selector is invalid.
fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> Option<bool> {
    let mut ok = true;
    for (k, v) in sel.match_labels.iter().flatten() {
        ok &= labels.get(k) == Some(v);
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        let have = labels.get(&e.key);
        ok &= match e.operator.as_str() {
            "In" if !values.is_empty() => have.is_some_and(|v| values.contains(v)),
            "NotIn" if !values.is_empty() => have.is_none_or(|v| !values.contains(v)),
            "Exists" if values.is_empty() => have.is_some(),
            "DoesNotExist" if values.is_empty() => have.is_none(),
            _ => return None,
        };
    }
    Some(ok)
}

fn selector_valid(sel: &LabelSelector) -> bool {
    selector_matches(sel, &BTreeMap::new()).is_some()
}

/// A CIDR as (is_v6, network bits as u128 left-aligned within the family's width, prefix length).
fn cidr(s: &str) -> (bool, u128, u32) {
    let (addr, len) = s.split_once('/').unwrap();
    let len: u32 = len.parse().unwrap();
    match addr.parse::<IpAddr>().unwrap() {
        IpAddr::V4(a) => (false, u128::from(u32::from(a)), len),
        IpAddr::V6(a) => (true, u128::from(a), len),
    }
}

fn in_cidr(s: &str, ip: IpAddr) -> bool {
    let (v6, net, len) = cidr(s);
    let (width, bits) = match ip {
        IpAddr::V4(a) => (32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, u128::from(a)),
    };
    if v6 != (width == 128) {
        return false;
    }
    let shift = width - len;
    len == 0 || (net >> shift) == (bits >> shift)
}

fn except_valid(c: &str, e: &str) -> bool {
    let (cv6, cnet, clen) = cidr(c);
    let (ev6, enet, elen) = cidr(e);
    let width = if cv6 { 128 } else { 32 };
    cv6 == ev6 && elen > clen && (clen == 0 || (cnet >> (width - clen)) == (enet >> (width - clen)))
}

fn peer_valid(p: &netv1::NetworkPolicyPeer) -> bool {
    match (&p.ip_block, &p.namespace_selector, &p.pod_selector) {
        (None, None, None) => false,
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => false,
        (Some(b), None, None) => b.except.iter().flatten().all(|e| except_valid(&b.cidr, e)),
        (None, n, s) => n.iter().chain(s.iter()).all(selector_valid),
    }
}

fn port_valid(p: &netv1::NetworkPolicyPort) -> bool {
    !(matches!(p.port, Some(IntOrString::String(_))) && p.end_port.is_some())
}

fn pod_ips(p: &corev1::Pod) -> Vec<IpAddr> {
    p.status
        .iter()
        .flat_map(|s| s.pod_ips.iter().flatten())
        .map(|ip| ip.ip.parse().unwrap())
        .collect()
}

fn host_network(p: &corev1::Pod) -> bool {
    p.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
}

fn addressable(p: &corev1::Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    !pod_ips(p).is_empty() && !matches!(phase, Some("Failed" | "Succeeded"))
}

fn pod_ns(p: &corev1::Pod) -> &str {
    p.metadata.namespace.as_deref().unwrap()
}

fn family_ip(p: &corev1::Pod, v6: bool) -> Option<IpAddr> {
    pod_ips(p).into_iter().find(|ip| ip.is_ipv6() == v6)
}

impl<'w> Naive<'w> {
    fn ns_labels(&self, name: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .w
            .namespaces
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .map(|n| meta_labels(&n.metadata))
            .unwrap_or_default();
        labels.insert("kubernetes.io/metadata.name".into(), name.into());
        labels
    }

    fn node_addresses(&self, node: &str) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = self
            .w
            .nodes
            .iter()
            .filter(|n| n.metadata.name.as_deref() == Some(node))
            .flat_map(|n| n.status.iter().flat_map(|s| s.addresses.iter().flatten()))
            .map(|a| a.address.parse().unwrap())
            .collect();
        for p in &self.w.pods {
            if host_network(p) && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node) {
                out.extend(pod_ips(p));
            }
        }
        out
    }

    /// (isolates ingress, isolates egress), with the API server's defaulting.
    fn types(np: &netv1::NetworkPolicy) -> (bool, bool) {
        let spec = np.spec.as_ref().unwrap();
        match spec.policy_types.as_ref().filter(|t| !t.is_empty()) {
            None => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
            Some(t) => (t.iter().any(|x| x == "Ingress"), t.iter().any(|x| x == "Egress")),
        }
    }

    fn selects(np: &netv1::NetworkPolicy, pod: &corev1::Pod) -> bool {
        if np.metadata.namespace.as_deref() != Some(pod_ns(pod)) {
            return false;
        }
        let sel = np.spec.as_ref().unwrap().pod_selector.clone().unwrap_or_default();
        // An invalid podSelector selects every pod of the namespace (and the policy admits nothing).
        selector_matches(&sel, &meta_labels(&pod.metadata)).unwrap_or(true)
    }

    fn peer_matches(
        &self,
        np: &netv1::NetworkPolicy,
        peer: &netv1::NetworkPolicyPeer,
        far: Option<&corev1::Pod>,
        ip: IpAddr,
    ) -> bool {
        if let Some(b) = &peer.ip_block {
            return in_cidr(&b.cidr, ip) && !b.except.iter().flatten().any(|e| in_cidr(e, ip));
        }
        // Pod selectors match pods only, and never hostNetwork ones.
        let Some(far) = far.filter(|f| !host_network(f)) else {
            return false;
        };
        let ns_ok = match &peer.namespace_selector {
            None => np.metadata.namespace.as_deref() == Some(pod_ns(far)),
            Some(s) => selector_matches(s, &self.ns_labels(pod_ns(far))).unwrap(),
        };
        let pod_ok = match &peer.pod_selector {
            None => true,
            Some(s) => selector_matches(s, &meta_labels(&far.metadata)).unwrap(),
        };
        ns_ok && pod_ok
    }

    fn port_matches(p: &netv1::NetworkPolicyPort, dst: Option<&corev1::Pod>, port: u16, proto: &str) -> bool {
        let p_proto = p.protocol.as_deref().unwrap_or("TCP");
        if p_proto != proto {
            return false;
        }
        match &p.port {
            None => true,
            Some(IntOrString::Int(n)) => (*n..=p.end_port.unwrap_or(*n)).contains(&i32::from(port)),
            Some(IntOrString::String(name)) => {
                let Some(dst) = dst.filter(|d| !host_network(d)) else {
                    return false;
                };
                dst.spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .flat_map(|c| c.ports.iter().flatten())
                    .find(|cp| {
                        cp.name.as_deref() == Some(name.as_str())
                            && cp.protocol.as_deref().unwrap_or("TCP") == proto
                    })
                    .is_some_and(|cp| cp.container_port == i32::from(port))
            }
        }
    }

    /// Whether `own`'s side (`ingress` or egress) admits traffic with `far` at `far_ip`, to `dst`.
    #[allow(clippy::too_many_arguments)]
    fn side(
        &self,
        ingress: bool,
        own: &corev1::Pod,
        far: Option<&corev1::Pod>,
        far_ip: IpAddr,
        dst: Option<&corev1::Pod>,
        port: u16,
        proto: &str,
    ) -> bool {
        if host_network(own) {
            return true;
        }
        if ingress {
            let node = own.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap();
            if self.node_addresses(&node).contains(&far_ip) {
                return true;
            }
        }
        let mut isolated = false;
        for np in &self.w.policies {
            let (i, e) = Self::types(np);
            if !(if ingress { i } else { e }) || !Self::selects(np, own) {
                continue;
            }
            isolated = true;
            let spec = np.spec.as_ref().unwrap();
            if !selector_valid(&spec.pod_selector.clone().unwrap_or_default()) {
                continue;
            }
            let rules: Vec<RuleRefs<'_>> = if ingress {
                spec.ingress
                    .iter()
                    .flatten()
                    .map(|r| (r.from.as_ref(), r.ports.as_ref()))
                    .collect()
            } else {
                spec.egress
                    .iter()
                    .flatten()
                    .map(|r| (r.to.as_ref(), r.ports.as_ref()))
                    .collect()
            };
            for (peers, ports) in rules {
                let peers = peers.cloned().unwrap_or_default();
                let ports = ports.cloned().unwrap_or_default();
                if !peers.iter().all(peer_valid) || !ports.iter().all(port_valid) {
                    continue;
                }
                let peer_ok = peers.is_empty() || peers.iter().any(|p| self.peer_matches(np, p, far, far_ip));
                let port_ok =
                    ports.is_empty() || ports.iter().any(|p| Self::port_matches(p, dst, port, proto));
                if peer_ok && port_ok {
                    return true;
                }
            }
        }
        !isolated
    }

    fn allowed(&self, src: usize, dst: usize, v6: bool, port: u16, proto: &str) -> bool {
        if src == dst {
            return true;
        }
        let (s, d) = (&self.w.pods[src], &self.w.pods[dst]);
        let (sip, dip) = (family_ip(s, v6).unwrap(), family_ip(d, v6).unwrap());
        self.side(false, s, Some(d), dip, Some(d), port, proto)
            && self.side(true, d, Some(s), sip, Some(d), port, proto)
    }

    /// The addressable, non-hostNetwork pod that owns `ip`, if any (the only kind an address
    /// identifies: a hostNetwork pod's address is its node's).
    fn owner(&self, ip: IpAddr) -> Option<usize> {
        (0..self.w.pods.len()).find(|&i| {
            let p = &self.w.pods[i];
            addressable(p) && !host_network(p) && pod_ips(p).contains(&ip)
        })
    }

    /// From a bare address to pod `dst`.
    fn allowed_from_ip(&self, ip: IpAddr, dst: usize, port: u16, proto: &str) -> bool {
        if let Some(src) = self.owner(ip) {
            return self.allowed(src, dst, ip.is_ipv6(), port, proto);
        }
        let d = &self.w.pods[dst];
        self.side(true, d, None, ip, Some(d), port, proto)
    }

    /// From pod `src` to a bare address.
    fn allowed_to_ip(&self, src: usize, ip: IpAddr, port: u16, proto: &str) -> bool {
        if let Some(dst) = self.owner(ip) {
            return self.allowed(src, dst, ip.is_ipv6(), port, proto);
        }
        self.side(false, &self.w.pods[src], None, ip, None, port, proto)
    }
}

// ---------------------------------------------------------------------------------------------

fn check_world(w: &World) -> Result<(), TestCaseError> {
    let text = to_yaml(w);
    let (cluster, _, _diags) = load_texts([("world.yaml", text.as_str())]);
    let naive = Naive { w };
    let indexed = Engine::indexed(&cluster);
    let plain = Engine::new(&cluster);
    for (family, v6) in [(Family::Ipv4, false), (Family::Ipv6, true)] {
        // The naive side's pod order: addressable pods with an address of the family, by ns/name.
        let mut order: Vec<usize> = (0..w.pods.len())
            .filter(|&i| addressable(&w.pods[i]) && family_ip(&w.pods[i], v6).is_some())
            .collect();
        let key = |i: usize| {
            let m = &w.pods[i].metadata;
            (m.namespace.clone().unwrap(), m.name.clone().unwrap())
        };
        order.sort_by_key(|&i| key(i));
        let names: Vec<String> = order
            .iter()
            .map(|&i| format!("{}/{}", key(i).0, key(i).1))
            .collect();
        let m = matrix(&indexed, &MATRIX_PORTS, family);
        prop_assert_eq!(&m.pods, &names);
        for (r, &(port, proto)) in m.results.iter().zip(MATRIX_PORTS.iter()) {
            prop_assert_eq!((r.port, r.protocol), (port, proto));
            for (a, &i) in order.iter().enumerate() {
                for (b, &j) in order.iter().enumerate() {
                    let want = naive.allowed(i, j, v6, port, proto.as_str());
                    prop_assert_eq!(
                        r.allowed[a][b],
                        want,
                        "matrix {} -> {} {}/{} ({:?})\n{}",
                        names[a],
                        names[b],
                        port,
                        proto,
                        family,
                        text
                    );
                    let src = plain
                        .pod_endpoint(plain.pod_index(&key(i).0, &key(i).1).unwrap(), family)
                        .unwrap();
                    let dst = plain
                        .pod_endpoint(plain.pod_index(&key(j).0, &key(j).1).unwrap(), family)
                        .unwrap();
                    let v = plain.check(&src, &dst, proto, port);
                    prop_assert_eq!(
                        v.allowed,
                        want,
                        "check {} -> {} {}/{}\n{}",
                        names[a],
                        names[b],
                        port,
                        proto,
                        text
                    );
                }
            }
        }
    }
    // Bare addresses: node addresses (and hostNetwork pods'), pod addresses (incl. a Failed pod's),
    // and outside ones, each way.
    let mut addresses: Vec<IpAddr> = [
        "198.18.0.1",
        "198.18.0.2",
        "192.0.2.1",
        "fd00:10:244::99",
        "10.244.0.99",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    addresses.extend(w.pods.iter().flat_map(pod_ips));
    for &ip in &addresses {
        let v6 = ip.is_ipv6();
        let family = if v6 { Family::Ipv6 } else { Family::Ipv4 };
        let bare = plain.endpoint_for_ip(ip);
        for i in (0..w.pods.len()).filter(|&i| addressable(&w.pods[i])) {
            let m = &w.pods[i].metadata;
            let (ns, name) = (m.namespace.as_deref().unwrap(), m.name.as_deref().unwrap());
            let Some(pod) = plain.pod_endpoint(plain.pod_index(ns, name).unwrap(), family) else {
                continue;
            };
            for &(port, proto) in &MATRIX_PORTS {
                let want = naive.allowed_from_ip(ip, i, port, proto.as_str());
                let got = plain.check(&bare, &pod, proto, port).allowed;
                prop_assert_eq!(
                    got,
                    want,
                    "check {} -> {}/{} {}/{}\n{}",
                    ip,
                    ns,
                    name,
                    port,
                    proto,
                    text
                );
                let want = naive.allowed_to_ip(i, ip, port, proto.as_str());
                let got = plain.check(&pod, &bare, proto, port).allowed;
                prop_assert_eq!(
                    got,
                    want,
                    "check {}/{} -> {} {}/{}\n{}",
                    ns,
                    name,
                    ip,
                    port,
                    proto,
                    text
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn matrix_agrees_with_naive_evaluation(w in world()) {
        check_world(&w)?;
    }
}

/// The naive evaluation itself must be able to disagree: a hand-made world with a known answer.
#[test]
fn naive_evaluation_sanity() {
    let pod = |i: usize, ns: &'static str, app: &str, ports| {
        k8s_pod(
            i,
            GenPod {
                ns,
                labels: BTreeMap::from([("app".to_string(), app.to_string())]),
                ports,
                node: 0,
                kind: PodKind::V4,
            },
        )
    };
    let http = |n| {
        vec![corev1::ContainerPort {
            name: Some("http".into()),
            container_port: n,
            ..Default::default()
        }]
    };
    let np: netv1::NetworkPolicy = serde_yaml::from_str(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x, namespace: n0}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [db]}]}}]
    ports: [{port: http}]",
    )
    .unwrap();
    let w = World {
        namespaces: vec![],
        pods: vec![
            pod(0, "n0", "web", vec![]),
            pod(1, "n0", "db", http(5432)),
            pod(2, "n1", "web", vec![]),
        ],
        nodes: vec![],
        policies: vec![np],
    };
    let naive = Naive { w: &w };
    assert!(naive.allowed(0, 1, false, 5432, "TCP"));
    assert!(!naive.allowed(0, 1, false, 80, "TCP"));
    assert!(
        !naive.allowed(2, 1, false, 5432, "TCP"),
        "podSelector alone is own-namespace"
    );
    assert!(naive.allowed(1, 0, false, 1, "UDP"));
    check_world(&w).unwrap();
}
