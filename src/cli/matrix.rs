//! `policyc matrix`: reachability between every pair of addressable pods, per port and protocol.

use std::process::ExitCode;

use policyc_compiler::matrix::{default_family, default_ports, matrix, Matrix};
use policyc_compiler::{Engine, Family, Protocol};

use super::{load_strict, parse_port, print_structured, InputArgs, OutputArgs, OutputFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `PORT[/PROTO]`, repeatable; default: every port named in the pods' container ports.
    #[arg(short = 'p', long = "port", value_parser = parse_port)]
    pub ports: Vec<(u16, Protocol)>,
    /// Address family to evaluate (default: IPv4 if any pod has an IPv4 address).
    #[arg(long, value_parser = parse_family)]
    pub family: Option<Family>,
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_family(s: &str) -> Result<Family, String> {
    match s {
        "ipv4" | "4" => Ok(Family::Ipv4),
        "ipv6" | "6" => Ok(Family::Ipv6),
        _ => Err(format!("{s:?}: expected ipv4 or ipv6")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        ports,
        family,
        input,
        output,
    } = args;
    let loaded = load_strict(&input)?;
    let engine = Engine::indexed(&loaded.cluster);
    let ports = if ports.is_empty() {
        default_ports(&loaded.cluster)
    } else {
        ports
    };
    let family = family.unwrap_or_else(|| default_family(&loaded.cluster));
    let m = matrix(&engine, &ports, family);
    match output.output {
        OutputFormat::Text => print!("{}", render_text(&m)),
        f => print_structured(f, &m)?,
    }
    // On stderr, so that it reaches the user in every output format without breaking JSON/YAML.
    if let Some(note) = super::implicit_namespace_note(&loaded.cluster) {
        eprintln!("{note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A grid per port: rows are sources, columns destinations (numbered as the rows), `.` allowed,
/// `X` denied.
pub fn render_text(m: &Matrix) -> String {
    let mut out = String::new();
    if m.results.is_empty() {
        out.push_str("no ports to evaluate (no container ports in the input; pass --port)\n");
    }
    let width = m.pods.iter().map(|p| p.len()).max().unwrap_or(0);
    let digits = m.pods.len().saturating_sub(1).to_string().len();
    for (k, r) in m.results.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "{}/{} (rows: from, columns: to; . allowed, X denied)\n",
            r.port, r.protocol
        ));
        out.push_str(&format!("{:w$}  ", "", w = digits + 1 + width));
        for j in 0..m.pods.len() {
            out.push_str(&format!(" {j:>digits$}"));
        }
        out.push('\n');
        for (i, row) in r.allowed.iter().enumerate() {
            out.push_str(&format!("{i:>digits$} {:width$}  ", m.pods[i]));
            for cell in row {
                out.push_str(&format!(" {:>digits$}", if *cell { "." } else { "X" }));
            }
            out.push('\n');
        }
    }
    out
}
