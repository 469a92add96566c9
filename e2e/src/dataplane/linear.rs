//! The naive baseline policyc is compared with: the same policies as flat chains, the way a
//! first-generation iptables implementation writes them — one rule per (policy rule × peer
//! address × port), so every packet of a new flow walks the rules in front of its match.
//!
//! `forward`: `ct state established,related accept`, `ct state invalid drop`, then
//! `jump egress` (one `return` rule per admitted (source set, peer, port), ending in
//! `ip saddr @egress-isolated drop`) and `jump ingress` (the same with `accept`, ending in
//! `ip daddr @ingress-isolated drop`). The selected pods of each policy are one named set.
//! IPv4 only; the rules the oracle adds for node-local traffic (kubelet probes) are left out, as
//! are hostNetwork pods as pod peers (the API never selects them).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use policyc_compiler::eval::Engine;
use policyc_compiler::model::Family;
use policyc_compiler::policy::{Direction, Peer, Policy, PortMatch};
use policyc_compiler::Cluster;

/// A linear ruleset as an nft script.
pub struct Linear {
    pub script: String,
    /// Rules in the table.
    pub rules: usize,
}

/// The linear ruleset of `cluster` for the pods on `node` (every node when `None`), policies in
/// cluster order except that those for which `last` holds come last in their chain: a packet
/// they admit walks every other rule first, the worst case of a linear chain.
pub fn ruleset(cluster: &Cluster, node: Option<&str>, last: impl Fn(&Policy) -> bool) -> Linear {
    let engine = Engine::indexed(cluster);
    let v4 = |i: usize| -> Option<Ipv4Addr> {
        match engine.pod_endpoint(i, Family::Ipv4)?.ip {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        }
    };
    let local = |i: usize| {
        let p = &cluster.pods[i];
        !p.host_network && node.is_none_or(|n| p.node_name.as_deref() == Some(n))
    };
    let mut out = Chains::default();
    // Peer address lists, shared by the many rules that name the same peer.
    let mut peers: HashMap<&Peer, Vec<(usize, Ipv4Addr)>> = HashMap::new();
    for d in [Direction::Egress, Direction::Ingress] {
        let mut selected: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); cluster.policies.len()];
        for i in (0..cluster.pods.len()).filter(|&i| local(i) && v4(i).is_some()) {
            for &pi in engine.selecting(i, d).iter() {
                selected[pi].insert(i);
            }
        }
        let mut order: Vec<usize> = (0..cluster.policies.len()).collect();
        order.sort_by_key(|&pi| last(&cluster.policies[pi]));
        let chain = out.chain(d);
        for pi in order {
            if selected[pi].is_empty() {
                continue;
            }
            let own: Vec<Ipv4Addr> = selected[pi].iter().filter_map(|&i| v4(i)).collect();
            chain.isolated.extend(&own);
            let set = format!("{}-{pi}", chain.name);
            chain.set(&set, &own);
            for rule in cluster.policies[pi].rules(d).unwrap_or_default() {
                if rule.invalid {
                    continue;
                }
                // (peer address or block, the pods it names) per listed peer; `None` is any.
                let mut targets: Vec<(Option<String>, Vec<usize>)> = Vec::new();
                match &rule.peers {
                    None => targets.push((None, Vec::new())),
                    Some(list) => {
                        for peer in list {
                            if let Peer::IpBlock(b) = peer {
                                if b.family() == Family::Ipv4 {
                                    let mut m = b.cidr.to_string();
                                    if !b.except.is_empty() {
                                        let ex: Vec<String> =
                                            b.except.iter().map(|e| e.to_string()).collect();
                                        let _ =
                                            write!(m, " ip {} != {{ {} }}", d.peer_field(), ex.join(", "));
                                    }
                                    targets.push((Some(m), Vec::new()));
                                }
                                continue;
                            }
                            let addrs = peers.entry(peer).or_insert_with(|| {
                                (0..cluster.pods.len())
                                    .filter_map(|j| {
                                        let ep = engine.pod_endpoint(j, Family::Ipv4)?;
                                        match ep.ip {
                                            IpAddr::V4(ip) if engine.peer_matches(peer, &ep) => Some((j, ip)),
                                            _ => None,
                                        }
                                    })
                                    .collect()
                            });
                            targets.extend(addrs.iter().map(|&(j, ip)| (Some(ip.to_string()), vec![j])));
                        }
                    }
                }
                let ports: Vec<Option<&PortMatch>> = match &rule.ports {
                    None => vec![None],
                    Some(list) => list.iter().map(Some).collect(),
                };
                for (peer, peer_pods) in &targets {
                    for port in &ports {
                        // Ingress named ports resolve on the selected pod, egress ones on the peer.
                        let resolve_on: Vec<usize> = match d {
                            Direction::Ingress => selected[pi].iter().copied().collect(),
                            Direction::Egress => peer_pods.clone(),
                        };
                        for (m, own_set) in port_matches(cluster, *port, &resolve_on, d) {
                            let own = match own_set {
                                None => format!("@{set}"),
                                Some(pods) => {
                                    let ips: Vec<String> = pods
                                        .iter()
                                        .filter_map(|&i| v4(i))
                                        .map(|ip| ip.to_string())
                                        .collect();
                                    format!("{{ {} }}", ips.join(", "))
                                }
                            };
                            let mut r = format!("ip {} {own}", d.own_field());
                            if let Some(p) = peer {
                                let _ = write!(r, " ip {} {p}", d.peer_field());
                            }
                            if !m.is_empty() {
                                let _ = write!(r, " {m}");
                            }
                            chain.rule(r);
                        }
                    }
                }
            }
        }
    }
    out.script()
}

/// The port matches of one API port entry; for named ports one per resolved number, with the
/// pods (of `pods`) that resolve to it when they restrict the own side (ingress).
fn port_matches(
    cluster: &Cluster,
    port: Option<&PortMatch>,
    pods: &[usize],
    d: Direction,
) -> Vec<(String, Option<Vec<usize>>)> {
    match port {
        None => vec![(String::new(), None)],
        Some(PortMatch::AnyPort(p)) => vec![(format!("meta l4proto {}", p.nft_name()), None)],
        Some(PortMatch::Range { protocol, start, end }) if start == end => {
            vec![(format!("{} dport {start}", protocol.nft_name()), None)]
        }
        Some(PortMatch::Range { protocol, start, end }) => {
            vec![(format!("{} dport {start}-{end}", protocol.nft_name()), None)]
        }
        Some(PortMatch::Named { protocol, name }) => {
            let mut by_number: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
            for &i in pods {
                if let Some(n) = cluster.pods[i].named_port(name, *protocol) {
                    by_number.entry(n).or_default().push(i);
                }
            }
            by_number
                .into_iter()
                .map(|(n, ps)| {
                    let m = format!("{} dport {n}", protocol.nft_name());
                    (m, (d == Direction::Ingress).then_some(ps))
                })
                .collect()
        }
    }
}

trait Fields {
    fn own_field(self) -> &'static str;
    fn peer_field(self) -> &'static str;
}

impl Fields for Direction {
    fn own_field(self) -> &'static str {
        match self {
            Direction::Ingress => "daddr",
            Direction::Egress => "saddr",
        }
    }

    fn peer_field(self) -> &'static str {
        match self {
            Direction::Ingress => "saddr",
            Direction::Egress => "daddr",
        }
    }
}

struct Chain {
    name: &'static str,
    verdict: &'static str,
    sets: String,
    rules: String,
    count: usize,
    isolated: BTreeSet<Ipv4Addr>,
}

impl Chain {
    fn new(name: &'static str, verdict: &'static str) -> Chain {
        Chain {
            name,
            verdict,
            sets: String::new(),
            rules: String::new(),
            count: 0,
            isolated: BTreeSet::new(),
        }
    }

    fn set(&mut self, name: &str, ips: &[Ipv4Addr]) {
        let elements: Vec<String> = ips.iter().map(Ipv4Addr::to_string).collect();
        let _ = writeln!(
            self.sets,
            "\tset {name} {{ type ipv4_addr; elements = {{ {} }} }}",
            elements.join(", ")
        );
    }

    fn rule(&mut self, matches: String) {
        let _ = writeln!(self.rules, "\t\t{matches} {}", self.verdict);
        self.count += 1;
    }
}

struct Chains {
    egress: Chain,
    ingress: Chain,
}

impl Default for Chains {
    fn default() -> Chains {
        Chains {
            egress: Chain::new("egress", "return"),
            ingress: Chain::new("ingress", "accept"),
        }
    }
}

impl Chains {
    fn chain(&mut self, d: Direction) -> &mut Chain {
        match d {
            Direction::Egress => &mut self.egress,
            Direction::Ingress => &mut self.ingress,
        }
    }

    fn script(self) -> Linear {
        let mut s = String::from("table inet linear {\n");
        let mut rules = 4;
        for c in [&self.egress, &self.ingress] {
            s.push_str(&c.sets);
            let iso: Vec<String> = c.isolated.iter().map(Ipv4Addr::to_string).collect();
            if !iso.is_empty() {
                let _ = writeln!(
                    s,
                    "\tset {}-isolated {{ type ipv4_addr; elements = {{ {} }} }}",
                    c.name,
                    iso.join(", ")
                );
            }
        }
        s.push_str(
            "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tct state established,related accept\n\t\tct state invalid drop\n\
             \t\tjump egress\n\t\tjump ingress\n\t}\n",
        );
        for c in [&self.egress, &self.ingress] {
            let field = if c.name == "egress" { "saddr" } else { "daddr" };
            let _ = write!(s, "\tchain {} {{\n{}", c.name, c.rules);
            if !c.isolated.is_empty() {
                let _ = writeln!(s, "\t\tip {field} @{}-isolated drop", c.name);
                rules += 1;
            }
            s.push_str("\t}\n");
            rules += c.count;
        }
        s.push_str("}\n");
        Linear { script: s, rules }
    }
}
