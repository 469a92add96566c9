//! A synthetic large cluster for the render benchmark and the apply-time measurement: pods,
//! policies, namespaces and nodes in the issue's proportions, deterministic (a fixed LCG), and the
//! issue's three incremental changes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use policyc_compiler::model::{ContainerPort, Labels, Namespace, Node};
use policyc_compiler::policy::{IpBlock, NamespaceMatch, Peer, PortMatch, Rule};
use policyc_compiler::selector::{Operator, Requirement, Selector};
use policyc_compiler::{Cluster, Pod, Policy, Protocol};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn eq(key: &str, value: &str) -> Selector {
    Selector {
        requirements: vec![Requirement {
            key: key.into(),
            operator: Operator::In,
            values: [value.to_string()].into(),
        }],
    }
}

pub struct Size {
    pub pods: usize,
    pub policies: usize,
    pub namespaces: usize,
    pub nodes: usize,
}

pub const ISSUE: Size = Size {
    pods: 10_000,
    policies: 2_000,
    namespaces: 100,
    nodes: 50,
};

/// `apps` distinct app labels per namespace; pods spread round-robin over nodes.
pub fn cluster(size: &Size) -> Cluster {
    let mut rng = Lcg(42);
    let apps = 20;
    let namespaces: Vec<Namespace> = (0..size.namespaces)
        .map(|i| {
            let labels: Labels = BTreeMap::from([
                ("team".to_string(), format!("team-{}", i % 10)),
                (
                    "env".to_string(),
                    if i % 3 == 0 { "prod" } else { "dev" }.to_string(),
                ),
            ]);
            Namespace::new(&format!("ns-{i}"), labels, false)
        })
        .collect();
    let mut per_node = vec![0u32; size.nodes];
    let pods: Vec<Pod> = (0..size.pods)
        .map(|i| {
            let ns = i % size.namespaces;
            let app = rng.next(apps);
            let node = rng.next(size.nodes);
            per_node[node] += 1;
            // Each node has a /23 pod CIDR, 10.244.2n.0/23.
            let base = u32::from(Ipv4Addr::new(10, 244, 2 * node as u8, 0));
            let ip = IpAddr::V4(Ipv4Addr::from(base + per_node[node] % 510));
            Pod {
                namespace: format!("ns-{ns}"),
                name: format!("pod-{i}"),
                labels: BTreeMap::from([
                    ("app".to_string(), format!("app-{app}")),
                    ("tier".to_string(), ["fe", "be", "db"][app % 3].to_string()),
                ]),
                node_name: Some(format!("node-{node}")),
                host_network: false,
                ports: vec![ContainerPort {
                    name: Some("http".into()),
                    port: 8000 + (app as u16 % 4),
                    protocol: Protocol::Tcp,
                }],
                ips: vec![ip],
                phase: Some("Running".into()),
                source: None,
            }
        })
        .collect();
    let policies: Vec<Policy> = (0..size.policies)
        .map(|i| {
            let ns = i % size.namespaces;
            let namespace = format!("ns-{ns}");
            let kind = i / size.namespaces;
            let target = format!("app-{}", rng.next(apps));
            let from = format!("app-{}", rng.next(apps));
            let rule = |peers, ports| Rule {
                index: 0,
                peers,
                ports,
                invalid: false,
            };
            let (pod_selector, ingress, egress) = match kind % 5 {
                // Default deny for the namespace.
                0 => (Selector::everything(), Some(vec![]), None),
                // App to app on a port.
                1 => (
                    eq("app", &target),
                    Some(vec![rule(
                        Some(vec![Peer::Pods {
                            namespaces: NamespaceMatch::Own(namespace.clone()),
                            pods: eq("app", &from),
                        }]),
                        Some(vec![PortMatch::Range {
                            protocol: Protocol::Tcp,
                            start: 8000,
                            end: 8000,
                        }]),
                    )]),
                    None,
                ),
                // From a team's namespaces, named port.
                2 => (
                    eq("app", &target),
                    Some(vec![rule(
                        Some(vec![Peer::Pods {
                            namespaces: NamespaceMatch::Selector(eq(
                                "team",
                                &format!("team-{}", rng.next(10)),
                            )),
                            pods: Selector::everything(),
                        }]),
                        Some(vec![PortMatch::Named {
                            protocol: Protocol::Tcp,
                            name: "http".into(),
                        }]),
                    )]),
                    None,
                ),
                // From an ipBlock with an except.
                3 => (
                    eq("tier", ["fe", "be", "db"][rng.next(3)]),
                    Some(vec![rule(
                        Some(vec![Peer::IpBlock(IpBlock {
                            cidr: "10.0.0.0/8".parse::<IpNet>().unwrap(),
                            except: vec![format!("10.244.{}.0/23", 2 * rng.next(size.nodes))
                                .parse()
                                .unwrap()],
                        })]),
                        None,
                    )]),
                    None,
                ),
                // Egress to a tier by named port, plus DNS.
                _ => (
                    eq("app", &target),
                    None,
                    Some(vec![
                        rule(
                            Some(vec![Peer::Pods {
                                namespaces: NamespaceMatch::Own(namespace.clone()),
                                pods: eq("tier", ["fe", "be", "db"][rng.next(3)]),
                            }]),
                            Some(vec![PortMatch::Named {
                                protocol: Protocol::Tcp,
                                name: "http".into(),
                            }]),
                        ),
                        rule(
                            None,
                            Some(vec![PortMatch::Range {
                                protocol: Protocol::Udp,
                                start: 53,
                                end: 53,
                            }]),
                        ),
                    ]),
                ),
            };
            Policy {
                namespace,
                name: format!("np-{i}"),
                pod_selector,
                ingress,
                egress,
                ignored: vec![],
                invalid_selector: false,
                source: None,
            }
        })
        .collect();
    let nodes: Vec<Node> = (0..size.nodes)
        .map(|n| Node {
            name: format!("node-{n}"),
            addresses: vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, n as u8 + 10))],
            pod_cidrs: vec![format!("10.244.{}.0/23", 2 * n).parse().unwrap()],
        })
        .collect();
    Cluster::new(namespaces, pods, policies, nodes)
}

/// The issue's three incremental changes, each one event's worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A copy of a local pod (same labels, so an existing group) with a fresh address.
    PodAdded,
    /// A local pod's `app` label changes to another app's.
    PodRelabelled,
    /// A port of a rule of a policy that selects a local pod changes.
    PolicyChanged,
}

impl Change {
    pub const ALL: [Change; 3] = [Change::PodAdded, Change::PodRelabelled, Change::PolicyChanged];

    pub fn name(self) -> &'static str {
        match self {
            Change::PodAdded => "one pod added",
            Change::PodRelabelled => "one pod's labels changed",
            Change::PolicyChanged => "one policy changed",
        }
    }
}

/// `cluster` after `change` on `node`'s share (the node must have at least one pod).
pub fn changed(cluster: &Cluster, node: &str, change: Change) -> Cluster {
    let local = |p: &&Pod| p.node_name.as_deref() == Some(node) && !p.ips.is_empty();
    let first = cluster
        .pods
        .iter()
        .find(local)
        .expect("a pod on the node")
        .clone();
    let mut pods = cluster.pods.clone();
    let mut policies = cluster.policies.clone();
    match change {
        Change::PodAdded => {
            let max = cluster.pods.iter().filter(local).map(|p| p.ips[0]).max().unwrap();
            let IpAddr::V4(v4) = max else {
                unreachable!("synth pods are IPv4")
            };
            let mut p = first.clone();
            p.name = format!("{}-added", p.name);
            p.ips = vec![IpAddr::V4(Ipv4Addr::from(u32::from(v4) + 1))];
            pods.push(p);
        }
        Change::PodRelabelled => {
            // The first app whose pods a different set of policies selects, so that the pod
            // really changes group.
            let selecting = |labels: &Labels| -> Vec<usize> {
                (0..cluster.policies.len())
                    .filter(|&i| {
                        let pol = &cluster.policies[i];
                        pol.namespace == first.namespace && pol.pod_selector.matches(labels)
                    })
                    .collect()
            };
            let before = selecting(&first.labels);
            let labels = (0..20)
                .map(|a| {
                    let mut l = first.labels.clone();
                    l.insert("app".into(), format!("app-{a}"));
                    l
                })
                .find(|l| selecting(l) != before)
                .expect("some app label changes the pod's policies");
            let p = pods
                .iter_mut()
                .find(|p| p.name == first.name && p.namespace == first.namespace)
                .unwrap();
            p.labels = labels;
        }
        Change::PolicyChanged => {
            let selects_local = |pol: &Policy| {
                cluster
                    .pods
                    .iter()
                    .filter(local)
                    .any(|p| p.namespace == pol.namespace && pol.pod_selector.matches(&p.labels))
            };
            let pol = policies
                .iter_mut()
                .find(|pol| {
                    selects_local(pol)
                        && pol.ingress.as_ref().is_some_and(|r| {
                            r.iter().any(|r| {
                                r.ports
                                    .iter()
                                    .flatten()
                                    .any(|p| matches!(p, PortMatch::Range { .. }))
                            })
                        })
                })
                .expect("a policy with a port range selecting a local pod");
            for rule in pol.ingress.iter_mut().flatten() {
                for p in rule.ports.iter_mut().flatten() {
                    if let PortMatch::Range { start, end, .. } = p {
                        *start += 1;
                        *end += 1;
                    }
                }
            }
        }
    }
    Cluster::new(
        cluster.namespaces.values().cloned(),
        pods,
        policies,
        cluster.nodes.values().cloned(),
    )
}
