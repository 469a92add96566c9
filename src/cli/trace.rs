//! `policyc trace SRC DST --port PORT[/PROTO]`: one connection's verdict, explained per side.

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::{bail, Context};
use policyc_compiler::eval::{Endpoint, Engine, Reason, Side, Verdict};
use policyc_compiler::policy::Direction;
use policyc_compiler::{Family, Protocol};
use serde::Serialize;

use super::style::{self, ColorArgs, Painter};
use super::words::{and_list, rule_admits, spans_of, Citer};
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
    #[command(flatten)]
    pub color: ColorArgs,
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
        color,
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
        OutputFormat::Text => {
            let spans = spans_of(&input.files)?;
            let citer = Citer {
                cluster: &loaded.cluster,
                spans: &spans,
            };
            print!("{}", render_text(&trace, &citer, Painter::new(color.color)))
        }
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
            // A family both pods have, so a single-stack pod can be traced to a dual-stack one.
            let (s, d) = (
                engine.pod(pod_ref(engine, src)?),
                engine.pod(pod_ref(engine, dst)?),
            );
            let families = d.ips.iter().map(Family::of);
            let shared = families.clone().find(|f| s.ip(*f).is_some());
            shared.or(families.clone().next()).unwrap_or(Family::Ipv4)
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
            .with_context(|| format!("pod {s} has no {} address", family_name(family)))?;
        // A hostNetwork pod's address is its node's; it is still the pod for the verdict.
        Ok(Endpoint { ip, pod: Some(i) })
    };
    Ok((endpoint(src)?, endpoint(dst)?))
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

fn pod_ref(engine: &Engine<'_>, s: &str) -> anyhow::Result<usize> {
    let (ns, name) = s
        .split_once('/')
        .with_context(|| format!("{s:?} is neither namespace/pod nor an IP address"))?;
    engine
        .pod_index(ns, name)
        .with_context(|| format!("pod {s} not found in the input"))
}

fn render_text(t: &TraceView, citer: &Citer<'_>, paint: Painter) -> String {
    let who = |e: &EndpointView| match &e.pod {
        Some(p) => format!("{p} ({})", e.ip),
        None => e.ip.to_string(),
    };
    let verdict = if t.verdict.allowed {
        paint.paint(style::ALLOWED, "ALLOWED")
    } else {
        paint.paint(style::DENIED, "DENIED")
    };
    let mut out = format!(
        "{} -> {} {}/{}: {verdict}\n",
        who(&t.src),
        who(&t.dst),
        t.port,
        t.protocol,
    );
    let src = t.src.pod.clone().unwrap_or_else(|| t.src.ip.to_string());
    let dst = t.dst.pod.clone().unwrap_or_else(|| t.dst.ip.to_string());
    let port = format!("{}/{}", t.port, t.protocol);
    let sides = [
        (Direction::Egress, &t.verdict.egress, &src, &dst),
        (Direction::Ingress, &t.verdict.ingress, &dst, &src),
    ];
    for (direction, side, own, far) in sides {
        out.push_str(&format!("  {direction} of {own}: "));
        side_text(&mut out, citer, paint, side, direction, own, far, &port);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn side_text(
    out: &mut String,
    citer: &Citer<'_>,
    paint: Painter,
    side: &Side,
    direction: Direction,
    own: &str,
    far: &str,
    port: &str,
) {
    let allowed = paint.paint(style::ALLOWED, "allowed");
    let denied = paint.paint(style::DENIED, "denied");
    let line = match side.reason {
        Reason::NotAPod => {
            format!("{allowed}: {own} is not a pod's address, so no policy applies on this side")
        }
        Reason::HostNetwork => {
            format!(
                "{allowed}: {own} uses its node's network (hostNetwork), which NetworkPolicy never isolates"
            )
        }
        Reason::FromOwnNode => {
            format!("{allowed}: the connection comes from {own}'s own node, which is always allowed")
        }
        Reason::SamePod => format!("{allowed}: a pod connecting to itself never leaves it"),
        Reason::NotIsolated => {
            format!("{allowed}: no policy selects {own} for {direction}, so all its {direction} traffic is allowed")
        }
        Reason::AllowedByRule => {
            let rules: Vec<String> = side
                .allowed_by
                .iter()
                .map(|r| {
                    let what = citer
                        .policy(&r.policy)
                        .and_then(|p| p.rules(direction))
                        .and_then(|rules| rules.iter().find(|x| x.index == r.rule))
                        .map(|rule| format!(", which admits traffic {}", rule_admits(rule, direction)))
                        .unwrap_or_default();
                    format!("{}{what}", citer.rule_name(&r.policy, direction, r.rule))
                })
                .collect();
            format!("{allowed} by {}", rules.join("; and by "))
        }
        Reason::NoRuleAllows => {
            let names: Vec<String> = side.isolated_by.iter().map(|k| citer.policy_name(k)).collect();
            let verb = if names.len() == 1 { "selects" } else { "select" };
            let whose = if names.len() == 1 { "its" } else { "their" };
            let mut text = format!(
                "{denied}: {} {verb} {own} for {direction}, and none of {whose} {direction} rules admits {far} on {port}",
                and_list(&names)
            );
            // The rules that exist, so the reader sees how close they come.
            for key in &side.isolated_by {
                let Some(policy) = citer.policy(key) else { continue };
                let rules = policy.rules(direction).unwrap_or_default();
                if rules.is_empty() {
                    text.push_str(&format!(
                        "\n    {key} has no {direction} rules: it admits nothing"
                    ));
                }
                for rule in rules {
                    text.push_str(&format!(
                        "\n    {} admits only traffic {}",
                        citer.rule_name(key, direction, rule.index),
                        rule_admits(rule, direction)
                    ));
                }
            }
            text
        }
    };
    out.push_str(&line);
    out.push('\n');
}
