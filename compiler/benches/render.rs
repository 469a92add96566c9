//! Render time for the issue's size (10,000 pods, 2,000 policies, 100 namespaces, 50 nodes;
//! one node rendered), the size of the result, and the cost of the text, JSON and delta steps.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use policyc_compiler::nft::{render, RenderOptions};

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
    let mut moved = cluster.clone();
    let i = moved
        .pods
        .iter()
        .position(|p| p.node_name.as_deref() == Some("node-7"))
        .unwrap();
    moved.pods.remove(i);
    let next = render(&moved, &opts);
    g.bench_function("update_from (one pod gone)", |b| {
        b.iter(|| black_box(&next).update_from(&rs))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
