//! `policyc trace SRC DST --port PORT[/PROTO]`: one connection's verdict, explained per side.

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::{bail, Context};
use policyc_compiler::eval::{Endpoint, Engine, Reason, Side, Verdict};
use policyc_compiler::{Family, Protocol};
use serde::Serialize;

use super::{load_strict, parse_port, print_structured, InputArgs, OutputArgs, OutputFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Source: `namespace/pod` or an IP address.
    pub src: String,
    /// Destination: `namespace/pod` or an IP address.
    pub dst: String,
    /// Destination port, `PORT[/PROTO]` (TCP by default).
    #[arg(short = 'p', long, value_parser = parse_port)]
    pub port: (u16, Protocol),
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Serialize)]
struct EndpointView {
    name: String,
    ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<String>,
}

#[derive(Serialize)]
struct TraceView {
    src: EndpointView,
    dst: EndpointView,
    port: u16,
    protocol: Protocol,
    #[serde(flatten)]
    verdict: Verdict,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        src,
        dst,
        port: (port, protocol),
        input,
        output,
    } = args;
    let loaded = load_strict(&input)?;
    let engine = Engine::new(&loaded.cluster);
    let (src_ep, dst_ep) = resolve_pair(&engine, &src, &dst)?;
    let verdict = engine.check(&src_ep, &dst_ep, protocol, port);
    let view = |name: &str, ep: &Endpoint| EndpointView {
        name: name.to_string(),
        ip: ep.ip,
        pod: ep.pod.map(|i| engine.pod(i).key()),
    };
    let trace = TraceView {
        src: view(&src, &src_ep),
        dst: view(&dst, &dst_ep),
        port,
        protocol,
        verdict,
    };
    match output.output {
        OutputFormat::Text => print!("{}", render_text(&trace)),
        f => print_structured(f, &trace)?,
    }
    // On stderr, so that it reaches the user in every output format without breaking JSON/YAML.
    if let Some(note) = super::implicit_namespace_note(&loaded.cluster) {
        eprintln!("{note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves both ends, choosing one address family: the destination's primary one when both are
/// pods, or the family of whichever end is given as an address.
pub fn resolve_pair(engine: &Engine<'_>, src: &str, dst: &str) -> anyhow::Result<(Endpoint, Endpoint)> {
    let as_ip = |s: &str| s.parse::<IpAddr>().ok();
    let family = match (as_ip(src), as_ip(dst)) {
        (Some(a), Some(b)) if Family::of(&a) != Family::of(&b) => {
            bail!("{src} and {dst} are of different address families")
        }
        (Some(ip), _) | (None, Some(ip)) => Family::of(&ip),
        (None, None) => {
            let d = pod_ref(engine, dst)?;
            engine.pod(d).ips.first().map(Family::of).unwrap_or(Family::Ipv4)
        }
    };
    let endpoint = |s: &str| -> anyhow::Result<Endpoint> {
        if let Some(ip) = as_ip(s) {
            return Ok(engine.endpoint_for_ip(ip));
        }
        let i = pod_ref(engine, s)?;
        let pod = engine.pod(i);
        if !pod.addressable() {
            bail!(
                "pod {s} is not addressable (no IP, or phase {})",
                pod.phase.as_deref().unwrap_or("unknown")
            );
        }
        let ip = pod
            .ip(family)
            .with_context(|| format!("pod {s} has no {family:?} address"))?;
        // A hostNetwork pod's address is its node's; it is still the pod for the verdict.
        Ok(Endpoint { ip, pod: Some(i) })
    };
    Ok((endpoint(src)?, endpoint(dst)?))
}

fn pod_ref(engine: &Engine<'_>, s: &str) -> anyhow::Result<usize> {
    let (ns, name) = s
        .split_once('/')
        .with_context(|| format!("{s:?} is neither namespace/pod nor an IP address"))?;
    engine
        .pod_index(ns, name)
        .with_context(|| format!("pod {s} not found in the input"))
}

fn render_text(t: &TraceView) -> String {
    let who = |e: &EndpointView| match &e.pod {
        Some(p) => format!("{p} ({})", e.ip),
        None => e.ip.to_string(),
    };
    let mut out = format!(
        "{} -> {} {}/{}: {}\n",
        who(&t.src),
        who(&t.dst),
        t.port,
        t.protocol,
        if t.verdict.allowed { "ALLOWED" } else { "DENIED" }
    );
    let src = t.src.pod.clone().unwrap_or_else(|| t.src.ip.to_string());
    let dst = t.dst.pod.clone().unwrap_or_else(|| t.dst.ip.to_string());
    let port = format!("{}/{}", t.port, t.protocol);
    out.push_str(&format!(
        "  egress of {src}: {}\n",
        side_text(&t.verdict.egress, "egress", &src, &dst, &port)
    ));
    out.push_str(&format!(
        "  ingress of {dst}: {}\n",
        side_text(&t.verdict.ingress, "ingress", &dst, &src, &port)
    ));
    out
}

fn side_text(side: &Side, direction: &str, own: &str, far: &str, port: &str) -> String {
    match side.reason {
        Reason::NotAPod => "not a pod; no policy applies".into(),
        Reason::HostNetwork => "hostNetwork pod; never isolated".into(),
        Reason::FromOwnNode => format!("allowed: traffic from {own}'s own node is always allowed"),
        Reason::SamePod => "allowed: a pod talking to itself".into(),
        Reason::NotIsolated => format!("allowed: no policy selects {own} for {direction}"),
        Reason::AllowedByRule => {
            let rules: Vec<String> = side
                .allowed_by
                .iter()
                .map(|r| {
                    let at = r.source.as_ref().map(|s| format!(" ({s})")).unwrap_or_default();
                    format!("{} {direction} rule {}{at}", r.policy, r.rule)
                })
                .collect();
            format!("allowed by {}", rules.join(", "))
        }
        Reason::NoRuleAllows => format!(
            "denied: {} select(s) {own} for {direction}; no {direction} rule of {} admits {far} on {port}",
            side.isolated_by.join(", "),
            side.isolated_by.join(" or ")
        ),
    }
}
