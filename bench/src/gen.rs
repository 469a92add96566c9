//! Realistic synthetic clusters, deterministic for a seed: the shapes production clusters show.
//!
//! Per application namespace: a default deny (ingress and egress), DNS egress to kube-dns, metrics
//! scraping from the `monitoring` namespace, then app policies cycling through app-to-app
//! podSelector rules on named ports, namespaceSelector + podSelector rules across teams, internet
//! egress as an ipBlock with the private ranges excepted, and endPort ranges. Pods carry
//! Deployment-style labels and named container ports; every node runs a hostNetwork exporter.
//!
//! Addressing follows flannel: node `i` owns `10.244.(4i).0/22` (`spec.podCIDRs`), its underlay
//! address is `198.18.0.(10+i)`; so at most 64 nodes and 1,020 pods per node.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::api::networking::v1 as netv1;
use policyc_compiler::load::{build_cluster, Objects};
use policyc_compiler::model::Source;
use policyc_compiler::Cluster;
use serde_json::{json, Value};

pub const MAX_NODES: usize = 64;
pub const MAX_PODS_PER_NODE: usize = 1020;
const TIERS: [&str; 3] = ["web", "api", "db"];
const APPS_PER_NAMESPACE: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub pods: usize,
    pub policies: usize,
    pub namespaces: usize,
    pub nodes: usize,
    pub seed: u64,
}

impl Params {
    /// The issue's proportions (10k pods: 2k policies, 100 namespaces, 50 nodes).
    pub fn scaled(pods: usize) -> Params {
        let nodes = (pods / 200).clamp(2, MAX_NODES);
        Params {
            pods,
            policies: (pods / 5).max(1),
            namespaces: (pods / 100).max(1),
            nodes,
            seed: 42,
        }
    }

    pub fn label(&self) -> String {
        format!("{} pods / {} policies", short(self.pods), short(self.policies))
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.nodes >= 2 && self.nodes <= MAX_NODES,
            "nodes must be 2..={MAX_NODES}"
        );
        anyhow::ensure!(self.namespaces >= 1, "at least one namespace");
        anyhow::ensure!(
            self.pods <= self.nodes * MAX_PODS_PER_NODE,
            "{} pods do not fit {} nodes of {MAX_PODS_PER_NODE}",
            self.pods,
            self.nodes
        );
        Ok(())
    }
}

/// `10000` → `10k`, `1500` → `1.5k`.
pub fn short(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else if n >= 1000 {
        format!("{:.1}k", n as f64 / 1000.0)
    } else {
        n.to_string()
    }
}

/// SplitMix64: small, deterministic, good enough to pick shapes.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }
}

#[derive(Clone, Debug, Default)]
pub struct Generated {
    pub namespaces: Vec<corev1::Namespace>,
    pub nodes: Vec<corev1::Node>,
    pub pods: Vec<corev1::Pod>,
    pub policies: Vec<netv1::NetworkPolicy>,
}

pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}

pub fn node_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 10 + i as u8)
}

/// The `j`-th pod address of node `i` (`.0` and `.1` of the range are flannel's and the bridge's).
pub fn pod_address(i: usize, j: usize) -> Ipv4Addr {
    let n = u32::from(Ipv4Addr::new(10, 244, 4 * i as u8, 0)) + 2 + j as u32;
    Ipv4Addr::from(n)
}

pub fn namespace_name(i: usize) -> String {
    format!("ns-{i}")
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    // The values are built right here; a failure is a bug in this file, not user input.
    serde_json::from_value(v).expect("generator builds valid objects")
}

fn namespace(name: &str, labels: Value) -> corev1::Namespace {
    let mut labels = labels;
    labels["kubernetes.io/metadata.name"] = json!(name);
    typed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}))
}

fn node(i: usize) -> corev1::Node {
    let cidr = format!("10.244.{}.0/22", 4 * i);
    typed(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node_name(i), "labels": {"kubernetes.io/hostname": node_name(i)}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {"addresses": [
            {"type": "InternalIP", "address": node_address(i).to_string()},
            {"type": "Hostname", "address": node_name(i)}
        ]}
    }))
}

fn ports_for(tier: &str) -> Value {
    let mut ports = vec![json!({"name": "metrics", "containerPort": 9100})];
    match tier {
        "web" => ports.push(json!({"name": "http", "containerPort": 8080})),
        "api" => {
            ports.push(json!({"name": "http", "containerPort": 8080}));
            ports.push(json!({"name": "grpc", "containerPort": 9090}));
        }
        _ => ports.push(json!({"name": "postgres", "containerPort": 5432})),
    }
    Value::Array(ports)
}

/// Which addresses of each node are in use. Nodes are picked at random (as a scheduler spreading
/// replicas would), so every node hosts pods of many namespaces and apps.
struct Placement {
    next: Vec<usize>,
}

impl Placement {
    /// A random node with room left, and a fresh address on it.
    fn place(&mut self, rng: &mut Rng) -> (usize, Ipv4Addr) {
        let mut i = rng.below(self.next.len());
        while self.next[i] >= MAX_PODS_PER_NODE {
            i = (i + 1) % self.next.len();
        }
        let j = self.next[i];
        self.next[i] += 1;
        (i, pod_address(i, j))
    }
}

fn pod(ns: &str, name: &str, labels: Value, node: usize, ip: Option<Ipv4Addr>, ports: Value) -> corev1::Pod {
    let host = ip.is_none();
    let ip = ip.unwrap_or_else(|| node_address(node)).to_string();
    typed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": node_name(node), "hostNetwork": host,
                 "containers": [{"name": "main", "image": "registry.example/app:1", "ports": ports}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
    }))
}

fn policy(ns: &str, name: &str, spec: Value) -> netv1::NetworkPolicy {
    typed(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns}, "spec": spec
    }))
}

fn app_labels(app: usize, tier: &str, rng: &mut Rng) -> Value {
    json!({
        "app": format!("app-{app}"), "tier": tier,
        "version": format!("v{}", 1 + rng.below(3)),
        "pod-template-hash": format!("{:08x}", rng.below(1 << 30)),
    })
}

/// The `k`-th application policy of namespace `ns` (after the three every namespace has).
fn app_policy(ns: usize, k: usize, p: &Params, rng: &mut Rng) -> Value {
    let app = format!("app-{}", rng.below(APPS_PER_NAMESPACE));
    match k % 4 {
        // app-to-app inside the namespace, on named ports.
        0 => json!({
            "podSelector": {"matchLabels": {"app": app, "tier": "api"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": app, "tier": "web"}}}],
                          "ports": [{"port": "http"}, {"port": "grpc"}]}],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": app, "tier": "db"}}}],
                         "ports": [{"port": 5432, "protocol": "TCP"}]}]
        }),
        // Across namespaces: another team's web tier may call this api.
        1 => json!({
            "podSelector": {"matchLabels": {"app": app}},
            "ingress": [{"from": [{
                "namespaceSelector": {"matchLabels": {"team": format!("team-{}", rng.below(10))}},
                "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}
            }], "ports": [{"port": "http"}]}]
        }),
        // Internet egress on 443, private ranges excepted.
        2 => json!({
            "podSelector": {"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "app", "operator": "In", "values": [app]}
            ]},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                                             "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                         "ports": [{"port": 443, "protocol": "TCP"}]}]
        }),
        // A port range from the tier below and from a peer namespace.
        _ => json!({
            "podSelector": {"matchLabels": {"app": app, "tier": "db"}},
            "ingress": [{"from": [
                {"podSelector": {"matchLabels": {"tier": "api"}}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                    namespace_name((ns + 1) % p.namespaces)}}}
            ], "ports": [{"port": 5432, "endPort": 5439, "protocol": "TCP"}]}]
        }),
    }
}

pub fn generate(p: &Params) -> anyhow::Result<Generated> {
    p.check()?;
    let mut rng = Rng(p.seed);
    let mut g = Generated {
        nodes: (0..p.nodes).map(node).collect(),
        ..Generated::default()
    };
    g.namespaces.push(namespace("kube-system", json!({})));
    g.namespaces
        .push(namespace("monitoring", json!({"team": "platform"})));
    for i in 0..p.namespaces {
        let env = ["prod", "staging", "dev"][i % 3];
        g.namespaces.push(namespace(
            &namespace_name(i),
            json!({"team": format!("team-{}", i % 10), "env": env}),
        ));
    }
    let mut place = Placement {
        next: vec![0; p.nodes],
    };
    // Platform pods: a hostNetwork exporter per node, two DNS pods, one Prometheus.
    let mut platform: Vec<corev1::Pod> = (0..p.nodes)
        .map(|i| {
            let labels = json!({"app": "node-exporter"});
            let ports = json!([{"name": "metrics", "containerPort": 9100}]);
            pod(
                "monitoring",
                &format!("node-exporter-{i}"),
                labels,
                i,
                None,
                ports,
            )
        })
        .collect();
    for k in 0..2 {
        let (i, ip) = place.place(&mut rng);
        let ports = json!([{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                           {"name": "dns-tcp", "containerPort": 53}]);
        platform.push(pod(
            "kube-system",
            &format!("coredns-{k}"),
            json!({"k8s-app": "kube-dns"}),
            i,
            Some(ip),
            ports,
        ));
    }
    let (i, ip) = place.place(&mut rng);
    let ports = json!([{"name": "web", "containerPort": 9090}]);
    platform.push(pod(
        "monitoring",
        "prometheus-0",
        json!({"app": "prometheus"}),
        i,
        Some(ip),
        ports,
    ));
    let app_pods = p.pods.saturating_sub(platform.len());
    g.pods = platform;
    for k in 0..app_pods {
        let ns = namespace_name(k % p.namespaces);
        let slot = k / p.namespaces;
        let app = slot % APPS_PER_NAMESPACE;
        let tier = TIERS[(slot / APPS_PER_NAMESPACE) % TIERS.len()];
        let (i, ip) = place.place(&mut rng);
        let name = format!("app-{app}-{tier}-{slot}");
        let labels = app_labels(app, tier, &mut rng);
        g.pods.push(pod(&ns, &name, labels, i, Some(ip), ports_for(tier)));
    }
    let per_ns = p.policies.div_ceil(p.namespaces);
    'outer: for k in 0..per_ns {
        for i in 0..p.namespaces {
            if g.policies.len() == p.policies {
                break 'outer;
            }
            let ns = namespace_name(i);
            let (name, spec) = match k {
                0 => (
                    "default-deny".to_string(),
                    json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
                ),
                1 => (
                    "allow-dns".to_string(),
                    json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
                        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}),
                ),
                2 => (
                    "allow-metrics".to_string(),
                    json!({"podSelector": {}, "ingress": [{
                        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                                  "podSelector": {"matchLabels": {"app": "prometheus"}}}],
                        "ports": [{"port": "metrics"}]}]}),
                ),
                _ => (format!("app-{}", k - 3), app_policy(i, k - 3, p, &mut rng)),
            };
            g.policies.push(policy(&ns, &name, spec));
        }
    }
    Ok(g)
}

impl Generated {
    /// The node whose share the benchmarks measure.
    pub fn node(&self) -> String {
        node_name(0)
    }

    pub fn objects(&self) -> Objects {
        fn src<T: Clone>(file: &str, items: &[T]) -> Vec<(T, Source)> {
            items
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let source = Source {
                        file: file.to_string(),
                        line: i + 1,
                    };
                    (o.clone(), source)
                })
                .collect()
        }
        Objects {
            namespaces: src("namespaces.yaml", &self.namespaces),
            pods: src("pods.yaml", &self.pods),
            policies: src("policies.yaml", &self.policies),
            nodes: src("nodes.yaml", &self.nodes),
        }
    }

    /// The model snapshot, through the same conversion the CLI and the agent use.
    pub fn cluster(&self) -> Cluster {
        build_cluster(&self.objects()).0
    }

    /// YAML files for `policyc agent --manifests` and `policyc -f`: namespaces, nodes, then pods
    /// and policies in files of 1,000 objects (so a change rewrites one small file).
    pub fn write_dir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_docs(&dir.join("namespaces.yaml"), &self.namespaces)?;
        write_docs(&dir.join("nodes.yaml"), &self.nodes)?;
        for (i, chunk) in self.pods.chunks(1000).enumerate() {
            write_docs(&dir.join(format!("pods-{i:03}.yaml")), chunk)?;
        }
        for (i, chunk) in self.policies.chunks(1000).enumerate() {
            write_docs(&dir.join(format!("policies-{i:03}.yaml")), chunk)?;
        }
        Ok(())
    }

    /// Counts by kind, for the report.
    pub fn summary(&self) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("namespaces", self.namespaces.len()),
            ("nodes", self.nodes.len()),
            ("pods", self.pods.len()),
            ("policies", self.policies.len()),
        ])
    }
}

fn write_docs<T: serde::Serialize>(path: &Path, items: &[T]) -> std::io::Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(item).map_err(std::io::Error::other)?);
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_size_has_the_issue_proportions_and_compiles_clean() {
        let p = Params::scaled(10_000);
        assert_eq!((p.policies, p.namespaces, p.nodes), (2_000, 100, 50));
        let g = generate(&p).unwrap();
        assert_eq!(g.pods.len(), 10_000);
        assert_eq!(g.policies.len(), 2_000);
        let (cluster, diags) = build_cluster(&g.objects());
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(cluster.pods.len(), 10_000);
        // Every app namespace is default-deny with DNS and metrics allowed.
        for name in ["default-deny", "allow-dns", "allow-metrics"] {
            let n = g
                .policies
                .iter()
                .filter(|x| x.metadata.name.as_deref() == Some(name))
                .count();
            assert_eq!(n, 100, "{name}");
        }
    }

    #[test]
    fn deterministic_and_addresses_unique() {
        let p = Params::scaled(3_000);
        let a = generate(&p).unwrap();
        let b = generate(&p).unwrap();
        assert_eq!(a.cluster(), b.cluster());
        let mut ips: Vec<_> = a
            .pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.host_network) != Some(true))
            .map(|p| p.status.as_ref().unwrap().pod_ip.clone().unwrap())
            .collect();
        let n = ips.len();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), n);
    }

    #[test]
    fn too_many_pods_for_the_nodes_is_an_error() {
        let p = Params {
            pods: 100_000,
            ..Params::scaled(1_000)
        };
        assert!(generate(&p).is_err());
    }
}
