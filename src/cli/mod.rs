//! Command-line interface: argument parsing and dispatch. Each subcommand lives in its own module
//! and returns an exit code; errors print once, here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod diff;
mod explain;
mod lint;
mod matrix;
mod render;
pub mod style;
mod trace;
mod words;

pub use crate::input::Loaded;

#[derive(Debug, Parser)]
#[command(
    name = "policyc",
    version,
    about = "NetworkPolicy enforcement and analysis for flannel and kubenet clusters"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain why a connection is allowed or denied, on both sides.
    Trace(trace::Args),
    /// Pod-to-pod reachability matrix, per port and protocol.
    Matrix(matrix::Args),
    /// Explain an object's policies.
    Explain {
        #[command(subcommand)]
        what: explain::What,
    },
    /// Print the nftables ruleset the agent would apply on a node.
    Render(render::Args),
    /// Run the node agent: enforce the cluster's NetworkPolicies with nftables.
    Agent(crate::agent::Args),
    /// Check policies for mistakes.
    Lint(lint::Args),
    /// What changes in connectivity between two sets of objects.
    Diff(diff::Args),
}

/// `-f PATH`, repeatable: files or directories of YAML/JSON manifests.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// A YAML or JSON file, or a directory read recursively (*.yaml, *.yml, *.json; hidden entries skipped).
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        required_unless_present_any = ["live", "kubeconfig", "context", "namespace", "all_namespaces"]
    )]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub live: crate::live::LiveArgs,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Exit codes: 0 success (a trace that prints DENIED succeeded too), 1 findings (`lint`) or changes
/// (`diff`), 2 usage or input error.
pub const EXIT_INPUT: u8 = 2;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Trace(args) => trace::run(args),
        Command::Matrix(args) => matrix::run(args),
        Command::Explain { what } => explain::run(what),
        Command::Render(args) => render::run(args),
        Command::Agent(args) => crate::agent::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Diff(args) => diff::run(args),
    }
}

/// Loads the input and fails with every diagnostic listed when any object is invalid.
pub fn load_strict(input: &InputArgs) -> anyhow::Result<Loaded> {
    let loaded = if input.live.enabled() {
        crate::live::load(&input.live, &input.files)?
    } else {
        crate::input::load(&input.files)?
    };
    if !loaded.diagnostics.is_empty() {
        let mut msg = format!("{} problem(s) in the input:", loaded.diagnostics.len());
        for d in &loaded.diagnostics {
            msg.push_str("\n  ");
            msg.push_str(&d.to_string());
        }
        anyhow::bail!(msg);
    }
    Ok(loaded)
}

/// The "treated as existing" notice for namespaces that were referenced but not given.
pub fn implicit_namespace_note(cluster: &policyc_compiler::Cluster) -> Option<String> {
    let implicit = cluster.implicit_namespaces();
    (!implicit.is_empty()).then(|| {
        format!(
            "note: namespace(s) {} not in the input; treated as existing with only the kubernetes.io/metadata.name label",
            implicit.join(", ")
        )
    })
}

/// Prints a serializable value as JSON or YAML (the text form is each command's own).
pub fn print_structured<T: serde::Serialize>(format: OutputFormat, value: &T) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(value)?),
        OutputFormat::Yaml => print!("{}", serde_yaml::to_string(value)?),
        OutputFormat::Text => unreachable!("text output is printed by each command"),
    }
    Ok(())
}

/// Parses `PORT[/PROTO]` (protocol defaults to TCP, case-insensitive).
pub fn parse_port(s: &str) -> Result<(u16, policyc_compiler::Protocol), String> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "TCP"));
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{port:?} is not a port number (1-65535)"))?;
    let proto = policyc_compiler::Protocol::parse(&proto.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown protocol {proto:?} (TCP, UDP or SCTP)"))?;
    Ok((port, proto))
}
