//! The checks themselves. Syntactic ones read the raw API objects (they see what the IR drops:
//! host bits, `endPort` forms, how peers were written); semantic ones read the IR and the oracle.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use k8s_openapi::api::networking::v1 as netv1;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Finding, Input, ObjectRef, Severity};
use crate::eval::{Endpoint, Engine};
use crate::model::{Labels, Protocol, Source, NAMESPACE_NAME_LABEL};
use crate::policy::{parse_cidr, Direction, NamespaceMatch, Peer, Policy, PortMatch, Rule};
use crate::selector::{Operator, Selector};

/// How many example pods a message names before "and N more".
const EXAMPLES: usize = 3;

struct Ctx<'a> {
    input: &'a Input<'a>,
    engine: Engine<'a>,
    out: Vec<Finding>,
    /// For each IR policy: the non-hostNetwork pods its podSelector matches, and the hostNetwork ones.
    selected: Vec<(Vec<usize>, Vec<usize>)>,
}

pub(super) fn run(input: &Input<'_>) -> Vec<Finding> {
    let engine = Engine::indexed(input.cluster);
    let selected = input
        .cluster
        .policies
        .iter()
        .map(|p| selected_pods(input, p))
        .collect();
    let mut ctx = Ctx {
        input,
        engine,
        out: Vec::new(),
        selected,
    };
    raw_checks(&mut ctx);
    shadowed_rules(&mut ctx);
    ipblocks_cover_pods(&mut ctx);
    egress_dns(&mut ctx);
    if !input.cluster.pods.is_empty() {
        workload_checks(&mut ctx);
        one_sided_rules(&mut ctx);
        coverage(&mut ctx);
    }
    ctx.out
}

fn selected_pods(input: &Input<'_>, p: &Policy) -> (Vec<usize>, Vec<usize>) {
    let pods = &input.cluster.pods;
    let start = pods.partition_point(|x| x.namespace.as_str() < p.namespace.as_str());
    let end = pods.partition_point(|x| x.namespace.as_str() <= p.namespace.as_str());
    let (mut normal, mut host) = (Vec::new(), Vec::new());
    for (i, pod) in pods.iter().enumerate().take(end).skip(start) {
        if p.pod_selector.matches(&pod.labels) {
            if pod.host_network {
                host.push(i);
            } else {
                normal.push(i);
            }
        }
    }
    (normal, host)
}

impl Ctx<'_> {
    fn push(
        &mut self,
        code: &'static str,
        object: ObjectRef,
        field: String,
        message: String,
        source: Option<&Source>,
    ) {
        self.out.push(Finding {
            code,
            severity: Severity::Info,
            object,
            field,
            message,
            location: None,
            object_location: None,
            source: source.cloned(),
        });
    }

    fn pod_names(&self, pods: &[usize]) -> String {
        let mut names: Vec<String> = pods
            .iter()
            .take(EXAMPLES)
            .map(|&i| self.engine.pod(i).key())
            .collect();
        if pods.len() > EXAMPLES {
            names.push(format!("and {} more", pods.len() - EXAMPLES));
        }
        names.join(", ")
    }
}

fn policy_ref(p: &Policy) -> ObjectRef {
    ObjectRef::new("NetworkPolicy", Some(&p.namespace), &p.name)
}

fn raw_ref(np: &netv1::NetworkPolicy) -> ObjectRef {
    ObjectRef::new(
        "NetworkPolicy",
        Some(np.metadata.namespace.as_deref().unwrap_or("default")),
        np.metadata.name.as_deref().unwrap_or_default(),
    )
}

fn peers_field(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    }
}

fn rule_path(d: Direction, i: usize) -> String {
    format!("spec.{d}[{i}]")
}

struct RawRule<'a> {
    direction: Direction,
    path: String,
    peers: Option<&'a [netv1::NetworkPolicyPeer]>,
    ports: Option<&'a [netv1::NetworkPolicyPort]>,
}

fn raw_rules(spec: &netv1::NetworkPolicySpec) -> Vec<RawRule<'_>> {
    let ingress = spec.ingress.iter().flatten().enumerate().map(|(i, r)| RawRule {
        direction: Direction::Ingress,
        path: rule_path(Direction::Ingress, i),
        peers: r.from.as_deref(),
        ports: r.ports.as_deref(),
    });
    let egress = spec.egress.iter().flatten().enumerate().map(|(i, r)| RawRule {
        direction: Direction::Egress,
        path: rule_path(Direction::Egress, i),
        peers: r.to.as_deref(),
        ports: r.ports.as_deref(),
    });
    ingress.chain(egress).collect()
}

/// Checks on the objects as written.
fn raw_checks(ctx: &mut Ctx<'_>) {
    let input = ctx.input;
    let mut first_seen: BTreeMap<(String, String), &Source> = BTreeMap::new();
    for (np, src) in &input.objects.policies {
        let object = raw_ref(np);
        let key = (object.namespace.clone().unwrap_or_default(), object.name.clone());
        match first_seen.get(&key) {
            Some(first) => ctx.push(
                "duplicate-policy",
                object.clone(),
                "metadata.name".into(),
                format!("also defined at {first}; applying both keeps whichever is applied last (policyc uses the first)"),
                Some(src),
            ),
            None => {
                first_seen.insert(key.clone(), src);
            }
        }
        if np.metadata.namespace.is_none() {
            ctx.push(
                "missing-namespace",
                object.clone(),
                "metadata".into(),
                "no metadata.namespace: the policy applies to whatever namespace kubectl targets (policyc assumes default)".into(),
                Some(src),
            );
        }
        let default_spec = netv1::NetworkPolicySpec::default();
        let spec = np.spec.as_ref().unwrap_or(&default_spec);
        if let Some(sel) = &spec.pod_selector {
            unsatisfiable(ctx, &object, src, sel, "spec.podSelector");
        }
        let ir = input
            .cluster
            .policies
            .binary_search_by(|p| {
                (p.namespace.as_str(), p.name.as_str()).cmp(&(key.0.as_str(), key.1.as_str()))
            })
            .ok()
            .map(|i| &input.cluster.policies[i]);
        let ignored: Vec<Direction> = ir.map(|p| p.ignored.clone()).unwrap_or_default();
        for d in &ignored {
            let n = match d {
                Direction::Ingress => spec.ingress.as_ref().map_or(0, Vec::len),
                Direction::Egress => spec.egress.as_ref().map_or(0, Vec::len),
            };
            let types = spec.policy_types.clone().unwrap_or_default().join(", ");
            let dir = match d {
                Direction::Ingress => "Ingress",
                Direction::Egress => "Egress",
            };
            ctx.push(
                "ignored-rules",
                object.clone(),
                format!("spec.{d}"),
                format!("policyTypes is [{types}] without {dir}, so the {n} {d} rule(s) here are ignored"),
                Some(src),
            );
        }
        for rule in raw_rules(spec) {
            let pf = peers_field(rule.direction);
            for (j, peer) in rule.peers.unwrap_or_default().iter().enumerate() {
                raw_peer(ctx, &object, src, &format!("{}.{pf}[{j}]", rule.path), peer);
            }
            and_or_slip(ctx, &object, src, &rule);
            for (j, port) in rule.ports.unwrap_or_default().iter().enumerate() {
                raw_port(ctx, &object, src, &format!("{}.ports[{j}]", rule.path), port);
            }
            let no_peers = rule.peers.is_none_or(|p| p.is_empty());
            let no_ports = rule.ports.is_none_or(|p| p.is_empty());
            if no_peers && no_ports && !ignored.contains(&rule.direction) {
                let written = if rule.peers.is_some() {
                    format!("{pf}: [] is the same as leaving {pf} out: ")
                } else {
                    String::new()
                };
                ctx.push(
                    "allow-all-rule",
                    object.clone(),
                    rule.path.clone(),
                    format!(
                        "{written}this rule admits all {} traffic on every port, so the policy isolates nothing for {}",
                        rule.direction, rule.direction
                    ),
                    Some(src),
                );
            }
            let all_ipblocks = rule
                .peers
                .is_some_and(|p| !p.is_empty() && p.iter().all(|p| p.ip_block.is_some()));
            if rule.direction == Direction::Egress && all_ipblocks {
                for (j, port) in rule.ports.unwrap_or_default().iter().enumerate() {
                    if let Some(IntOrString::String(name)) = &port.port {
                        ctx.push(
                            "named-port-ipblock",
                            object.clone(),
                            format!("{}.ports[{j}].port", rule.path),
                            format!("named port {name:?} in an egress rule whose peers are all ipBlocks: addresses outside the cluster have no named ports, so it matches nothing there"),
                            Some(src),
                        );
                    }
                }
            }
        }
    }
}

fn raw_peer(ctx: &mut Ctx<'_>, object: &ObjectRef, src: &Source, at: &str, peer: &netv1::NetworkPolicyPeer) {
    let has_selector = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
    match (&peer.ip_block, has_selector) {
        (None, false) => ctx.push(
            "empty-peer",
            object.clone(),
            at.into(),
            "this peer sets none of podSelector, namespaceSelector and ipBlock; the API server rejects it (omit from/to to admit everything)".into(),
            Some(src),
        ),
        (Some(_), true) => ctx.push(
            "conflicting-peer",
            object.clone(),
            at.into(),
            "ipBlock cannot be combined with podSelector or namespaceSelector in one peer; write them as two entries".into(),
            Some(src),
        ),
        _ => {}
    }
    if let Some(sel) = &peer.pod_selector {
        unsatisfiable(ctx, object, src, sel, &format!("{at}.podSelector"));
    }
    if let Some(sel) = &peer.namespace_selector {
        unsatisfiable(ctx, object, src, sel, &format!("{at}.namespaceSelector"));
    }
    let Some(block) = &peer.ip_block else { return };
    host_bits(ctx, object, src, &format!("{at}.ipBlock.cidr"), &block.cidr);
    let cidr = parse_cidr(&block.cidr).ok();
    for (i, e) in block.except.iter().flatten().enumerate() {
        let field = format!("{at}.ipBlock.except[{i}]");
        host_bits(ctx, object, src, &field, e);
        if let (Some(cidr), Ok(net)) = (cidr, parse_cidr(e)) {
            let inside = crate::model::Family::of_net(&net) == crate::model::Family::of_net(&cidr)
                && net.prefix_len() > cidr.prefix_len()
                && cidr.contains(&net.network());
            if !inside {
                ctx.push(
                    "except-outside-cidr",
                    object.clone(),
                    field,
                    format!("except {net} is not strictly inside cidr {cidr}; the API server rejects it"),
                    Some(src),
                );
            }
        }
    }
}

fn host_bits(ctx: &mut Ctx<'_>, object: &ObjectRef, src: &Source, field: &str, raw: &str) {
    if let Ok(net) = raw.parse::<IpNet>() {
        if net.trunc() != net {
            let hint = match net.addr() {
                IpAddr::V4(_) => "/32",
                IpAddr::V6(_) => "/128",
            };
            ctx.push(
                "cidr-host-bits",
                object.clone(),
                field.into(),
                format!(
                    "{raw} has host bits set and means {}; write the network address, or {}{hint} for one host",
                    net.trunc(),
                    net.addr()
                ),
                Some(src),
            );
        }
    }
}

fn raw_port(ctx: &mut Ctx<'_>, object: &ObjectRef, src: &Source, at: &str, port: &netv1::NetworkPolicyPort) {
    let Some(end) = port.end_port else { return };
    let field = format!("{at}.endPort");
    let misuse = match &port.port {
        None => Some(format!(
            "endPort {end} without port; set port to the start of the range"
        )),
        Some(IntOrString::String(name)) => Some(format!(
            "endPort {end} with the named port {name:?}; ranges need a numeric port"
        )),
        Some(IntOrString::Int(start)) if end < *start => {
            Some(format!("endPort {end} is below port {start}; the range is empty"))
        }
        Some(IntOrString::Int(start)) if end == *start => {
            ctx.push(
                "redundant-endport",
                object.clone(),
                field.clone(),
                format!("endPort equals port ({end}), a range of one port"),
                Some(src),
            );
            None
        }
        Some(IntOrString::Int(_)) => None,
    };
    if let Some(message) = misuse {
        ctx.push(
            "endport-misuse",
            object.clone(),
            field,
            format!("{message} (the API server rejects it)"),
            Some(src),
        );
    }
}

fn and_or_slip(ctx: &mut Ctx<'_>, object: &ObjectRef, src: &Source, rule: &RawRule<'_>) {
    let peers = rule.peers.unwrap_or_default();
    let only_ns = peers
        .iter()
        .position(|p| p.namespace_selector.is_some() && p.pod_selector.is_none() && p.ip_block.is_none());
    // `- podSelector: {}` (the whole own namespace) next to a namespaceSelector is the usual way
    // to write "this namespace or those", not a slip.
    let only_pods = peers.iter().position(|p| {
        p.namespace_selector.is_none()
            && p.ip_block.is_none()
            && p.pod_selector.as_ref().is_some_and(|s| {
                s.match_labels.as_ref().is_some_and(|m| !m.is_empty())
                    || s.match_expressions.as_ref().is_some_and(|m| !m.is_empty())
            })
    });
    if let (Some(a), Some(b)) = (only_ns, only_pods) {
        // An invalid selector is reported as such already, and could only be quoted as `[]`.
        let compile = |s: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
            Selector::compile(s?, "").ok().map(|s| s.to_string())
        };
        let (Some(ns), Some(pods)) = (
            compile(peers[a].namespace_selector.as_ref()),
            compile(peers[b].pod_selector.as_ref()),
        ) else {
            return;
        };
        let pf = peers_field(rule.direction);
        let own = object.namespace.as_deref().unwrap_or("default");
        ctx.push(
            "and-or-slip",
            object.clone(),
            format!("{}.{pf}", rule.path),
            format!(
                "{pf}[{a}] admits every pod in namespaces [{ns}] and {pf}[{b}] separately admits pods [{pods}] of {own}; \
                 if pods [{pods}] in namespaces [{ns}] were meant, put both selectors in one entry"
            ),
            Some(src),
        );
    }
}

fn unsatisfiable(
    ctx: &mut Ctx<'_>,
    object: &ObjectRef,
    src: &Source,
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    field: &str,
) {
    let Ok(sel) = Selector::compile(sel, field) else {
        return;
    };
    if let Some(why) = contradiction(&sel) {
        ctx.push(
            "unsatisfiable-selector",
            object.clone(),
            field.into(),
            format!("selector [{sel}] can never match: {why}"),
            Some(src),
        );
    }
}

/// Why a selector's requirements cannot all hold, if they cannot.
fn contradiction(sel: &Selector) -> Option<String> {
    let mut by_key: BTreeMap<&str, Vec<&crate::selector::Requirement>> = BTreeMap::new();
    for r in &sel.requirements {
        by_key.entry(r.key.as_str()).or_default().push(r);
    }
    for (key, reqs) in by_key {
        let must_exist = reqs
            .iter()
            .any(|r| matches!(r.operator, Operator::In | Operator::Exists));
        if must_exist && reqs.iter().any(|r| r.operator == Operator::DoesNotExist) {
            return Some(format!("{key} must both exist and not exist"));
        }
        let mut allowed: Option<BTreeSet<&String>> = None;
        for r in reqs.iter().filter(|r| r.operator == Operator::In) {
            let vals: BTreeSet<&String> = r.values.iter().collect();
            allowed = Some(match allowed {
                None => vals,
                Some(a) => a.intersection(&vals).copied().collect(),
            });
        }
        let excluded: BTreeSet<&String> = reqs
            .iter()
            .filter(|r| r.operator == Operator::NotIn)
            .flat_map(|r| r.values.iter())
            .collect();
        if let Some(allowed) = allowed {
            if allowed.iter().all(|v| excluded.contains(v)) {
                return Some(format!("no value of {key} satisfies all its requirements"));
            }
        }
    }
    None
}

/// A rule of one policy, with the policy index, for rule-to-rule comparisons.
fn valid_rules(p: &Policy, d: Direction) -> impl Iterator<Item = &Rule> {
    p.rules(d).unwrap_or_default().iter().filter(|r| !r.invalid)
}

fn shadowed_rules(ctx: &mut Ctx<'_>) {
    let cluster = ctx.input.cluster;
    let mut groups: BTreeMap<(&str, &Selector), Vec<usize>> = BTreeMap::new();
    for (i, p) in cluster.policies.iter().enumerate() {
        if !p.invalid_selector {
            groups
                .entry((p.namespace.as_str(), &p.pod_selector))
                .or_default()
                .push(i);
        }
    }
    for members in groups.values() {
        for d in Direction::BOTH {
            let rules: Vec<(usize, &Rule)> = members
                .iter()
                .flat_map(|&pi| valid_rules(&cluster.policies[pi], d).map(move |r| (pi, r)))
                .collect();
            for (b, (pb, rb)) in rules.iter().enumerate() {
                let shadow = rules
                    .iter()
                    .enumerate()
                    .find(|(a, (_, ra))| *a != b && rule_covers(ra, rb) && (!rule_covers(rb, ra) || *a < b));
                if let Some((_, (pa, ra))) = shadow {
                    let policy = &cluster.policies[*pb];
                    let other = if pa == pb {
                        format!("rule {} of this policy", ra.index)
                    } else {
                        format!("{d} rule {} of {}", ra.index, cluster.policies[*pa].key())
                    };
                    ctx.push(
                        "shadowed-rule",
                        policy_ref(policy),
                        rule_path(d, rb.index),
                        format!("everything this {d} rule admits is already admitted by {other}"),
                        policy.source.as_ref(),
                    );
                }
            }
        }
    }
}

fn rule_covers(a: &Rule, b: &Rule) -> bool {
    let peers = match (&a.peers, &b.peers) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(pa), Some(pb)) => pb.iter().all(|y| pa.iter().any(|x| peer_covers(x, y))),
    };
    let ports = match (&a.ports, &b.ports) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(pa), Some(pb)) => pb.iter().all(|y| pa.iter().any(|x| port_covers(x, y))),
    };
    peers && ports
}

fn peer_covers(a: &Peer, b: &Peer) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (
            Peer::Pods {
                namespaces: na,
                pods: pa,
            },
            Peer::Pods {
                namespaces: nb,
                pods: _,
            },
        ) => {
            let ns = na == nb || matches!(na, NamespaceMatch::Selector(s) if s.is_everything());
            ns && pa.is_everything()
        }
        (Peer::IpBlock(x), Peer::IpBlock(y)) => {
            x.cidr.contains(&y.cidr)
                && x.except
                    .iter()
                    .all(|e| y.except.iter().any(|f| f.contains(e)) || !overlaps(e, &y.cidr))
        }
        _ => false,
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn port_covers(a: &PortMatch, b: &PortMatch) -> bool {
    match (a, b) {
        (PortMatch::AnyPort(p), other) => *p == other.protocol(),
        (
            PortMatch::Range {
                protocol: p,
                start: s,
                end: e,
            },
            PortMatch::Range {
                protocol: q,
                start: s2,
                end: e2,
            },
        ) => p == q && s <= s2 && e2 <= e,
        (x, y) => x == y,
    }
}

fn ipblocks_cover_pods(ctx: &mut Ctx<'_>) {
    let cluster = ctx.input.cluster;
    let pod_ips: Vec<(usize, IpAddr)> = cluster
        .pods
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.host_network && p.addressable())
        .flat_map(|(i, p)| p.ips.iter().map(move |ip| (i, *ip)))
        .collect();
    let pod_cidrs: Vec<IpNet> = cluster
        .nodes
        .values()
        .flat_map(|n| n.pod_cidrs.iter().copied())
        .collect();
    for p in &cluster.policies {
        for d in Direction::BOTH {
            for rule in valid_rules(p, d) {
                for (j, peer) in rule.peers.iter().flatten().enumerate() {
                    let Peer::IpBlock(block) = peer else { continue };
                    let example = match pod_ips.iter().find(|(_, ip)| block.contains(ip)) {
                        Some((i, ip)) => Some(format!("pod {} ({ip})", cluster.pods[*i].key())),
                        None => pod_cidrs
                            .iter()
                            .find(|c| {
                                overlaps(c, &block.cidr) && !block.except.iter().any(|e| e.contains(*c))
                            })
                            .map(|c| format!("the pod CIDR {c}")),
                    };
                    if let Some(example) = example {
                        ctx.push(
                            "ipblock-covers-pods",
                            policy_ref(p),
                            format!("{}.{}[{j}].ipBlock", rule_path(d, rule.index), peers_field(d)),
                            format!("ipBlock {block} covers {example}; whether ipBlocks apply to pod traffic depends on the network plugin, and pod IPs change: select pods with podSelector/namespaceSelector"),
                            p.source.as_ref(),
                        );
                    }
                }
            }
        }
    }
}

/// Whether a rule lets DNS lookups (53/UDP) out towards kube-dns or anywhere.
struct Dns {
    ns_labels: Labels,
    pod_labels: Labels,
    real: Vec<usize>,
}

impl Dns {
    fn new(ctx: &Ctx<'_>) -> Dns {
        let ns_labels = ctx
            .input
            .cluster
            .namespaces
            .get("kube-system")
            .map(|n| n.labels.clone())
            .unwrap_or_else(|| Labels::from([(NAMESPACE_NAME_LABEL.to_string(), "kube-system".to_string())]));
        let pod_labels = Labels::from([("k8s-app".to_string(), "kube-dns".to_string())]);
        let real = ctx
            .input
            .cluster
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                !p.host_network && p.labels.get("k8s-app").map(String::as_str) == Some("kube-dns")
            })
            .map(|(i, _)| i)
            .collect();
        Dns {
            ns_labels,
            pod_labels,
            real,
        }
    }

    fn rule_allows(&self, engine: &Engine<'_>, rule: &Rule) -> bool {
        let port = rule.ports.as_ref().is_none_or(|ports| {
            ports.iter().any(|pm| match pm {
                PortMatch::AnyPort(p) => *p == Protocol::Udp,
                PortMatch::Range { protocol, start, end } => {
                    *protocol == Protocol::Udp && (*start..=*end).contains(&53)
                }
                PortMatch::Named { protocol, name } => {
                    *protocol == Protocol::Udp
                        && (name == "dns"
                            || self
                                .real
                                .iter()
                                .any(|&i| engine.pod(i).named_port(name, Protocol::Udp) == Some(53)))
                }
            })
        });
        let peer = rule.peers.as_ref().is_none_or(|peers| {
            peers.iter().any(|peer| match peer {
                // The DNS service's endpoints may be anywhere (node-local caches, upstream resolvers).
                Peer::IpBlock(_) => true,
                Peer::Pods { namespaces, pods } => {
                    let synthetic = pods.matches(&self.pod_labels)
                        && match namespaces {
                            NamespaceMatch::Own(ns) => ns == "kube-system",
                            NamespaceMatch::Selector(s) => s.matches(&self.ns_labels),
                        };
                    synthetic
                        || self.real.iter().any(|&i| {
                            let ip = engine
                                .pod(i)
                                .ips
                                .first()
                                .copied()
                                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                            engine.peer_matches(peer, &Endpoint { ip, pod: Some(i) })
                        })
                }
            })
        });
        !rule.invalid && port && peer
    }
}

fn egress_dns(ctx: &mut Ctx<'_>) {
    let cluster = ctx.input.cluster;
    let dns = Dns::new(ctx);
    let policy_allows: Vec<bool> = cluster
        .policies
        .iter()
        .map(|p| p.egress.iter().flatten().any(|r| dns.rule_allows(&ctx.engine, r)))
        .collect();
    let mut blocked: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    if cluster.pods.is_empty() {
        // Without pods, a policy is fine if it or a namespace-wide egress policy lets DNS out.
        for (pi, p) in cluster.policies.iter().enumerate() {
            if p.egress.is_none() || p.invalid_selector {
                continue;
            }
            let covered = cluster.policies.iter().enumerate().any(|(qi, q)| {
                policy_allows[qi]
                    && (qi == pi || q.namespace == p.namespace && q.pod_selector.is_everything())
            });
            if !covered {
                blocked.insert(pi, Vec::new());
            }
        }
    } else {
        for i in 0..cluster.pods.len() {
            let selecting = ctx.engine.selecting(i, Direction::Egress);
            if !selecting.is_empty() && !selecting.iter().any(|&pi| policy_allows[pi]) {
                for &pi in selecting.iter() {
                    blocked.entry(pi).or_default().push(i);
                }
            }
        }
    }
    for (pi, pods) in blocked {
        let p = &cluster.policies[pi];
        if p.invalid_selector {
            continue;
        }
        let whom = if pods.is_empty() {
            "the pods it selects".to_string()
        } else {
            ctx.pod_names(&pods)
        };
        let field = if p.egress.as_ref().is_some_and(|r| !r.is_empty()) {
            "spec.egress"
        } else {
            "spec.policyTypes"
        };
        ctx.push(
            "egress-blocks-dns",
            policy_ref(p),
            field.into(),
            format!(
                "{} isolates egress of {whom}, and no egress rule of the policies selecting them allows DNS (53/UDP) to kube-system/kube-dns or anywhere",
                p.key()
            ),
            p.source.as_ref(),
        );
    }
}

/// Checks that compare policies with the pods of the input.
fn workload_checks(ctx: &mut Ctx<'_>) {
    let cluster = ctx.input.cluster;
    let know_namespaces = !ctx.input.objects.namespaces.is_empty();
    for (pi, p) in cluster.policies.iter().enumerate() {
        if p.invalid_selector {
            continue;
        }
        let (own, host) = ctx.selected[pi].clone();
        // A namespace none of whose pods are in the input says nothing about what it runs.
        if own.is_empty() && host.is_empty() && has_pods(cluster, &p.namespace) {
            ctx.push(
                "selects-no-pods",
                policy_ref(p),
                "spec.podSelector".into(),
                format!(
                    "podSelector [{}] matches no pod in namespace {}; the policy has no effect",
                    p.pod_selector, p.namespace
                ),
                p.source.as_ref(),
            );
        }
        if !host.is_empty() {
            ctx.push(
                "host-network-selected",
                policy_ref(p),
                "spec.podSelector".into(),
                format!("selects hostNetwork pod(s) {}, which NetworkPolicy never isolates; the policy has no effect on them", ctx.pod_names(&host)),
                p.source.as_ref(),
            );
        }
        for d in Direction::BOTH {
            for rule in valid_rules(p, d) {
                let path = rule_path(d, rule.index);
                let pf = peers_field(d);
                for (j, peer) in rule.peers.iter().flatten().enumerate() {
                    let Peer::Pods { namespaces, pods } = peer else {
                        continue;
                    };
                    if let NamespaceMatch::Selector(s) = namespaces {
                        if !s.is_everything() && !know_namespaces {
                            continue;
                        }
                        // Namespaces chosen by name may simply not be in the input.
                        let by_name = s.requirements.iter().any(|r| r.key == NAMESPACE_NAME_LABEL);
                        if !by_name && !cluster.namespaces.values().any(|n| s.matches(&n.labels)) {
                            ctx.push(
                                "peer-matches-nothing",
                                policy_ref(p),
                                format!("{path}.{pf}[{j}].namespaceSelector"),
                                format!("namespaceSelector [{s}] matches no namespace in the input; this peer admits nothing"),
                                p.source.as_ref(),
                            );
                            continue;
                        }
                    }
                    let known = match namespaces {
                        NamespaceMatch::Own(ns) => has_pods(cluster, ns),
                        NamespaceMatch::Selector(s) => cluster
                            .namespaces
                            .values()
                            .any(|n| s.matches(&n.labels) && has_pods(cluster, &n.name)),
                    };
                    if known && matching_pods(ctx, namespaces, pods).is_empty() {
                        ctx.push(
                            "peer-matches-nothing",
                            policy_ref(p),
                            format!("{path}.{pf}[{j}]"),
                            format!("{peer}: matches no pod in the input; this peer admits nothing"),
                            p.source.as_ref(),
                        );
                    }
                }
                named_ports(ctx, pi, d, rule, &own);
            }
        }
    }
}

/// Whether the input has any pod in `namespace`.
fn has_pods(cluster: &crate::model::Cluster, namespace: &str) -> bool {
    let i = cluster.pods.partition_point(|p| p.namespace.as_str() < namespace);
    cluster.pods.get(i).is_some_and(|p| p.namespace == namespace)
}

/// The non-hostNetwork pods a pod peer matches, found through the namespaces it can cover (pods
/// are sorted by namespace), so a peer costs the pods of its namespaces, not of the cluster.
fn matching_pods(ctx: &Ctx<'_>, namespaces: &NamespaceMatch, pods: &Selector) -> Vec<usize> {
    let cluster = ctx.input.cluster;
    let range = |ns: &str| {
        let start = cluster.pods.partition_point(|p| p.namespace.as_str() < ns);
        let end = cluster.pods.partition_point(|p| p.namespace.as_str() <= ns);
        start..end
    };
    let ranges: Vec<std::ops::Range<usize>> = match namespaces {
        NamespaceMatch::Own(ns) => vec![range(ns)],
        NamespaceMatch::Selector(s) => cluster
            .namespaces
            .values()
            .filter(|n| s.matches(&n.labels))
            .map(|n| range(&n.name))
            .collect(),
    };
    ranges
        .into_iter()
        .flatten()
        .filter(|&i| !cluster.pods[i].host_network && pods.matches(&cluster.pods[i].labels))
        .collect()
}

fn pod_peer_matches(
    ctx: &Ctx<'_>,
    namespaces: &NamespaceMatch,
    pods: &Selector,
    pod: &crate::model::Pod,
) -> bool {
    !pod.host_network
        && pods.matches(&pod.labels)
        && match namespaces {
            NamespaceMatch::Own(ns) => &pod.namespace == ns,
            NamespaceMatch::Selector(s) => ctx
                .input
                .cluster
                .namespaces
                .get(&pod.namespace)
                .is_some_and(|n| s.matches(&n.labels)),
        }
}

fn named_ports(ctx: &mut Ctx<'_>, pi: usize, d: Direction, rule: &Rule, own: &[usize]) {
    let cluster = ctx.input.cluster;
    let p = &cluster.policies[pi];
    let Some(ports) = &rule.ports else { return };
    if !ports.iter().any(|pm| matches!(pm, PortMatch::Named { .. })) {
        return;
    }
    // Named ports resolve on the destination: the selected pods for ingress, the peers for egress.
    let dests: Vec<usize> = match d {
        Direction::Ingress => own.to_vec(),
        Direction::Egress => {
            if rule
                .peers
                .as_ref()
                .is_some_and(|ps| ps.iter().all(|p| matches!(p, Peer::IpBlock(_))))
            {
                return;
            }
            let mut dests = BTreeSet::new();
            match &rule.peers {
                None => dests.extend((0..cluster.pods.len()).filter(|&i| !cluster.pods[i].host_network)),
                Some(peers) => {
                    for peer in peers {
                        match peer {
                            Peer::Pods { namespaces, pods } => {
                                dests.extend(matching_pods(ctx, namespaces, pods))
                            }
                            Peer::IpBlock(b) => dests.extend((0..cluster.pods.len()).filter(|&i| {
                                !cluster.pods[i].host_network
                                    && cluster.pods[i].ips.iter().any(|ip| b.contains(ip))
                            })),
                        }
                    }
                }
            }
            dests.into_iter().collect()
        }
    };
    if dests.is_empty() {
        return;
    }
    let whom = match d {
        Direction::Ingress => "the pods this policy selects",
        Direction::Egress => "the pods this rule's peers match",
    };
    for (j, pm) in ports.iter().enumerate() {
        let PortMatch::Named { protocol, name } = pm else {
            continue;
        };
        let defines = |proto: Option<Protocol>| {
            dests.iter().any(|&i| {
                cluster.pods[i]
                    .ports
                    .iter()
                    .any(|c| c.name.as_deref() == Some(name) && proto.is_none_or(|pr| pr == c.protocol))
            })
        };
        if defines(Some(*protocol)) {
            continue;
        }
        let field = format!("{}.ports[{j}].port", rule_path(d, rule.index));
        if defines(None) {
            let other: BTreeSet<Protocol> = dests
                .iter()
                .flat_map(|&i| cluster.pods[i].ports.iter())
                .filter(|c| c.name.as_deref() == Some(name))
                .map(|c| c.protocol)
                .collect();
            let other: Vec<&str> = other.iter().map(|p| p.as_str()).collect();
            ctx.push(
                "named-port-wrong-protocol",
                policy_ref(p),
                field,
                format!("named port {name:?} is {protocol} here, but {whom} define it only as {}; set protocol to match", other.join("/")),
                p.source.as_ref(),
            );
        } else {
            ctx.push(
                "named-port-undefined",
                policy_ref(p),
                field,
                format!(
                    "no container port named {name:?} on {whom} ({}); this port entry matches nothing",
                    ctx.pod_names(&dests)
                ),
                p.source.as_ref(),
            );
        }
    }
}

/// Pods that match the same pod selectors: same namespace, same labels.
type Class<'a> = (&'a str, &'a Labels);

fn one_sided_rules(ctx: &mut Ctx<'_>) {
    let cluster = ctx.input.cluster;
    let class = |i: usize| -> Class<'_> { (cluster.pods[i].namespace.as_str(), &cluster.pods[i].labels) };
    // Per far-pod class and direction: does its isolation admit some pod of `own`? Cached per rule.
    for (pi, p) in cluster.policies.iter().enumerate() {
        if p.invalid_selector {
            continue;
        }
        let own = ctx.selected[pi].0.clone();
        if own.is_empty() {
            continue;
        }
        let mut own_classes: Vec<Class<'_>> = own.iter().map(|&i| class(i)).collect();
        own_classes.sort();
        own_classes.dedup();
        let own_reps: Vec<usize> = {
            let mut seen = BTreeSet::new();
            own.iter().copied().filter(|&i| seen.insert(class(i))).collect()
        };
        for d in Direction::BOTH {
            let other = match d {
                Direction::Ingress => Direction::Egress,
                Direction::Egress => Direction::Ingress,
            };
            for rule in valid_rules(p, d) {
                let Some(peers) = &rule.peers else { continue };
                let pod_peers: Vec<(&NamespaceMatch, &Selector)> = peers
                    .iter()
                    .filter_map(|peer| match peer {
                        Peer::Pods { namespaces, pods } => Some((namespaces, pods)),
                        Peer::IpBlock(_) => None,
                    })
                    .collect();
                if pod_peers.is_empty() {
                    continue;
                }
                let mut verdicts: HashMap<Class<'_>, bool> = HashMap::new();
                let mut refused: Vec<usize> = Vec::new();
                let mut any_far = false;
                let far: BTreeSet<usize> = pod_peers
                    .iter()
                    .flat_map(|(ns, sel)| matching_pods(ctx, ns, sel))
                    .collect();
                for f in far {
                    // A pod reaching itself is always allowed; only others can be refused.
                    if own.len() == 1 && own[0] == f {
                        continue;
                    }
                    any_far = true;
                    let ok = *verdicts.entry(class(f)).or_insert_with(|| {
                        let selecting = ctx.engine.selecting(f, other);
                        selecting.is_empty()
                            || selecting.iter().any(|&qi| {
                                valid_rules(&cluster.policies[qi], other).any(|r| {
                                    r.peers.as_ref().is_none_or(|ps| {
                                        ps.iter().any(|peer| match peer {
                                            Peer::IpBlock(_) => true,
                                            Peer::Pods { namespaces, pods } => own_reps.iter().any(|&o| {
                                                pod_peer_matches(ctx, namespaces, pods, &cluster.pods[o])
                                            }),
                                        })
                                    })
                                })
                            })
                    });
                    if !ok {
                        refused.push(f);
                    }
                }
                if !any_far || refused.is_empty() {
                    continue;
                }
                let (towards, side) = match d {
                    Direction::Egress => ("to", "ingress"),
                    Direction::Ingress => ("from", "egress"),
                };
                let isolating: BTreeSet<String> = refused
                    .iter()
                    .flat_map(|&f| {
                        ctx.engine
                            .selecting(f, other)
                            .iter()
                            .map(|&q| cluster.policies[q].key())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let isolating: Vec<String> = isolating.into_iter().collect();
                let message = format!(
                    "this {d} rule allows traffic {towards} {}, but {} {side} (isolated by {}) admits no pod {} selects, so that traffic stays denied",
                    ctx.pod_names(&refused),
                    if refused.len() == 1 { "its" } else { "their" },
                    isolating.join(", "),
                    p.key()
                );
                ctx.push(
                    "one-sided-rule",
                    policy_ref(p),
                    rule_path(d, rule.index),
                    message,
                    p.source.as_ref(),
                );
            }
        }
    }
}

/// Opt-in coverage audits.
fn coverage(ctx: &mut Ctx<'_>) {
    let cluster = ctx.input.cluster;
    let mut namespaces_with_pods = BTreeSet::new();
    for (i, pod) in cluster.pods.iter().enumerate() {
        if pod.host_network {
            continue;
        }
        namespaces_with_pods.insert(pod.namespace.as_str());
        if ctx.engine.selecting(i, Direction::Ingress).is_empty() {
            ctx.push(
                "unisolated-pod",
                ObjectRef::new("Pod", Some(&pod.namespace), &pod.name),
                String::new(),
                format!(
                    "no policy selects {} for ingress: every pod and address may connect to it on every port",
                    pod.key()
                ),
                pod.source.as_ref(),
            );
        }
    }
    for ns in namespaces_with_pods {
        let denies = cluster.policies.iter().any(|p| {
            p.namespace == ns
                && p.pod_selector.is_everything()
                && p.ingress.as_ref().is_some_and(|r| r.is_empty())
        });
        if !denies {
            let source = ctx
                .input
                .objects
                .namespaces
                .iter()
                .find(|(n, _)| n.metadata.name.as_deref() == Some(ns))
                .map(|(_, s)| s.clone())
                // A namespace only referenced: point at its first pod, where it is named.
                .or_else(|| {
                    cluster
                        .pods
                        .iter()
                        .find(|p| p.namespace == ns)
                        .and_then(|p| p.source.clone())
                });
            ctx.push(
                "namespace-without-default-deny",
                ObjectRef::new("Namespace", None, ns),
                "metadata.name".into(),
                format!("namespace {ns} has no default-deny ingress policy (podSelector: {{}}, policyTypes: [Ingress], no rules)"),
                source.as_ref(),
            );
        }
    }
}
