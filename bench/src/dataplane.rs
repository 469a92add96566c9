//! Data plane: packets and connections per second between two pods whose traffic is allowed,
//! (a) with no table, (a') with a conntrack-only table, (b) with policyc's ruleset for the node,
//! (c) with a linear iptables-style ruleset of the same policies; measured side by side,
//! rounds interleaved, by `policyc_e2e::dataplane`.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{bail, Result};
use policyc_compiler::eval::{Endpoint, Engine};
use policyc_compiler::load::build_cluster;
use policyc_compiler::model::Source;
use policyc_compiler::nft::{render, RenderOptions};
use policyc_compiler::{Cluster, Protocol};
use policyc_e2e::dataplane::{linear, Bed, Options, Outcome, Setup, CONNTRACK_ONLY, DENIED_PORT, PORT};
use serde_json::json;

use crate::gen::{self, Params};
use crate::report::{stat, Check, Ctx, Section, Table};

/// The two measured pods, added to the generated cluster on its measured node: the top of
/// node-0's `10.244.0.0/22`, which the generator fills from the bottom (≤ 1,020 pods).
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 244, 3, 250);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 244, 3, 251);
const NAMESPACE: &str = "ns-0";
/// Prefix of the policies this section adds (they come last in the linear chain).
const POLICY_PREFIX: &str = "dataplane-";
/// Above this many rules the linear table is not loaded: at ~60k rules it already takes
/// seconds, and the ratio is past any target by then.
const LINEAR_MAX_RULES: usize = 400_000;

type Figure = fn(&Outcome) -> Vec<f64>;

const FIGURES: [(&str, &str, Figure, Figure); 3] = [
    (
        "UDP, new flow per packet",
        "pps",
        Outcome::udp_new,
        Outcome::udp_new_cpu,
    ),
    (
        "UDP, one steady flow",
        "pps",
        Outcome::udp_steady,
        Outcome::udp_steady_cpu,
    ),
    ("TCP, new connections", "conn/s", Outcome::tcp, Outcome::tcp_cpu),
];

pub fn run(ctx: &Ctx) -> Result<Section> {
    let bed = Bed::new(CLIENT, SERVER, 22, Options::default())?;
    let mut figures = Table::new(&[
        "size",
        "ruleset",
        "rules",
        "load",
        "UDP new flow/packet pps",
        "per CPU-s",
        "UDP steady flow pps",
        "per CPU-s",
        "TCP conn/s",
        "per CPU-s",
        "port 5002 blocked",
    ]);
    let mut ratios = Table::new(&[
        "size",
        "ratio",
        "UDP new flow/packet: wall",
        "per CPU-s",
        "UDP steady: wall",
        "per CPU-s",
        "TCP conn/s: wall",
        "per CPU-s",
    ]);
    let mut notes = Vec::new();
    let mut measured: Vec<(Params, Vec<Outcome>)> = Vec::new();
    for p in &ctx.sizes {
        let g = gen::generate(p)?;
        let cluster = with_measured_pods(&g)?;
        let node = g.node();
        let ours = render(&cluster, &RenderOptions::new(node.as_str()));
        let lin = linear::ruleset(&cluster, Some(&node), |x| x.name.starts_with(POLICY_PREFIX));
        // For studying variants with `dataplane-bench --extra` (same pod addresses).
        if let Some(dir) = std::env::var_os("DATAPLANE_DUMP") {
            let dir = std::path::Path::new(&dir);
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(format!("policyc-{}.nft", p.pods)), ours.replace().script)?;
            std::fs::write(dir.join(format!("linear-{}.nft", p.pods)), &lin.script)?;
        }
        let mut setups = vec![
            Setup {
                name: "(a) no table".into(),
                rules: 0,
                script: None,
            },
            Setup {
                name: "(a') conntrack only".into(),
                rules: 1,
                script: Some(CONNTRACK_ONLY.into()),
            },
            Setup {
                name: "(b) policyc".into(),
                rules: ours.stats().rules,
                script: Some(ours.replace().script),
            },
        ];
        if lin.rules <= LINEAR_MAX_RULES {
            setups.push(Setup {
                name: "(c) linear".into(),
                rules: lin.rules,
                script: Some(lin.script),
            });
        } else {
            notes.push(format!(
                "{}: the linear ruleset has {} rules, more than the {LINEAR_MAX_RULES} this section loads; (c) is not measured.",
                p.label(),
                lin.rules
            ));
        }
        let outcomes = bed.compare(&setups, ctx.runs, |line| {
            eprintln!("dataplane {}: {line}", p.label())
        })?;
        for o in &outcomes {
            let mut row = vec![
                p.label(),
                o.name.clone(),
                o.rules.to_string(),
                stat(&o.load_secs).show("s"),
            ];
            for (_, unit, wall, cpu) in FIGURES {
                row.push(stat(&wall(o)).show(unit));
                row.push(stat(&cpu(o)).show(""));
            }
            let blocked = match o.isolation {
                Some(i) if i.blocked() => "yes".to_string(),
                Some(i) => format!(
                    "no ({:.0}% of UDP delivered, TCP answered: {})",
                    i.udp_delivered * 100.0,
                    i.tcp_answered
                ),
                None => "-".into(),
            };
            row.push(blocked);
            figures.row(row);
            let (udp, tcp) = o.lost();
            if udp + tcp > 0 {
                notes.push(format!(
                    "{} {}: {udp} admitted packets and {tcp} admitted connections were lost.",
                    p.label(),
                    o.name
                ));
            }
        }
        for (label, base) in [("(b)/(a)", "(a)"), ("(b)/(a')", "(a')"), ("(b)/(c)", "(c)")] {
            let (Some(b), Some(x)) = (find(&outcomes, "(b)"), find(&outcomes, base)) else {
                continue;
            };
            let mut row = vec![p.label(), label.to_string()];
            for (_, _, wall, cpu) in FIGURES {
                row.push(stat(&paired(b, x, wall)).show(""));
                row.push(stat(&paired(b, x, cpu)).show(""));
            }
            ratios.row(row);
        }
        measured.push((p.clone(), outcomes));
    }
    let checks = checks(&measured);
    let mut text = TEXT.to_string();
    if !notes.is_empty() {
        text.push('\n');
    }
    for n in notes {
        text.push_str("\n- ");
        text.push_str(&n);
    }
    Ok(Section {
        title: "Data plane".into(),
        text,
        tables: vec![figures, ratios],
        checks,
    })
}

const TEXT: &str = "One node namespace (bridge `cni0`, `br_netfilter` on: the same-node path through \
the inet `forward` hook, as e2e builds it) and two pod namespaces, client `10.244.3.250` and server \
`10.244.3.251`. Both are added to the generated cluster on the measured node, in namespace `ns-0` \
(so its default deny, DNS egress and metrics ingress apply to them), with two policies that admit \
client → server on UDP and TCP 5001 (egress of the client, ingress of the server); the oracle \
confirms 5001 admitted and 5002 denied. Rulesets, loaded with `nft -f` into the node, one at a \
time, rounds interleaved (the order rotates per round): (a) none; (a') `ct state \
established,related accept` alone, i.e. conntrack, which every kube-proxy or flannel-masquerade \
node already runs; (b) `nft::render` for the node; (c) the same policies as flat chains, one rule \
per (policy rule × peer address × port) for the node's pods, after `ct state established,related \
accept` (`policyc_e2e::dataplane::linear`), with the measured pods' policies last: the worst case \
of a linear chain.\n\nPer ruleset and round: 64-byte IPv4/UDP packets from a raw socket for 2 s, \
counted at the server's `eth0`: *new flow per packet* cycles the source port over 16,384 values \
with no reply, so every packet is conntrack `new` and walks the rules (after the first round \
conntrack finds the unreplied entry rather than allocating one); *steady flow* is one answered \
flow, every packet `established`. TCP: 4 client threads loop connect → close (with a reset, so \
no TIME_WAIT exhausts the ports), 2 acceptors accept → close; every connection is a new conntrack \
entry. *wall* is per second of elapsed time; *per CPU-s* is per second of CPU used by the \
benchmark process: the whole path of a packet runs in the softirq of the sending thread, which \
this kernel (no IRQ time accounting) charges to that thread, so it is the path's cost per packet \
and does not depend on how much of the 2 shared cores other work left (wall figures do). Ratios \
are the median (min–max) of per-round ratios of figures measured back to back.";

fn find<'a>(outcomes: &'a [Outcome], prefix: &str) -> Option<&'a Outcome> {
    outcomes.iter().find(|o| o.name.starts_with(prefix))
}

/// Per-round ratios `a / b` of one figure.
fn paired(a: &Outcome, b: &Outcome, f: Figure) -> Vec<f64> {
    f(a).iter().zip(f(b)).map(|(x, y)| x / y).collect()
}

fn checks(measured: &[(Params, Vec<Outcome>)]) -> Vec<Check> {
    // The size when it was measured, else the largest.
    let Some((p, outcomes)) = measured
        .iter()
        .find(|(p, _)| p.pods == 10_000)
        .or_else(|| measured.iter().max_by_key(|(p, _)| p.pods))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let b = find(outcomes, "(b)");
    for (base, target, min, figures) in [
        ("(a)", "≥ 0.95 × no table", 0.95, &FIGURES[..]),
        (
            "(a')",
            "≥ 0.95 × conntrack only (not in the issue)",
            0.95,
            &FIGURES[..],
        ),
        ("(c)", "≥ 10 × linear", 10.0, &[FIGURES[0], FIGURES[2]][..]),
    ] {
        let (Some(b), Some(x)) = (b, find(outcomes, base)) else {
            continue;
        };
        for (name, _, wall, cpu) in figures {
            let r_cpu = stat(&paired(b, x, *cpu));
            let r_wall = stat(&paired(b, x, *wall));
            out.push(Check {
                figure: format!("data plane (b)/{base}, {name}, {}", p.label()),
                target: target.to_string(),
                measured: format!("{} per CPU-s, {} wall", r_cpu.show("×"), r_wall.show("×")),
                met: r_cpu.median >= min,
            });
        }
    }
    out
}

/// The generated cluster plus the measured pair on its measured node, and the policies that
/// admit client → server on [`PORT`]; checked with the oracle.
fn with_measured_pods(g: &gen::Generated) -> Result<Cluster> {
    let node = g.node();
    let mut objects = g.objects();
    let taken = |ip: Ipv4Addr| {
        objects.pods.iter().any(|(p, _)| {
            let status = p.status.as_ref();
            status.and_then(|s| s.pod_ip.as_deref()) == Some(ip.to_string().as_str())
        })
    };
    if taken(CLIENT) || taken(SERVER) {
        bail!("the generated cluster already uses {CLIENT} or {SERVER}");
    }
    let src = |line| Source {
        file: "dataplane.rs".into(),
        line,
    };
    for (i, (name, ip)) in [("dataplane-client", CLIENT), ("dataplane-server", SERVER)]
        .into_iter()
        .enumerate()
    {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "bench"}]},
            "status": {"phase": "Running", "podIP": ip.to_string(), "podIPs": [{"ip": ip.to_string()}]}});
        objects.pods.push((serde_json::from_value(pod)?, src(i + 1)));
    }
    let ports = json!([{"port": PORT, "protocol": "UDP"}, {"port": PORT, "protocol": "TCP"}]);
    let egress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": format!("{POLICY_PREFIX}client-egress"), "namespace": NAMESPACE},
        "spec": {"podSelector": {"matchLabels": {"app": "dataplane-client"}}, "policyTypes": ["Egress"],
                 "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "dataplane-server"}}}], "ports": ports}]}});
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": format!("{POLICY_PREFIX}server-ingress"), "namespace": NAMESPACE},
        "spec": {"podSelector": {"matchLabels": {"app": "dataplane-server"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "dataplane-client"}}}], "ports": ports}]}});
    objects.policies.push((serde_json::from_value(egress)?, src(3)));
    objects.policies.push((serde_json::from_value(ingress)?, src(4)));
    let (cluster, diags) = build_cluster(&objects);
    if let Some(d) = diags.first() {
        bail!("the measured pods do not load: {d}");
    }
    let engine = Engine::new(&cluster);
    let ep = |ip: Ipv4Addr| Endpoint {
        ip: IpAddr::V4(ip),
        pod: cluster.pods.iter().position(|p| p.ips.contains(&IpAddr::V4(ip))),
    };
    let (c, s) = (ep(CLIENT), ep(SERVER));
    for proto in [Protocol::Udp, Protocol::Tcp] {
        if !engine.allowed(&c, &s, proto, PORT) || engine.allowed(&c, &s, proto, DENIED_PORT) {
            bail!("the oracle does not admit exactly port {PORT} from client to server ({proto:?})");
        }
    }
    Ok(cluster)
}
