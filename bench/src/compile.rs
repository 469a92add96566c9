//! The control plane for one node: compile time (model snapshot → ruleset), full apply into the
//! kernel, and the three incremental changes (one pod added, one pod's labels changed,
//! one policy changed), each timed from the mutated model to the kernel (render, delta, and
//! `nft -f -` with the text script, as the agent applies; nft JSON is shown beside it) and sized
//! (commands, elements, bytes). The kernel is a throwaway network
//! namespace; nft runs through `ip netns exec`, whose fork and `setns` are in the figures.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use anyhow::{Context, Result};
use policyc_compiler::model::Labels;
use policyc_compiler::nft::{render, RenderOptions, Ruleset, Transaction};
use policyc_compiler::policy::PortMatch;
use policyc_compiler::{Cluster, Pod, Policy, Protocol};
use policyc_e2e::netns::{new_run_id, Netns};
use policyc_e2e::sh;

use crate::gen;
use crate::report::{ms, stat, Check, Ctx, Section, Stat, Table};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    PodAdded,
    PodRelabelled,
    PolicyChanged,
}

const CHANGES: [Change; 3] = [Change::PodAdded, Change::PodRelabelled, Change::PolicyChanged];

impl Change {
    fn name(self) -> &'static str {
        match self {
            Change::PodAdded => "one pod added",
            Change::PodRelabelled => "one pod's labels changed",
            Change::PolicyChanged => "one policy changed",
        }
    }
}

fn local<'c>(cluster: &'c Cluster, node: &'c str) -> impl Iterator<Item = &'c Pod> + 'c {
    cluster
        .pods
        .iter()
        .filter(move |p| p.node_name.as_deref() == Some(node) && !p.host_network && !p.ips.is_empty())
}

fn selecting(cluster: &Cluster, namespace: &str, labels: &Labels) -> Vec<usize> {
    (0..cluster.policies.len())
        .filter(|&i| {
            let p = &cluster.policies[i];
            p.namespace == namespace && p.pod_selector.matches(labels)
        })
        .collect()
}

/// `cluster` after `change` on `node`'s share.
fn changed(cluster: &Cluster, node: &str, change: Change) -> Result<Cluster> {
    let first = local(cluster, node).next().context("no pod on the node")?.clone();
    let mut pods = cluster.pods.clone();
    let mut policies = cluster.policies.clone();
    match change {
        Change::PodAdded => {
            let max = local(cluster, node)
                .flat_map(|p| &p.ips)
                .filter_map(|ip| match ip {
                    IpAddr::V4(a) => Some(u32::from(*a)),
                    IpAddr::V6(_) => None,
                })
                .max()
                .context("no IPv4 pod on the node")?;
            let mut p = first.clone();
            p.name = format!("{}-added", p.name);
            p.ips = vec![IpAddr::V4(Ipv4Addr::from(max + 1))];
            pods.push(p);
        }
        Change::PodRelabelled => {
            // Labels of another pod of the namespace that other policies select: the pod really
            // changes group, as when a deployment's labels are edited.
            let before = selecting(cluster, &first.namespace, &first.labels);
            let labels = cluster
                .pods
                .iter()
                .filter(|p| p.namespace == first.namespace)
                .map(|p| &p.labels)
                .find(|l| selecting(cluster, &first.namespace, l) != before)
                .context("no label change moves the pod to another group")?
                .clone();
            let p = pods
                .iter_mut()
                .find(|p| p.namespace == first.namespace && p.name == first.name)
                .expect("the pod is there");
            p.labels = labels;
        }
        Change::PolicyChanged => {
            let locals: Vec<&Pod> = local(cluster, node).collect();
            let pol: &mut Policy = policies
                .iter_mut()
                .find(|pol| {
                    pol.ingress.as_ref().is_some_and(|r| !r.is_empty())
                        && locals
                            .iter()
                            .any(|p| p.namespace == pol.namespace && pol.pod_selector.matches(&p.labels))
                })
                .context("no policy with ingress rules selects a local pod")?;
            // One more port on the first ingress rule.
            let rule = &mut pol.ingress.as_mut().expect("has ingress rules")[0];
            let extra = PortMatch::Range {
                protocol: Protocol::Tcp,
                start: 9999,
                end: 9999,
            };
            match &mut rule.ports {
                Some(list) => list.push(extra),
                None => rule.ports = Some(vec![extra]),
            }
        }
    }
    Ok(Cluster::new(
        cluster.namespaces.values().cloned(),
        pods,
        policies,
        cluster.nodes.values().cloned(),
    ))
}

/// As the agent applies: the text script on nft's stdin.
fn nft_apply(ns: &Netns, script: &str) -> Result<()> {
    sh::exec_stdin(&ns.name, "nft", &["-f", "-"], Some(script)).map(|_| ())
}

fn nft_apply_json(ns: &Netns, json: &str) -> Result<()> {
    sh::exec_stdin(&ns.name, "nft", &["-j", "-f", "-"], Some(json)).map(|_| ())
}

/// Applies the deltas between `states`, alternately, `runs` times as nft JSON; the medians of nft.
fn json_pass(ns: &Netns, runs: usize, states: [&Ruleset; 2]) -> Result<Stat> {
    let mut applied = states[1].clone();
    let mut n = Vec::new();
    for run in 0..runs {
        let next = states[run % 2];
        let tx = next.update_from(&applied);
        let t = Instant::now();
        nft_apply_json(ns, &tx.json_text())?;
        n.push(ms(t.elapsed()));
        applied = next.clone();
    }
    let back = states[1].update_from(&applied);
    if !back.is_empty() {
        nft_apply_json(ns, &back.json_text())?;
    }
    Ok(stat(&n))
}

/// One size's figures.
struct Figures {
    compile: Stat,
    full_json: Stat,
    full_nft: Stat,
    full_bytes: usize,
    floor: Stat,
    changes: Vec<ChangeFigures>,
}

struct ChangeFigures {
    change: Change,
    total: Stat,
    render: Stat,
    delta: Stat,
    nft: Stat,
    nft_json: Stat,
    commands: usize,
    elements: usize,
    bytes: usize,
}

fn measure(p: &gen::Params, runs: usize) -> Result<Figures> {
    let g = gen::generate(p)?;
    let cluster = g.cluster();
    let node = g.node();
    let opts = RenderOptions::new(node.as_str());
    let mut compile = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(render(&cluster, &opts));
        compile.push(ms(t.elapsed()));
    }
    let rs = render(&cluster, &opts);
    let ns = Netns::create(&format!("{}-compile", new_run_id()))?;
    let (mut full_json, mut full_nft, mut full_bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..runs {
        let t = Instant::now();
        let script = rs.replace().script;
        full_json.push(ms(t.elapsed()));
        full_bytes = script.len();
        let t = Instant::now();
        nft_apply(&ns, &script)?;
        full_nft.push(ms(t.elapsed()));
    }
    // The floor of any apply: nft started in the namespace with nothing to do.
    let mut floor = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        nft_apply(&ns, "")?;
        floor.push(ms(t.elapsed()));
    }
    let mut changes = Vec::new();
    for change in CHANGES {
        let after = changed(&cluster, &node, change)?;
        // Back and forth: every run applies a real change of this kind to the table as it is.
        let states: [(&Cluster, &Ruleset); 2] = [(&after, &rs), (&cluster, &rs)];
        let mut applied = rs.clone();
        let (mut total, mut r, mut d, mut n) = (vec![], vec![], vec![], vec![]);
        let mut size = None;
        for run in 0..runs {
            let target = states[run % 2].0;
            let t0 = Instant::now();
            let next = render(target, &opts);
            let t1 = Instant::now();
            let tx: Transaction = next.update_from(&applied);
            let t2 = Instant::now();
            let script = &tx.script;
            let t3 = Instant::now();
            nft_apply(&ns, script).with_context(|| format!("{}: {}", change.name(), tx.script))?;
            let t4 = Instant::now();
            total.push(ms(t4 - t0));
            r.push(ms(t1 - t0));
            d.push(ms(t2 - t1));
            n.push(ms(t4 - t3));
            if run == 0 {
                let s = tx.size();
                size = Some((s.commands, s.elements, script.len()));
            }
            applied = next;
        }
        // Leave the table as the unchanged cluster has it for the next change.
        let back = rs.update_from(&applied);
        if !back.is_empty() {
            nft_apply(&ns, &back.script)?;
        }
        // For looking at what nft does with these by hand.
        if let Some(dir) = std::env::var_os("POLICYC_BENCH_DUMP") {
            let dir = std::path::Path::new(&dir).join(p.pods.to_string());
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("full.nft"), rs.replace().script)?;
            let tx = render(&after, &opts).update_from(&rs);
            let stem = format!("{change:?}");
            std::fs::write(dir.join(format!("{stem}.nft")), &tx.script)?;
            std::fs::write(dir.join(format!("{stem}.json")), tx.json_text())?;
            std::fs::write(
                dir.join(format!("{stem}-back.nft")),
                rs.update_from(&render(&after, &opts)).script,
            )?;
        }
        let (commands, elements, bytes) = size.expect("runs >= 1");
        let after_rs = render(&after, &opts);
        let json = json_pass(&ns, runs, [&after_rs, &rs])?;
        changes.push(ChangeFigures {
            change,
            total: stat(&total),
            render: stat(&r),
            delta: stat(&d),
            nft: stat(&n),
            nft_json: json,
            commands,
            elements,
            bytes,
        });
    }
    Ok(Figures {
        compile: stat(&compile),
        full_json: stat(&full_json),
        full_nft: stat(&full_nft),
        full_bytes,
        floor: stat(&floor),
        changes,
    })
}

pub fn run(ctx: &Ctx) -> Result<Section> {
    let mut full = Table::new(&[
        "size",
        "compile (render, one node)",
        "full apply: build the script",
        "full apply: nft -f",
        "full apply: total",
        "script bytes",
        "empty nft -f (floor)",
    ]);
    let mut inc = Table::new(&[
        "size",
        "change",
        "change → kernel",
        "render",
        "delta",
        "nft -f",
        "(nft -j -f, JSON)",
        "commands",
        "elements",
        "script bytes",
    ]);
    let mut checks = Vec::new();
    // Per size: pods, and each change's (commands, elements).
    type Sizes = Vec<(Change, usize, usize)>;
    let mut sizes: Vec<(usize, Sizes)> = Vec::new();
    for p in &ctx.sizes {
        eprintln!("compile: {}", p.label());
        let f = measure(p, ctx.runs)?;
        let full_total: Vec<f64> = vec![f.full_json.median + f.full_nft.median];
        full.row(vec![
            p.label(),
            f.compile.show("ms"),
            f.full_json.show("ms"),
            f.full_nft.show("ms"),
            format!("{:.1} ms (medians)", full_total[0]),
            f.full_bytes.to_string(),
            f.floor.show("ms"),
        ]);
        for c in &f.changes {
            inc.row(vec![
                p.label(),
                c.change.name().into(),
                c.total.show("ms"),
                c.render.show("ms"),
                c.delta.show("ms"),
                c.nft.show("ms"),
                c.nft_json.show("ms"),
                c.commands.to_string(),
                c.elements.to_string(),
                c.bytes.to_string(),
            ]);
        }
        if p.pods == 10_000 {
            checks.push(Check {
                figure: "compile, 10k pods / 2k policies, one node".into(),
                target: "≤ 100 ms".into(),
                measured: f.compile.show("ms"),
                met: f.compile.median <= 100.0,
            });
            let total = f.full_json.median + f.full_nft.median;
            checks.push(Check {
                figure: "full apply into the kernel, 10k".into(),
                target: "≤ 1 s".into(),
                measured: format!("{total:.1} ms (script + nft medians)"),
                met: total <= 1000.0,
            });
            for c in &f.changes {
                checks.push(Check {
                    figure: format!("{}, change → kernel, 10k", c.change.name()),
                    target: "≤ 20 ms".into(),
                    measured: c.total.show("ms"),
                    met: c.total.median <= 20.0,
                });
            }
        }
        sizes.push((
            p.pods,
            f.changes
                .iter()
                .map(|c| (c.change, c.commands, c.elements))
                .collect(),
        ));
    }
    // The transaction follows the change: compare the smallest and the largest size measured.
    if let (Some(small), Some(large)) = (sizes.first(), sizes.last()) {
        if small.0 != large.0 {
            for ((change, c0, e0), (_, c1, e1)) in small.1.iter().zip(&large.1) {
                checks.push(Check {
                    figure: format!(
                        "{} transaction size, {} vs {} pods",
                        change.name(),
                        small.0,
                        large.0
                    ),
                    target:
                        "grows with the change, not the cluster (≤ 2× from the smallest to the largest size)"
                            .into(),
                    measured: format!("{c0} → {c1} commands, {e0} → {e1} elements"),
                    met: *c1 <= 2 * (*c0).max(1) && *e1 <= 2 * (*e0).max(1),
                });
            }
        }
    }
    Ok(Section {
        title: "Compile and apply (control plane, one node)".into(),
        text: format!(
            "For each size, `node-0`'s share. *Compile*: `nft::render` of the model snapshot, one \
             core. *Full apply*: the replace transaction's script, then `nft -f -` (the agent's format) into a \
             throwaway network namespace (through `ip netns exec`). *Incremental*: the model is \
             mutated (a copy of a local pod with a fresh address; a local pod given the labels of \
             another pod of its namespace that other policies select; one more port on an ingress \
             rule of a policy selecting a local pod), then timed from the mutated model to the \
             kernel: render, `update_from` (the delta against what the kernel has, script included), and \
             `nft -f -`; the same deltas as nft JSON (`nft -j -f -`) are timed beside it. Runs alternate the change and its reverse, so every run applies a real \
             delta. Sizes are of the first run's transaction (commands, elements added or \
             deleted, script bytes). The pod and policy each change picks differ between sizes \
             (the generator's clusters differ), so one size's change may make a new group chain \
             where another's joins an existing one; the same change made at 1k and 10k gives \
             transactions of identical size (`compiler/tests/nft_delta_size.rs`). The agent's own snapshot is a borrow of its incrementally kept \
             index (no copy), so it adds nothing here. {} runs each.",
            ctx.runs
        ),
        tables: vec![full, inc],
        checks,
    })
}
