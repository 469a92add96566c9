//! The nftables ruleset for one node: NetworkPolicy enforced in one private table, `inet policyc`
//! (nothing else is read or touched), rendered from the [`Cluster`] as a typed IR ([`ir`]) and
//! written as an `nft -f` script ([`text`]) or nft JSON ([`json`]), applied atomically or as
//! element deltas ([`update`]), and checkable in memory by a packet tracer ([`tracer`]).
//!
//! # Where packets meet the table
//!
//! A node enforces ingress to its own pods (`spec.nodeName` is the node, addressable, not
//! hostNetwork) and egress from them. Two base chains, both `type filter`, `policy accept`:
//!
//! - **`forward`, hook `forward`, priority `filter` (0).** Every pod packet that crosses the node:
//!   same-node pod to pod across the bridge (`cni0`/`cbr0`: with `br_netfilter` on, bridged IP
//!   packets traverse the inet `forward` hook with iif and oif both the bridge), and cross-node
//!   via `flannel.1` (vxlan) or the underlay (host-gw, kubenet routes). The source pod's egress is
//!   checked first (`ip saddr vmap @egress4`), then the destination pod's ingress
//!   (`ip daddr vmap @ingress4`); a pod on another node is in neither map here, and its own
//!   node checks its side.
//! - **`input`, hook `input`, priority `filter` (0).** A local pod talking to the node itself
//!   (a node address, a hostNetwork pod): only that pod's egress applies (the node is not a pod).
//!
//! Same-node enforcement needs `br_netfilter` with `net.bridge.bridge-nf-call-iptables=1` (and
//! `-ip6tables=1`), which flannel and kubenet set up anyway; without it bridged packets skip the
//! inet hooks and only cross-node and pod-to-node traffic is filtered.
//!
//! There is no `output` chain: node → local pod leaves through OUTPUT and is always allowed, as
//! NetworkPolicy requires (the kubelet's probes come from there).
//!
//! Priority 0 is after `dstnat` (-100), so traffic to a Service is judged with the backend pod's
//! address that kube-proxy's DNAT wrote:
//! - *iptables mode*: DNAT in `nat PREROUTING` (-100) for traffic from pods (bridged packets reach
//!   it through `br_netfilter`), so `forward` sees the backend. kube-proxy's own `filter FORWARD`
//!   accepts (KUBE-FORWARD) do not override us: an `accept` ends only the chain that issues it,
//!   while our `drop` is final for the packet, whatever order the chains of other tables run in.
//! - *nftables mode*: kube-proxy's `dstnat` chains at priority -100 in its own table; same story.
//! - *ipvs mode*: **not fully covered.** The Service VIP is local (bound to `kube-ipvs0`), so a
//!   pod's packet to a VIP enters `input` with the VIP as destination (an isolated pod's egress is
//!   judged against the VIP, which only an ipBlock covering the Service range admits); IPVS then
//!   re-sends it through LOCAL_OUT, which we do not filter, so the backend's ingress is enforced
//!   only when the backend is on another node (it arrives there through `forward`). Direct
//!   pod-to-pod traffic is fully covered in every mode.
//!
//! # Rules
//!
//! Both base chains start with `ct state established,related accept` (replies of allowed
//! connections), `forward` with `ct state invalid drop` (for `input` only packets from local pods:
//! `ct state invalid ip saddr @local4 drop`), and IPv6 neighbour discovery (`icmpv6 type { nd-* }`)
//! always passes. Then dispatch by verdict maps keyed by the local pod's address into chains
//! shared by every pod whose rendered rule list is identical: the chain is named by a short hash of
//! its text (`ing-3f9a1c2b`, `egr-...`), so adding a pod to an existing group only adds map
//! elements. Inside these chains "allowed" is `return` (so `forward` goes on to the ingress
//! check) and the last rule is `drop`. A group's rules are sorted and deduplicated, one per
//! (peer match, protocol) with the ports in one anonymous interval set (`th dport { 22, 80-90 }`).
//! The per-packet cost is two map lookups and the rules of one group (bounded by the rules of the
//! policies that select that pod), whatever the number of pods or other policies.
//!
//! Peers are named sets shared by every rule that uses the same selector: `pods-<hash>-v4` for a
//! (namespace match, pod selector) pair, holding the IPs of matching non-hostNetwork pods;
//! `cidr-<hash>-v4` (`flags interval`) for an ipBlock, whose `cidr` minus `except` is computed here
//! as non-overlapping ranges; `np-<hash>-v4` (`ipv4_addr . inet_proto . inet_service`) for an egress
//! rule's named port, holding `ip . proto . port` of the peer pods that define it (ingress named
//! ports resolve on the local pod and become plain `th dport N`). Only sets that this node's
//! chains use are declared, so their number follows distinct selectors, not pods × policies.
//!
//! # Pods the agent has not programmed yet
//!
//! A pod's address reaches the maps only once the agent has seen it in the API, so a pod that
//! starts before that is in no map and passes unpoliced (fail open). With
//! [`UnprogrammedPods::Drop`], an interval set `pod-cidrs4` (`-6`) holds this node's pod CIDRs
//! and, after the established/invalid/neighbour-discovery rules, `forward` sends a packet whose
//! source or destination is in it to `unprogrammed-saddr4` / `unprogrammed-daddr4`, and `input`
//! one whose source is in it to `unprogrammed-saddr4`. Those chains return for a known local pod
//! (`@local4`) and, for the source, for the node's own addresses (`fib saddr type local`: the
//! bridge's `10.244.1.1` and flannel.1's `10.244.1.0` are inside the CIDR and talk to
//! themselves over `lo`), and drop everything else. Node-to-pod traffic leaves through OUTPUT
//! and is never filtered, so kubelet probes keep reaching a new pod.
//!
//! With `log_drops`, each group chain ends with a lookup in `ingress-log4` (or `egress-log4`)
//! that `goto`s the pod's own drop chain, which logs new connections (rate limited) with a prefix
//! naming the pod, then drops.
//!
//! # The `nftables` crate
//!
//! JSON is built from the crate's typed `schema` objects. One construct cannot be expressed with
//! nftables 0.6: a *verdict map declaration*. `schema::Map::map` is a `SetTypeValue`, and
//! `SetType` has no `verdict` variant (upstream issue nftables-rs/nftables-rs#237; for the same
//! reason the crate cannot parse a table holding a vmap, so read our table back as plain JSON).
//! The workaround, in [`json`]: the map is built with a placeholder value type and the serialized
//! object's `"map"` field is rewritten to `"verdict"`. Hence [`Transaction::json`] returns
//! `serde_json::Value`; apply it with `nftables::helper::apply_ruleset_raw(&tx.json_text(), ..)`.

use ipnet::IpNet;

use crate::model::Cluster;

pub mod ir;
pub mod json;
pub mod render;
pub mod text;
pub mod tracer;
pub mod update;

/// What to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// The node whose pods are enforced (`spec.nodeName`).
    pub node: String,
    /// The private table's name, in family `inet`.
    pub table: String,
    /// Log dropped new connections (rate limited), with a prefix naming the pod.
    pub log_drops: bool,
    /// Traffic of an address in this node's pod CIDRs that no known pod has (a pod started
    /// before the agent learnt its IP): passed (the default) or dropped.
    pub unprogrammed_pods: UnprogrammedPods,
    /// This node's pod CIDRs for [`UnprogrammedPods::Drop`]; empty means the Node's
    /// `spec.podCIDRs`.
    pub pod_cidrs: Vec<IpNet>,
}

/// What the ruleset does with an address inside this node's pod CIDRs that belongs to no pod it
/// knows. Whatever the choice, the node's own addresses, node-to-pod traffic, replies of
/// established connections and IPv6 neighbour discovery pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnprogrammedPods {
    /// Fail open: not in any verdict map, so not policed until the agent programs it.
    #[default]
    Allow,
    /// Fail closed: dropped to and from, until the agent programs it.
    Drop,
}

impl RenderOptions {
    pub fn new(node: impl Into<String>) -> Self {
        RenderOptions {
            node: node.into(),
            table: DEFAULT_TABLE.to_string(),
            log_drops: false,
            unprogrammed_pods: UnprogrammedPods::Allow,
            pod_cidrs: Vec::new(),
        }
    }

    /// The pod CIDRs that [`UnprogrammedPods::Drop`] guards: the override, else the Node's.
    pub fn node_pod_cidrs(&self, cluster: &Cluster) -> Vec<IpNet> {
        if !self.pod_cidrs.is_empty() {
            return self.pod_cidrs.clone();
        }
        cluster
            .nodes
            .get(&self.node)
            .map(|n| n.pod_cidrs.clone())
            .unwrap_or_default()
    }
}

pub const DEFAULT_TABLE: &str = "policyc";

/// Whether `name` is an nft identifier (a letter, then letters, digits, `_` or `-`; what `nft`
/// accepts unquoted), so a table name cannot smuggle anything into a script.
pub fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 255
}

/// The complete desired state of the table for one node. Deterministic: the same cluster and
/// options give an equal value and the same bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
    /// Named sets and maps, sorted by name.
    pub sets: Vec<ir::Set>,
    /// The base chains (`forward`, `input`), then the others sorted by name.
    pub chains: Vec<ir::Chain>,
}

/// Size of a ruleset, for metrics and the measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub chains: usize,
    pub rules: usize,
    pub sets: usize,
    pub elements: usize,
}

/// One step of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `add table inet T`: create it if absent, so the delete that follows cannot fail.
    AddTable(String),
    DeleteTable(String),
    /// The full table definition.
    Define(Ruleset),
    AddElements {
        table: String,
        set: ir::Set,
        elements: Vec<ir::Element>,
    },
    /// Removes elements by key.
    DeleteElements {
        table: String,
        set: ir::Set,
        elements: Vec<ir::Element>,
    },
}

/// One nft transaction (all or nothing), as an `nft -f` script and as nft JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
    /// The exact `nft -f` text.
    pub script: String,
    pub commands: Vec<Command>,
}

impl Transaction {
    pub fn new(commands: Vec<Command>) -> Transaction {
        let script = commands.iter().map(update::command_text).collect();
        Transaction { script, commands }
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The transaction as nft JSON (`{"nftables": [...]}`), for `nft -j -f`.
    pub fn json(&self) -> serde_json::Value {
        json::transaction_json(&self.commands)
    }

    /// [`Transaction::json`] as text, for `nftables::helper::apply_ruleset_raw`.
    pub fn json_text(&self) -> String {
        serde_json::to_string(&self.json()).expect("JSON values serialize")
    }
}

pub fn render(cluster: &Cluster, opts: &RenderOptions) -> Ruleset {
    render::render(cluster, opts)
}

impl Ruleset {
    /// The transaction that replaces the table atomically with this ruleset, whatever was there.
    pub fn replace(&self) -> Transaction {
        Transaction::new(vec![
            Command::AddTable(self.table.clone()),
            Command::DeleteTable(self.table.clone()),
            Command::Define(self.clone()),
        ])
    }

    /// The smallest transaction that turns `previous` (what the kernel has) into `self`: element
    /// updates when only sets and maps changed, else a full atomic replacement; empty if equal.
    pub fn update_from(&self, previous: &Ruleset) -> Transaction {
        update::update_from(self, previous)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            chains: self.chains.len(),
            rules: self.chains.iter().map(|c| c.rules.len()).sum(),
            sets: self.sets.len(),
            elements: self.sets.iter().map(|s| s.elements.len()).sum(),
        }
    }

    /// The `table inet T { ... }` definition alone.
    pub fn text(&self) -> String {
        text::table_text(self)
    }

    pub fn chain(&self, name: &str) -> Option<&ir::Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub fn set(&self, name: &str) -> Option<&ir::Set> {
        self.sets
            .binary_search_by(|s| s.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.sets[i])
    }
}

/// The transaction that removes the table (uninstall); succeeds whether or not it exists.
pub fn delete_table(table: &str) -> Transaction {
    Transaction::new(vec![
        Command::AddTable(table.to_string()),
        Command::DeleteTable(table.to_string()),
    ])
}
