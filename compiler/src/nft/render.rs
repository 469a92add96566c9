//! Cluster → IR for one node: the local pods' verdict-map entries, one chain per distinct rule list
//! (named by the hash of its text, so pods with identical effective rules share it), and one named
//! set per distinct peer selector, ipBlock or (peer, named port) that those chains use; with
//! [`UnprogrammedPods::Drop`], the pod-CIDR guard (see the `nft` module doc).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hasher;
use std::net::IpAddr;

use fnv::FnvHasher;

use super::ir::*;
use super::{text, RenderOptions, Ruleset, UnprogrammedPods};
use crate::model::{Cluster, Family, Pod, Protocol};
use crate::policy::{Direction, IpBlock, NamespaceMatch, Peer, PortMatch};
use crate::selector::Selector;

/// Names of the fixed maps and sets.
pub fn dispatch_map(direction: Direction, family: Family) -> String {
    format!("{}{}", direction.as_str(), family_suffix(family))
}

pub fn log_map(direction: Direction, family: Family) -> String {
    format!("{}-log{}", direction.as_str(), family_suffix(family))
}

pub fn local_set(family: Family) -> String {
    format!("local{}", family_suffix(family))
}

/// This node's pod CIDRs, with [`UnprogrammedPods::Drop`].
pub fn pod_cidrs_set(family: Family) -> String {
    format!("pod-cidrs{}", family_suffix(family))
}

/// The chain that drops an unprogrammed address in `field` (only with [`UnprogrammedPods::Drop`]).
pub fn unprogrammed_chain(field: AddrField, family: Family) -> String {
    format!("unprogrammed-{}{}", field.as_str(), family_suffix(family))
}

fn family_suffix(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "4",
        Family::Ipv6 => "6",
    }
}

fn set_suffix(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "-v4",
        Family::Ipv6 => "-v6",
    }
}

/// The field a direction's rules match peers on: the source for ingress, the destination for egress.
fn peer_field(direction: Direction) -> AddrField {
    match direction {
        Direction::Ingress => AddrField::Saddr,
        Direction::Egress => AddrField::Daddr,
    }
}

/// The field that identifies the local pod: the destination for ingress, the source for egress.
/// `ip saddr vmap @map` (egress) or `ip daddr vmap @map` (ingress): a lookup keyed by the address
/// of the pod whose side is being judged.
fn lookup_own_address(direction: Direction, family: Family, map: String) -> Rule {
    Rule::new(
        vec![],
        Action::Vmap {
            family,
            field: own_field(direction),
            map,
        },
    )
}

fn own_field(direction: Direction) -> AddrField {
    match direction {
        Direction::Ingress => AddrField::Daddr,
        Direction::Egress => AddrField::Saddr,
    }
}

fn chain_prefix(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "ing",
        Direction::Egress => "egr",
    }
}

/// A stable 32-bit name hash (FNV-1a, folded): the same input gives the same name on every
/// platform and release, unlike `std`'s hasher.
pub fn short_hash(key: &str) -> String {
    let mut h = FnvHasher::default();
    h.write(key.as_bytes());
    let v = h.finish();
    format!("{:08x}", (v ^ (v >> 32)) as u32)
}

/// Allocates hash-based names; a collision between two different keys gets `-2`, `-3`, ...
/// (in first-use order, which is deterministic for a given cluster).
#[derive(Default)]
struct Names {
    by_name: HashMap<String, String>,
    by_key: HashMap<String, String>,
}

impl Names {
    fn get(&mut self, prefix: &str, key: &str) -> (String, bool) {
        if let Some(n) = self.by_key.get(key) {
            return (n.clone(), false);
        }
        let base = format!("{prefix}-{}", short_hash(key));
        let mut name = base.clone();
        let mut i = 2;
        while self.by_name.contains_key(&name) {
            name = format!("{base}-{i}");
            i += 1;
        }
        self.by_name.insert(name.clone(), key.to_string());
        self.by_key.insert(key.to_string(), name.clone());
        (name, true)
    }
}

/// A peer as rules see it: `None` in the API (every address) or one listed peer.
#[derive(Clone, Copy)]
enum PeerRef<'a> {
    Any,
    One(&'a Peer),
}

struct Renderer<'c> {
    cluster: &'c Cluster,
    opts: &'c RenderOptions,
    families: Vec<Family>,
    /// For each namespace selector seen, the namespaces it matches.
    ns_cache: HashMap<Selector, BTreeSet<&'c str>>,
    names: Names,
    sets: BTreeMap<String, Set>,
    chains: BTreeMap<String, Chain>,
    chain_by_body: HashMap<String, String>,
}

/// Pods that can be addressed as peers and enforced: addressable and not hostNetwork.
fn workload(p: &Pod) -> bool {
    p.addressable() && !p.host_network
}

fn ips_of(p: &Pod, family: Family) -> impl Iterator<Item = IpAddr> + '_ {
    p.ips.iter().copied().filter(move |ip| Family::of(ip) == family)
}

pub fn render(cluster: &Cluster, opts: &RenderOptions) -> Ruleset {
    let mut families: Vec<Family> = cluster
        .pods
        .iter()
        .filter(|p| workload(p))
        .flat_map(|p| p.ips.iter().map(Family::of))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let pod_cidrs = match opts.unprogrammed_pods {
        UnprogrammedPods::Allow => Vec::new(),
        UnprogrammedPods::Drop => opts.node_pod_cidrs(cluster),
    };
    // A family with a pod CIDR but no pod yet still needs guarding: its first pod is exactly the
    // one the option is for.
    for net in &pod_cidrs {
        let f = Family::of(&net.addr());
        if !families.contains(&f) {
            families.push(f);
        }
    }
    families.sort();
    if families.is_empty() {
        families.push(Family::Ipv4);
    }
    let mut r = Renderer {
        cluster,
        opts,
        families,
        ns_cache: HashMap::new(),
        names: Names::default(),
        sets: BTreeMap::new(),
        chains: BTreeMap::new(),
        chain_by_body: HashMap::new(),
    };
    r.run();
    if opts.unprogrammed_pods == UnprogrammedPods::Drop {
        r.guard_pod_cidrs(&pod_cidrs);
    }
    let mut chains: Vec<Chain> = Vec::with_capacity(r.chains.len() + 2);
    chains.push(r.forward_chain());
    chains.push(r.input_chain());
    chains.extend(r.chains.into_values());
    Ruleset {
        table: opts.table.clone(),
        sets: r.sets.into_values().collect(),
        chains,
    }
}

impl<'c> Renderer<'c> {
    fn run(&mut self) {
        for &f in &self.families.clone() {
            for d in Direction::BOTH {
                self.declare(dispatch_map(d, f), SetKind::Vmap(f), None);
                if self.opts.log_drops {
                    self.declare(log_map(d, f), SetKind::Vmap(f), None);
                }
            }
            self.declare(local_set(f), SetKind::Addr(f), None);
        }
        let cluster = self.cluster;
        // Two local pods can report the same IP (a stale status while the address is reused); a
        // verdict map cannot hold one key twice and nft would reject the whole ruleset, so the
        // first pod in cluster order owns the address, as in the oracle's address lookup.
        let mut claimed: BTreeSet<IpAddr> = BTreeSet::new();
        for pod in cluster
            .pods
            .iter()
            .filter(|p| workload(p) && p.node_name.as_deref() == Some(self.opts.node.as_str()))
        {
            let own: Vec<IpAddr> = pod.ips.iter().copied().filter(|ip| claimed.insert(*ip)).collect();
            for &f in &self.families.clone() {
                let local = self.sets.get_mut(&local_set(f)).expect("declared");
                local.elements.extend(ips_of(pod, f).map(Element::Addr));
            }
            for d in Direction::BOTH {
                self.render_pod(pod, &own, d);
            }
        }
    }

    fn declare(&mut self, name: String, kind: SetKind, comment: Option<String>) -> &mut Set {
        self.sets.entry(name.clone()).or_insert_with(|| Set {
            // Capped here rather than when printing, so the JSON the agent applies gets the same
            // comment as the script (nft stores a longer one but cannot list it).
            comment: comment.map(cap),
            ..Set::new(name, kind)
        })
    }

    fn selecting(&self, pod: &Pod, d: Direction) -> Vec<&'c crate::policy::Policy> {
        self.cluster
            .policies
            .iter()
            .filter(|p| {
                p.namespace == pod.namespace && p.rules(d).is_some() && p.pod_selector.matches(&pod.labels)
            })
            .collect()
    }

    /// `own`: the pod's addresses that dispatch to its chains (those no earlier pod claimed).
    fn render_pod(&mut self, pod: &Pod, own: &[IpAddr], d: Direction) {
        let selecting = self.selecting(pod, d);
        if selecting.is_empty() {
            return;
        }
        // Every admitting rule returns, so their order does not matter: keep them sorted and
        // deduplicated, so that equal rule sets give equal chains whatever policy order made them.
        let mut admits: BTreeMap<Vec<Match>, String> = BTreeMap::new();
        for policy in selecting {
            for rule in policy.rules(d).unwrap_or_default() {
                if rule.invalid {
                    continue;
                }
                let peers: Vec<PeerRef<'_>> = match &rule.peers {
                    None => vec![PeerRef::Any],
                    Some(list) => list.iter().map(PeerRef::One).collect(),
                };
                // `None` in the API (every port) is one entry that matches any port.
                let ports: Vec<Option<&PortMatch>> = match &rule.ports {
                    None => vec![None],
                    Some(list) => list.iter().map(Some).collect(),
                };
                for peer in &peers {
                    for pm in &ports {
                        for m in self.rule_matches(pod, d, *peer, *pm) {
                            admits
                                .entry(m)
                                .or_insert_with(|| comment(&policy.key(), d, rule.index));
                        }
                    }
                }
            }
        }
        let mut rules = merge_ports(admits);
        if self.opts.log_drops {
            for &f in &self.families {
                rules.push(lookup_own_address(d, f, log_map(d, f)));
            }
        }
        rules.push(Rule::verdict(vec![], Verdict::Drop));

        let body = text::rules_text(&rules);
        let chain = match self.chain_by_body.get(&body) {
            Some(name) => name.clone(),
            None => {
                let (name, _) = self.names.get(chain_prefix(d), &format!("chain|{body}"));
                self.chain_by_body.insert(body, name.clone());
                self.chains.insert(
                    name.clone(),
                    Chain {
                        name: name.clone(),
                        base: None,
                        rules,
                    },
                );
                name
            }
        };
        for &f in &self.families.clone() {
            let ips: Vec<IpAddr> = own.iter().copied().filter(|ip| Family::of(ip) == f).collect();
            if ips.is_empty() {
                continue;
            }
            let map = self.sets.get_mut(&dispatch_map(d, f)).expect("declared");
            map.elements.extend(
                ips.iter()
                    .map(|ip| Element::Verdict(*ip, Verdict::Jump(chain.clone()))),
            );
            if self.opts.log_drops {
                let log_chain = self.log_chain(pod, d);
                let map = self.sets.get_mut(&log_map(d, f)).expect("declared");
                map.elements.extend(
                    ips.iter()
                        .map(|ip| Element::Verdict(*ip, Verdict::Goto(log_chain.clone()))),
                );
            }
        }
    }

    /// The pod's own drop chain, which logs (rate limited) and drops; reached only when logging.
    fn log_chain(&mut self, pod: &Pod, d: Direction) -> String {
        let key = format!("log|{}|{}", d.as_str(), pod.key());
        let (name, new) = self.names.get(&format!("log-{}", chain_prefix(d)), &key);
        if new {
            let mut prefix = format!("policyc drop {} {}: ", d.as_str(), pod.key());
            // The kernel caps log prefixes at 127 bytes.
            while prefix.len() > 127 {
                prefix.pop();
            }
            self.chains.insert(
                name.clone(),
                Chain {
                    name: name.clone(),
                    base: None,
                    rules: vec![
                        Rule::new(vec![Match::CtState(vec![CtState::New])], Action::Log { prefix }),
                        Rule::verdict(vec![], Verdict::Drop),
                    ],
                },
            );
        }
        name
    }

    /// The match lists (one per address family where the peer needs one) that admit traffic
    /// from/to `peer` on `port` for the local pod `pod`. Empty when nothing can match.
    fn rule_matches(
        &mut self,
        pod: &Pod,
        d: Direction,
        peer: PeerRef<'_>,
        port: Option<&PortMatch>,
    ) -> Vec<Vec<Match>> {
        let field = peer_field(d);
        // Egress named ports resolve on the destination: one set of (address, protocol, port)
        // per peer and family, holding the peer pods that define the name.
        if let (Direction::Egress, Some(PortMatch::Named { protocol, name })) = (d, port) {
            let mut out = Vec::new();
            for &f in &self.families.clone() {
                if let PeerRef::One(Peer::IpBlock(b)) = peer {
                    if b.family() != f {
                        continue;
                    }
                }
                let set = self.named_port_set(peer, *protocol, name, f);
                out.push(vec![Match::AddrProtoPortInSet {
                    family: f,
                    field,
                    set,
                }]);
            }
            return out;
        }
        let port_matches: Vec<Match> = match port {
            None => vec![],
            Some(PortMatch::AnyPort(p)) => vec![Match::L4Proto(*p)],
            Some(PortMatch::Range { protocol, start, end }) => {
                vec![Match::L4Proto(*protocol), Match::Dports(vec![(*start, *end)])]
            }
            // Ingress named ports resolve on the local pod, the destination.
            Some(PortMatch::Named { protocol, name }) => match pod.named_port(name, *protocol) {
                Some(n) => vec![Match::L4Proto(*protocol), Match::Dports(vec![(n, n)])],
                None => return vec![],
            },
        };
        match peer {
            PeerRef::Any => vec![port_matches],
            PeerRef::One(Peer::Pods { namespaces, pods }) => {
                let mut out = Vec::new();
                for &f in &self.families.clone() {
                    let set = self.pod_set(namespaces, pods, f);
                    let mut m = vec![Match::AddrInSet {
                        family: f,
                        field,
                        set,
                    }];
                    m.extend(port_matches.iter().cloned());
                    out.push(m);
                }
                out
            }
            PeerRef::One(Peer::IpBlock(b)) => {
                let f = b.family();
                if !self.families.contains(&f) {
                    return vec![];
                }
                let set = self.block_set(b);
                let mut m = vec![Match::AddrInSet {
                    family: f,
                    field,
                    set,
                }];
                m.extend(port_matches);
                vec![m]
            }
        }
    }

    fn namespaces_matching(&mut self, m: &NamespaceMatch) -> BTreeSet<&'c str> {
        match m {
            NamespaceMatch::Own(ns) => self
                .cluster
                .namespaces
                .get_key_value(ns)
                .map(|(k, _)| k.as_str())
                .into_iter()
                .collect(),
            NamespaceMatch::Selector(sel) => {
                let cluster = self.cluster;
                self.ns_cache
                    .entry(sel.clone())
                    .or_insert_with(|| {
                        cluster
                            .namespaces
                            .values()
                            .filter(|ns| sel.matches(&ns.labels))
                            .map(|ns| ns.name.as_str())
                            .collect()
                    })
                    .clone()
            }
        }
    }

    /// Non-hostNetwork addressable pods matched by a pod peer.
    fn peer_pods(&mut self, peer: PeerRef<'_>, family: Family) -> Vec<&'c Pod> {
        let cluster = self.cluster;
        match peer {
            PeerRef::Any => cluster.pods.iter().filter(|p| workload(p)).collect(),
            PeerRef::One(Peer::Pods { namespaces, pods }) => {
                let nss = self.namespaces_matching(namespaces);
                cluster
                    .pods
                    .iter()
                    .filter(|p| workload(p) && nss.contains(p.namespace.as_str()) && pods.matches(&p.labels))
                    .collect()
            }
            PeerRef::One(Peer::IpBlock(b)) => cluster
                .pods
                .iter()
                .filter(|p| workload(p) && ips_of(p, family).any(|ip| b.contains(&ip)))
                .collect(),
        }
    }

    fn pod_set(&mut self, namespaces: &NamespaceMatch, pods: &Selector, f: Family) -> String {
        let key = format!(
            "pods|{}",
            serde_json::to_string(&(namespaces, pods)).expect("plain data serializes")
        );
        let (base, _) = self.names.get("pods", &key);
        let name = format!("{base}{}", set_suffix(f));
        if !self.sets.contains_key(&name) {
            let peer = Peer::Pods {
                namespaces: namespaces.clone(),
                pods: pods.clone(),
            };
            let members: BTreeSet<Element> = self
                .peer_pods(PeerRef::One(&peer), f)
                .into_iter()
                .flat_map(|p| ips_of(p, f))
                .map(Element::Addr)
                .collect();
            let set = self.declare(name.clone(), SetKind::Addr(f), Some(peer.to_string()));
            set.elements = members;
        }
        name
    }

    fn block_set(&mut self, b: &IpBlock) -> String {
        let key = format!("cidr|{b}");
        let (base, _) = self.names.get("cidr", &key);
        let f = b.family();
        let name = format!("{base}{}", set_suffix(f));
        if !self.sets.contains_key(&name) {
            let elements = block_ranges(b)
                .into_iter()
                .map(|(lo, hi)| Element::Range(lo, hi))
                .collect();
            let set = self.declare(name.clone(), SetKind::Interval(f), Some(format!("ipBlock {b}")));
            set.elements = elements;
        }
        name
    }

    fn named_port_set(&mut self, peer: PeerRef<'_>, protocol: Protocol, port: &str, f: Family) -> String {
        let peer_key = match peer {
            PeerRef::Any => "any".to_string(),
            PeerRef::One(p) => serde_json::to_string(p).expect("plain data serializes"),
        };
        let key = format!("np|{peer_key}|{}|{port}", protocol.nft_name());
        let (base, _) = self.names.get("np", &key);
        let name = format!("{base}{}", set_suffix(f));
        if !self.sets.contains_key(&name) {
            let mut elements = BTreeSet::new();
            for p in self.peer_pods(peer, f) {
                if let Some(n) = p.named_port(port, protocol) {
                    for ip in ips_of(p, f) {
                        if let PeerRef::One(Peer::IpBlock(b)) = peer {
                            if !b.contains(&ip) {
                                continue;
                            }
                        }
                        elements.insert(Element::AddrProtoPort(ip, protocol, n));
                    }
                }
            }
            let who = match peer {
                PeerRef::Any => "every pod".to_string(),
                PeerRef::One(p) => p.to_string(),
            };
            let set = self.declare(
                name.clone(),
                SetKind::AddrProtoPort(f),
                Some(format!("port {port}/{protocol} of {who}")),
            );
            set.elements = elements;
        }
        name
    }

    fn forward_chain(&self) -> Chain {
        let mut rules = vec![
            Rule::verdict(
                vec![Match::CtState(vec![CtState::Established, CtState::Related])],
                Verdict::Accept,
            ),
            Rule::verdict(vec![Match::CtState(vec![CtState::Invalid])], Verdict::Drop),
            Rule::verdict(vec![Match::Icmpv6Nd], Verdict::Accept),
        ];
        for &f in self.guarded_families() {
            for field in [AddrField::Saddr, AddrField::Daddr] {
                rules.push(self.unprogrammed_jump(field, f));
            }
        }
        // Egress of the source first, then ingress of the destination: both must return.
        for d in [Direction::Egress, Direction::Ingress] {
            for &f in &self.families {
                rules.push(lookup_own_address(d, f, dispatch_map(d, f)));
            }
        }
        Chain {
            name: "forward".into(),
            base: Some(BaseChain {
                hook: Hook::Forward,
                priority: FILTER_PRIORITY,
            }),
            rules,
        }
    }

    fn input_chain(&self) -> Chain {
        let mut rules = vec![
            Rule::verdict(
                vec![Match::CtState(vec![CtState::Established, CtState::Related])],
                Verdict::Accept,
            ),
            Rule::verdict(vec![Match::Icmpv6Nd], Verdict::Accept),
        ];
        // Only our pods' invalid packets: the node's own traffic is not ours to judge.
        for &f in &self.families {
            rules.push(Rule::verdict(
                vec![
                    Match::CtState(vec![CtState::Invalid]),
                    Match::AddrInSet {
                        family: f,
                        field: AddrField::Saddr,
                        set: local_set(f),
                    },
                ],
                Verdict::Drop,
            ));
        }
        // A packet to the node has a local destination: only its source can be unprogrammed.
        for &f in self.guarded_families() {
            rules.push(self.unprogrammed_jump(AddrField::Saddr, f));
        }
        for &f in &self.families {
            rules.push(Rule::new(
                vec![],
                Action::Vmap {
                    family: f,
                    field: AddrField::Saddr,
                    map: dispatch_map(Direction::Egress, f),
                },
            ));
        }
        Chain {
            name: "input".into(),
            base: Some(BaseChain {
                hook: Hook::Input,
                priority: FILTER_PRIORITY,
            }),
            rules,
        }
    }
}

impl Renderer<'_> {
    /// The families whose pod CIDRs are guarded (none unless [`UnprogrammedPods::Drop`]).
    fn guarded_families(&self) -> &[Family] {
        match self.opts.unprogrammed_pods {
            UnprogrammedPods::Allow => &[],
            UnprogrammedPods::Drop => &self.families,
        }
    }

    /// `ip saddr @pod-cidrs4 jump unprogrammed-saddr4`.
    fn unprogrammed_jump(&self, field: AddrField, f: Family) -> Rule {
        Rule::verdict(
            vec![Match::AddrInSet {
                family: f,
                field,
                set: pod_cidrs_set(f),
            }],
            Verdict::Jump(unprogrammed_chain(field, f)),
        )
    }

    /// Declares the pod-CIDR sets and the chains that drop addresses in them that no known local
    /// pod (and, for sources, no address of the node itself) has.
    fn guard_pod_cidrs(&mut self, cidrs: &[ipnet::IpNet]) {
        for &f in &self.families.clone() {
            let nets: Vec<&ipnet::IpNet> = cidrs.iter().filter(|n| Family::of(&n.addr()) == f).collect();
            let set = self.declare(
                pod_cidrs_set(f),
                SetKind::Interval(f),
                Some("this node's pod CIDRs".into()),
            );
            set.elements = merged_ranges(&nets, f)
                .into_iter()
                .map(|(lo, hi)| Element::Range(lo, hi))
                .collect();
            for field in [AddrField::Saddr, AddrField::Daddr] {
                let mut rules = vec![Rule::verdict(
                    vec![Match::AddrInSet {
                        family: f,
                        field,
                        set: local_set(f),
                    }],
                    Verdict::Return,
                )];
                if field == AddrField::Saddr {
                    rules.push(Rule::verdict(vec![Match::SaddrLocal], Verdict::Return));
                }
                if self.opts.log_drops {
                    rules.push(Rule::new(
                        vec![Match::CtState(vec![CtState::New])],
                        Action::Log {
                            prefix: format!("policyc drop unprogrammed {}: ", field.as_str()),
                        },
                    ));
                }
                rules.push(Rule::verdict(vec![], Verdict::Drop));
                let name = unprogrammed_chain(field, f);
                self.chains.insert(
                    name.clone(),
                    Chain {
                        name,
                        base: None,
                        rules,
                    },
                );
            }
        }
    }
}

/// The union of `nets` as sorted, disjoint, non-adjacent inclusive ranges (an interval set must
/// not hold overlapping elements, and a `--pod-cidr` may overlap another).
fn merged_ranges(nets: &[&ipnet::IpNet], f: Family) -> Vec<(IpAddr, IpAddr)> {
    let mut spans: Vec<(u128, u128)> = nets
        .iter()
        .map(|n| (to_int(n.network()), to_int(n.broadcast())))
        .collect();
    spans.sort();
    let mut out: Vec<(u128, u128)> = Vec::new();
    for (lo, hi) in spans {
        match out.last_mut() {
            Some((_, end)) if lo <= end.saturating_add(1) => *end = (*end).max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out.into_iter()
        .map(|(a, z)| (from_int(a, f), from_int(z, f)))
        .collect()
}

fn comment(policy: &str, d: Direction, index: usize) -> String {
    format!("{policy} {}[{index}]", d.as_str())
}

/// nft caps comments at 128 bytes (the text parser rejects longer ones).
fn cap(mut c: String) -> String {
    if c.len() > 127 {
        let mut end = 124;
        while !c.is_char_boundary(end) {
            end -= 1;
        }
        c.truncate(end);
        c.push_str("...");
    }
    c
}

/// Which ports of a peer are admitted, per protocol; `None` is every port.
#[derive(Default)]
struct PeerPorts {
    every_protocol: bool,
    protocols: BTreeMap<Protocol, Option<Vec<(u16, u16)>>>,
    comments: BTreeSet<String>,
}

/// Folds the admitting match lists into one rule per peer match and protocol, with the ports in
/// one anonymous set (`th dport { 22, 9000-9100 }`): fewer rules on the packet path.
fn merge_ports(admits: BTreeMap<Vec<Match>, String>) -> Vec<Rule> {
    let mut by_peer: BTreeMap<Vec<Match>, PeerPorts> = BTreeMap::new();
    for (mut matches, comment) in admits {
        let ports = match matches.last() {
            Some(Match::Dports(r)) => {
                let r = r.clone();
                matches.pop();
                Some(r)
            }
            _ => None,
        };
        let protocol = match matches.last() {
            Some(Match::L4Proto(p)) => {
                let p = *p;
                matches.pop();
                Some(p)
            }
            _ => None,
        };
        let entry = by_peer.entry(matches).or_default();
        entry.comments.insert(comment);
        match protocol {
            None => entry.every_protocol = true,
            Some(p) => match (
                entry.protocols.entry(p).or_insert_with(|| Some(Vec::new())),
                ports,
            ) {
                (slot @ Some(_), None) => *slot = None,
                (Some(v), Some(r)) => v.extend(r),
                (None, _) => {}
            },
        }
    }
    let mut rules = Vec::new();
    for (peer, ports) in by_peer {
        let comment = Some(cap(ports.comments.into_iter().collect::<Vec<_>>().join(", ")));
        let admit = |matches| Rule {
            matches,
            action: Action::Verdict(Verdict::Return),
            comment: comment.clone(),
        };
        if ports.every_protocol {
            rules.push(admit(peer));
            continue;
        }
        for (p, ranges) in ports.protocols {
            let mut m = peer.clone();
            m.push(Match::L4Proto(p));
            if let Some(r) = ranges {
                m.push(Match::Dports(coalesce(r)));
            }
            rules.push(admit(m));
        }
    }
    rules
}

/// Sorted, disjoint, non-adjacent ranges covering the same ports (anonymous interval sets must
/// not overlap).
fn coalesce(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (a, z) in ranges {
        match out.last_mut() {
            Some((_, end)) if u32::from(a) <= u32::from(*end) + 1 => *end = (*end).max(z),
            _ => out.push((a, z)),
        }
    }
    out
}

fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_int(v: u128, family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4((v as u32).into()),
        Family::Ipv6 => IpAddr::V6(v.into()),
    }
}

/// `cidr` minus every `except` as sorted, non-overlapping, non-adjacent inclusive ranges, so the
/// interval set never needs nft's auto-merge.
pub fn block_ranges(b: &IpBlock) -> Vec<(IpAddr, IpAddr)> {
    let f = b.family();
    let span = |n: &ipnet::IpNet| (to_int(n.network()), to_int(n.broadcast()));
    let (lo, hi) = span(&b.cidr);
    let mut holes: Vec<(u128, u128)> = b.except.iter().map(span).collect();
    holes.sort();
    let mut out = Vec::new();
    let mut next = Some(lo);
    for (hlo, hhi) in holes {
        let Some(start) = next else { break };
        if hhi < start {
            continue;
        }
        if hlo > start {
            out.push((start, hlo - 1));
        }
        next = if hhi >= hi { None } else { Some(hhi + 1) };
    }
    if let Some(start) = next {
        if start <= hi {
            out.push((start, hi));
        }
    }
    out.into_iter()
        .map(|(a, z)| (from_int(a, f), from_int(z, f)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(cidr: &str, except: &[&str]) -> IpBlock {
        IpBlock {
            cidr: cidr.parse().unwrap(),
            except: except.iter().map(|e| e.parse().unwrap()).collect(),
        }
    }

    fn ranges(b: &IpBlock) -> Vec<String> {
        block_ranges(b)
            .into_iter()
            .map(|(a, z)| format!("{a}-{z}"))
            .collect()
    }

    #[test]
    fn excepts_split_the_block_into_disjoint_ranges() {
        assert_eq!(ranges(&block("10.0.0.0/24", &[])), ["10.0.0.0-10.0.0.255"]);
        assert_eq!(
            ranges(&block("10.0.0.0/24", &["10.0.0.0/26", "10.0.0.128/32"])),
            ["10.0.0.64-10.0.0.127", "10.0.0.129-10.0.0.255"]
        );
        // Nested and overlapping excepts, and one that reaches the end of the block.
        assert_eq!(
            ranges(&block(
                "10.0.0.0/24",
                &["10.0.0.16/28", "10.0.0.16/29", "10.0.0.240/28"]
            )),
            ["10.0.0.0-10.0.0.15", "10.0.0.32-10.0.0.239"]
        );
        // The first address alone excepted: the range starts right after it.
        assert_eq!(
            ranges(&block("10.0.0.0/30", &["10.0.0.0/32"])),
            ["10.0.0.1-10.0.0.3"]
        );
        assert_eq!(
            ranges(&block("::/0", &["::/1"])),
            ["8000::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
        );
        assert_eq!(
            ranges(&block("0.0.0.0/0", &["255.255.255.255/32"])),
            ["0.0.0.0-255.255.255.254"]
        );
    }

    /// nft can list no comment over 128 bytes: the sets the agent applies as JSON keep under it.
    #[test]
    fn long_set_comments_are_capped() {
        let excepts: Vec<String> = (1..40).map(|i| format!("10.{i}.0.0/16")).collect();
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: x}}\n\
             spec: {{nodeName: n0, containers: [{{name: c}}]}}\nstatus: {{podIP: 10.244.0.5}}\n---\n\
             apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: x}}\n\
             spec:\n  podSelector: {{}}\n  ingress:\n  - from:\n    - ipBlock: {{cidr: 10.0.0.0/8, except: [{}]}}\n",
            excepts.join(", ")
        );
        let (cluster, _, diags) = crate::load::load_texts([("t.yaml", text.as_str())]);
        assert!(diags.is_empty(), "{diags:?}");
        let rs = render(&cluster, &super::super::RenderOptions::new("n0"));
        let block = rs
            .sets
            .iter()
            .find(|s| s.name.starts_with("cidr-"))
            .expect("an ipBlock set");
        let comment = block.comment.as_deref().unwrap_or_default();
        assert!(
            comment.starts_with("ipBlock 10.0.0.0/8 except 10.1.0.0/16"),
            "{comment}"
        );
        assert!(comment.len() <= 127 && comment.ends_with("..."), "{comment}");
    }

    #[test]
    fn pod_cidrs_merge_into_disjoint_ranges() {
        let nets: Vec<ipnet::IpNet> = ["10.0.0.128/25", "10.0.0.0/25", "10.0.0.64/26", "10.0.2.0/24"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let refs: Vec<&ipnet::IpNet> = nets.iter().collect();
        let got: Vec<String> = merged_ranges(&refs, Family::Ipv4)
            .into_iter()
            .map(|(a, z)| format!("{a}-{z}"))
            .collect();
        // Adjacent halves join, a nested block disappears, a gap keeps two ranges.
        assert_eq!(got, ["10.0.0.0-10.0.0.255", "10.0.2.0-10.0.2.255"]);
    }

    #[test]
    fn names_are_stable_and_collisions_get_suffixes() {
        assert_eq!(short_hash("chain|drop\n"), short_hash("chain|drop\n"));
        assert_ne!(short_hash("a"), short_hash("b"));
        let mut n = Names::default();
        let (a, _) = n.get("ing", "x");
        // Force a collision by pre-claiming the name another key would get.
        let (b, new) = n.get("ing", "y");
        assert!(new);
        assert_ne!(a, b);
        n.by_name
            .insert(format!("ing-{}", short_hash("z")), "other".into());
        let (c, _) = n.get("ing", "z");
        assert_eq!(c, format!("ing-{}-2", short_hash("z")));
        assert_eq!(n.get("ing", "x").0, a);
    }
}
