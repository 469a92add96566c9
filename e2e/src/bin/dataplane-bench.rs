//! Data-plane benchmark (not a test): the per-packet and per-connection cost of policyc's ruleset
//! against no table, a conntrack-only table and a naive linear ruleset of the same policies,
//! measured with real packets through a node namespace's inet `forward` hook, all in one run
//! (see `policyc_e2e::dataplane` and e2e/README.md).
//!
//! Run as root: `cargo run --release -p policyc-e2e --bin dataplane-bench [-- --secs 2 --runs 3]`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use policyc_compiler::load::load_texts;
use policyc_compiler::nft::{render, RenderOptions};
use policyc_e2e::dataplane::{linear, median, synth, Bed, Options, Outcome, Setup, CONNTRACK_ONLY};

#[derive(Parser)]
#[command(about = "Per-packet cost of policyc's nftables ruleset vs no table vs a linear ruleset")]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0)]
    secs: f64,
    /// Rounds (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Cluster sizes as PODS/POLICIES.
    #[arg(long, value_delimiter = ',', default_value = "100/20,1000/200,10000/2000")]
    sizes: Vec<String>,
    /// Client threads of the TCP connection loop.
    #[arg(long, default_value_t = 4)]
    tcp_clients: usize,
    /// Only these setups (`no table`, `conntrack only`, `policyc`, `linear`, extra names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// More setups to compare, as NAME=FILE (an nft script), e.g. hand-made variants.
    #[arg(long)]
    extra: Vec<String>,
    /// The client pod's address (the synthetic cluster's pods are outside 10.244.0.0/24).
    #[arg(long, default_value = "10.244.0.10")]
    client: Ipv4Addr,
    /// The server pod's address.
    #[arg(long, default_value = "10.244.0.20")]
    server: Ipv4Addr,
    /// The pods' prefix length (both on one link).
    #[arg(long, default_value_t = 24)]
    prefix: u8,
    /// Writes each size's policyc and linear scripts into this directory.
    #[arg(long)]
    dump: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    match run(&Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let opts = Options {
        secs: args.secs,
        tcp_clients: args.tcp_clients,
    };
    let bed = Bed::new(args.client, args.server, args.prefix, opts)?;
    let mut extra = Vec::new();
    for e in &args.extra {
        let (name, file) = e.split_once('=').context("--extra: expected NAME=FILE")?;
        let script = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        extra.push((name.to_string(), script));
    }
    let mut results = Vec::new();
    for size in &args.sizes {
        let (pods, policies) = size
            .split_once('/')
            .and_then(|(p, q)| Some((p.parse().ok()?, q.parse().ok()?)))
            .with_context(|| format!("--sizes: `{size}` is not PODS/POLICIES"))?;
        let text = synth::yaml(pods, policies, bed.client, bed.server);
        let (cluster, _, diags) = load_texts([("synth.yaml", text.as_str())]);
        if let Some(d) = diags.first() {
            bail!("synthetic cluster does not load: {d}");
        }
        let ours = render(&cluster, &RenderOptions::new("node-0"));
        let lin = linear::ruleset(&cluster, Some("node-0"), |p| p.namespace == "bench");
        let script = ours.replace().script;
        if let Some(dir) = &args.dump {
            std::fs::create_dir_all(dir)?;
            let tag = size.replace('/', "-");
            std::fs::write(dir.join(format!("policyc-{tag}.nft")), &script)?;
            std::fs::write(dir.join(format!("linear-{tag}.nft")), &lin.script)?;
        }
        let mut setups = vec![
            Setup {
                name: "no table".into(),
                rules: 0,
                script: None,
            },
            Setup {
                name: "conntrack only".into(),
                rules: 1,
                script: Some(CONNTRACK_ONLY.into()),
            },
            Setup {
                name: "policyc".into(),
                rules: ours.stats().rules,
                script: Some(script),
            },
            Setup {
                name: "linear".into(),
                rules: lin.rules,
                script: Some(lin.script),
            },
        ];
        setups.extend(extra.iter().map(|(name, script)| Setup {
            name: name.clone(),
            rules: script.lines().filter(|l| l.starts_with("\t\t")).count(),
            script: Some(script.clone()),
        }));
        setups.retain(|s| args.only.is_empty() || args.only.contains(&s.name));
        let outcomes = bed.compare(&setups, args.runs, |line| eprintln!("{size} {line}"))?;
        results.push((size.clone(), outcomes));
    }
    print_table(&results);
    Ok(())
}

type Figure = fn(&Outcome) -> Vec<f64>;

/// The figures, each as wall rate and per CPU-second.
const FIGURES: [(&str, Figure); 6] = [
    ("UDP new flow/packet pps", Outcome::udp_new),
    ("per CPU-s", Outcome::udp_new_cpu),
    ("UDP steady flow pps", Outcome::udp_steady),
    ("per CPU-s", Outcome::udp_steady_cpu),
    ("TCP conn/s", Outcome::tcp),
    ("per CPU-s", Outcome::tcp_cpu),
];

fn print_table(results: &[(String, Vec<Outcome>)]) {
    let names: Vec<&str> = FIGURES.iter().map(|(n, _)| *n).collect();
    println!();
    println!(
        "| pods/policies | ruleset | rules | load s | {} | denied blocked |",
        names.join(" | ")
    );
    println!("|---|---|---:|---:|{}---|", "---:|".repeat(FIGURES.len()));
    for (size, outcomes) in results {
        for o in outcomes {
            let (lost_udp, lost_tcp) = o.lost();
            if lost_udp + lost_tcp > 0 {
                eprintln!(
                    "warning: {size} {}: {lost_udp} admitted packets and {lost_tcp} connections lost",
                    o.name
                );
            }
            let cells: Vec<String> = FIGURES.iter().map(|(_, f)| spread(&f(o))).collect();
            let blocked = o.isolation.map_or("-".into(), |i| {
                if i.blocked() {
                    "yes".to_string()
                } else {
                    format!(
                        "no ({:.0}% udp, tcp answered: {})",
                        i.udp_delivered * 100.0,
                        i.tcp_answered
                    )
                }
            });
            println!(
                "| {size} | {} | {} | {:.2} | {} | {blocked} |",
                o.name,
                o.rules,
                median(&o.load_secs),
                cells.join(" | ")
            );
        }
    }
    println!();
    println!("Ratios of medians (ruleset / baseline):");
    println!();
    println!("| pods/policies | ruleset | baseline | {} |", names.join(" | "));
    println!("|---|---|---|{}", "---:|".repeat(FIGURES.len()));
    for (size, outcomes) in results {
        let bases = ["no table", "conntrack only", "linear"];
        for o in outcomes.iter().filter(|o| !bases.contains(&o.name.as_str())) {
            for b in bases
                .iter()
                .filter_map(|b| outcomes.iter().find(|x| x.name == *b))
            {
                let cells: Vec<String> = FIGURES
                    .iter()
                    .map(|(_, f)| format!("{:.3}", median(&f(o)) / median(&f(b))))
                    .collect();
                println!("| {size} | {} | {} | {} |", o.name, b.name, cells.join(" | "));
            }
        }
    }
}

fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("{:.0} ({min:.0}–{max:.0})", median(v))
}
