//! NetworkPolicy v1 compiled into an IR that keeps its provenance (policy, direction, rule index),
//! so every verdict can say which rule made it. Conversion validates as the API server does; a
//! rule with an invalid field is kept, marked invalid, and matches nothing (fail closed) while the
//! policy still isolates the pods it selects.

use std::fmt;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1 as netv1;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::diag::{Diagnostic, Diags};
use crate::model::{Family, Protocol, Source};
use crate::selector::Selector;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which namespaces a pod peer covers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum NamespaceMatch {
    /// A `podSelector` without `namespaceSelector`: the policy's own namespace.
    Own(String),
    /// A `namespaceSelector` (with or without a `podSelector`).
    Selector(Selector),
}

/// `ipBlock`: `cidr` minus every `except`, in one address family.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IpBlock {
    pub cidr: IpNet,
    pub except: Vec<IpNet>,
}

impl IpBlock {
    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        self.cidr.contains(ip) && !self.except.iter().any(|e| e.contains(ip))
    }

    pub fn family(&self) -> Family {
        Family::of_net(&self.cidr)
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cidr)?;
        if !self.except.is_empty() {
            let ex: Vec<String> = self.except.iter().map(|e| e.to_string()).collect();
            write!(f, " except {}", ex.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Peer {
    /// Pods (never hostNetwork pods) whose namespace matches `namespaces` and whose labels match `pods`.
    Pods {
        namespaces: NamespaceMatch,
        pods: Selector,
    },
    IpBlock(IpBlock),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Pods {
                namespaces: NamespaceMatch::Own(ns),
                pods,
            } if pods.is_everything() => write!(f, "every pod in namespace {ns}"),
            Peer::Pods {
                namespaces: NamespaceMatch::Own(ns),
                pods,
            } => write!(f, "pods [{pods}] in namespace {ns}"),
            Peer::Pods {
                namespaces: NamespaceMatch::Selector(ns),
                pods,
            } => {
                if pods.is_everything() {
                    f.write_str("every pod")?;
                } else {
                    write!(f, "pods [{pods}]")?;
                }
                if ns.is_everything() {
                    f.write_str(" in every namespace")
                } else {
                    write!(f, " in namespaces [{ns}]")
                }
            }
            Peer::IpBlock(b) => write!(f, "ipBlock {b}"),
        }
    }
}

/// One entry of a rule's `ports`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PortMatch {
    /// A protocol without a port: every port of that protocol.
    AnyPort(Protocol),
    /// `port` (and `endPort`), inclusive.
    Range {
        protocol: Protocol,
        start: u16,
        end: u16,
    },
    /// A named port, resolved against the destination pod's container ports of the same protocol.
    Named { protocol: Protocol, name: String },
}

impl PortMatch {
    pub fn protocol(&self) -> Protocol {
        match self {
            PortMatch::AnyPort(p) => *p,
            PortMatch::Range { protocol, .. } | PortMatch::Named { protocol, .. } => *protocol,
        }
    }
}

impl fmt::Display for PortMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortMatch::AnyPort(p) => write!(f, "any/{p}"),
            PortMatch::Range { protocol, start, end } if start == end => write!(f, "{start}/{protocol}"),
            PortMatch::Range { protocol, start, end } => write!(f, "{start}-{end}/{protocol}"),
            PortMatch::Named { protocol, name } => write!(f, "{name}/{protocol}"),
        }
    }
}

/// One ingress or egress rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Position in the policy's `ingress` or `egress` list.
    pub index: usize,
    /// `None`: `from`/`to` empty or omitted, every peer.
    pub peers: Option<Vec<Peer>>,
    /// `None`: `ports` empty or omitted, every port and protocol.
    pub ports: Option<Vec<PortMatch>>,
    /// A rule with an invalid field matches nothing.
    pub invalid: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub namespace: String,
    pub name: String,
    pub pod_selector: Selector,
    /// `Some` when the policy isolates selected pods for ingress; the rules that admit traffic.
    pub ingress: Option<Vec<Rule>>,
    /// `Some` when the policy isolates selected pods for egress.
    pub egress: Option<Vec<Rule>>,
    /// Rules present in the spec but ignored because `policyTypes` omits their direction.
    pub ignored: Vec<Direction>,
    /// Set when `spec.podSelector` itself is invalid: the policy then selects every pod of its
    /// namespace and admits nothing (fail closed).
    pub invalid_selector: bool,
    #[serde(skip)]
    pub source: Option<Source>,
}

impl Policy {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn rules(&self, direction: Direction) -> Option<&[Rule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }

    /// Compiles and validates an API object. Returns the policy (always, possibly with invalid
    /// rules) and every problem found.
    pub fn from_k8s(np: &netv1::NetworkPolicy, source: Option<&Source>) -> (Policy, Vec<Diagnostic>) {
        let namespace = np
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = np.metadata.name.clone().unwrap_or_default();
        let object = format!("NetworkPolicy {namespace}/{name}");
        let mut diags = Diags::new(&object);
        if name.is_empty() {
            diags.push("metadata.name", "missing");
        }
        let default_spec = netv1::NetworkPolicySpec::default();
        let spec = np.spec.as_ref().unwrap_or(&default_spec);

        let (pod_selector, invalid_selector) = match &spec.pod_selector {
            None => (Selector::everything(), false),
            Some(sel) => match Selector::compile(sel, "spec.podSelector") {
                Ok(s) => (s, false),
                Err(errs) => {
                    for (f, m) in errs {
                        diags.push(f, m);
                    }
                    (Selector::everything(), true)
                }
            },
        };

        // policyTypes omitted (or empty, which the API server defaults alike): Ingress, plus Egress
        // when the spec has egress rules. `egress: []` is no egress section: the defaulting tests
        // `len(spec.egress) != 0`.
        let has_egress_rules = spec.egress.as_ref().is_some_and(|e| !e.is_empty());
        let (mut isolates_ingress, mut isolates_egress) = (true, has_egress_rules);
        if let Some(types) = spec.policy_types.as_ref().filter(|t| !t.is_empty()) {
            isolates_ingress = false;
            isolates_egress = false;
            if types.len() > 2 {
                diags.push("spec.policyTypes", "may list at most Ingress and Egress");
            }
            for (i, t) in types.iter().enumerate() {
                match t.as_str() {
                    "Ingress" => isolates_ingress = true,
                    "Egress" => isolates_egress = true,
                    other => {
                        diags.push(
                            format!("spec.policyTypes[{i}]"),
                            format!("unknown policy type {other:?} (expected Ingress or Egress)"),
                        );
                        // Fail closed: an unreadable type isolates both directions.
                        isolates_ingress = true;
                        isolates_egress = true;
                    }
                }
            }
        }

        let mut ignored = Vec::new();
        let ingress_rules: Vec<Rule> = spec
            .ingress
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| {
                compile_rule(
                    &mut diags,
                    &namespace,
                    &format!("spec.ingress[{i}]"),
                    "from",
                    i,
                    r.from.as_deref(),
                    r.ports.as_deref(),
                )
            })
            .collect();
        let egress_rules: Vec<Rule> = spec
            .egress
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| {
                compile_rule(
                    &mut diags,
                    &namespace,
                    &format!("spec.egress[{i}]"),
                    "to",
                    i,
                    r.to.as_deref(),
                    r.ports.as_deref(),
                )
            })
            .collect();
        if !isolates_ingress && !ingress_rules.is_empty() {
            ignored.push(Direction::Ingress);
        }
        if !isolates_egress && !egress_rules.is_empty() {
            ignored.push(Direction::Egress);
        }
        let keep = |isolates: bool, rules: Vec<Rule>| {
            isolates.then(|| if invalid_selector { Vec::new() } else { rules })
        };
        let policy = Policy {
            ingress: keep(isolates_ingress, ingress_rules),
            egress: keep(isolates_egress, egress_rules),
            namespace,
            name,
            pod_selector,
            ignored,
            invalid_selector,
            source: source.cloned(),
        };
        let out = diags.out.into_iter().map(|d| d.at(source)).collect();
        (policy, out)
    }
}

#[allow(clippy::too_many_arguments)]
fn compile_rule(
    diags: &mut Diags<'_>,
    namespace: &str,
    at: &str,
    peers_field: &str,
    index: usize,
    peers: Option<&[netv1::NetworkPolicyPeer]>,
    ports: Option<&[netv1::NetworkPolicyPort]>,
) -> Rule {
    let before = diags.out.len();
    let peers = match peers {
        None | Some([]) => None,
        Some(list) => Some(
            list.iter()
                .enumerate()
                .filter_map(|(j, p)| compile_peer(diags, namespace, &format!("{at}.{peers_field}[{j}]"), p))
                .collect(),
        ),
    };
    let ports = match ports {
        None | Some([]) => None,
        Some(list) => Some(
            list.iter()
                .enumerate()
                .filter_map(|(j, p)| compile_port(diags, &format!("{at}.ports[{j}]"), p))
                .collect(),
        ),
    };
    Rule {
        index,
        peers,
        ports,
        invalid: diags.out.len() > before,
    }
}

fn compile_peer(
    diags: &mut Diags<'_>,
    namespace: &str,
    at: &str,
    peer: &netv1::NetworkPolicyPeer,
) -> Option<Peer> {
    let mut selector = |sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector, field: &str| {
        match Selector::compile(sel, &format!("{at}.{field}")) {
            Ok(s) => Some(s),
            Err(errs) => {
                for (f, m) in errs {
                    diags.push(f, m);
                }
                None
            }
        }
    };
    match (&peer.ip_block, &peer.namespace_selector, &peer.pod_selector) {
        (None, None, None) => {
            diags.push(at, "a peer must set podSelector, namespaceSelector or ipBlock");
            None
        }
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            diags.push(
                at,
                "ipBlock cannot be combined with podSelector or namespaceSelector",
            );
            None
        }
        (None, ns, pods) => {
            let namespaces = match ns {
                None => NamespaceMatch::Own(namespace.to_string()),
                Some(ns) => NamespaceMatch::Selector(selector(ns, "namespaceSelector")?),
            };
            let pods = match pods {
                None => Selector::everything(),
                Some(p) => selector(p, "podSelector")?,
            };
            Some(Peer::Pods { namespaces, pods })
        }
        (Some(block), None, None) => {
            compile_ip_block(diags, &format!("{at}.ipBlock"), block).map(Peer::IpBlock)
        }
    }
}

/// Parses a CIDR as the API does: a prefix length is required; host bits are allowed (and masked).
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if !s.contains('/') {
        return Err(format!("invalid CIDR {s:?}: a prefix length is required"));
    }
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| format!("invalid CIDR {s:?}"))
}

fn compile_ip_block(diags: &mut Diags<'_>, at: &str, block: &netv1::IPBlock) -> Option<IpBlock> {
    let cidr = match parse_cidr(&block.cidr) {
        Ok(c) => c,
        Err(e) => {
            diags.push(format!("{at}.cidr"), e);
            return None;
        }
    };
    let mut except = Vec::new();
    let mut ok = true;
    for (i, e) in block.except.iter().flatten().enumerate() {
        match parse_cidr(e) {
            Ok(net) => {
                let strict_subset = Family::of_net(&net) == Family::of_net(&cidr)
                    && net.prefix_len() > cidr.prefix_len()
                    && cidr.contains(&net.network());
                if strict_subset {
                    except.push(net);
                } else {
                    diags.push(
                        format!("{at}.except[{i}]"),
                        format!("{net} must be a strict subset of cidr {cidr}"),
                    );
                    ok = false;
                }
            }
            Err(msg) => {
                diags.push(format!("{at}.except[{i}]"), msg);
                ok = false;
            }
        }
    }
    except.sort();
    except.dedup();
    ok.then_some(IpBlock { cidr, except })
}

fn compile_port(diags: &mut Diags<'_>, at: &str, port: &netv1::NetworkPolicyPort) -> Option<PortMatch> {
    let protocol = match port.protocol.as_deref() {
        None => Protocol::Tcp,
        Some(p) => match Protocol::parse(p) {
            Some(p) => p,
            None => {
                diags.push(
                    format!("{at}.protocol"),
                    format!("unsupported protocol {p:?} (expected TCP, UDP or SCTP)"),
                );
                return None;
            }
        },
    };
    match (&port.port, port.end_port) {
        (None, None) => Some(PortMatch::AnyPort(protocol)),
        (None, Some(_)) => {
            diags.push(format!("{at}.endPort"), "endPort requires port");
            None
        }
        (Some(IntOrString::Int(n)), end) => {
            let Some(start) = valid_port(*n) else {
                diags.push(
                    format!("{at}.port"),
                    format!("{n} is not a port number (1-65535)"),
                );
                return None;
            };
            let end = match end {
                None => start,
                Some(e) => match valid_port(e) {
                    Some(e) if e >= start => e,
                    Some(_) => {
                        diags.push(
                            format!("{at}.endPort"),
                            format!("endPort {e} is below port {start}"),
                        );
                        return None;
                    }
                    None => {
                        diags.push(
                            format!("{at}.endPort"),
                            format!("{e} is not a port number (1-65535)"),
                        );
                        return None;
                    }
                },
            };
            Some(PortMatch::Range { protocol, start, end })
        }
        (Some(IntOrString::String(name)), end) => {
            if end.is_some() {
                diags.push(
                    format!("{at}.endPort"),
                    "endPort cannot be used with a named port",
                );
                return None;
            }
            if let Err(e) = validate_port_name(name) {
                diags.push(format!("{at}.port"), format!("invalid port name {name:?}: {e}"));
                return None;
            }
            Some(PortMatch::Named {
                protocol,
                name: name.clone(),
            })
        }
    }
}

fn valid_port(n: i32) -> Option<u16> {
    u16::try_from(n).ok().filter(|p| *p >= 1)
}

/// IANA_SVC_NAME, as container port names and named policy ports must be.
pub fn validate_port_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("must be 1 to 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may contain only lowercase letters, digits and '-'");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err("must contain at least one letter");
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err("must not begin or end with '-' or contain '--'");
    }
    Ok(())
}
