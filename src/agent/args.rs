//! `policyc agent` flags. Other components (manifests, e2e, the sandbox) depend on these names.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where `/healthz`, `/readyz` and `/metrics` are served by default.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9750";
/// The default nft binary (looked up on `PATH`).
pub const DEFAULT_NFT: &str = "nft";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The node whose pods this agent enforces (`spec.nodeName`).
    #[arg(
        long,
        env = "NODE_NAME",
        value_name = "NODE",
        required_unless_present = "cleanup"
    )]
    pub node_name: Option<String>,

    /// Read objects from a directory of YAML/JSON manifests instead of the Kubernetes API;
    /// re-read within a second of any change.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kubeconfig", "context"])]
    pub manifests: Option<PathBuf>,

    /// Kubeconfig file (default: in-cluster config, then the usual kubeconfig locations).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Address for the /healthz, /readyz and /metrics endpoints.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// The private nftables table (family inet).
    #[arg(long, value_name = "NAME", default_value = policyc_compiler::nft::DEFAULT_TABLE)]
    pub table: String,

    /// Log dropped new connections (rate limited).
    #[arg(long)]
    pub log_drops: bool,

    /// The nft binary.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_NFT)]
    pub nft: PathBuf,

    /// Report not Ready (`/readyz` 503) after this many consecutive failed applies, until one
    /// succeeds; the last accepted ruleset keeps enforcing meanwhile. 0: never.
    #[arg(long, value_name = "N", default_value_t = crate::agent::sync::DEFAULT_UNREADY_AFTER_FAILURES)]
    pub unready_after_failures: u32,

    /// Delete the table and exit (no error if it does not exist).
    #[arg(long)]
    pub cleanup: bool,
}
