//! `explain pod`: what a pod is, which policies isolate it, and what each of their rules admits,
//! with named ports resolved where they can be.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::eval::Engine;
use crate::model::{ContainerPort, Source};
use crate::policy::{Direction, PortMatch};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleView {
    pub policy: String,
    pub rule: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// `None`: every peer.
    pub peers: Option<Vec<String>>,
    /// `None`: every port and protocol. Named ports of ingress rules show the number they resolve
    /// to on this pod, or that they do not resolve.
    pub ports: Option<Vec<String>>,
    /// An invalid rule admits nothing.
    pub invalid: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DirectionView {
    pub isolated: bool,
    pub policies: Vec<String>,
    pub rules: Vec<RuleView>,
    /// Why the direction is open even though policies may exist (hostNetwork), if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PodView {
    pub pod: String,
    pub node: Option<String>,
    pub host_network: bool,
    pub addressable: bool,
    pub ips: Vec<IpAddr>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<ContainerPort>,
    pub ingress: DirectionView,
    pub egress: DirectionView,
}

pub fn explain_pod(engine: &Engine<'_>, pod_index: usize) -> PodView {
    let pod = engine.pod(pod_index);
    let direction = |d: Direction| {
        if pod.host_network {
            return DirectionView {
                isolated: false,
                policies: Vec::new(),
                rules: Vec::new(),
                note: Some("hostNetwork pods are never isolated by NetworkPolicy".into()),
            };
        }
        let selecting = engine.selecting(pod_index, d);
        let mut view = DirectionView {
            isolated: !selecting.is_empty(),
            policies: Vec::new(),
            rules: Vec::new(),
            note: None,
        };
        for &pi in selecting.iter() {
            let policy = &engine.cluster.policies[pi];
            view.policies.push(policy.key());
            for rule in policy.rules(d).unwrap_or_default() {
                let ports = rule.ports.as_ref().map(|ports| {
                    ports
                        .iter()
                        .map(|pm| match pm {
                            PortMatch::Named { protocol, name } if d == Direction::Ingress => {
                                match pod.named_port(name, *protocol) {
                                    Some(n) => format!("{pm} (= {n})"),
                                    None => format!("{pm} (not defined on this pod: matches nothing)"),
                                }
                            }
                            PortMatch::Named { .. } => format!("{pm} (resolved on each destination pod)"),
                            _ => pm.to_string(),
                        })
                        .collect()
                });
                view.rules.push(RuleView {
                    policy: policy.key(),
                    rule: rule.index,
                    source: policy.source.clone(),
                    peers: rule
                        .peers
                        .as_ref()
                        .map(|ps| ps.iter().map(|p| p.to_string()).collect()),
                    ports,
                    invalid: rule.invalid,
                });
            }
        }
        view
    };
    PodView {
        pod: pod.key(),
        node: pod.node_name.clone(),
        host_network: pod.host_network,
        addressable: pod.addressable(),
        ips: pod.ips.clone(),
        labels: pod.labels.clone(),
        ports: pod.ports.clone(),
        ingress: direction(Direction::Ingress),
        egress: direction(Direction::Egress),
    }
}
