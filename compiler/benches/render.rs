//! Render time for the issue's size (10,000 pods, 2,000 policies, 100 namespaces, 50 nodes;
//! one node rendered), the size of the result, and the cost of each step of the agent's
//! per-change path (snapshot, render, delta, JSON) for the issue's three incremental changes.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use policyc_compiler::nft::{render, RenderOptions};
use policyc_compiler::Cluster;

#[path = "../tests/common/synth.rs"]
mod synth;

fn bench(c: &mut Criterion) {
    let cluster = synth::cluster(&synth::ISSUE);
    let opts = RenderOptions::new("node-7");
    let rs = render(&cluster, &opts);
    let stats = rs.stats();
    let tx = rs.replace();
    eprintln!(
        "ruleset for node-7: {} chains, {} rules, {} sets, {} elements; script {} bytes, JSON {} bytes",
        stats.chains,
        stats.rules,
        stats.sets,
        stats.elements,
        tx.script.len(),
        tx.json_text().len()
    );
    let mut g = c.benchmark_group("nft");
    g.sample_size(10);
    g.bench_function("render 10k pods 2k policies (one node)", |b| {
        b.iter(|| render(black_box(&cluster), &opts))
    });
    g.bench_function("replace script", |b| {
        b.iter(|| black_box(&rs).replace().script.len())
    });
    g.bench_function("replace json", |b| {
        b.iter(|| black_box(&rs).replace().json_text().len())
    });
    // The agent's snapshot: every stored projection cloned into a fresh, sorted Cluster.
    g.bench_function("snapshot (clone + Cluster::new)", |b| {
        b.iter(|| {
            Cluster::new(
                cluster.namespaces.values().cloned(),
                cluster.pods.iter().cloned(),
                cluster.policies.iter().cloned(),
                cluster.nodes.values().cloned(),
            )
        })
    });
    for change in synth::Change::ALL {
        let after = synth::changed(&cluster, "node-7", change);
        let next = render(&after, &opts);
        let delta = next.update_from(&rs);
        eprintln!(
            "{}: {} commands, script {} bytes, JSON {} bytes",
            change.name(),
            delta.commands.len(),
            delta.script.len(),
            delta.json_text().len()
        );
        g.bench_function(format!("update_from ({})", change.name()), |b| {
            b.iter(|| black_box(&next).update_from(&rs))
        });
        g.bench_function(format!("delta json ({})", change.name()), |b| {
            b.iter(|| black_box(&delta).json_text().len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
