//! The pod-to-pod reachability matrix: every addressable pod against every other, per port.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::eval::{Endpoint, Engine};
use crate::model::{Cluster, Family, Protocol};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortResult {
    pub port: u16,
    pub protocol: Protocol,
    /// `allowed[i][j]`: traffic from `pods[i]` to `pods[j]`.
    pub allowed: Vec<Vec<bool>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub family: Family,
    /// `namespace/name`, sorted by namespace then name; only addressable pods with an address of `family`.
    pub pods: Vec<String>,
    pub results: Vec<PortResult>,
}

/// Every port/protocol named in the addressable pods' container ports, sorted by port then protocol.
pub fn default_ports(cluster: &Cluster) -> Vec<(u16, Protocol)> {
    let set: BTreeSet<(u16, Protocol)> = cluster
        .pods
        .iter()
        .filter(|p| p.addressable())
        .flat_map(|p| p.ports.iter().map(|c| (c.port, c.protocol)))
        .collect();
    set.into_iter().collect()
}

/// The family a matrix uses when none is asked for: IPv4 if any pod has an IPv4 address.
pub fn default_family(cluster: &Cluster) -> Family {
    let any_v4 = cluster
        .pods
        .iter()
        .any(|p| p.addressable() && p.ip(Family::Ipv4).is_some());
    if any_v4 || cluster.pods.is_empty() {
        Family::Ipv4
    } else {
        Family::Ipv6
    }
}

pub fn matrix(engine: &Engine<'_>, ports: &[(u16, Protocol)], family: Family) -> Matrix {
    let endpoints: Vec<Endpoint> = (0..engine.cluster.pods.len())
        .filter_map(|i| engine.pod_endpoint(i, family))
        .collect();
    let results = ports
        .iter()
        .map(|&(port, protocol)| PortResult {
            port,
            protocol,
            allowed: endpoints
                .iter()
                .map(|src| {
                    endpoints
                        .iter()
                        .map(|dst| engine.allowed(src, dst, protocol, port))
                        .collect()
                })
                .collect(),
        })
        .collect();
    Matrix {
        family,
        pods: endpoints
            .iter()
            .map(|e| engine.pod(e.pod.expect("pod endpoints have pods")).key())
            .collect(),
        results,
    }
}
