//! Input generators for the fuzz tests: structured random Kubernetes objects (Namespaces, Nodes,
//! Pods, NetworkPolicies) that mix valid values with the odd and invalid ones users and API
//! servers produce (bad CIDRs, ports 0 and 65536, endPort below port, empty and huge label values,
//! unknown fields, wrong types, named ports, IPv6, odd selectors), written as YAML or JSON in
//! several layouts; and byte-level mutations of valid YAML files.
//!
//! Shared by `compiler/tests/fuzz.rs` (library pipeline) and the root crate's
//! `tests/fuzz_cli.rs` (the `policyc` binary), which includes this file by path.

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::{json, Map, Value};

/// One generated input: files as (name, contents).
#[derive(Clone, Debug)]
pub struct Input {
    pub files: Vec<(String, String)>,
}

impl Input {
    /// Everything, for a failure message.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (name, text) in &self.files {
            let shown: String = text.chars().take(6000).collect();
            s.push_str(&format!("--- {name} ({} bytes)\n{shown}\n", text.len()));
        }
        s
    }
}

fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            "UPPER",
            "a/b",
            "x y",
            "ñandú",
            "-lead",
            "trail-",
            "a.b",
            "a_b",
            "0",
            "null",
            "true",
            "}{",
            "\"q\"",
            "back\\slash",
            "semi;colon",
            "# hash",
            "tab\tin",
            "new\nline",
        ])
        .prop_map(String::from),
        (1usize..400).prop_map(|n| "n".repeat(n)),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => select(vec!["a", "b", "web", "db", "api", "client"]).prop_map(String::from),
        1 => odd_string(),
    ]
}

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => select(vec!["default", "alpha", "beta"]).prop_map(String::from),
        1 => odd_string(),
    ]
}

fn label_key() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => select(vec!["app", "tier", "team", "env", "kubernetes.io/metadata.name", "example.com/role"])
            .prop_map(String::from),
        1 => select(vec!["", "bad key!", "/x", "a/", "a/b/c", "-x", "UPPER/Case"]).prop_map(String::from),
        1 => (60usize..300).prop_map(|n| "k".repeat(n)),
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => select(vec!["web", "db", "api", "a", "b", "prod", "dev", "front", "back"]).prop_map(String::from),
        2 => Just(String::new()),
        1 => select(vec!["a b", "--", "-x", "x-", "ü", "a,b", "a=b"]).prop_map(String::from),
        1 => (64usize..20_000).prop_map(|n| "v".repeat(n)),
    ]
}

fn labels() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(label_key(), label_value(), 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u8..3, 0u8..=255).prop_map(|(n, h)| format!("10.244.{n}.{h}")),
        3 => (0u16..3, 0u16..0xffff).prop_map(|(n, h)| format!("fd00:10:244:{n:x}::{h:x}")),
        1 => select(vec![
            "::ffff:10.244.0.9", "10.244.0.1/24", "", "300.1.1.1", "fe80::1%eth0", "0.0.0.0",
            "255.255.255.255", "::", "::1", "127.0.0.1", "198.18.0.1", "10.244.0.010", "fd00:10:244::",
            "not-an-ip",
        ])
        .prop_map(String::from),
    ]
}

fn cidr() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u8..3, 0u8..=255, 0u8..=33).prop_map(|(n, h, l)| format!("10.244.{n}.{h}/{l}")),
        2 => (0u16..3, 0u16..=129).prop_map(|(n, l)| format!("fd00:10:244:{n:x}::/{l}")),
        1 => select(vec![
            "0.0.0.0/0", "::/0", "10.244.0.0/16", "198.18.0.0/15", "10.244.0.5/32", "fd00:10:244::/48",
            "10.0.0.0/8", "", "10.244.0.0", "10.244.0.0/-1", "10.244.0.0/", "/24", "a.b.c.d/8",
            "10.244.0.0/16/8", "::ffff:10.244.0.0/104", "10.244.0.0 /16", "fd00::/200",
        ])
        .prop_map(String::from),
    ]
}

fn port_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(vec!["http", "dns", "web", "metrics", "sctp"]).prop_map(String::from),
        1 => select(vec!["HTTP", "1234", "a--b", "-x", "toolongportname-x", "", "a b", "p_q"])
            .prop_map(String::from),
    ]
}

fn port_number() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => select(vec![0i64, -1, 1, 53, 80, 443, 7777, 8080, 8081, 65535, 65536, 100_000, i64::from(i32::MAX) + 1]),
        3 => 1i64..=65535,
    ]
}

fn protocol() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        6 => select(vec!["TCP", "UDP", "SCTP"]).prop_map(|s| Some(s.to_string())),
        1 => select(vec!["ICMP", "tcp", "", "ALL"]).prop_map(|s| Some(s.to_string())),
    ]
}

fn container_port() -> impl Strategy<Value = Value> {
    (port_number(), prop::option::of(port_name()), protocol()).prop_map(|(port, name, proto)| {
        let mut v = json!({ "containerPort": port });
        if let Some(n) = name {
            v["name"] = json!(n);
        }
        if let Some(p) = proto {
            v["protocol"] = json!(p);
        }
        v
    })
}

fn node_name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        8 => select(vec!["node-0", "node-1"]).prop_map(|s| Some(s.to_string())),
        1 => Just(None),
        1 => odd_string().prop_map(Some),
    ]
}

fn phase() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => Just(Some("Running".to_string())),
        1 => Just(None),
        1 => select(vec!["Pending", "Succeeded", "Failed", "Unknown", "bogus"]).prop_map(|s| Some(s.to_string())),
    ]
}

fn pod() -> impl Strategy<Value = Value> {
    (
        (namespace(), name(), labels()),
        (node_name(), prop::bool::weighted(0.1), phase()),
        prop::collection::vec(ip(), 0..3),
        prop::collection::vec(container_port(), 0..4),
        prop::collection::vec(container_port(), 0..2),
    )
        .prop_map(
            |((ns, name, labels), (node, host_network, phase), ips, ports, ports2)| {
                let mut spec = json!({
                    "containers": [
                        {"name": "main", "image": "i", "ports": ports},
                        {"name": "side", "image": "i", "ports": ports2},
                    ],
                });
                if let Some(n) = node {
                    spec["nodeName"] = json!(n);
                }
                if host_network {
                    spec["hostNetwork"] = json!(true);
                }
                let mut status = json!({});
                if let Some(p) = phase {
                    status["phase"] = json!(p);
                }
                if let Some(first) = ips.first() {
                    status["podIP"] = json!(first);
                    status["podIPs"] = Value::Array(ips.iter().map(|i| json!({ "ip": i })).collect());
                }
                json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns, "labels": labels},
                    "spec": spec,
                    "status": status,
                })
            },
        )
}

fn namespace_object() -> impl Strategy<Value = Value> {
    (namespace(), labels()).prop_map(|(name, labels)| {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    })
}

fn node_object() -> impl Strategy<Value = Value> {
    (
        select(vec!["node-0", "node-1", "node-2"]),
        prop::collection::vec((select(vec!["InternalIP", "ExternalIP", "Hostname"]), ip()), 0..3),
        prop::collection::vec(cidr(), 0..3),
    )
        .prop_map(|(name, addrs, cidrs)| {
            let addresses: Vec<Value> = addrs
                .into_iter()
                .map(|(t, a)| json!({"type": t, "address": a}))
                .collect();
            let mut spec = json!({});
            if let Some(c) = cidrs.first() {
                spec["podCIDR"] = json!(c);
                spec["podCIDRs"] = json!(cidrs);
            }
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                   "spec": spec, "status": {"addresses": addresses}})
        })
}

fn expression() -> impl Strategy<Value = Value> {
    (
        label_key(),
        prop_oneof![
            8 => select(vec!["In", "NotIn", "Exists", "DoesNotExist"]),
            1 => select(vec!["in", "Equals", "", "Gt"]),
        ],
        prop::option::of(prop::collection::vec(label_value(), 0..4)),
    )
        .prop_map(|(key, op, values)| {
            let mut v = json!({"key": key, "operator": op});
            if let Some(vals) = values {
                v["values"] = json!(vals);
            }
            v
        })
}

pub fn selector() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => Just(json!({})),
        4 => labels().prop_map(|l| json!({ "matchLabels": l })),
        3 => prop::collection::vec(expression(), 0..4).prop_map(|e| json!({ "matchExpressions": e })),
        1 => (labels(), prop::collection::vec(expression(), 0..3))
            .prop_map(|(l, e)| json!({ "matchLabels": l, "matchExpressions": e })),
        1 => Just(Value::Null),
    ]
}

fn peer() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => selector().prop_map(|s| json!({ "podSelector": s })),
        2 => selector().prop_map(|s| json!({ "namespaceSelector": s })),
        2 => (selector(), selector()).prop_map(|(n, p)| json!({ "namespaceSelector": n, "podSelector": p })),
        3 => (cidr(), prop::option::of(prop::collection::vec(cidr(), 0..3))).prop_map(|(c, e)| {
            let mut b = json!({ "cidr": c });
            if let Some(e) = e {
                b["except"] = json!(e);
            }
            json!({ "ipBlock": b })
        }),
        // Invalid: nothing set, or an ipBlock together with a selector.
        1 => Just(json!({})),
        1 => (cidr(), selector()).prop_map(|(c, s)| json!({ "ipBlock": {"cidr": c}, "podSelector": s })),
    ]
}

#[derive(Clone, Debug)]
enum EndPort {
    None,
    /// `port + n`: mostly a valid range (or beyond 65535).
    Above(i64),
    /// `port - n`: endPort below port, invalid.
    Below(i64),
    Exactly(i64),
}

fn policy_port() -> impl Strategy<Value = Value> {
    (
        protocol(),
        prop_oneof![
            2 => Just(None),
            5 => port_number().prop_map(|p| Some(json!(p))),
            3 => port_name().prop_map(|n| Some(json!(n))),
        ],
        prop_oneof![
            4 => Just(EndPort::None),
            4 => (0i64..2000).prop_map(EndPort::Above),
            1 => port_number().prop_map(EndPort::Exactly),
            1 => (1i64..100).prop_map(EndPort::Below),
        ],
    )
        .prop_map(|(proto, port, end)| {
            let number = port.as_ref().and_then(Value::as_i64);
            let end = match end {
                EndPort::None => None,
                EndPort::Above(d) => Some(number.unwrap_or(80) + d),
                EndPort::Below(d) => Some(number.unwrap_or(80) - d),
                EndPort::Exactly(e) => Some(e),
            };
            let mut v = json!({});
            if let Some(p) = proto {
                v["protocol"] = json!(p);
            }
            if let Some(p) = port {
                v["port"] = p;
            }
            if let Some(e) = end {
                v["endPort"] = json!(e);
            }
            v
        })
}

fn rule(peers_key: &'static str) -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::collection::vec(peer(), 0..3)),
        prop::option::of(prop::collection::vec(policy_port(), 0..3)),
    )
        .prop_map(move |(peers, ports)| {
            let mut r = json!({});
            if let Some(p) = peers {
                r[peers_key] = json!(p);
            }
            if let Some(p) = ports {
                r["ports"] = json!(p);
            }
            r
        })
}

fn policy() -> impl Strategy<Value = Value> {
    (
        (namespace(), name(), selector()),
        prop::option::of(prop::collection::vec(
            prop_oneof![
                8 => select(vec!["Ingress", "Egress"]),
                1 => select(vec!["ingress", "Both", ""]),
            ],
            0..3,
        )),
        prop::option::of(prop::collection::vec(rule("from"), 0..3)),
        prop::option::of(prop::collection::vec(rule("to"), 0..3)),
    )
        .prop_map(|((ns, name, sel), types, ingress, egress)| {
            let mut spec = json!({ "podSelector": sel });
            if let Some(t) = types {
                spec["policyTypes"] = json!(t);
            }
            if let Some(i) = ingress {
                spec["ingress"] = json!(i);
            }
            if let Some(e) = egress {
                spec["egress"] = json!(e);
            }
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": ns},
                "spec": spec,
            })
        })
}

/// A value of the wrong type (or an unknown field) put somewhere in an object.
#[derive(Clone, Debug)]
pub struct Chaos {
    at: Index,
    what: u8,
}

fn chaos() -> impl Strategy<Value = Chaos> {
    (any::<Index>(), 0u8..8).prop_map(|(at, what)| Chaos { at, what })
}

fn paths(v: &Value, here: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                here.push(k.clone());
                paths(c, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                here.push(i.to_string());
                paths(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'v>(v: &'v mut Value, path: &[String]) -> &'v mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Object(m) => m.get_mut(k).expect("path exists"),
        Value::Array(a) => &mut a[k.parse::<usize>().expect("index")],
        _ => unreachable!("paths only go through containers"),
    })
}

pub fn apply_chaos(obj: &mut Value, c: &Chaos) {
    let mut all = Vec::new();
    paths(obj, &mut Vec::new(), &mut all);
    // Never the root: a non-object document is a different (already covered) error.
    if all.len() < 2 {
        return;
    }
    let path = &all[1 + c.at.index(all.len() - 1)];
    let target = at_path(obj, path);
    *target = match (c.what, &*target) {
        (0, _) => json!(42),
        (1, _) => json!("x"),
        (2, _) => json!([]),
        (3, _) => json!({"bogus": 1}),
        (4, _) => Value::Null,
        (5, _) => json!(true),
        (6, _) => json!(-1.5),
        (_, Value::Object(m)) => {
            let mut m = m.clone();
            m.insert("unknownField".into(), json!({"a": [1, "b"]}));
            Value::Object(m)
        }
        (_, other) => json!([other.clone()]),
    };
}

fn object() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => pod(),
        4 => policy(),
        1 => namespace_object(),
        1 => node_object(),
    ]
}

fn chaotic_object() -> impl Strategy<Value = Value> {
    (
        object(),
        prop::collection::vec(chaos(), 0..3).prop_map(|c| c.into_iter().take(2).collect::<Vec<_>>()),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(mut o, chaos, on)| {
            if on {
                for c in &chaos {
                    apply_chaos(&mut o, c);
                }
            }
            o
        })
}

/// How the objects are laid out in files.
#[derive(Clone, Copy, Debug)]
enum Layout {
    MultiDoc,
    YamlList,
    JsonList,
    TwoFiles,
}

fn write(objects: &[Value], layout: Layout) -> Vec<(String, String)> {
    let yaml_docs = |objs: &[Value]| -> String {
        objs.iter()
            .map(|o| {
                format!(
                    "---\n{}",
                    serde_yaml::to_string(o).expect("JSON values serialize")
                )
            })
            .collect()
    };
    match layout {
        Layout::MultiDoc => vec![("in.yaml".into(), yaml_docs(objects))],
        Layout::YamlList => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
            vec![(
                "in.yaml".into(),
                serde_yaml::to_string(&list).expect("serializes"),
            )]
        }
        Layout::JsonList => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
            vec![(
                "in.json".into(),
                serde_json::to_string_pretty(&list).expect("serializes"),
            )]
        }
        Layout::TwoFiles => {
            let half = objects.len() / 2;
            vec![
                ("a.yaml".into(), yaml_docs(&objects[..half])),
                ("b.yaml".into(), yaml_docs(&objects[half..])),
            ]
        }
    }
}

/// Structured random objects (mostly valid, some odd or invalid), written out as files.
pub fn structured() -> impl Strategy<Value = Input> {
    (
        prop::collection::vec(chaotic_object(), 0..20),
        prop_oneof![
            Just(Layout::MultiDoc),
            Just(Layout::YamlList),
            Just(Layout::JsonList),
            Just(Layout::TwoFiles)
        ],
    )
        .prop_map(|(objects, layout)| Input {
            files: write(&objects, layout),
        })
}

/// One edit of a file's bytes.
#[derive(Clone, Debug)]
pub enum Mutation {
    Delete(Index, usize),
    Insert(Index, u8),
    Replace(Index, u8),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Truncate(Index),
    /// Re-indents a line, which changes what it belongs to.
    Indent(Index, bool),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => select(b":-{}[],#&*!|>'\"%@` \t\n0123456789.".to_vec()),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<bool>()).prop_map(|(i, more)| Mutation::Indent(i, more)),
    ]
}

pub fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        let lines = || -> Vec<Vec<u8>> { bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect() };
        match m {
            Mutation::Delete(i, n) => {
                let at = i.index(len).min(bytes.len());
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Insert(i, b) => {
                let at = i.index(len + 1).min(bytes.len());
                bytes.insert(at, *b);
            }
            Mutation::Replace(i, b) => {
                if !bytes.is_empty() {
                    let at = i.index(bytes.len());
                    bytes[at] = *b;
                }
            }
            Mutation::DuplicateLine(i) => {
                let mut ls = lines();
                let at = i.index(ls.len());
                let l = ls[at].clone();
                ls.insert(at, l);
                bytes = ls.join(&b'\n');
            }
            Mutation::SwapLines(a, b) => {
                let mut ls = lines();
                let (a, b) = (a.index(ls.len()), b.index(ls.len()));
                ls.swap(a, b);
                bytes = ls.join(&b'\n');
            }
            Mutation::Truncate(i) => {
                let at = i.index(len);
                bytes.truncate(at);
            }
            Mutation::Indent(i, more) => {
                let mut ls = lines();
                let at = i.index(ls.len());
                if *more {
                    ls[at].splice(0..0, *b"  ");
                } else if ls[at].starts_with(b"  ") {
                    ls[at].drain(..2);
                }
                bytes = ls.join(&b'\n');
            }
        }
    }
    // Files are read as UTF-8 text: invalid sequences become U+FFFD, as a lossy reader would.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A valid input (the files of one directory) from `corpus`, one of its files mutated.
pub fn mutated(corpus: Vec<Vec<(String, String)>>) -> impl Strategy<Value = Input> {
    assert!(!corpus.is_empty(), "empty corpus");
    (
        select(corpus),
        any::<Index>(),
        prop::collection::vec(mutation(), 1..8),
    )
        .prop_map(|(mut files, which, ms)| {
            let i = which.index(files.len());
            files[i].1 = mutate(&files[i].1, &ms);
            Input { files }
        })
}

/// The YAML files of `examples` and of every fixture directory under `fixtures`, one entry per
/// directory (sorted): the seeds [`mutated`] starts from.
pub fn corpus(examples: &std::path::Path, fixtures: &std::path::Path) -> Vec<Vec<(String, String)>> {
    let mut dirs = vec![examples.to_path_buf()];
    for e in std::fs::read_dir(fixtures).unwrap() {
        dirs.push(e.unwrap().path());
    }
    dirs.sort();
    dirs.iter()
        .map(|d| {
            let mut files: Vec<(String, String)> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
                .collect();
            files.sort();
            files
        })
        .filter(|f| !f.is_empty())
        .collect()
}
