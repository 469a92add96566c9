//! `policyc render --node-name NODE -f PATH...`: prints the complete atomic replacement
//! transaction the agent would apply on NODE, as an `nft -f` script or (`--json`) nft JSON.

use std::process::ExitCode;

use anyhow::bail;
use policyc_compiler::nft::{render, valid_table_name, RenderOptions, DEFAULT_TABLE};

use super::{load_strict, InputArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node whose ruleset to print (the `spec.nodeName` of the pods it enforces).
    #[arg(long = "node-name", value_name = "NODE")]
    pub node_name: String,
    #[command(flatten)]
    pub input: InputArgs,
    /// Print nft JSON (for `nft -j -f -`) instead of an `nft -f` script.
    #[arg(long)]
    pub json: bool,
    /// Log dropped new connections (rate limited), with a prefix naming the pod.
    #[arg(long)]
    pub log_drops: bool,
    /// The private table's name (family inet).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TABLE)]
    pub table: String,
    /// As `policyc agent --unprogrammed-pods`.
    #[arg(long, value_enum, value_name = "ACTION", default_value = "allow")]
    pub unprogrammed_pods: crate::agent::args::Unprogrammed,
    /// As `policyc agent --pod-cidr`.
    #[arg(long = "pod-cidr", value_name = "CIDR")]
    pub pod_cidrs: Vec<ipnet::IpNet>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !valid_table_name(&args.table) {
        bail!(
            "invalid --table {:?}: a letter followed by letters, digits, '_' or '-'",
            args.table
        );
    }
    if args.node_name.is_empty() {
        bail!("--node-name must not be empty");
    }
    let loaded = load_strict(&args.input)?;
    let cluster = &loaded.cluster;
    let opts = RenderOptions {
        table: args.table.clone(),
        log_drops: args.log_drops,
        unprogrammed_pods: args.unprogrammed_pods.into(),
        pod_cidrs: args.pod_cidrs.clone(),
        ..RenderOptions::new(args.node_name.clone())
    };
    let tx = render(cluster, &opts).replace();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tx.json())?);
    } else {
        print!("{}", tx.script);
    }
    let known = cluster.nodes.contains_key(&args.node_name)
        || cluster
            .pods
            .iter()
            .any(|p| p.node_name.as_deref() == Some(args.node_name.as_str()));
    if !known {
        eprintln!(
            "note: node {} is not in the input and no pod is scheduled on it; the ruleset enforces nothing",
            args.node_name
        );
    }
    if let Some(note) = super::implicit_namespace_note(cluster) {
        eprintln!("{note}");
    }
    Ok(ExitCode::SUCCESS)
}
