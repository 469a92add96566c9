//! Same cluster → same bytes: rendering twice, and rendering the same objects given in another
//! order (files, documents, pods, policies, namespaces, nodes shuffled), gives identical output.

mod common;

use common::{load_dir, manifest_dir, node_names};
use policyc_compiler::load::load_texts;
use policyc_compiler::nft::{render, RenderOptions};
use policyc_compiler::Cluster;

/// A fixed permutation (reverse, then interleave halves), so the test is reproducible.
fn shuffle<T: Clone>(v: &[T]) -> Vec<T> {
    let mut r: Vec<T> = v.iter().rev().cloned().collect();
    let half = r.len() / 2;
    let (a, b) = r.split_at_mut(half);
    let mut out = Vec::with_capacity(v.len());
    let mut ai = a.iter();
    let mut bi = b.iter();
    loop {
        match (bi.next(), ai.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y).cloned()),
        }
    }
    out
}

fn reordered(c: &Cluster) -> Cluster {
    let nss: Vec<_> = c.namespaces.values().cloned().collect();
    let nodes: Vec<_> = c.nodes.values().cloned().collect();
    Cluster::new(
        shuffle(&nss),
        shuffle(&c.pods),
        shuffle(&c.policies),
        shuffle(&nodes),
    )
}

fn all_outputs(c: &Cluster) -> Vec<String> {
    let mut out = Vec::new();
    for node in node_names(c) {
        for log_drops in [false, true] {
            let mut o = RenderOptions::new(&node);
            o.log_drops = log_drops;
            let tx = render(c, &o).replace();
            out.push(tx.script.clone());
            out.push(tx.json_text());
        }
    }
    out
}

#[test]
fn rendering_is_deterministic() {
    let fixtures = manifest_dir().join("tests/fixtures");
    let mut dirs: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.push(manifest_dir().join("../examples"));
    dirs.sort();
    for dir in dirs {
        let c = load_dir(&dir, true);
        let first = all_outputs(&c);
        assert_eq!(first, all_outputs(&c), "{}: second render differs", dir.display());
        assert_eq!(
            first,
            all_outputs(&reordered(&c)),
            "{}: shuffled objects differ",
            dir.display()
        );
    }
}

#[test]
fn document_order_does_not_matter() {
    let dir = manifest_dir().join("../examples");
    let mut texts: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    texts.sort();
    let load = |t: &[(String, String)]| load_texts(t.iter().map(|(n, s)| (n.as_str(), s.as_str()))).0;
    let a = load(&texts);
    // Files in reverse order, and each file's documents reversed.
    let reversed: Vec<(String, String)> = texts
        .iter()
        .rev()
        .map(|(n, t)| {
            let docs: Vec<&str> = t.split("\n---\n").collect();
            (
                n.clone(),
                docs.into_iter().rev().collect::<Vec<_>>().join("\n---\n"),
            )
        })
        .collect();
    let b = load(&reversed);
    assert_eq!(all_outputs(&a), all_outputs(&b));
}
