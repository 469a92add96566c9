//! The reachability oracle: NetworkPolicy v1 semantics evaluated directly on the IR, with the
//! reasons for every verdict. The nftables ruleset is checked against this, and `trace`,
//! `matrix` and `explain` are views of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::ops::Range;

use serde::Serialize;

use crate::model::{Cluster, Family, Pod, Protocol, Source};
use crate::policy::{Direction, NamespaceMatch, Peer, Policy, PortMatch, Rule};
use crate::selector::Selector;

/// One end of a connection: an address, and the pod that owns it if it is a pod's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    /// Index into [`Cluster::pods`]. hostNetwork pods count as pods here (they are never isolated),
    /// but pod selectors never match them.
    pub pod: Option<usize>,
}

/// A rule that admitted (or could admit) traffic, by policy, direction and index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RuleRef {
    pub policy: String,
    pub direction: Direction,
    pub rule: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// Why one side of a connection decided as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The address is not a pod's: no policy applies on this side.
    NotAPod,
    /// hostNetwork pods are never isolated by NetworkPolicy.
    HostNetwork,
    /// Traffic from the destination pod's own node is always allowed.
    FromOwnNode,
    /// A pod talking to itself never leaves its network namespace.
    SamePod,
    /// No policy selects the pod for this direction.
    NotIsolated,
    /// Isolated, and at least one rule admits the traffic.
    AllowedByRule,
    /// Isolated, and no rule of the isolating policies admits the traffic.
    NoRuleAllows,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    pub allowed: bool,
    pub reason: Reason,
    /// Policies that select the pod for this direction (`namespace/name`).
    pub isolated_by: Vec<String>,
    /// Rules that admit the traffic.
    pub allowed_by: Vec<RuleRef>,
}

impl Side {
    fn open(reason: Reason) -> Side {
        Side {
            allowed: true,
            reason,
            isolated_by: Vec::new(),
            allowed_by: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    /// The source pod's egress side.
    pub egress: Side,
    /// The destination pod's ingress side.
    pub ingress: Side,
}

/// Evaluates connections over one snapshot. Building it indexes policies by namespace and pods by
/// address; [`Engine::indexed`] also precomputes peer matches for whole-matrix work.
pub struct Engine<'c> {
    pub cluster: &'c Cluster,
    by_namespace: HashMap<&'c str, Vec<usize>>,
    by_ip: HashMap<IpAddr, usize>,
    /// Per node (in name order), its addresses; per pod, the index of its node's entry. Looked up
    /// on every ingress check, so by index rather than by name.
    node_addresses: Vec<BTreeSet<IpAddr>>,
    pod_node: Vec<Option<usize>>,
    /// When indexed: for each pod, the policies that select it, per direction.
    selecting: Option<Vec<[Vec<usize>; 2]>>,
    /// When indexed: `[policy][direction][rule][peer]`, the pods a pod peer matches, as a bitset
    /// over pod indices (`None` for ipBlocks, which depend on the address, not the pod).
    peer_pods: Option<Vec<[PeerSets; 2]>>,
    /// The distinct pod sets `peer_pods` points into.
    peer_sets: Vec<Box<[u64]>>,
}

/// Per rule, per peer: the index of the pods the peer matches in `peer_sets`.
type PeerSets = Vec<Vec<Option<u32>>>;

/// Where a peer sits in the cluster's policies: (policy, direction, rule position, peer position).
type PeerAt = (usize, Direction, usize, usize);

impl<'c> Engine<'c> {
    pub fn new(cluster: &'c Cluster) -> Engine<'c> {
        let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in cluster.policies.iter().enumerate() {
            by_namespace.entry(p.namespace.as_str()).or_default().push(i);
        }
        let mut by_ip = HashMap::new();
        for (i, p) in cluster.pods.iter().enumerate() {
            if p.addressable() && !p.host_network {
                for ip in &p.ips {
                    by_ip.entry(*ip).or_insert(i);
                }
            }
        }
        let nodes: BTreeSet<&str> = cluster
            .nodes
            .keys()
            .map(String::as_str)
            .chain(cluster.pods.iter().filter_map(|p| p.node_name.as_deref()))
            .collect();
        let nodes: Vec<&str> = nodes.into_iter().collect();
        let pod_node: Vec<Option<usize>> = cluster
            .pods
            .iter()
            .map(|p| p.node_name.as_deref().and_then(|n| nodes.binary_search(&n).ok()))
            .collect();
        // What `Cluster::node_addresses` computes, for every node in one pass over the pods.
        let mut node_addresses: Vec<BTreeSet<IpAddr>> = nodes
            .iter()
            .map(|n| {
                cluster
                    .nodes
                    .get(*n)
                    .map(|n| n.addresses.iter().copied().collect())
                    .unwrap_or_default()
            })
            .collect();
        for (p, n) in cluster.pods.iter().zip(&pod_node) {
            if let (true, Some(n)) = (p.host_network, n) {
                node_addresses[*n].extend(p.ips.iter().copied());
            }
        }
        Engine {
            cluster,
            by_namespace,
            by_ip,
            node_addresses,
            pod_node,
            selecting: None,
            peer_pods: None,
            peer_sets: Vec::new(),
        }
    }

    /// The pods a pod peer matches, as a bitset over pod indices, scanning only the pods of the
    /// namespaces it covers.
    fn pod_set(
        &self,
        namespaces: &NamespaceMatch,
        pods: &Selector,
        ranges: &BTreeMap<&str, Range<usize>>,
    ) -> Box<[u64]> {
        let mut set = vec![0u64; self.cluster.pods.len().div_ceil(64)];
        let mut mark = |range: &Range<usize>| {
            for i in range.clone() {
                let pod = self.pod(i);
                if !pod.host_network && pods.matches(&pod.labels) {
                    set[i / 64] |= 1 << (i % 64);
                }
            }
        };
        match namespaces {
            NamespaceMatch::Own(ns) => ranges.get(ns.as_str()).into_iter().for_each(&mut mark),
            NamespaceMatch::Selector(sel) => {
                for (name, range) in ranges {
                    let covered = self
                        .cluster
                        .namespaces
                        .get(*name)
                        .is_some_and(|ns| sel.matches(&ns.labels));
                    if covered {
                        mark(range);
                    }
                }
            }
        }
        set.into_boxed_slice()
    }

    /// An engine that precomputes which policies select each pod, and which pods each pod peer
    /// matches (for matrices and renders, where every pair is asked).
    pub fn indexed(cluster: &'c Cluster) -> Engine<'c> {
        let mut e = Engine::new(cluster);
        let selecting = (0..cluster.pods.len())
            .map(|i| Direction::BOTH.map(|d| e.compute_selecting(i, d)))
            .collect();
        e.selecting = Some(selecting);
        // Pods are sorted by namespace: each namespace's pods are one range.
        let mut ranges: BTreeMap<&str, Range<usize>> = BTreeMap::new();
        for (i, p) in cluster.pods.iter().enumerate() {
            ranges.entry(p.namespace.as_str()).or_insert(i..i).end = i + 1;
        }
        // Equal peers (common: the same selector in many policies) share one set.
        let mut ids: HashMap<&'c Peer, u32> = HashMap::new();
        let mut sets: Vec<Box<[u64]>> = Vec::new();
        let peer_pods = cluster
            .policies
            .iter()
            .map(|policy| {
                Direction::BOTH.map(|d| {
                    policy
                        .rules(d)
                        .unwrap_or_default()
                        .iter()
                        .map(|rule| {
                            rule.peers
                                .iter()
                                .flatten()
                                .map(|peer| match peer {
                                    Peer::Pods { namespaces, pods } => {
                                        Some(*ids.entry(peer).or_insert_with(|| {
                                            sets.push(e.pod_set(namespaces, pods, &ranges));
                                            (sets.len() - 1) as u32
                                        }))
                                    }
                                    Peer::IpBlock(_) => None,
                                })
                                .collect()
                        })
                        .collect()
                })
            })
            .collect();
        e.peer_sets = sets;
        e.peer_pods = Some(peer_pods);
        e
    }

    pub fn pod(&self, i: usize) -> &'c Pod {
        &self.cluster.pods[i]
    }

    pub fn pod_index(&self, namespace: &str, name: &str) -> Option<usize> {
        self.cluster
            .pods
            .binary_search_by(|p| (p.namespace.as_str(), p.name.as_str()).cmp(&(namespace, name)))
            .ok()
    }

    /// The endpoint for an address: the (non-hostNetwork) pod that has it, if any.
    pub fn endpoint_for_ip(&self, ip: IpAddr) -> Endpoint {
        Endpoint {
            ip,
            pod: self.by_ip.get(&ip).copied(),
        }
    }

    /// A pod's endpoint in `family`, if it is addressable and has an address of that family.
    pub fn pod_endpoint(&self, pod: usize, family: Family) -> Option<Endpoint> {
        let p = self.pod(pod);
        if !p.addressable() {
            return None;
        }
        p.ip(family).map(|ip| Endpoint { ip, pod: Some(pod) })
    }

    /// Policies that select pod `i` for `direction` (indices into [`Cluster::policies`]).
    pub fn selecting(&self, i: usize, direction: Direction) -> std::borrow::Cow<'_, [usize]> {
        match &self.selecting {
            Some(s) => std::borrow::Cow::Borrowed(&s[i][direction as usize]),
            None => std::borrow::Cow::Owned(self.compute_selecting(i, direction)),
        }
    }

    fn compute_selecting(&self, i: usize, direction: Direction) -> Vec<usize> {
        let pod = self.pod(i);
        if pod.host_network {
            return Vec::new();
        }
        self.by_namespace
            .get(pod.namespace.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(|&pi| {
                let p = &self.cluster.policies[pi];
                p.rules(direction).is_some() && p.pod_selector.matches(&pod.labels)
            })
            .collect()
    }

    /// Whether a peer of `policy` covers the endpoint.
    pub fn peer_matches(&self, peer: &Peer, ep: &Endpoint) -> bool {
        match peer {
            Peer::IpBlock(block) => block.contains(&ep.ip),
            Peer::Pods { namespaces, pods } => {
                ep.pod.is_some_and(|i| self.pod_peer_matches(namespaces, pods, i))
            }
        }
    }

    /// Whether a pod peer covers pod `i`: never a hostNetwork pod, which only ipBlocks can match.
    fn pod_peer_matches(&self, namespaces: &NamespaceMatch, pods: &Selector, i: usize) -> bool {
        let pod = self.pod(i);
        if pod.host_network || !pods.matches(&pod.labels) {
            return false;
        }
        match namespaces {
            NamespaceMatch::Own(ns) => &pod.namespace == ns,
            NamespaceMatch::Selector(sel) => self
                .cluster
                .namespaces
                .get(&pod.namespace)
                .is_some_and(|ns| sel.matches(&ns.labels)),
        }
    }

    fn peer_matches_at(&self, (pi, d, k, j): PeerAt, peer: &Peer, ep: &Endpoint) -> bool {
        let set = self
            .peer_pods
            .as_ref()
            .and_then(|sets| sets[pi][d as usize][k][j])
            .map(|id| &self.peer_sets[id as usize]);
        match (set, ep.pod) {
            (Some(set), Some(i)) => set[i / 64] >> (i % 64) & 1 == 1,
            _ => self.peer_matches(peer, ep),
        }
    }

    /// Whether a port entry covers `protocol`/`port` towards `dst` (named ports resolve there).
    pub fn port_matches(&self, pm: &PortMatch, protocol: Protocol, port: u16, dst: Option<usize>) -> bool {
        match pm {
            PortMatch::AnyPort(p) => *p == protocol,
            PortMatch::Range {
                protocol: p,
                start,
                end,
            } => *p == protocol && (*start..=*end).contains(&port),
            PortMatch::Named { protocol: p, name } => {
                *p == protocol
                    && dst
                        .map(|i| self.pod(i))
                        .filter(|d| !d.host_network)
                        .and_then(|d| d.named_port(name, protocol))
                        == Some(port)
            }
        }
    }

    /// Whether a rule admits traffic whose far end is `peer` and whose destination is `dst`.
    pub fn rule_matches(
        &self,
        rule: &Rule,
        peer: &Endpoint,
        dst: &Endpoint,
        protocol: Protocol,
        port: u16,
    ) -> bool {
        self.rule_matches_at(None, rule, peer, dst, protocol, port)
    }

    /// [`Engine::rule_matches`], using the precomputed pod sets when the rule's position is known.
    fn rule_matches_at(
        &self,
        at: Option<(usize, Direction, usize)>,
        rule: &Rule,
        peer: &Endpoint,
        dst: &Endpoint,
        protocol: Protocol,
        port: u16,
    ) -> bool {
        !rule.invalid
            && rule.peers.as_ref().is_none_or(|peers| {
                peers.iter().enumerate().any(|(j, p)| match at {
                    Some((pi, d, k)) => self.peer_matches_at((pi, d, k, j), p, peer),
                    None => self.peer_matches(p, peer),
                })
            })
            && rule.ports.as_ref().is_none_or(|ports| {
                ports
                    .iter()
                    .any(|pm| self.port_matches(pm, protocol, port, dst.pod))
            })
    }

    /// The full verdict for one connection, with reasons on both sides.
    pub fn check(&self, src: &Endpoint, dst: &Endpoint, protocol: Protocol, port: u16) -> Verdict {
        let same_pod = src.pod.is_some() && src.pod == dst.pod;
        let egress = if same_pod {
            Side::open(Reason::SamePod)
        } else {
            self.side(Direction::Egress, src, dst, protocol, port, true)
        };
        let ingress = if same_pod {
            Side::open(Reason::SamePod)
        } else {
            self.side(Direction::Ingress, src, dst, protocol, port, true)
        };
        Verdict {
            allowed: egress.allowed && ingress.allowed,
            egress,
            ingress,
        }
    }

    /// The verdict alone, without collecting reasons: the fast path for matrices.
    pub fn allowed(&self, src: &Endpoint, dst: &Endpoint, protocol: Protocol, port: u16) -> bool {
        if src.pod.is_some() && src.pod == dst.pod {
            return true;
        }
        self.side(Direction::Egress, src, dst, protocol, port, false)
            .allowed
            && self
                .side(Direction::Ingress, src, dst, protocol, port, false)
                .allowed
    }

    fn side(
        &self,
        direction: Direction,
        src: &Endpoint,
        dst: &Endpoint,
        protocol: Protocol,
        port: u16,
        explain: bool,
    ) -> Side {
        // The pod this side belongs to, and the far end the rules' peers are matched against.
        let (own, far) = match direction {
            Direction::Egress => (src, dst),
            Direction::Ingress => (dst, src),
        };
        let Some(own_pod) = own.pod else {
            return Side::open(Reason::NotAPod);
        };
        let pod = self.pod(own_pod);
        if pod.host_network {
            return Side::open(Reason::HostNetwork);
        }
        if direction == Direction::Ingress && self.is_own_node(own_pod, &src.ip) {
            return Side::open(Reason::FromOwnNode);
        }
        let selecting = self.selecting(own_pod, direction);
        if selecting.is_empty() {
            return Side::open(Reason::NotIsolated);
        }
        let mut side = Side {
            allowed: false,
            reason: Reason::NoRuleAllows,
            isolated_by: Vec::new(),
            allowed_by: Vec::new(),
        };
        for &pi in selecting.iter() {
            let policy: &Policy = &self.cluster.policies[pi];
            if explain {
                side.isolated_by.push(policy.key());
            }
            for (k, rule) in policy.rules(direction).unwrap_or_default().iter().enumerate() {
                if self.rule_matches_at(Some((pi, direction, k)), rule, far, dst, protocol, port) {
                    side.allowed = true;
                    side.reason = Reason::AllowedByRule;
                    if !explain {
                        return side;
                    }
                    side.allowed_by.push(RuleRef {
                        policy: policy.key(),
                        direction,
                        rule: rule.index,
                        source: policy.source.clone(),
                    });
                }
            }
        }
        side
    }

    fn is_own_node(&self, pod: usize, ip: &IpAddr) -> bool {
        self.pod_node[pod].is_some_and(|n| self.node_addresses[n].contains(ip))
    }
}
