//! API objects (k8s-openapi types) into the trimmed model types, with validation diagnostics.
//! The agent's watch path and the file loader both go through here, so live and offline agree.

use std::net::IpAddr;

use k8s_openapi::api::core::v1 as corev1;

use crate::diag::{Diagnostic, Diags};
use crate::model::{ContainerPort, Labels, Namespace, Node, Pod, Protocol, Source};
use crate::policy::{parse_cidr, validate_port_name};

fn labels(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Labels {
    meta.labels.clone().unwrap_or_default().into_iter().collect()
}

pub fn namespace_from_k8s(ns: &corev1::Namespace) -> Namespace {
    Namespace::new(
        ns.metadata.name.as_deref().unwrap_or_default(),
        labels(&ns.metadata),
        false,
    )
}

/// Converts a Pod. Invalid IPs or ports are reported and left out; the rest of the pod is kept.
pub fn pod_from_k8s(pod: &corev1::Pod, source: Option<&Source>) -> (Pod, Vec<Diagnostic>) {
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let object = format!("Pod {namespace}/{name}");
    let mut diags = Diags::new(&object);
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();

    let mut ports = Vec::new();
    for (c, container) in spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        for (i, p) in container.ports.iter().flatten().enumerate() {
            let at = format!("spec.containers[{c}].ports[{i}]");
            let protocol = match p.protocol.as_deref() {
                None => Protocol::Tcp,
                Some(s) => match Protocol::parse(s) {
                    Some(p) => p,
                    None => {
                        diags.push(format!("{at}.protocol"), format!("unsupported protocol {s:?}"));
                        continue;
                    }
                },
            };
            let Some(port) = u16::try_from(p.container_port).ok().filter(|p| *p > 0) else {
                diags.push(
                    format!("{at}.containerPort"),
                    format!("{} is not a port number (1-65535)", p.container_port),
                );
                continue;
            };
            if let Some(n) = &p.name {
                if let Err(e) = validate_port_name(n) {
                    diags.push(format!("{at}.name"), format!("invalid port name {n:?}: {e}"));
                    continue;
                }
            }
            ports.push(ContainerPort {
                name: p.name.clone(),
                port,
                protocol,
            });
        }
    }
    ports.sort();
    ports.dedup();

    let mut raw_ips: Vec<(String, String)> = Vec::new();
    if let Some(status) = status {
        if let Some(ip) = &status.pod_ip {
            raw_ips.push(("status.podIP".into(), ip.clone()));
        }
        for (i, ip) in status.pod_ips.iter().flatten().enumerate() {
            raw_ips.push((format!("status.podIPs[{i}].ip"), ip.ip.clone()));
        }
    }
    let mut ips: Vec<IpAddr> = Vec::new();
    for (field, raw) in raw_ips {
        match raw.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) => diags.push(field, format!("invalid IP address {raw:?}")),
        }
    }

    let pod = Pod {
        namespace,
        name,
        labels: labels(&pod.metadata),
        node_name: spec.and_then(|s| s.node_name.clone()),
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        ports,
        ips,
        phase: status.and_then(|s| s.phase.clone()),
        source: source.cloned(),
    };
    let out = diags.out.into_iter().map(|d| d.at(source)).collect();
    (pod, out)
}

pub fn node_from_k8s(node: &corev1::Node, source: Option<&Source>) -> (Node, Vec<Diagnostic>) {
    let name = node.metadata.name.clone().unwrap_or_default();
    let object = format!("Node {name}");
    let mut diags = Diags::new(&object);
    let mut addresses: Vec<IpAddr> = node
        .status
        .iter()
        .flat_map(|s| s.addresses.iter().flatten())
        .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect();
    addresses.sort();
    addresses.dedup();
    let mut pod_cidrs = Vec::new();
    if let Some(spec) = &node.spec {
        let raw = spec.pod_cidr.iter().chain(spec.pod_cidrs.iter().flatten());
        for c in raw {
            match parse_cidr(c) {
                Ok(net) if !pod_cidrs.contains(&net) => pod_cidrs.push(net),
                Ok(_) => {}
                Err(e) => diags.push("spec.podCIDRs", e),
            }
        }
    }
    let out = diags.out.into_iter().map(|d| d.at(source)).collect();
    (
        Node {
            name,
            addresses,
            pod_cidrs,
        },
        out,
    )
}
