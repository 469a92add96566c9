//! The nftables ruleset for one node (SKELETON: the design and the API the agent codes against;
//! the implementation is being written).
//!
//! Design (to be documented here in full by the implementation, per base chain: hook, priority, why):
//! - one table `inet policyc`; base chains `forward` and `input` (hook, priority `filter`);
//! - `ct state established,related accept`, `ct state invalid drop`, IPv6 ND accept;
//! - dispatch by verdict maps keyed by local pod address (`ip daddr vmap @ingress4`, ...) into chains
//!   shared by every pod whose rendered rules are identical (named by content hash);
//! - peers as named sets shared by every rule that uses the same selector, ipBlocks as interval sets;
//! - "allow" is `return` inside our chains (egress is checked, then ingress); a drop is final.

use crate::model::Cluster;

/// What to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// The node whose pods are enforced (`spec.nodeName`).
    pub node: String,
    /// The private table's name, in family `inet`.
    pub table: String,
    /// Log dropped new connections (rate limited), with a prefix naming the pod.
    pub log_drops: bool,
}

impl RenderOptions {
    pub fn new(node: impl Into<String>) -> Self {
        RenderOptions {
            node: node.into(),
            table: DEFAULT_TABLE.to_string(),
            log_drops: false,
        }
    }
}

pub const DEFAULT_TABLE: &str = "policyc";

/// The complete desired state of the table for one node. Deterministic: the same cluster and
/// options give an equal value and the same bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
}

/// Size of a ruleset, for metrics and the measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub chains: usize,
    pub rules: usize,
    pub sets: usize,
    pub elements: usize,
}

/// One nft transaction (all or nothing), as an `nft -f` script and as nft JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
    pub script: String,
}

impl Transaction {
    pub fn is_empty(&self) -> bool {
        self.script.is_empty()
    }
}

pub fn render(cluster: &Cluster, opts: &RenderOptions) -> Ruleset {
    let _ = cluster;
    Ruleset {
        table: opts.table.clone(),
    }
}

impl Ruleset {
    /// The transaction that replaces the table atomically with this ruleset, whatever was there.
    pub fn replace(&self) -> Transaction {
        Transaction::default()
    }

    /// The smallest transaction that turns `previous` (what the kernel has) into `self`: element
    /// updates when only sets and maps changed, else a full atomic replacement; empty if equal.
    pub fn update_from(&self, previous: &Ruleset) -> Transaction {
        if self == previous {
            return Transaction::default();
        }
        self.replace()
    }

    pub fn stats(&self) -> Stats {
        Stats::default()
    }
}

/// The transaction that removes the table (uninstall).
pub fn delete_table(table: &str) -> Transaction {
    Transaction {
        script: format!("table inet {table}\ndelete table inet {table}\n"),
    }
}
