//! `policyc diff BASE HEAD`: which pod pairs and ports gain or lose connectivity between two sets
//! of manifests (typically a pull request's base and head).
//!
//! Both sides are evaluated over the same workloads: the union of both sides' Namespaces, Pods and
//! Nodes (HEAD's copy wins when both have one), with each side's own NetworkPolicies. So the diff
//! answers "what does this change to the policies do to these pods"; a pod that exists on one side
//! only is still compared. Ports: `--port`, or every container port of the pods plus every numeric
//! port (and range bounds) named in either side's policies.
//!
//! `policyc diff --live PATH...` compares the live cluster with the cluster after applying the files.
//!
//! Exit codes: 0 no change, 1 connectivity changes, 2 usage or input error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use policyc_compiler::eval::{Endpoint, Engine, Reason, Side};
use policyc_compiler::load::{build_cluster, Objects};
use policyc_compiler::matrix::{default_family, default_ports};
use policyc_compiler::policy::PortMatch;
use policyc_compiler::{Cluster, Family, Protocol};
use serde::Serialize;

use super::style::{self, ColorArgs, Painter};
use super::words::{and_list, spans_of, Citer};
use super::{parse_port, OutputArgs, OutputFormat};
use policyc_compiler::spans::Spans;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// BASE then HEAD: a file or directory each (use --base/--head for several paths).
    #[arg(value_name = "PATH", num_args = 0..=2)]
    pub sides: Vec<PathBuf>,
    /// Paths of the base side (repeatable).
    #[arg(long = "base", value_name = "PATH")]
    pub base: Vec<PathBuf>,
    /// Paths of the head side (repeatable).
    #[arg(long = "head", value_name = "PATH")]
    pub head: Vec<PathBuf>,
    /// `PORT[/PROTO]`, repeatable; default: container ports and ports named in the policies.
    #[arg(short = 'p', long = "port", value_parser = parse_port)]
    pub ports: Vec<(u16, Protocol)>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub color: ColorArgs,
    /// Compare the live cluster (BASE) with the live cluster plus the given files (HEAD).
    #[command(flatten)]
    pub live: crate::live::LiveArgs,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Change {
    pub from: String,
    pub to: String,
    pub port: u16,
    pub protocol: Protocol,
    /// Why HEAD decides as it does, in words.
    pub why: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub family: Family,
    pub ports: Vec<String>,
    pub opened: Vec<Change>,
    pub closed: Vec<Change>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.live.enabled() {
        // BASE is the live cluster; HEAD is the live cluster with the files applied over it.
        let paths: Vec<PathBuf> = args.sides.iter().chain(&args.head).cloned().collect();
        if paths.is_empty() || !args.base.is_empty() {
            bail!(
                "with --live, give the files to apply (policyc diff --live PATH...); the base is the cluster"
            );
        }
        let files = load_side("head", &paths)?;
        let live = crate::live::fetch_blocking(&args.live, &Objects::default())?;
        let head = crate::live::overlay(live.clone(), &files);
        let spans = spans_of(&paths)?;
        return finish(&args, diff(&live, &head, &args.ports, &spans));
    }
    let (base_paths, head_paths) = match (args.sides.as_slice(), args.base.is_empty(), args.head.is_empty()) {
        ([b, h], true, true) => (vec![b.clone()], vec![h.clone()]),
        ([], false, false) => (args.base.clone(), args.head.clone()),
        _ => bail!("give BASE and HEAD as two paths, or --base PATH... and --head PATH..."),
    };
    let base = load_side("base", &base_paths)?;
    let head = load_side("head", &head_paths)?;
    let spans = spans_of(&head_paths)?;
    finish(&args, diff(&base, &head, &args.ports, &spans))
}

fn finish(args: &Args, report: Report) -> anyhow::Result<ExitCode> {
    match args.output.output {
        OutputFormat::Text => print!("{}", render_text(&report, Painter::new(args.color.color))),
        f => super::print_structured(f, &report)?,
    }
    let changed = !report.opened.is_empty() || !report.closed.is_empty();
    Ok(if changed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn load_side(name: &str, paths: &[PathBuf]) -> anyhow::Result<Objects> {
    let loaded = crate::input::load(paths)?;
    if !loaded.diagnostics.is_empty() {
        let mut msg = format!("{} problem(s) in the {name} input:", loaded.diagnostics.len());
        for d in &loaded.diagnostics {
            msg.push_str("\n  ");
            msg.push_str(&d.to_string());
        }
        bail!(msg);
    }
    Ok(loaded.objects)
}

/// `(namespace, name)` of an object, for the union of workloads.
fn key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn union<T: Clone>(
    head: &[(T, policyc_compiler::model::Source)],
    base: &[(T, policyc_compiler::model::Source)],
    meta: impl Fn(&T) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Vec<(T, policyc_compiler::model::Source)> {
    let mut seen = BTreeSet::new();
    head.iter()
        .chain(base)
        .filter(|(o, _)| seen.insert(key(meta(o))))
        .cloned()
        .collect()
}

/// Both sides' clusters over the same workloads.
pub fn snapshots(base: &Objects, head: &Objects) -> (Cluster, Cluster) {
    let workloads = Objects {
        namespaces: union(&head.namespaces, &base.namespaces, |o| &o.metadata),
        pods: union(&head.pods, &base.pods, |o| &o.metadata),
        nodes: union(&head.nodes, &base.nodes, |o| &o.metadata),
        policies: Vec::new(),
    };
    let with = |policies: &Objects| {
        let mut o = workloads.clone();
        o.policies = policies.policies.clone();
        build_cluster(&o).0
    };
    (with(base), with(head))
}

fn policy_ports(cluster: &Cluster) -> BTreeSet<(u16, Protocol)> {
    let mut out = BTreeSet::new();
    for p in &cluster.policies {
        for rules in [&p.ingress, &p.egress].into_iter().flatten() {
            for pm in rules.iter().flat_map(|r| r.ports.iter().flatten()) {
                if let PortMatch::Range { protocol, start, end } = pm {
                    out.insert((*start, *protocol));
                    out.insert((*end, *protocol));
                }
            }
        }
    }
    out
}

pub fn diff(base: &Objects, head: &Objects, ports: &[(u16, Protocol)], spans: &Spans) -> Report {
    let (b, h) = snapshots(base, head);
    let citer = Citer { cluster: &h, spans };
    let ports: Vec<(u16, Protocol)> = if ports.is_empty() {
        let mut set: BTreeSet<(u16, Protocol)> = default_ports(&h).into_iter().collect();
        set.extend(policy_ports(&b));
        set.extend(policy_ports(&h));
        set.into_iter().collect()
    } else {
        ports.to_vec()
    };
    let family = default_family(&h);
    let (eb, eh) = (Engine::indexed(&b), Engine::indexed(&h));
    // The pods are the same on both sides, in the same order.
    let endpoints: Vec<Endpoint> = (0..h.pods.len())
        .filter_map(|i| eh.pod_endpoint(i, family))
        .collect();
    let mut opened = Vec::new();
    let mut closed = Vec::new();
    for &(port, protocol) in &ports {
        for src in &endpoints {
            for dst in &endpoints {
                let before = eb.allowed(src, dst, protocol, port);
                let after = eh.allowed(src, dst, protocol, port);
                if before == after {
                    continue;
                }
                let verdict = eh.check(src, dst, protocol, port);
                let from = eh.pod(src.pod.expect("pod endpoint")).key();
                let to = eh.pod(dst.pod.expect("pod endpoint")).key();
                let why = if after {
                    let rules: Vec<String> = [&verdict.egress, &verdict.ingress]
                        .into_iter()
                        .flat_map(|s| s.allowed_by.iter())
                        .map(|r| citer.rule_name(&r.policy, r.direction, r.rule))
                        .collect();
                    if rules.is_empty() {
                        "no policy isolates it any more".to_string()
                    } else {
                        format!("allowed by {}", and_list(&rules))
                    }
                } else {
                    let denied = |s: &Side, dir: &str, own: &str| {
                        (!s.allowed && s.reason == Reason::NoRuleAllows).then(|| {
                            let names: Vec<String> =
                                s.isolated_by.iter().map(|k| citer.policy_name(k)).collect();
                            let whose = if names.len() == 1 { "its" } else { "their" };
                            format!(
                                "{own}'s {dir} is isolated by {}, and none of {whose} rules admits it",
                                and_list(&names)
                            )
                        })
                    };
                    [
                        denied(&verdict.egress, "egress", &from),
                        denied(&verdict.ingress, "ingress", &to),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ")
                };
                let change = Change {
                    from,
                    to,
                    port,
                    protocol,
                    why,
                };
                if after {
                    opened.push(change);
                } else {
                    closed.push(change);
                }
            }
        }
    }
    opened.sort();
    closed.sort();
    Report {
        family,
        ports: ports.iter().map(|(p, pr)| format!("{p}/{pr}")).collect(),
        opened,
        closed,
    }
}

/// One line per source, destination and reason, with the ports that changed together.
pub fn render_text(r: &Report, paint: Painter) -> String {
    let mut out = String::new();
    if r.opened.is_empty() && r.closed.is_empty() {
        out.push_str(&format!(
            "no change in connectivity ({} pod ports checked: {})\n",
            r.ports.len(),
            if r.ports.is_empty() {
                "none".to_string()
            } else {
                r.ports.join(", ")
            }
        ));
        return out;
    }
    for (verb, style, changes) in [
        ("opens", style::ALLOWED, &r.opened),
        ("closes", style::DENIED, &r.closed),
    ] {
        let mut grouped: BTreeMap<(&str, &str, &str), Vec<String>> = BTreeMap::new();
        for c in changes {
            grouped
                .entry((&c.from, &c.to, &c.why))
                .or_default()
                .push(format!("{}/{}", c.port, c.protocol));
        }
        for ((from, to, why), ports) in grouped {
            out.push_str(&format!(
                "this change {} {} from {} to {}: {why}\n",
                paint.paint(style, verb),
                ports.join(", "),
                paint.paint(style::NAME, from),
                paint.paint(style::NAME, to),
            ));
        }
    }
    out.push_str(&format!(
        "{} connection(s) opened, {} closed\n",
        r.opened.len(),
        r.closed.len()
    ));
    out
}
