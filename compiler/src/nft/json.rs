//! IR → nft JSON, through the `nftables` crate's typed `schema` objects. Order within a definition:
//! table, every chain (empty), sets and maps with their elements, then rules, so that every jump
//! target and set exists before anything refers to it.
//!
//! Verdict maps: `schema::Map::map` cannot say `verdict` in nftables 0.6 (no such `SetType`), so
//! maps are built with a placeholder value type and [`transaction_json`] rewrites the serialized
//! `"map"` field to `"verdict"`. Every map this module emits is a verdict map, which makes the
//! rewrite unambiguous.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use nftables::expr::{self, Expression, NamedExpression, Payload, PayloadField};
use nftables::schema::{self, NfCmd, NfListObject, NfObject, Nftables, SetFlag, SetType, SetTypeValue};
use nftables::stmt::{self, JumpTarget, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::ir::*;
use super::text::range_prefix;
use super::{Command, Ruleset};
use crate::model::Family;

/// Placeholder value type for verdict maps, replaced after serialization.
const VMAP_PLACEHOLDER: SetType = SetType::Mark;

fn s(v: impl Into<String>) -> Cow<'static, str> {
    Cow::Owned(v.into())
}

fn payload(protocol: &str, field: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: s(protocol),
        field: s(field),
    })))
}

fn meta_l4proto() -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(expr::Meta {
        key: expr::MetaKey::L4proto,
    }))
}

fn addr_expr(family: Family, field: AddrField) -> Expression<'static> {
    payload(ip_proto(family), field.as_str())
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(stmt::Match {
        left,
        right,
        op: Operator::EQ,
    })
}

fn set_ref(name: &str) -> Expression<'static> {
    Expression::String(s(format!("@{name}")))
}

fn match_stmt(m: &Match) -> Statement<'static> {
    match m {
        Match::CtState(states) => Statement::Match(stmt::Match {
            left: Expression::Named(NamedExpression::CT(expr::CT {
                key: s("state"),
                family: None,
                dir: None,
            })),
            right: if states.len() == 1 {
                Expression::String(s(states[0].as_str()))
            } else {
                Expression::List(
                    states
                        .iter()
                        .map(|st| Expression::String(s(st.as_str())))
                        .collect(),
                )
            },
            op: Operator::IN,
        }),
        Match::Icmpv6Nd => eq(
            payload("icmpv6", "type"),
            Expression::Named(NamedExpression::Set(
                ND_TYPES
                    .iter()
                    .map(|(n, _)| expr::SetItem::Element(Expression::String(s(*n))))
                    .collect(),
            )),
        ),
        Match::AddrInSet { family, field, set } => eq(addr_expr(*family, *field), set_ref(set)),
        Match::L4Proto(p) => eq(meta_l4proto(), Expression::String(s(p.nft_name()))),
        Match::Dports(ranges) => {
            let port = |&(a, z): &(u16, u16)| {
                if a == z {
                    Expression::Number(u32::from(a))
                } else {
                    Expression::Range(Box::new(expr::Range {
                        range: [Expression::Number(u32::from(a)), Expression::Number(u32::from(z))],
                    }))
                }
            };
            let right = match ranges.as_slice() {
                [one] => port(one),
                _ => Expression::Named(NamedExpression::Set(
                    ranges.iter().map(|r| expr::SetItem::Element(port(r))).collect(),
                )),
            };
            eq(payload("th", "dport"), right)
        }
        Match::AddrProtoPortInSet { family, field, set } => eq(
            Expression::Named(NamedExpression::Concat(vec![
                addr_expr(*family, *field),
                meta_l4proto(),
                payload("th", "dport"),
            ])),
            set_ref(set),
        ),
        Match::SaddrLocal => eq(
            Expression::Named(NamedExpression::Fib(expr::Fib {
                result: expr::FibResult::Type,
                flags: HashSet::from([expr::FibFlag::Saddr]),
            })),
            Expression::String(s("local")),
        ),
    }
}

fn verdict_expr(v: &Verdict) -> expr::Verdict<'static> {
    match v {
        Verdict::Accept => expr::Verdict::Accept,
        Verdict::Drop => expr::Verdict::Drop,
        Verdict::Return => expr::Verdict::Return,
        Verdict::Jump(c) => expr::Verdict::Jump(JumpTarget {
            target: s(c.as_str()),
        }),
        Verdict::Goto(c) => expr::Verdict::Goto(JumpTarget {
            target: s(c.as_str()),
        }),
    }
}

fn verdict_stmt(v: &Verdict) -> Statement<'static> {
    match v {
        Verdict::Accept => Statement::Accept(None),
        Verdict::Drop => Statement::Drop(None),
        Verdict::Return => Statement::Return(None),
        Verdict::Jump(c) => Statement::Jump(JumpTarget {
            target: s(c.as_str()),
        }),
        Verdict::Goto(c) => Statement::Goto(JumpTarget {
            target: s(c.as_str()),
        }),
    }
}

fn rule_stmts(r: &Rule) -> Vec<Statement<'static>> {
    let mut out: Vec<Statement<'static>> = r.matches.iter().map(match_stmt).collect();
    match &r.action {
        Action::Verdict(v) => out.push(verdict_stmt(v)),
        Action::Vmap { family, field, map } => out.push(Statement::VerdictMap(stmt::VerdictMap {
            key: addr_expr(*family, *field),
            data: set_ref(map),
        })),
        Action::Log { prefix } => {
            out.push(Statement::Limit(stmt::Limit {
                rate: LOG_RATE_PER_SECOND,
                rate_unit: Some(s("packets")),
                per: Some(s("second")),
                burst: Some(LOG_BURST_PACKETS),
                burst_unit: Some(s("packets")),
                inv: None,
            }));
            let mut log = stmt::Log::new(None);
            log.prefix = Some(s(prefix.as_str()));
            out.push(Statement::Log(Some(log)));
        }
    }
    out
}

fn ip_expr(ip: &IpAddr) -> Expression<'static> {
    Expression::String(s(ip.to_string()))
}

fn element_expr(e: &Element) -> Expression<'static> {
    match e {
        Element::Addr(ip) => ip_expr(ip),
        Element::Range(lo, hi) if lo == hi => ip_expr(lo),
        Element::Range(lo, hi) => match range_prefix(*lo, *hi) {
            Some(len) => Expression::Named(NamedExpression::Prefix(expr::Prefix {
                addr: Box::new(ip_expr(lo)),
                len,
            })),
            None => Expression::Range(Box::new(expr::Range {
                range: [ip_expr(lo), ip_expr(hi)],
            })),
        },
        Element::AddrProtoPort(ip, p, port) => Expression::Named(NamedExpression::Concat(vec![
            ip_expr(ip),
            Expression::String(s(p.nft_name())),
            Expression::Number(u32::from(*port)),
        ])),
        Element::Verdict(ip, v) => Expression::List(vec![ip_expr(ip), Expression::Verdict(verdict_expr(v))]),
    }
}

fn set_type(kind: SetKind) -> SetTypeValue<'static> {
    let addr = |f: Family| match f {
        Family::Ipv4 => SetType::Ipv4Addr,
        Family::Ipv6 => SetType::Ipv6Addr,
    };
    match kind {
        SetKind::Addr(f) | SetKind::Interval(f) | SetKind::Vmap(f) => SetTypeValue::Single(addr(f)),
        SetKind::AddrProtoPort(f) => SetTypeValue::Concatenated(Cow::Owned(vec![
            addr(f),
            SetType::InetProto,
            SetType::InetService,
        ])),
    }
}

fn set_object(table: &str, set: &Set, elements: Option<&[Element]>) -> NfListObject<'static> {
    let elem = elements
        .filter(|e| !e.is_empty())
        .map(|e| Cow::Owned(e.iter().map(element_expr).collect::<Vec<_>>()));
    if matches!(set.kind, SetKind::Vmap(_)) {
        NfListObject::Map(Box::new(schema::Map {
            family: NfFamily::INet,
            table: s(table),
            name: s(set.name.as_str()),
            handle: None,
            set_type: set_type(set.kind),
            map: SetTypeValue::Single(VMAP_PLACEHOLDER),
            policy: None,
            flags: None,
            elem,
            timeout: None,
            gc_interval: None,
            size: None,
            comment: set.comment.clone().map(Cow::Owned),
        }))
    } else {
        NfListObject::Set(Box::new(schema::Set {
            family: NfFamily::INet,
            table: s(table),
            name: s(set.name.as_str()),
            handle: None,
            set_type: set_type(set.kind),
            policy: None,
            flags: matches!(set.kind, SetKind::Interval(_)).then(|| HashSet::from([SetFlag::Interval])),
            elem,
            timeout: None,
            gc_interval: None,
            size: None,
            comment: set.comment.clone().map(Cow::Owned),
        }))
    }
}

fn table_object(table: &str) -> NfListObject<'static> {
    NfListObject::Table(schema::Table {
        family: NfFamily::INet,
        name: s(table),
        handle: None,
    })
}

fn define(rs: &Ruleset, out: &mut Vec<NfObject<'static>>) {
    out.push(NfObject::CmdObject(NfCmd::Add(table_object(&rs.table))));
    for c in &rs.chains {
        let base = c.base.as_ref();
        out.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(
            schema::Chain {
                family: NfFamily::INet,
                table: s(rs.table.as_str()),
                name: s(c.name.as_str()),
                newname: None,
                handle: None,
                _type: base.map(|_| NfChainType::Filter),
                hook: base.map(|b| match b.hook {
                    Hook::Forward => NfHook::Forward,
                    Hook::Input => NfHook::Input,
                }),
                prio: base.map(|b| b.priority),
                dev: None,
                policy: base.map(|_| NfChainPolicy::Accept),
            },
        ))));
    }
    for set in &rs.sets {
        let elements: Vec<Element> = set.elements.iter().cloned().collect();
        out.push(NfObject::CmdObject(NfCmd::Add(set_object(
            &rs.table,
            set,
            Some(&elements),
        ))));
    }
    for c in &rs.chains {
        for r in &c.rules {
            out.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(
                schema::Rule {
                    family: NfFamily::INet,
                    table: s(rs.table.as_str()),
                    chain: s(c.name.as_str()),
                    expr: Cow::Owned(rule_stmts(r)),
                    handle: None,
                    index: None,
                    comment: r.comment.clone().map(Cow::Owned),
                },
            ))));
        }
    }
}

fn element_object(table: &str, set: &Set, elements: &[Element]) -> NfListObject<'static> {
    NfListObject::Element(schema::Element {
        family: NfFamily::INet,
        table: s(table),
        name: s(set.name.as_str()),
        elem: Cow::Owned(elements.iter().map(element_expr).collect()),
    })
}

/// The crate's objects for a transaction (verdict maps still carry the placeholder value type).
pub(crate) fn transaction_objects(commands: &[Command]) -> Nftables<'static> {
    let mut out = Vec::new();
    for c in commands {
        match c {
            Command::AddTable(t) => out.push(NfObject::CmdObject(NfCmd::Add(table_object(t)))),
            Command::DeleteTable(t) => out.push(NfObject::CmdObject(NfCmd::Delete(table_object(t)))),
            Command::Define(rs) => define(rs, &mut out),
            Command::AddElements { table, set, elements } => out.push(NfObject::CmdObject(NfCmd::Add(
                element_object(table, set, elements),
            ))),
            Command::DeleteElements { table, set, elements } => out.push(NfObject::CmdObject(NfCmd::Delete(
                element_object(table, set, elements),
            ))),
        }
    }
    Nftables {
        objects: Cow::Owned(out),
    }
}

/// The complete nft JSON of a transaction, verdict maps declared as such.
pub fn transaction_json(commands: &[Command]) -> serde_json::Value {
    let mut v = serde_json::to_value(transaction_objects(commands)).expect("schema objects serialize");
    if let Some(objects) = v.get_mut("nftables").and_then(|o| o.as_array_mut()) {
        for obj in objects {
            let map = obj
                .as_object_mut()
                .and_then(|cmd| cmd.values_mut().next())
                .and_then(|o| o.get_mut("map"))
                .and_then(|m| m.as_object_mut());
            if let Some(map) = map {
                map.insert("map".into(), serde_json::Value::String("verdict".into()));
            }
        }
    }
    v
}
