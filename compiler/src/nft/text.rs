//! IR → `nft -f` script text. One element per line, so goldens and diffs read well; the text is
//! also what chain names are hashed from, so it must stay canonical.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::ir::*;
use super::Ruleset;

pub fn match_text(m: &Match) -> String {
    match m {
        Match::CtState(states) => {
            let s: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
            format!("ct state {}", s.join(","))
        }
        Match::Icmpv6Nd => {
            let t: Vec<&str> = ND_TYPES.iter().map(|(n, _)| *n).collect();
            format!("icmpv6 type {{ {} }}", t.join(", "))
        }
        Match::AddrInSet { family, field, set } => {
            format!("{} {} @{set}", ip_proto(*family), field.as_str())
        }
        Match::L4Proto(p) => format!("meta l4proto {}", p.nft_name()),
        Match::Dports(ranges) => {
            let r: Vec<String> = ranges.iter().map(|&(a, z)| port_range_text(a, z)).collect();
            match r.as_slice() {
                [one] => format!("th dport {one}"),
                _ => format!("th dport {{ {} }}", r.join(", ")),
            }
        }
        Match::AddrProtoPortInSet { family, field, set } => format!(
            "{} {} . meta l4proto . th dport @{set}",
            ip_proto(*family),
            field.as_str()
        ),
        Match::SaddrLocal => "fib saddr type local".into(),
    }
}

fn port_range_text(start: u16, end: u16) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}-{end}")
    }
}

pub fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Return => "return".into(),
        Verdict::Jump(c) => format!("jump {c}"),
        Verdict::Goto(c) => format!("goto {c}"),
    }
}

fn quote(s: &str) -> String {
    // Our strings come from Kubernetes names, which cannot hold quotes; strip them defensively.
    format!("\"{}\"", s.replace(['"', '\\', '\n'], ""))
}

pub fn rule_text(r: &Rule) -> String {
    let mut parts: Vec<String> = r.matches.iter().map(match_text).collect();
    parts.push(match &r.action {
        Action::Verdict(v) => verdict_text(v),
        Action::Vmap { family, field, map } => {
            format!("{} {} vmap @{map}", ip_proto(*family), field.as_str())
        }
        Action::Log { prefix } => format!(
            "limit rate {LOG_RATE_PER_SECOND}/second burst {LOG_BURST_PACKETS} packets log prefix {}",
            quote(prefix)
        ),
    });
    if let Some(c) = &r.comment {
        parts.push(format!("comment {}", quote(c)));
    }
    parts.join(" ")
}

/// A chain's rules, one per line: the content its shared name is hashed from.
pub fn rules_text(rules: &[Rule]) -> String {
    let mut out = String::new();
    for r in rules {
        out.push_str(&rule_text(r));
        out.push('\n');
    }
    out
}

fn prefix_len(lo: u128, hi: u128, bits: u32) -> Option<u32> {
    let size = hi.wrapping_sub(lo).wrapping_add(1);
    if size == 0 {
        // The whole address space (only reachable for bits == 128).
        return (lo == 0).then_some(0);
    }
    if !size.is_power_of_two() || lo & (size - 1) != 0 {
        return None;
    }
    let host = size.trailing_zeros();
    (host <= bits).then(|| bits - host)
}

fn range_text(lo: IpAddr, hi: IpAddr) -> String {
    let (a, z, bits) = match (lo, hi) {
        (IpAddr::V4(a), IpAddr::V4(z)) => (u32::from(a) as u128, u32::from(z) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(z)) => (u128::from(a), u128::from(z), 128),
        _ => return format!("{lo}-{hi}"),
    };
    if a == z {
        return lo.to_string();
    }
    match prefix_len(a, z, bits) {
        Some(len) => format!("{lo}/{len}"),
        None => format!("{lo}-{hi}"),
    }
}

/// The prefix length of an inclusive range if it is exactly one CIDR block.
pub fn range_prefix(lo: IpAddr, hi: IpAddr) -> Option<u32> {
    match (lo, hi) {
        (IpAddr::V4(a), IpAddr::V4(z)) => prefix_len(u32::from(a) as u128, u32::from(z) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(z)) => prefix_len(u128::from(a), u128::from(z), 128),
        _ => None,
    }
}

pub fn element_text(e: &Element) -> String {
    match e {
        Element::Addr(ip) => ip.to_string(),
        Element::Range(lo, hi) => range_text(*lo, *hi),
        Element::AddrProtoPort(ip, p, port) => format!("{ip} . {} . {port}", p.nft_name()),
        Element::Verdict(ip, v) => format!("{ip} : {}", verdict_text(v)),
    }
}

pub fn set_type_text(kind: SetKind) -> String {
    match kind {
        SetKind::Addr(f) => addr_type(f).to_string(),
        SetKind::Interval(f) => addr_type(f).to_string(),
        SetKind::AddrProtoPort(f) => format!("{} . inet_proto . inet_service", addr_type(f)),
        SetKind::Vmap(f) => format!("{} : verdict", addr_type(f)),
    }
}

pub fn is_map(kind: SetKind) -> bool {
    matches!(kind, SetKind::Vmap(_))
}

fn write_set(out: &mut String, s: &Set) {
    let word = if is_map(s.kind) { "map" } else { "set" };
    let _ = writeln!(out, "\t{word} {} {{", s.name);
    let _ = writeln!(out, "\t\ttype {}", set_type_text(s.kind));
    if matches!(s.kind, SetKind::Interval(_)) {
        out.push_str("\t\tflags interval\n");
    }
    if let Some(c) = &s.comment {
        let mut c = c.clone();
        while c.len() > 127 {
            c.pop();
        }
        let _ = writeln!(out, "\t\tcomment {}", quote(&c));
    }
    if !s.elements.is_empty() {
        out.push_str("\t\telements = {\n");
        for e in &s.elements {
            let _ = writeln!(out, "\t\t\t{},", element_text(e));
        }
        out.push_str("\t\t}\n");
    }
    out.push_str("\t}\n");
}

fn write_chain(out: &mut String, c: &Chain) {
    let _ = writeln!(out, "\tchain {} {{", c.name);
    if let Some(b) = &c.base {
        let prio = if b.priority == FILTER_PRIORITY {
            "filter".to_string()
        } else {
            b.priority.to_string()
        };
        let _ = writeln!(
            out,
            "\t\ttype filter hook {} priority {prio}; policy accept;",
            b.hook
        );
    }
    for r in &c.rules {
        let _ = writeln!(out, "\t\t{}", rule_text(r));
    }
    out.push_str("\t}\n");
}

/// `table inet NAME { ... }`: the full definition.
pub fn table_text(rs: &Ruleset) -> String {
    let mut out = format!("table inet {} {{\n", rs.table);
    let mut first = true;
    for s in &rs.sets {
        if !first {
            out.push('\n');
        }
        first = false;
        write_set(&mut out, s);
    }
    for c in &rs.chains {
        if !first {
            out.push('\n');
        }
        first = false;
        write_chain(&mut out, c);
    }
    out.push_str("}\n");
    out
}

/// `add element` / `delete element` for one set.
pub fn elements_command(verb: &str, table: &str, set: &str, elements: &[Element]) -> String {
    let mut out = format!("{verb} element inet {table} {set} {{\n");
    for e in elements {
        let _ = writeln!(out, "\t{},", element_text(e));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_print_as_prefixes_when_they_are_one() {
        let r = |a: &str, z: &str| range_text(a.parse().unwrap(), z.parse().unwrap());
        assert_eq!(r("10.0.0.0", "10.0.0.255"), "10.0.0.0/24");
        assert_eq!(r("10.0.0.1", "10.0.0.255"), "10.0.0.1-10.0.0.255");
        assert_eq!(r("10.0.0.7", "10.0.0.7"), "10.0.0.7");
        assert_eq!(r("0.0.0.0", "255.255.255.255"), "0.0.0.0/0");
        assert_eq!(r("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "::/0");
        assert_eq!(r("fd00::", "fd00::ffff"), "fd00::/112");
    }
}
