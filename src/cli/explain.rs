//! `policyc explain pod NAMESPACE/NAME`: a pod's labels, addresses, ports, and the policies and
//! rules that govern each direction.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use policyc_compiler::explain::{explain_pod, DirectionView, PodView};
use policyc_compiler::Engine;

use super::style::{self, ColorArgs, Painter};
use super::words::{and_list, spans_of, Citer};
use super::{load_strict, print_structured, InputArgs, OutputArgs, OutputFormat};
use policyc_compiler::policy::Direction;

#[derive(Debug, Subcommand)]
pub enum What {
    /// Explain the policies that apply to one pod.
    Pod {
        /// `namespace/name`.
        pod: String,
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        color: ColorArgs,
    },
}

pub fn run(what: What) -> anyhow::Result<ExitCode> {
    let What::Pod {
        pod,
        input,
        output,
        color,
    } = what;
    let loaded = load_strict(&input)?;
    let engine = Engine::new(&loaded.cluster);
    let (ns, name) = pod
        .split_once('/')
        .with_context(|| format!("{pod:?}: expected namespace/name"))?;
    let index = engine
        .pod_index(ns, name)
        .with_context(|| format!("pod {pod} not found in the input"))?;
    let view = explain_pod(&engine, index);
    match output.output {
        OutputFormat::Text => {
            let spans = spans_of(&input.files)?;
            let citer = Citer {
                cluster: &loaded.cluster,
                spans: &spans,
            };
            print!("{}", render_text(&view, &citer, Painter::new(color.color)))
        }
        f => print_structured(f, &view)?,
    }
    // On stderr, so that it reaches the user in every output format without breaking JSON/YAML.
    if let Some(note) = super::implicit_namespace_note(&loaded.cluster) {
        eprintln!("{note}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn render_text(v: &PodView, citer: &Citer<'_>, paint: Painter) -> String {
    let mut out = format!("Pod {}\n", paint.paint(style::NAME, &v.pod));
    out.push_str(&format!(
        "  node:    {}\n",
        v.node.as_deref().unwrap_or("(not scheduled)")
    ));
    let ips: Vec<String> = v.ips.iter().map(|i| i.to_string()).collect();
    out.push_str(&format!(
        "  ips:     {}{}\n",
        if ips.is_empty() {
            "(none)".to_string()
        } else {
            ips.join(", ")
        },
        if v.addressable { "" } else { " (not addressable)" }
    ));
    if v.host_network {
        out.push_str("  network: host (the pod uses its node's addresses)\n");
    }
    let labels: Vec<String> = v.labels.iter().map(|(k, val)| format!("{k}={val}")).collect();
    out.push_str(&format!(
        "  labels:  {}\n",
        if labels.is_empty() {
            "(none)".into()
        } else {
            labels.join(", ")
        }
    ));
    let ports: Vec<String> = v
        .ports
        .iter()
        .map(|p| match &p.name {
            Some(n) => format!("{n}={}/{}", p.port, p.protocol),
            None => format!("{}/{}", p.port, p.protocol),
        })
        .collect();
    out.push_str(&format!(
        "  ports:   {}\n",
        if ports.is_empty() {
            "(none)".into()
        } else {
            ports.join(", ")
        }
    ));
    direction_text(&mut out, citer, paint, Direction::Ingress, &v.pod, &v.ingress);
    direction_text(&mut out, citer, paint, Direction::Egress, &v.pod, &v.egress);
    out
}

fn direction_text(
    out: &mut String,
    citer: &Citer<'_>,
    paint: Painter,
    direction: Direction,
    pod: &str,
    d: &DirectionView,
) {
    let (title, prep, may) = match direction {
        Direction::Ingress => ("Ingress", "from", format!("anyone may connect to {pod}")),
        Direction::Egress => ("Egress", "to", format!("{pod} may connect anywhere")),
    };
    let open = paint.paint(style::ALLOWED, "not isolated");
    let closed = paint.paint(style::DENIED, "isolated");
    out.push_str(&format!("{}: ", paint.paint(style::NAME, title)));
    if let Some(note) = &d.note {
        out.push_str(&format!("{open}: {note}; {may}\n"));
        return;
    }
    if !d.isolated {
        out.push_str(&format!(
            "{open}: no policy selects {pod} for {direction}, so {may}\n"
        ));
        return;
    }
    let names: Vec<String> = d.policies.iter().map(|k| citer.policy_name(k)).collect();
    out.push_str(&format!("{closed} by {}", and_list(&names)));
    if d.rules.is_empty() {
        let whose = if names.len() == 1 { "it has" } else { "they have" };
        out.push_str(&format!(
            "; {whose} no {direction} rules, so all {direction} traffic is denied\n"
        ));
        return;
    }
    let these = if d.rules.len() == 1 {
        "this rule admits"
    } else {
        "these rules admit"
    };
    out.push_str(&format!("; only what {these} is allowed:\n"));
    for r in &d.rules {
        out.push_str(&format!("  {}:", citer.rule_name(&r.policy, direction, r.rule)));
        if r.invalid {
            out.push_str(" invalid, admits nothing\n");
            continue;
        }
        out.push('\n');
        match &r.peers {
            None => out.push_str(&format!("    {prep}: anywhere\n")),
            Some(ps) if ps.is_empty() => out.push_str(&format!("    {prep}: nothing\n")),
            Some(ps) => {
                for p in ps {
                    out.push_str(&format!("    {prep}: {p}\n"));
                }
            }
        }
        match &r.ports {
            None => out.push_str("    ports: every port and protocol\n"),
            Some(ps) => out.push_str(&format!("    ports: {}\n", ps.join(", "))),
        }
    }
}
