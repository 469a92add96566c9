//! `lint` of 1,000 policies over 10,000 pods (50 namespaces × 200 pods, 20 policies each), every
//! check enabled.

use criterion::{criterion_group, criterion_main, Criterion};
use policyc_compiler::lint::{self, Config};
use policyc_compiler::load::{build_cluster, classify, Document, Objects};
use policyc_compiler::model::Source;
use serde_json::json;

fn objects() -> Objects {
    let mut docs = Vec::new();
    let source = Source {
        file: "bench.yaml".into(),
        line: 1,
    };
    let mut push = |value: serde_json::Value| {
        docs.push(Document {
            source: source.clone(),
            value,
        })
    };
    for n in 0..50 {
        let ns = format!("ns-{n}");
        push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"team": format!("team-{}", n % 10)}}}));
        for p in 0..200 {
            let ip = format!("10.244.{}.{}", n, p + 1);
            push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("pod-{p}"), "namespace": ns,
                    "labels": {"app": format!("app-{}", p % 20), "tier": format!("tier-{}", p % 3)}},
                "spec": {"nodeName": format!("node-{}", p % 10), "containers": [{"name": "c",
                    "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]}]},
                "status": {"phase": "Running", "podIP": ip}}));
        }
        for q in 0..20 {
            let app = format!("app-{q}");
            let spec = match q % 4 {
                0 => json!({"podSelector": {"matchLabels": {"app": app}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": format!("app-{}", (q + 1) % 20)}}}],
                                 "ports": [{"port": "http"}]},
                                {"from": [{"namespaceSelector": {"matchLabels": {"team": "team-0"}}}],
                                 "ports": [{"port": "metrics"}]}]}),
                1 => {
                    json!({"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 8080}]}],
                    "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": format!("app-{}", (q + 2) % 20)}}}],
                                "ports": [{"port": "http"}]},
                               {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                                "ports": [{"port": 53, "protocol": "UDP"}]}]})
                }
                2 => {
                    json!({"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["tier-0", "tier-1"]}],
                                            "matchLabels": {"app": app}},
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": format!("team-{}", q % 10)}},
                                           "podSelector": {"matchLabels": {"tier": "tier-2"}}}],
                                 "ports": [{"port": 8000, "endPort": 8100}]}]})
                }
                _ => json!({"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Egress"],
                    "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443}]}]}),
            };
            push(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": format!("policy-{q}"), "namespace": ns}, "spec": spec}),
            );
        }
    }
    let (objects, diags) = classify(&docs);
    assert!(diags.is_empty(), "{diags:?}");
    objects
}

fn bench(c: &mut Criterion) {
    let objects = objects();
    let (cluster, diagnostics) = build_cluster(&objects);
    assert_eq!((cluster.policies.len(), cluster.pods.len()), (1000, 10_000));
    let config = Config {
        all: true,
        ..Config::default()
    };
    let input = lint::Input {
        cluster: &cluster,
        objects: &objects,
        diagnostics: &diagnostics,
        spans: None,
    };
    let mut group = c.benchmark_group("lint");
    group.sample_size(10);
    group.bench_function("1000 policies x 10000 pods", |b| {
        b.iter(|| lint::lint(&input, &config))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
