//! The key correctness test: for random small clusters, the packet tracer's cluster-level verdict
//! over every node's rendered ruleset equals the oracle's (`Engine::allowed`), for every ordered
//! pair of endpoints and every port of interest.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use policyc_compiler::eval::{Endpoint, Engine};
use policyc_compiler::model::{ContainerPort, Labels, Namespace, Node};
use policyc_compiler::nft::tracer::trace_connection;
use policyc_compiler::nft::{render, RenderOptions, Ruleset, UnprogrammedPods};
use policyc_compiler::policy::{IpBlock, NamespaceMatch, Peer, PortMatch, Rule};
use policyc_compiler::selector::{Operator, Requirement, Selector};
use policyc_compiler::{Cluster, Family, Pod, Policy, Protocol};
use proptest::prelude::*;

const NAMESPACES: [&str; 3] = ["a", "b", "c"];
const NODES: usize = 2;

fn node_ips(n: usize) -> Vec<IpAddr> {
    vec![
        format!("198.18.0.{}", 10 + n).parse().unwrap(),
        format!("fd00:198:18::{}", 10 + n).parse().unwrap(),
    ]
}

const EXTERNAL: [&str; 2] = ["198.19.0.99", "fd00:198:19::99"];

/// Node `n`'s pod CIDRs, which hold every pod address the generator gives its pods.
fn pod_cidrs(n: usize) -> Vec<IpNet> {
    vec![
        format!("10.244.{n}.0/24").parse().unwrap(),
        format!("fd00:10:244:{n}::/64").parse().unwrap(),
    ]
}

/// Addresses in node `n`'s pod CIDRs that no generated pod has: pods the API does not show yet.
fn strays(n: usize) -> Vec<IpAddr> {
    vec![
        format!("10.244.{n}.250").parse().unwrap(),
        format!("fd00:10:244:{n}::250").parse().unwrap(),
    ]
}

/// Ports every pair is checked on: each named or numeric port the generator can produce, plus
/// ports just outside them.
const PORTS: [(u16, Protocol); 8] = [
    (80, Protocol::Tcp),
    (81, Protocol::Tcp),
    (8080, Protocol::Tcp),
    (53, Protocol::Udp),
    (53, Protocol::Tcp),
    (60, Protocol::Udp),
    (9, Protocol::Sctp),
    (10, Protocol::Sctp),
];

fn port_pool(i: usize) -> PortMatch {
    let range = |protocol, start, end| PortMatch::Range { protocol, start, end };
    let named = |protocol, name: &str| PortMatch::Named {
        protocol,
        name: name.into(),
    };
    match i {
        0 => range(Protocol::Tcp, 80, 80),
        1 => range(Protocol::Udp, 50, 90),
        2 => named(Protocol::Tcp, "http"),
        3 => named(Protocol::Udp, "dns"),
        4 => named(Protocol::Sctp, "sctp-p"),
        5 => PortMatch::AnyPort(Protocol::Tcp),
        6 => PortMatch::AnyPort(Protocol::Sctp),
        7 => range(Protocol::Tcp, 8000, 8080),
        _ => named(Protocol::Udp, "alt"),
    }
}
const PORT_POOL: usize = 9;

fn block_pool(i: usize) -> IpBlock {
    let n = |s: &str| s.parse::<IpNet>().unwrap();
    let (cidr, except): (&str, Vec<&str>) = match i {
        0 => ("10.244.0.0/16", vec!["10.244.1.0/24"]),
        1 => ("10.244.0.0/24", vec![]),
        2 => ("10.244.0.8/29", vec!["10.244.0.12/31", "10.244.0.14/32"]),
        3 => ("fd00:10:244::/48", vec!["fd00:10:244:1::/64"]),
        4 => ("fd00:10:244::/64", vec![]),
        5 => ("198.18.0.0/15", vec![]),
        6 => ("0.0.0.0/0", vec!["10.244.0.0/24", "10.244.0.0/25"]),
        7 => ("::/0", vec!["fd00:10:244:0::/64"]),
        _ => ("10.244.1.12/32", vec![]),
    };
    IpBlock {
        cidr: n(cidr),
        except: except.into_iter().map(n).collect(),
    }
}
const BLOCK_POOL: usize = 9;

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("app".to_string()),
        Just("tier".to_string()),
        Just("team".to_string())
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("x".to_string()),
        Just("y".to_string()),
        Just("z".to_string())
    ]
}

fn labels() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map(key(), value(), 0..3)
}

fn requirement() -> impl Strategy<Value = Requirement> {
    (key(), 0..4usize, prop::collection::btree_set(value(), 1..3)).prop_map(|(key, op, values)| {
        let operator = [
            Operator::In,
            Operator::NotIn,
            Operator::Exists,
            Operator::DoesNotExist,
        ][op];
        let values = if matches!(operator, Operator::Exists | Operator::DoesNotExist) {
            BTreeSet::new()
        } else {
            values
        };
        Requirement {
            key,
            operator,
            values,
        }
    })
}

fn selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        2 => Just(Selector::everything()),
        3 => prop::collection::vec(requirement(), 1..3).prop_map(|mut requirements| {
            requirements.sort();
            requirements.dedup();
            Selector { requirements }
        }),
    ]
}

#[derive(Clone, Debug)]
enum PeerSpec {
    Own(Selector),
    Ns(Selector, Selector),
    Block(usize),
}

fn peer() -> impl Strategy<Value = PeerSpec> {
    prop_oneof![
        selector().prop_map(PeerSpec::Own),
        (selector(), selector()).prop_map(|(n, p)| PeerSpec::Ns(n, p)),
        (0..BLOCK_POOL).prop_map(PeerSpec::Block),
    ]
}

#[derive(Clone, Debug)]
struct RuleSpec {
    peers: Option<Vec<PeerSpec>>,
    ports: Option<Vec<usize>>,
    invalid: bool,
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    (
        prop::option::weighted(0.7, prop::collection::vec(peer(), 1..3)),
        prop::option::weighted(0.6, prop::collection::vec(0..PORT_POOL, 1..3)),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(peers, ports, invalid)| RuleSpec {
            peers,
            ports,
            invalid,
        })
}

#[derive(Clone, Debug)]
struct PolicySpec {
    ns: usize,
    selector: Selector,
    /// 0: ingress only, 1: egress only, 2: both.
    types: usize,
    ingress: Vec<RuleSpec>,
    egress: Vec<RuleSpec>,
}

fn policy() -> impl Strategy<Value = PolicySpec> {
    (
        0..NAMESPACES.len(),
        selector(),
        0..3usize,
        prop::collection::vec(rule(), 0..3),
        prop::collection::vec(rule(), 0..3),
    )
        .prop_map(|(ns, selector, types, ingress, egress)| PolicySpec {
            ns,
            selector,
            types,
            ingress,
            egress,
        })
}

#[derive(Clone, Debug)]
struct PodSpec {
    ns: usize,
    labels: Labels,
    node: usize,
    host_network: bool,
    /// 0: IPv4, 1: IPv6, 2: dual-stack.
    stack: usize,
    /// 0: no http port, 1: http=80, 2: http=8080.
    http: usize,
    dns: bool,
    sctp: bool,
    alt: bool,
    failed: bool,
}

fn pod() -> impl Strategy<Value = PodSpec> {
    (
        (
            0..NAMESPACES.len(),
            labels(),
            0..NODES,
            prop::bool::weighted(0.15),
        ),
        (
            0..3usize,
            0..3usize,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.05),
        ),
    )
        .prop_map(
            |((ns, labels, node, host_network), (stack, http, dns, sctp, alt, failed))| PodSpec {
                ns,
                labels,
                node,
                host_network,
                stack,
                http,
                dns,
                sctp,
                alt,
                failed,
            },
        )
}

fn build_rule(index: usize, spec: &RuleSpec, ns: &str) -> Rule {
    Rule {
        index,
        peers: spec.peers.as_ref().map(|ps| {
            ps.iter()
                .map(|p| match p {
                    PeerSpec::Own(s) => Peer::Pods {
                        namespaces: NamespaceMatch::Own(ns.to_string()),
                        pods: s.clone(),
                    },
                    PeerSpec::Ns(n, s) => Peer::Pods {
                        namespaces: NamespaceMatch::Selector(n.clone()),
                        pods: s.clone(),
                    },
                    PeerSpec::Block(i) => Peer::IpBlock(block_pool(*i)),
                })
                .collect()
        }),
        ports: spec
            .ports
            .as_ref()
            .map(|ps| ps.iter().map(|i| port_pool(*i)).collect()),
        invalid: spec.invalid,
    }
}

fn build(ns_labels: &[Labels], pods: &[PodSpec], policies: &[PolicySpec]) -> Cluster {
    let namespaces = NAMESPACES
        .iter()
        .zip(ns_labels)
        .map(|(n, l)| Namespace::new(n, l.clone(), false));
    let pods = pods.iter().enumerate().map(|(i, p)| {
        let ips: Vec<IpAddr> = if p.host_network {
            node_ips(p.node)
        } else {
            let v4: IpAddr = format!("10.244.{}.{}", p.node, 10 + i).parse().unwrap();
            let v6: IpAddr = format!("fd00:10:244:{}::{}", p.node, 10 + i).parse().unwrap();
            match p.stack {
                0 => vec![v4],
                1 => vec![v6],
                _ => vec![v4, v6],
            }
        };
        let mut ports = Vec::new();
        let cp = |name: &str, port, protocol| ContainerPort {
            name: Some(name.into()),
            port,
            protocol,
        };
        match p.http {
            1 => ports.push(cp("http", 80, Protocol::Tcp)),
            2 => ports.push(cp("http", 8080, Protocol::Tcp)),
            _ => {}
        }
        if p.dns {
            ports.push(cp("dns", 53, Protocol::Udp));
        }
        if p.sctp {
            ports.push(cp("sctp-p", 9, Protocol::Sctp));
        }
        if p.alt {
            ports.push(cp("alt", 60, Protocol::Udp));
        }
        Pod {
            namespace: NAMESPACES[p.ns].to_string(),
            name: format!("p{i}"),
            labels: p.labels.clone(),
            node_name: Some(format!("node-{}", p.node)),
            host_network: p.host_network,
            ports,
            ips,
            phase: Some(if p.failed { "Failed" } else { "Running" }.to_string()),
            source: None,
        }
    });
    let policies = policies.iter().enumerate().map(|(i, p)| {
        let ns = NAMESPACES[p.ns];
        let rules = |specs: &[RuleSpec]| -> Vec<Rule> {
            specs
                .iter()
                .enumerate()
                .map(|(j, r)| build_rule(j, r, ns))
                .collect()
        };
        Policy {
            namespace: ns.to_string(),
            name: format!("np{i}"),
            pod_selector: p.selector.clone(),
            ingress: (p.types != 1).then(|| rules(&p.ingress)),
            egress: (p.types != 0).then(|| rules(&p.egress)),
            ignored: vec![],
            invalid_selector: false,
            source: None,
        }
    });
    let nodes = (0..NODES).map(|n| Node {
        name: format!("node-{n}"),
        addresses: node_ips(n),
        pod_cidrs: pod_cidrs(n),
    });
    Cluster::new(namespaces, pods, policies, nodes)
}

fn endpoints(engine: &Engine<'_>) -> Vec<Endpoint> {
    let cluster = engine.cluster;
    let mut out: Vec<Endpoint> = Vec::new();
    for i in 0..cluster.pods.len() {
        for f in [Family::Ipv4, Family::Ipv6] {
            out.extend(engine.pod_endpoint(i, f));
        }
    }
    let hosts = (0..NODES)
        .flat_map(node_ips)
        .chain((0..NODES).flat_map(strays))
        .chain(EXTERNAL.iter().map(|s| s.parse().unwrap()));
    out.extend(hosts.map(|ip| engine.endpoint_for_ip(ip)));
    out
}

fn check(cluster: &Cluster, log_drops: bool, unprogrammed: UnprogrammedPods) -> Result<(), TestCaseError> {
    check_on(cluster, log_drops, unprogrammed, &PORTS)
}

/// The node whose pod CIDRs hold `ep`, when no pod of the cluster has its address.
fn stray_node(cluster: &Cluster, ep: &Endpoint) -> Option<usize> {
    let known = cluster.pods.iter().any(|p| p.ips.contains(&ep.ip));
    (!known)
        .then(|| (0..NODES).find(|&n| pod_cidrs(n).iter().any(|c| c.contains(&ep.ip))))
        .flatten()
}

/// What the NetworkPolicy API says (the oracle) and, with `UnprogrammedPods::Drop`, the option's
/// own contract, stated independently of the ruleset: a stray address's traffic is dropped both
/// ways, except from its own node (node-to-pod leaves through OUTPUT, which is never filtered).
fn expected(
    engine: &Engine<'_>,
    unprogrammed: UnprogrammedPods,
    src: &Endpoint,
    dst: &Endpoint,
    protocol: Protocol,
    port: u16,
) -> bool {
    let allowed = engine.allowed(src, dst, protocol, port);
    if unprogrammed == UnprogrammedPods::Allow {
        return allowed;
    }
    let cluster = engine.cluster;
    if stray_node(cluster, src).is_some() {
        return false;
    }
    match stray_node(cluster, dst) {
        Some(n) => allowed && node_ips(n).contains(&src.ip),
        None => allowed,
    }
}

fn check_on(
    cluster: &Cluster,
    log_drops: bool,
    unprogrammed: UnprogrammedPods,
    ports: &[(u16, Protocol)],
) -> Result<(), TestCaseError> {
    let rulesets: BTreeMap<String, Ruleset> = (0..NODES)
        .map(|n| {
            let node = format!("node-{n}");
            let mut opts = RenderOptions::new(&node);
            opts.log_drops = log_drops;
            opts.unprogrammed_pods = unprogrammed;
            (node, render(cluster, &opts))
        })
        .collect();
    let engine = Engine::new(cluster);
    let eps = endpoints(&engine);
    for src in &eps {
        for dst in &eps {
            if Family::of(&src.ip) != Family::of(&dst.ip) {
                continue;
            }
            for &(port, protocol) in ports {
                let want = expected(&engine, unprogrammed, src, dst, protocol, port);
                let got = trace_connection(cluster, &rulesets, src, dst, protocol, port);
                if want != got.allowed {
                    let name = |e: &Endpoint| match e.pod {
                        Some(i) => format!("{} ({})", cluster.pods[i].key(), e.ip),
                        None => e.ip.to_string(),
                    };
                    let rs: Vec<String> = rulesets
                        .iter()
                        .map(|(n, r)| format!("# {n}\n{}", r.text()))
                        .collect();
                    return Err(TestCaseError::fail(format!(
                        "{} -> {} {port}/{protocol}: expected {want}, tracer {}\n{:#?}\n{:#?}\n{}",
                        name(src),
                        name(dst),
                        got.allowed,
                        engine.check(src, dst, protocol, port),
                        got.traversals,
                        rs.join("\n")
                    )));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn tracer_agrees_with_the_oracle(
        ns_labels in prop::collection::vec(labels(), NAMESPACES.len()),
        pods in prop::collection::vec(pod(), 2..8),
        policies in prop::collection::vec(policy(), 1..5),
        log_drops in prop::bool::weighted(0.2),
        drop_unprogrammed in prop::bool::weighted(0.3),
    ) {
        let cluster = build(&ns_labels, &pods, &policies);
        let unprogrammed = if drop_unprogrammed { UnprogrammedPods::Drop } else { UnprogrammedPods::Allow };
        check(&cluster, log_drops, unprogrammed)?;
    }
}

/// The examples' cluster, deterministically, on both nodes.
#[test]
fn tracer_agrees_on_the_examples() {
    let cluster = {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut texts = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            texts.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
        }
        policyc_compiler::load::load_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str()))).0
    };
    let rulesets: BTreeMap<String, Ruleset> = ["node-0", "node-1"]
        .iter()
        .map(|n| (n.to_string(), render(&cluster, &RenderOptions::new(*n))))
        .collect();
    let engine = Engine::new(&cluster);
    let eps = endpoints(&engine);
    let mut denied = 0;
    for src in &eps {
        for dst in &eps {
            for port in [80u16, 8080, 9090, 9100, 5432] {
                let want = engine.allowed(src, dst, Protocol::Tcp, port);
                let got = trace_connection(&cluster, &rulesets, src, dst, Protocol::Tcp, port);
                assert_eq!(want, got.allowed, "{src:?} -> {dst:?} {port}: {got:#?}");
                denied += usize::from(!want);
            }
        }
    }
    // The examples isolate shop: a real share of the pairs must be denied for this to mean much.
    assert!(denied > 20, "only {denied} denied");
}

/// Corners the generator does not reach: the port space's ends, `endPort == port`, one port name
/// on TCP and UDP with different numbers, excepts at the edges of `0.0.0.0/0` and `::/0`, and a
/// dual-stack pod that an IPv4-only ipBlock covers in one family only.
#[test]
fn tracer_agrees_on_edge_cases() {
    let text = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: a}}
- apiVersion: v1
  kind: Node
  metadata: {name: node-0}
  status: {addresses: [{type: InternalIP, address: 198.18.0.10}, {type: InternalIP, address: "fd00:198:18::10"}]}
- apiVersion: v1
  kind: Node
  metadata: {name: node-1}
  status: {addresses: [{type: InternalIP, address: 198.18.0.11}, {type: InternalIP, address: "fd00:198:18::11"}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: srv, namespace: a, labels: {app: srv}}
  spec:
    nodeName: node-0
    containers:
    - {name: t, ports: [{name: dup, containerPort: 53, protocol: TCP}, {containerPort: 65535}]}
    - {name: u, ports: [{name: dup, containerPort: 54, protocol: UDP}]}
  status: {phase: Running, podIP: 10.244.0.10, podIPs: [{ip: 10.244.0.10}, {ip: "fd00:10:244::10"}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: cli, namespace: a, labels: {app: cli}}
  spec: {nodeName: node-1, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.244.1.10, podIPs: [{ip: 10.244.1.10}, {ip: "fd00:10:244:1::10"}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: srv, namespace: a}
spec:
  podSelector: {matchLabels: {app: srv}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - ipBlock: {cidr: 0.0.0.0/0, except: [0.0.0.0/1, 255.255.255.255/32]}
    - ipBlock: {cidr: "::/0", except: ["::/1"]}
    ports: [{port: 65535, endPort: 65535}, {port: 1}]
  - from: [{ipBlock: {cidr: 10.244.1.0/24}}]
    ports: [{port: dup, protocol: UDP}, {port: dup}]
  egress:
  - to: [{namespaceSelector: {}, podSelector: {matchLabels: {app: cli}}}]
    ports: [{port: 65534, endPort: 65535}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cli, namespace: a}
spec:
  podSelector: {matchLabels: {app: cli}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: srv}}}]
    ports: [{port: dup, protocol: UDP}, {port: 65535}]
  - to: [{ipBlock: {cidr: 128.0.0.0/1}}]
"#;
    let (cluster, _, diags) = policyc_compiler::load::load_texts([("edge.yaml", text)]);
    assert!(diags.is_empty(), "{diags:?}");
    let ports = [
        (1, Protocol::Tcp),
        (2, Protocol::Tcp),
        (53, Protocol::Tcp),
        (53, Protocol::Udp),
        (54, Protocol::Udp),
        (54, Protocol::Tcp),
        (65533, Protocol::Tcp),
        (65534, Protocol::Tcp),
        (65535, Protocol::Tcp),
        (65535, Protocol::Udp),
    ];
    let mut extra = vec![
        "128.0.0.1",
        "127.255.255.255",
        "255.255.255.255",
        "255.255.255.254",
        "8000::1",
        "7fff::1",
    ];
    extra.extend(EXTERNAL);
    for log_drops in [false, true] {
        check_on(&cluster, log_drops, UnprogrammedPods::Allow, &ports).unwrap();
    }
    // Outside addresses at the excepts' edges, against the server (both families).
    let rulesets: BTreeMap<String, Ruleset> = ["node-0", "node-1"]
        .iter()
        .map(|n| (n.to_string(), render(&cluster, &RenderOptions::new(*n))))
        .collect();
    let engine = Engine::new(&cluster);
    let srv = engine.pod_index("a", "srv").unwrap();
    let mut allowed = 0;
    for ip in extra {
        let src = engine.endpoint_for_ip(ip.parse().unwrap());
        let Some(dst) = engine.pod_endpoint(srv, Family::of(&src.ip)) else {
            continue;
        };
        for &(port, protocol) in &ports {
            let want = engine.allowed(&src, &dst, protocol, port);
            let got = trace_connection(&cluster, &rulesets, &src, &dst, protocol, port);
            assert_eq!(want, got.allowed, "{ip} -> srv {port}/{protocol}: {got:#?}");
            allowed += usize::from(want);
        }
    }
    // 128.0.0.1, 255.255.255.254, 8000::1 and both EXTERNAL addresses, on 65535/TCP and 1/TCP.
    assert_eq!(allowed, 10);
    // And the verdicts themselves, as the NetworkPolicy API defines them.
    let cli = engine.pod_index("a", "cli").unwrap();
    let pair = |from: usize, to: usize, f: Family| {
        (
            engine.pod_endpoint(from, f).unwrap(),
            engine.pod_endpoint(to, f).unwrap(),
        )
    };
    let allowed =
        |(s, d): &(Endpoint, Endpoint), port: u16, proto: Protocol| engine.allowed(s, d, proto, port);
    let (v4, v6) = (pair(cli, srv, Family::Ipv4), pair(cli, srv, Family::Ipv6));
    // `dup` is 54 on UDP and 53 on TCP, on both sides of the connection.
    assert!(allowed(&v4, 54, Protocol::Udp));
    assert!(!allowed(&v4, 53, Protocol::Udp));
    // 10.244.1.10 is in the except 0.0.0.0/1; its IPv6 address is inside ::/0 minus ::/1.
    assert!(!allowed(&v4, 65535, Protocol::Tcp));
    assert!(allowed(&v6, 65535, Protocol::Tcp));
    // The IPv4-only ipBlock admits the dual-stack client in one family only.
    assert!(!allowed(&v6, 54, Protocol::Udp));
    let back = pair(srv, cli, Family::Ipv4);
    assert!(allowed(&back, 65534, Protocol::Tcp));
    assert!(!allowed(&back, 65533, Protocol::Tcp));
}

/// What the kernel does with a transaction, on the IR: replacing defines, deleting elements by
/// key, adding elements (refusing a key that is already there, as the kernel does for a map
/// entry with other data).
fn apply(prev: &Ruleset, tx: &policyc_compiler::nft::Transaction) -> Result<Ruleset, String> {
    use policyc_compiler::nft::Command;
    let mut rs = prev.clone();
    for c in &tx.commands {
        match c {
            Command::AddTable(_) => {}
            Command::DeleteTable(t) => {
                rs = Ruleset {
                    table: t.clone(),
                    ..Ruleset::default()
                }
            }
            Command::Define(r) => rs = r.clone(),
            Command::DeleteElements { set, elements, .. } => {
                let s = rs
                    .sets
                    .iter_mut()
                    .find(|s| s.name == set.name)
                    .ok_or("no such set")?;
                for e in elements {
                    let before = s.elements.len();
                    s.elements.retain(|x| x.key() != *e);
                    if s.elements.len() == before {
                        return Err(format!("deleting {e:?} from {}: not there", set.name));
                    }
                }
            }
            Command::AddElements { set, elements, .. } => {
                let s = rs
                    .sets
                    .iter_mut()
                    .find(|s| s.name == set.name)
                    .ok_or("no such set")?;
                for e in elements {
                    if s.elements.iter().any(|x| x.key() == e.key()) {
                        return Err(format!("adding {e:?} to {}: key exists", set.name));
                    }
                    s.elements.insert(e.clone());
                }
            }
        }
    }
    Ok(rs)
}

#[derive(Clone, Debug)]
enum Change {
    Remove(usize),
    Relabel(usize, Labels),
    /// A copy of the pod with a fresh address.
    Clone(usize),
    MoveNode(usize),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0..8usize).prop_map(Change::Remove),
        (0..8usize, labels()).prop_map(|(i, l)| Change::Relabel(i, l)),
        (0..8usize).prop_map(Change::Clone),
        (0..8usize).prop_map(Change::MoveNode),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// `update_from` turns the old ruleset into the new one exactly, using element commands
    /// alone whenever the chains and set declarations are unchanged.
    #[test]
    fn deltas_reach_the_new_ruleset(
        ns_labels in prop::collection::vec(labels(), NAMESPACES.len()),
        pods in prop::collection::vec(pod(), 2..8),
        policies in prop::collection::vec(policy(), 1..5),
        changes in prop::collection::vec(change(), 1..3),
        log_drops in any::<bool>(),
        drop_unprogrammed in any::<bool>(),
    ) {
        let mut after = pods.clone();
        for ch in changes {
            match ch {
                Change::Remove(i) if i < after.len() => { after.remove(i); }
                Change::Relabel(i, l) if i < after.len() => after[i].labels = l,
                Change::Clone(i) if i < after.len() => after.push(after[i].clone()),
                Change::MoveNode(i) if i < after.len() => after[i].node = (after[i].node + 1) % NODES,
                _ => {}
            }
        }
        let (c0, c1) = (build(&ns_labels, &pods, &policies), build(&ns_labels, &after, &policies));
        for n in 0..NODES {
            let mut opts = RenderOptions::new(format!("node-{n}"));
            opts.log_drops = log_drops;
            if drop_unprogrammed {
                opts.unprogrammed_pods = UnprogrammedPods::Drop;
            }
            let (r0, r1) = (render(&c0, &opts), render(&c1, &opts));
            let tx = r1.update_from(&r0);
            prop_assert_eq!(tx.is_empty(), r0 == r1);
            let got = apply(&r0, &tx).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&got, &r1);
            let define = tx.commands.iter().any(|c| matches!(c, policyc_compiler::nft::Command::Define(_)));
            let same_shape = r0.chains == r1.chains
                && r0.sets.iter().map(|s| (&s.name, s.kind)).eq(r1.sets.iter().map(|s| (&s.name, s.kind)));
            prop_assert_eq!(define, !same_shape && r0 != r1);
        }
    }
}
