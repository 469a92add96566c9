//! Apply time with the real `nft` in a throwaway netns, for the issue's size (10,000 pods, 2,000
//! policies, 50 nodes; one node's table): the full replacement (script and JSON) and a one-pod
//! change (`update_from`, element-only). A measurement run by hand, not a test of speed:
//!
//! ```text
//! cargo test --release -p policyc-compiler --test nft_apply_time -- --ignored --nocapture
//! ```

mod common;
#[path = "common/synth.rs"]
mod synth;

use std::time::{Duration, Instant};

use common::{have_nft, NetNs};
use policyc_compiler::nft::{render, Command, RenderOptions};

fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    (v[0], v[runs / 2])
}

#[test]
#[ignore = "a measurement; run by hand with --ignored --nocapture"]
fn apply_time() {
    if !have_nft() {
        return;
    }
    let ns = NetNs::new("apply");
    let cluster = synth::cluster(&synth::ISSUE);
    let opts = RenderOptions::new("node-7");
    let rs = render(&cluster, &opts);
    let stats = rs.stats();
    println!("node-7: {stats:?}");
    let script = rs.replace().script;
    let json = rs.replace().json_text();
    let (min, med) = time(5, || {
        ns.nft_ok(&["-f", "-"], &script);
    });
    println!(
        "full replace, nft -f:    min {min:?}, median {med:?} ({} bytes)",
        script.len()
    );
    let (min, med) = time(5, || {
        ns.nft_ok(&["-j", "-f", "-"], &json);
    });
    println!(
        "full replace, nft -j -f: min {min:?}, median {med:?} ({} bytes)",
        json.len()
    );

    // One local pod goes away and comes back: two element-only deltas, alternately applied.
    let mut without = cluster.clone();
    let i = without
        .pods
        .iter()
        .position(|p| p.node_name.as_deref() == Some("node-7"))
        .unwrap();
    without.pods.remove(i);
    let rs_without = render(&without, &opts);
    let gone = rs_without.update_from(&rs);
    let back = rs.update_from(&rs_without);
    assert!(gone
        .commands
        .iter()
        .all(|c| matches!(c, Command::AddElements { .. } | Command::DeleteElements { .. })));
    ns.nft_ok(&["-f", "-"], &script);
    let mut flip = false;
    let (min, med) = time(10, || {
        let tx = if flip { &back } else { &gone };
        flip = !flip;
        ns.nft_ok(&["-f", "-"], &tx.script);
    });
    println!(
        "one-pod delta, nft -f:   min {min:?}, median {med:?} ({} bytes)",
        gone.script.len()
    );
    if flip {
        ns.nft_ok(&["-f", "-"], &back.script);
    }
    let (gone_json, back_json) = (gone.json_text(), back.json_text());
    let mut flip = false;
    let (min, med) = time(10, || {
        let tx = if flip { &back_json } else { &gone_json };
        flip = !flip;
        ns.nft_ok(&["-j", "-f", "-"], tx);
    });
    println!("one-pod delta, nft -j -f: min {min:?}, median {med:?}");
}
