//! An in-memory packet tracer over the IR (the idea of kube-proxy's nftables tracer): walks one
//! packet through a node's base chain for a hook, following vmap lookups, jumps, gotos and
//! returns, evaluating set lookups (exact, interval and concatenated), and reports the verdict
//! with the rules it hit. [`trace_connection`] lifts it to the cluster: which nodes' rulesets and
//! hooks a connection between two endpoints traverses; it is allowed iff every traversal accepts.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::ir::*;
use super::text::rule_text;
use super::Ruleset;
use crate::eval::Endpoint;
use crate::model::{Cluster, Family, Protocol};

/// The packet's headers as our rules see them (interfaces are irrelevant to them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub hook: Hook,
    pub saddr: IpAddr,
    pub daddr: IpAddr,
    pub protocol: Protocol,
    pub dport: u16,
    pub ct_state: CtState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub chain: String,
    /// Position of the rule in its chain.
    pub rule: usize,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accept,
    Drop,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub outcome: Outcome,
    pub hits: Vec<Hit>,
}

impl Trace {
    pub fn accepted(&self) -> bool {
        self.outcome == Outcome::Accept
    }
}

fn field(p: &Packet, f: AddrField) -> IpAddr {
    match f {
        AddrField::Saddr => p.saddr,
        AddrField::Daddr => p.daddr,
    }
}

fn in_range(ip: IpAddr, lo: IpAddr, hi: IpAddr) -> bool {
    match (ip, lo, hi) {
        (IpAddr::V4(x), IpAddr::V4(a), IpAddr::V4(z)) => a <= x && x <= z,
        (IpAddr::V6(x), IpAddr::V6(a), IpAddr::V6(z)) => a <= x && x <= z,
        _ => false,
    }
}

fn set_contains(set: &Set, ip: IpAddr) -> bool {
    match set.kind {
        SetKind::Addr(_) => set.elements.contains(&Element::Addr(ip)),
        SetKind::Interval(_) => set.elements.iter().any(|e| match e {
            Element::Range(lo, hi) => in_range(ip, *lo, *hi),
            Element::Addr(a) => *a == ip,
            _ => false,
        }),
        _ => false,
    }
}

fn matches(rs: &Ruleset, m: &Match, p: &Packet) -> bool {
    match m {
        Match::CtState(states) => states.contains(&p.ct_state),
        // Our packets are TCP, UDP or SCTP.
        Match::Icmpv6Nd => false,
        Match::AddrInSet {
            family,
            field: f,
            set,
        } => {
            let ip = field(p, *f);
            Family::of(&ip) == *family && rs.set(set).is_some_and(|s| set_contains(s, ip))
        }
        Match::L4Proto(proto) => *proto == p.protocol,
        Match::Dports(ranges) => ranges.iter().any(|&(a, z)| (a..=z).contains(&p.dport)),
        Match::AddrProtoPortInSet {
            family,
            field: f,
            set,
        } => {
            let ip = field(p, *f);
            Family::of(&ip) == *family
                && rs.set(set).is_some_and(|s| {
                    s.elements
                        .contains(&Element::AddrProtoPort(ip, p.protocol, p.dport))
                })
        }
        // A traced packet never comes from the node that traces it: the node's own traffic to
        // its pods leaves through OUTPUT, and to itself loops back over `lo`, neither of which
        // [`trace_connection`] sends through a ruleset.
        Match::SaddrLocal => false,
    }
}

/// Nesting limit: nft's own jump stack is 16 deep.
const MAX_DEPTH: usize = 16;

/// Walks `packet` through the ruleset's base chain for its hook; no such chain accepts.
pub fn trace(rs: &Ruleset, packet: &Packet) -> Trace {
    let mut hits = Vec::new();
    let Some(base) = rs
        .chains
        .iter()
        .find(|c| c.base.is_some_and(|b| b.hook == packet.hook))
    else {
        return Trace {
            outcome: Outcome::Accept,
            hits,
        };
    };
    // Frames of (chain, next rule). A goto replaces the top frame; a return pops it.
    let mut stack: Vec<(&Chain, usize)> = vec![(base, 0)];
    while let Some((chain, pos)) = stack.last().copied() {
        let Some(rule) = chain.rules.get(pos) else {
            stack.pop();
            if stack.is_empty() {
                // The base chain's policy.
                return Trace {
                    outcome: Outcome::Accept,
                    hits,
                };
            }
            continue;
        };
        stack.last_mut().expect("non-empty").1 += 1;
        if !rule.matches.iter().all(|m| matches(rs, m, packet)) {
            continue;
        }
        let verdict = match &rule.action {
            Action::Verdict(v) => Some(v.clone()),
            Action::Vmap {
                family,
                field: f,
                map,
            } => {
                let ip = field(packet, *f);
                if Family::of(&ip) != *family {
                    continue;
                }
                match rs.set(map).and_then(|m| m.lookup_verdict(ip)) {
                    Some(v) => Some(v.clone()),
                    None => continue,
                }
            }
            Action::Log { .. } => None,
        };
        hits.push(Hit {
            chain: chain.name.clone(),
            rule: pos,
            text: rule_text(rule),
        });
        let Some(verdict) = verdict else { continue };
        let is_goto = matches!(verdict, Verdict::Goto(_));
        match verdict {
            Verdict::Accept => {
                return Trace {
                    outcome: Outcome::Accept,
                    hits,
                }
            }
            Verdict::Drop => {
                return Trace {
                    outcome: Outcome::Drop,
                    hits,
                }
            }
            Verdict::Return => {
                stack.pop();
                if stack.is_empty() {
                    return Trace {
                        outcome: Outcome::Accept,
                        hits,
                    };
                }
            }
            Verdict::Jump(target) | Verdict::Goto(target) => {
                let Some(next) = rs.chain(&target) else {
                    // nft refuses a ruleset that jumps to a missing chain; treat it as a drop.
                    return Trace {
                        outcome: Outcome::Drop,
                        hits,
                    };
                };
                if is_goto {
                    stack.pop();
                }
                if stack.len() >= MAX_DEPTH {
                    return Trace {
                        outcome: Outcome::Drop,
                        hits,
                    };
                }
                stack.push((next, 0));
            }
        }
    }
    Trace {
        outcome: Outcome::Accept,
        hits,
    }
}

/// One node's hook that a connection's first packet passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traversal {
    pub node: String,
    pub hook: Hook,
    pub trace: Trace,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionTrace {
    pub allowed: bool,
    /// Empty when no hook of ours sees the packet (a pod to itself; a node to its own pods).
    pub traversals: Vec<Traversal>,
}

/// Where an endpoint lives: a pod's node, the node that owns a host address, or the node whose
/// pod CIDRs hold an address that no pod or node has (a pod the API does not show yet).
fn node_of(cluster: &Cluster, ep: &Endpoint) -> Option<String> {
    match ep.pod.map(|i| &cluster.pods[i]) {
        Some(p) => p.node_name.clone(),
        None => host_node(cluster, ep.ip).or_else(|| cidr_node(cluster, ep.ip)),
    }
}

/// The node whose `spec.podCIDRs` hold `ip`, when `ip` is no node's own address. The bridge and
/// vxlan addresses inside a CIDR (`10.244.1.1`, `10.244.1.0`) are not in the API, so they are
/// traced as pods too.
fn cidr_node(cluster: &Cluster, ip: IpAddr) -> Option<String> {
    if host_node(cluster, ip).is_some() {
        return None;
    }
    cluster
        .nodes
        .values()
        .find(|n| n.pod_cidrs.iter().any(|c| c.contains(&ip)))
        .map(|n| n.name.clone())
}

fn host_node(cluster: &Cluster, ip: IpAddr) -> Option<String> {
    let mut nodes: Vec<&str> = cluster
        .nodes
        .keys()
        .map(String::as_str)
        .chain(cluster.pods.iter().filter_map(|p| p.node_name.as_deref()))
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
        .into_iter()
        .find(|n| cluster.node_addresses(n).contains(&ip))
        .map(str::to_string)
}

/// The first packet of a connection from `src` to `dst` through every node's ruleset on its path.
/// `rulesets` holds each node's ruleset; a node without one filters nothing, and a pod without a
/// node (never scheduled, so in no node's maps) is filtered nowhere.
///
/// An address inside a node's pod CIDRs that no pod has (see [`super::UnprogrammedPods`]) is
/// traced as a pod on that node that no ruleset knows.
///
/// The path: a pod source's own node sees it in `forward` (or `input` when the destination is
/// that node's address); a pod destination's node sees it in `forward`, unless that is the
/// source pod's node too (one pass covers both sides) or the source is that node itself
/// (OUTPUT, never filtered); a host destination's node sees it in `input`.
pub fn trace_connection(
    cluster: &Cluster,
    rulesets: &BTreeMap<String, Ruleset>,
    src: &Endpoint,
    dst: &Endpoint,
    protocol: Protocol,
    port: u16,
) -> ConnectionTrace {
    let open = ConnectionTrace {
        allowed: true,
        traversals: Vec::new(),
    };
    if src.pod.is_some() && src.pod == dst.pod {
        return open;
    }
    // An address in a node's pod CIDRs that no pod has is a pod the API does not show yet: its
    // packets cross its node's `forward` like any pod's.
    let is_workload = |ep: &Endpoint| match ep.pod {
        Some(i) => !cluster.pods[i].host_network,
        None => cidr_node(cluster, ep.ip).is_some(),
    };
    let src_node = node_of(cluster, src);
    let dst_node = node_of(cluster, dst);
    let (src_wl, dst_wl) = (is_workload(src), is_workload(dst));
    let mut hops: Vec<(String, Hook)> = Vec::new();
    if let (true, Some(s)) = (src_wl, &src_node) {
        let to_own_node = cluster.node_addresses(s).contains(&dst.ip);
        hops.push((s.clone(), if to_own_node { Hook::Input } else { Hook::Forward }));
    }
    let same_node_from_pod = src_wl && src_node.is_some() && src_node == dst_node;
    if let Some(d) = &dst_node {
        if dst_wl {
            let from_own_node = !src_wl && cluster.node_addresses(d).contains(&src.ip);
            if from_own_node {
                // Leaves through OUTPUT, which we never filter.
            } else if !same_node_from_pod {
                hops.push((d.clone(), Hook::Forward));
            }
        } else if !same_node_from_pod && !cluster.node_addresses(d).contains(&src.ip) {
            hops.push((d.clone(), Hook::Input));
        }
    }
    if hops.is_empty() {
        return open;
    }
    let mut allowed = true;
    let traversals = hops
        .into_iter()
        .map(|(node, hook)| {
            let packet = Packet {
                hook,
                saddr: src.ip,
                daddr: dst.ip,
                protocol,
                dport: port,
                ct_state: CtState::New,
            };
            let trace = match rulesets.get(&node) {
                Some(rs) => trace(rs, &packet),
                None => Trace {
                    outcome: Outcome::Accept,
                    hits: Vec::new(),
                },
            };
            allowed &= trace.accepted();
            Traversal { node, hook, trace }
        })
        .collect();
    ConnectionTrace { allowed, traversals }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Family;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// forward: vmap → group (jump) → return → next vmap → group with goto → drop.
    fn ruleset() -> Ruleset {
        let v4 = Family::Ipv4;
        let mut egress = Set::new("egress4", SetKind::Vmap(v4));
        egress
            .elements
            .insert(Element::Verdict(ip("10.0.0.1"), Verdict::Jump("egr".into())));
        let mut ingress = Set::new("ingress4", SetKind::Vmap(v4));
        ingress
            .elements
            .insert(Element::Verdict(ip("10.0.0.2"), Verdict::Jump("ing".into())));
        let mut block = Set::new("cidr", SetKind::Interval(v4));
        block
            .elements
            .insert(Element::Range(ip("10.0.0.0"), ip("10.0.0.1")));
        let mut np = Set::new("np", SetKind::AddrProtoPort(v4));
        np.elements
            .insert(Element::AddrProtoPort(ip("10.0.0.2"), Protocol::Tcp, 8080));
        let vmap = |field, map: &str| {
            Rule::new(
                vec![],
                Action::Vmap {
                    family: v4,
                    field,
                    map: map.into(),
                },
            )
        };
        let chain = |name: &str, rules| Chain {
            name: name.into(),
            base: None,
            rules,
        };
        Ruleset {
            table: "t".into(),
            sets: vec![block, egress, ingress, np],
            chains: vec![
                Chain {
                    name: "forward".into(),
                    base: Some(BaseChain {
                        hook: Hook::Forward,
                        priority: 0,
                    }),
                    rules: vec![
                        vmap(AddrField::Saddr, "egress4"),
                        vmap(AddrField::Daddr, "ingress4"),
                    ],
                },
                chain(
                    "egr",
                    vec![Rule::verdict(
                        vec![Match::AddrProtoPortInSet {
                            family: v4,
                            field: AddrField::Daddr,
                            set: "np".into(),
                        }],
                        Verdict::Return,
                    )],
                ),
                chain(
                    "ing",
                    vec![
                        Rule::verdict(
                            vec![
                                Match::AddrInSet {
                                    family: v4,
                                    field: AddrField::Saddr,
                                    set: "cidr".into(),
                                },
                                Match::L4Proto(Protocol::Tcp),
                                Match::Dports(vec![(80, 80), (8000, 8080)]),
                            ],
                            Verdict::Return,
                        ),
                        Rule::verdict(vec![], Verdict::Goto("deny".into())),
                    ],
                ),
                chain("deny", vec![Rule::verdict(vec![], Verdict::Drop)]),
            ],
        }
    }

    fn packet(s: &str, d: &str, port: u16) -> Packet {
        Packet {
            hook: Hook::Forward,
            saddr: ip(s),
            daddr: ip(d),
            protocol: Protocol::Tcp,
            dport: port,
            ct_state: CtState::New,
        }
    }

    #[test]
    fn follows_jumps_returns_and_gotos() {
        let rs = ruleset();
        let t = trace(&rs, &packet("10.0.0.1", "10.0.0.2", 8080));
        assert!(t.accepted(), "{t:#?}");
        let chains: Vec<&str> = t.hits.iter().map(|h| h.chain.as_str()).collect();
        assert_eq!(chains, ["forward", "egr", "forward", "ing"]);
        // This egress chain has no final drop, so falling off its end returns and the ingress
        // side decides (its range admits 8000).
        let t = trace(&rs, &packet("10.0.0.1", "10.0.0.2", 8000));
        assert!(t.accepted());
        // Outside the interval: the ingress chain goes to `deny`.
        let t = trace(&rs, &packet("10.0.0.3", "10.0.0.2", 8080));
        assert_eq!(t.outcome, Outcome::Drop);
        assert_eq!(t.hits.last().unwrap().chain, "deny");
        // No entry in either map: the base chain's policy.
        assert!(trace(&rs, &packet("10.0.0.5", "10.0.0.6", 1)).accepted());
        // No base chain for the hook: nothing of ours sees it.
        let mut p = packet("10.0.0.3", "10.0.0.2", 8080);
        p.hook = Hook::Input;
        assert!(trace(&rs, &p).hits.is_empty());
    }
}
