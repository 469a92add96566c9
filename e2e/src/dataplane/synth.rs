//! The `dataplane-bench` binary's own synthetic cluster (the bench crate uses its generator
//! instead): `pods` pods in namespaces of 100 over 50 nodes (node-0 is the measured node), and
//! `policies` ingress policies — a default deny per namespace, then app-to-tier allows on one TCP
//! port. Namespace `bench` adds the real client and server and the policy that admits the client
//! on UDP and TCP [`PORT`](super::PORT).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::PORT;

const NODES: usize = 50;

/// A deterministic LCG, so every run measures the same cluster.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// The cluster as one multi-document YAML text.
pub fn yaml(pods: usize, policies: usize, client: Ipv4Addr, server: Ipv4Addr) -> String {
    let namespaces = pods.div_ceil(100).max(1);
    let mut rng = Rng(0x5eed);
    let mut out = String::new();
    let tiers = ["web", "api", "db"];
    for n in 0..NODES {
        let _ = writeln!(
            out,
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-{n}}}\nstatus: {{addresses: [{{type: InternalIP, address: 198.18.0.{}}}]}}",
            n + 1
        );
    }
    for n in 0..namespaces {
        let _ = writeln!(
            out,
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{n}}}"
        );
    }
    let pod = |out: &mut String, ns: &str, name: &str, labels: &str, node: usize, ip: Ipv4Addr| {
        let _ = writeln!(
            out,
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\n\
             spec: {{nodeName: node-{node}, containers: [{{name: c, image: x}}]}}\n\
             status: {{phase: Running, podIP: {ip}, podIPs: [{{ip: {ip}}}]}}"
        );
    };
    // Outside the node's real 10.244.0.0/24 (which holds client and server), still in the /16.
    let base = u32::from(Ipv4Addr::new(10, 244, 1, 0));
    for i in 0..pods {
        let labels = format!("app: app{}, tier: {}", rng.below(20), tiers[rng.below(3)]);
        let ip = Ipv4Addr::from(base + i as u32);
        pod(
            &mut out,
            &format!("ns-{}", i % namespaces),
            &format!("p{i}"),
            &labels,
            i % NODES,
            ip,
        );
    }
    pod(&mut out, "bench", "client", "app: bench-client", 0, client);
    pod(&mut out, "bench", "server", "app: bench-server", 0, server);
    for k in 0..policies {
        let ns = k % namespaces;
        let spec = if k < namespaces {
            "podSelector: {}\n  policyTypes: [Ingress]".to_string()
        } else {
            format!(
                "podSelector: {{matchLabels: {{app: app{}}}}}\n  ingress:\n  - from: [{{podSelector: {{matchLabels: {{tier: {}}}}}}}]\n    ports: [{{port: {}}}]",
                rng.below(20),
                tiers[rng.below(3)],
                [8080, 9090, 5432][rng.below(3)]
            )
        };
        let _ = writeln!(
            out,
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np-{k}, namespace: ns-{ns}}}\nspec:\n  {spec}"
        );
    }
    let _ = writeln!(
        out,
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: admit-client, namespace: bench}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: bench-server}}}}\n  ingress:\n  - from: [{{podSelector: {{matchLabels: {{app: bench-client}}}}}}]\n    ports: [{{port: {PORT}, protocol: UDP}}, {{port: {PORT}, protocol: TCP}}]"
    );
    out
}
