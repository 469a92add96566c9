//! `policyc agent` flags. Other components (manifests, e2e, the sandbox) depend on these names.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where `/healthz`, `/readyz` and `/metrics` are served by default.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9750";
/// The default nft binary (looked up on `PATH`).
pub const DEFAULT_NFT: &str = "nft";
/// The default conntrack binary (conntrack-tools; looked up on `PATH`).
pub const DEFAULT_CONNTRACK: &str = "conntrack";

/// `--unprogrammed-pods`: see [`policyc_compiler::nft::UnprogrammedPods`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unprogrammed {
    Allow,
    Drop,
}

impl From<Unprogrammed> for policyc_compiler::nft::UnprogrammedPods {
    fn from(u: Unprogrammed) -> Self {
        match u {
            Unprogrammed::Allow => Self::Allow,
            Unprogrammed::Drop => Self::Drop,
        }
    }
}

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

    /// Traffic of an address in this node's pod CIDRs that no pod known to the agent has (a pod
    /// that started before the agent programmed it): `allow` passes it unpoliced until then,
    /// `drop` drops it both ways until then (node-to-pod traffic and the node's own addresses
    /// keep working).
    #[arg(long, value_enum, value_name = "ACTION", default_value = "allow")]
    pub unprogrammed_pods: Unprogrammed,

    /// This node's pod CIDR for --unprogrammed-pods=drop, instead of the Node's spec.podCIDRs
    /// (repeat for several; needed with --manifests when the Node objects have none).
    #[arg(long = "pod-cidr", value_name = "CIDR")]
    pub pod_cidrs: Vec<ipnet::IpNet>,

    /// After each apply, delete the conntrack entries of connections the new ruleset denies, so
    /// that established connections stop too (needs the conntrack binary).
    #[arg(long)]
    pub flush_conntrack: bool,

    /// The conntrack binary, for --flush-conntrack.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONNTRACK)]
    pub conntrack: PathBuf,

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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(["agent", "--node-name", "n"].iter().chain(argv)).map(|c| c.args)
    }

    #[test]
    fn option_flags_parse_with_safe_defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.unprogrammed_pods, Unprogrammed::Allow);
        assert!(a.pod_cidrs.is_empty() && !a.flush_conntrack);
        assert_eq!(a.conntrack, PathBuf::from(DEFAULT_CONNTRACK));
        let a = parse(&[
            "--unprogrammed-pods",
            "drop",
            "--pod-cidr",
            "10.244.1.0/24",
            "--pod-cidr",
            "fd00:10:244:1::/64",
            "--flush-conntrack",
        ])
        .unwrap();
        assert_eq!(
            policyc_compiler::nft::UnprogrammedPods::from(a.unprogrammed_pods),
            policyc_compiler::nft::UnprogrammedPods::Drop
        );
        assert_eq!(a.pod_cidrs.len(), 2);
        assert!(a.flush_conntrack);
        let e = parse(&["--unprogrammed-pods", "deny"]).err().unwrap().to_string();
        assert!(e.contains("allow") && e.contains("drop"), "{e}");
        assert!(parse(&["--pod-cidr", "10.244.1.0/33"]).is_err());
    }
}
