//! Oracle performance on synthetic but realistic clusters: `matrix` over 1,000 pods and 200
//! policies, and `trace` (engine construction plus one check, and separately loading the text) at
//! 10,000 pods and 2,000 policies. Clusters are generated deterministically (a fixed-seed PRNG).

use std::fmt::Write;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use policyc_compiler::load::load_texts;
use policyc_compiler::matrix::matrix;
use policyc_compiler::{Engine, Family, Protocol};

const NAMESPACES: usize = 50;
const NODES: usize = 20;
const TIERS: [&str; 3] = ["web", "api", "db"];

/// SplitMix64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The cluster as manifest text: namespaces, nodes, pods, then policies.
fn synth(pods: usize, policies: usize) -> String {
    let mut rng = Rng(0x5eed);
    let mut out = String::new();
    for n in 0..NAMESPACES {
        let env = if n % 3 == 0 { "staging" } else { "prod" };
        writeln!(
            out,
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{n}, labels: {{team: t{}, env: {env}}}}}",
            n % 10
        )
        .unwrap();
    }
    for n in 0..NODES {
        writeln!(
            out,
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-{n}}}\nstatus: {{addresses: [{{type: InternalIP, address: 198.18.0.{}}}]}}",
            n + 1
        )
        .unwrap();
    }
    for i in 0..pods {
        let ns = i % NAMESPACES;
        let tier = TIERS[rng.below(3)];
        let app = rng.below(20);
        let node = rng.below(NODES);
        let ports = match tier {
            "web" => "[{name: http, containerPort: 8080}]",
            "api" => "[{name: http, containerPort: 9090}, {name: metrics, containerPort: 9100}]",
            _ => "[{name: pg, containerPort: 5432}, {name: metrics, containerPort: 9187}]",
        };
        let roll = rng.below(100);
        let host = roll == 0;
        let phase = if roll == 1 { "Failed" } else { "Running" };
        let v4 = if host {
            format!("198.18.0.{}", node + 1)
        } else {
            format!("10.{}.{}.{}", 128 + i / 65536, (i / 256) % 256, i % 256)
        };
        let ips = if !host && roll < 10 {
            format!("[{{ip: {v4}}}, {{ip: 'fd00:10:244::{i:x}'}}]")
        } else {
            format!("[{{ip: {v4}}}]")
        };
        writeln!(
            out,
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: ns-{ns}, labels: {{app: app{app}, tier: {tier}}}}}\n\
             spec: {{nodeName: node-{node}, hostNetwork: {host}, containers: [{{name: c, image: x, ports: {ports}}}]}}\n\
             status: {{phase: {phase}, podIP: {v4}, podIPs: {ips}}}"
        )
        .unwrap();
    }
    // A default-deny per namespace, then allow rules mixing pod/namespace selectors, ipBlocks and
    // named ports.
    for k in 0..policies {
        let ns = k % NAMESPACES;
        if k < NAMESPACES {
            let types = if ns.is_multiple_of(2) {
                "[Ingress]"
            } else {
                "[Ingress, Egress]"
            };
            writeln!(
                out,
                "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: default-deny, namespace: ns-{ns}}}\n\
                 spec: {{podSelector: {{}}, policyTypes: {types}}}"
            )
            .unwrap();
            continue;
        }
        let tier = TIERS[rng.below(3)];
        let from_tier = TIERS[rng.below(3)];
        let app = rng.below(20);
        let team = rng.below(10);
        let spec = match rng.below(4) {
            0 => format!(
                "podSelector: {{matchLabels: {{tier: {tier}}}}}\n  ingress:\n  - from: [{{podSelector: {{matchLabels: {{tier: {from_tier}}}}}}}]\n    ports: [{{port: http}}, {{port: 5432}}]"
            ),
            1 => format!(
                "podSelector: {{matchLabels: {{app: app{app}}}}}\n  ingress:\n  - from: [{{namespaceSelector: {{matchLabels: {{team: t{team}}}}}, podSelector: {{matchExpressions: [{{key: tier, operator: In, values: [web, api]}}]}}}}]\n    ports: [{{port: metrics}}]"
            ),
            2 => format!(
                "podSelector: {{matchExpressions: [{{key: tier, operator: NotIn, values: [{tier}]}}]}}\n  ingress:\n  - from: [{{ipBlock: {{cidr: 10.128.0.0/12, except: [10.128.{}.0/24]}}}}, {{namespaceSelector: {{matchLabels: {{env: staging}}}}}}]\n    ports: [{{port: 8000, endPort: 9999}}]",
                rng.below(40)
            ),
            _ => format!(
                "podSelector: {{matchLabels: {{tier: {tier}}}}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: ns-{}}}}}}}]\n    ports: [{{port: 53, protocol: UDP}}, {{port: http}}]\n  - to: [{{podSelector: {{matchLabels: {{tier: {from_tier}}}}}}}]",
                rng.below(NAMESPACES)
            ),
        };
        writeln!(
            out,
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: allow-{k}, namespace: ns-{ns}}}\nspec:\n  {spec}"
        )
        .unwrap();
    }
    out
}

const PORTS: [(u16, Protocol); 3] = [(8080, Protocol::Tcp), (9090, Protocol::Tcp), (53, Protocol::Udp)];

fn bench_matrix(c: &mut Criterion) {
    let text = synth(1_000, 200);
    let (cluster, _, diags) = load_texts([("synth.yaml", text.as_str())]);
    assert!(diags.is_empty(), "{:?}", &diags[..diags.len().min(3)]);
    // Shows that the synthetic policies bite: neither everything nor nothing is allowed.
    let m = matrix(&Engine::indexed(&cluster), &PORTS, Family::Ipv4);
    let cells: usize = m.results.iter().map(|r| r.allowed.len() * m.pods.len()).sum();
    let allowed: usize = m
        .results
        .iter()
        .flat_map(|r| r.allowed.iter().flatten())
        .filter(|&&a| a)
        .count();
    eprintln!(
        "matrix: {} pods, {allowed} of {cells} cells allowed",
        m.pods.len()
    );
    let mut g = c.benchmark_group("matrix");
    g.sample_size(10);
    g.bench_function("1000 pods, 200 policies, 3 ports (incl. Engine::indexed)", |b| {
        b.iter(|| {
            let engine = Engine::indexed(&cluster);
            black_box(matrix(&engine, &PORTS, Family::Ipv4))
        })
    });
    g.finish();
}

fn bench_trace(c: &mut Criterion) {
    let text = synth(10_000, 2_000);
    let (cluster, _, diags) = load_texts([("synth.yaml", text.as_str())]);
    assert!(diags.is_empty(), "{:?}", &diags[..diags.len().min(3)]);
    let mut g = c.benchmark_group("trace");
    g.sample_size(10);
    g.bench_function("10k pods, 2k policies: Engine::new + check", |b| {
        b.iter(|| {
            let engine = Engine::new(&cluster);
            let src = engine
                .pod_endpoint(engine.pod_index("ns-3", "p53").unwrap(), Family::Ipv4)
                .unwrap();
            let dst = engine
                .pod_endpoint(engine.pod_index("ns-7", "p1007").unwrap(), Family::Ipv4)
                .unwrap();
            black_box(engine.check(&src, &dst, Protocol::Tcp, 8080))
        })
    });
    g.bench_function("10k pods, 2k policies: Engine::indexed", |b| {
        b.iter(|| black_box(Engine::indexed(&cluster)))
    });
    g.bench_function("10k pods, 2k policies: load_texts", |b| {
        b.iter(|| black_box(load_texts([("synth.yaml", text.as_str())])))
    });
    g.finish();
}

criterion_group!(benches, bench_matrix, bench_trace);
criterion_main!(benches);
