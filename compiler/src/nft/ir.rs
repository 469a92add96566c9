//! The typed ruleset IR: one `inet` table of named sets and maps, chains, and rules made of typed
//! matches and one action. It is what the renderer produces and what the text, JSON, delta and
//! tracer back ends read, so all four agree by construction. Everything is kept in canonical
//! order (sets and chains by name, elements sorted), which makes equal rulesets equal values.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use crate::model::{Family, Protocol};

/// The base-chain hooks we attach to (never `output`: the node's own traffic is not ours to filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    Forward,
    Input,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Forward => "forward",
            Hook::Input => "input",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The priority our base chains use: `filter` (0), after `dstnat` (-100) so that service traffic
/// is seen with the backend pod's address.
pub const FILTER_PRIORITY: i32 = 0;

/// Which address of the packet a match or map lookup reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddrField {
    Saddr,
    Daddr,
}

impl AddrField {
    pub fn as_str(self) -> &'static str {
        match self {
            AddrField::Saddr => "saddr",
            AddrField::Daddr => "daddr",
        }
    }
}

/// `ip` or `ip6`, the payload protocol an address match reads.
pub fn ip_proto(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ip6",
    }
}

pub fn addr_type(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4_addr",
        Family::Ipv6 => "ipv6_addr",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CtState {
    Invalid,
    Established,
    Related,
    New,
    Untracked,
}

impl CtState {
    pub fn as_str(self) -> &'static str {
        match self {
            CtState::Invalid => "invalid",
            CtState::Established => "established",
            CtState::Related => "related",
            CtState::New => "new",
            CtState::Untracked => "untracked",
        }
    }
}

/// ICMPv6 neighbour-discovery types, which must always pass or IPv6 stops working.
pub const ND_TYPES: [(&str, u8); 5] = [
    ("nd-router-solicit", 133),
    ("nd-router-advert", 134),
    ("nd-neighbor-solicit", 135),
    ("nd-neighbor-advert", 136),
    ("nd-redirect", 137),
];

/// One match of a rule; all of a rule's matches must hold.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Match {
    /// `ct state a,b`: the connection is in one of these states.
    CtState(Vec<CtState>),
    /// `icmpv6 type { nd-... }`.
    Icmpv6Nd,
    /// `ip saddr @set` / `ip6 daddr @set`.
    AddrInSet {
        family: Family,
        field: AddrField,
        set: String,
    },
    /// `meta l4proto tcp`.
    L4Proto(Protocol),
    /// `th dport 80`, `th dport 80-90` or `th dport { 22, 80-90 }` (only after an
    /// [`Match::L4Proto`]): sorted, disjoint, non-adjacent inclusive ranges.
    Dports(Vec<(u16, u16)>),
    /// `ip daddr . meta l4proto . th dport @set`: the destination's named port.
    AddrProtoPortInSet {
        family: Family,
        field: AddrField,
        set: String,
    },
    /// `fib saddr type local`: the source is one of this node's own addresses.
    SaddrLocal,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
}

/// What a rule does once its matches hold.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Verdict(Verdict),
    /// `ip saddr vmap @map`: the verdict stored for the packet's address, if any.
    Vmap {
        family: Family,
        field: AddrField,
        map: String,
    },
    /// `limit rate R/second burst B packets log prefix "..."` (then the next rule).
    Log {
        prefix: String,
    },
}

/// Rate limit of drop logging, per pod drop chain.
pub const LOG_RATE_PER_SECOND: u32 = 10;
pub const LOG_BURST_PACKETS: u32 = 5;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub action: Action,
    /// Where the rule comes from (`namespace/policy ingress[0]`), for people reading the ruleset.
    pub comment: Option<String>,
}

impl Rule {
    pub fn new(matches: Vec<Match>, action: Action) -> Rule {
        Rule {
            matches,
            action,
            comment: None,
        }
    }

    pub fn verdict(matches: Vec<Match>, v: Verdict) -> Rule {
        Rule::new(matches, Action::Verdict(v))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BaseChain {
    pub hook: Hook,
    pub priority: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chain {
    pub name: String,
    /// `Some` for a base chain (type filter, policy accept).
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

/// The key type of a named set or map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetKind {
    /// `type ipv4_addr`: exact addresses.
    Addr(Family),
    /// `type ipv4_addr; flags interval`: non-overlapping ranges.
    Interval(Family),
    /// `type ipv4_addr . inet_proto . inet_service`.
    AddrProtoPort(Family),
    /// `type ipv4_addr : verdict`.
    Vmap(Family),
}

impl SetKind {
    pub fn family(self) -> Family {
        match self {
            SetKind::Addr(f) | SetKind::Interval(f) | SetKind::AddrProtoPort(f) | SetKind::Vmap(f) => f,
        }
    }
}

/// One element; its shape matches the set's [`SetKind`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    Addr(IpAddr),
    /// Inclusive range, written as a prefix when it is one.
    Range(IpAddr, IpAddr),
    AddrProtoPort(IpAddr, Protocol, u16),
    /// A verdict-map entry.
    Verdict(IpAddr, Verdict),
}

impl Element {
    /// The element's key, which is what `delete element` names.
    pub fn key(&self) -> Element {
        match self {
            Element::Verdict(ip, _) => Element::Addr(*ip),
            other => other.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Set {
    pub name: String,
    pub kind: SetKind,
    pub elements: BTreeSet<Element>,
    pub comment: Option<String>,
}

impl Set {
    pub fn new(name: impl Into<String>, kind: SetKind) -> Set {
        Set {
            name: name.into(),
            kind,
            elements: BTreeSet::new(),
            comment: None,
        }
    }

    /// The verdict stored for `ip` in a verdict map. `Verdict::Accept` is the smallest verdict, so
    /// the first element at or after `(ip, accept)` is `ip`'s entry if it has one.
    pub fn lookup_verdict(&self, ip: IpAddr) -> Option<&Verdict> {
        match self
            .elements
            .range(Element::Verdict(ip, Verdict::Accept)..)
            .next()
        {
            Some(Element::Verdict(k, v)) if *k == ip => Some(v),
            _ => None,
        }
    }
}
