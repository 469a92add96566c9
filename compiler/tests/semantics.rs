//! NetworkPolicy v1 semantics, table by table, as the Kubernetes API reference defines them:
//! YAML in (through the real loader), verdicts out (through the oracle `Engine`).
//!
//! Pods are written in a one-line shorthand that `pods()` expands to Pod YAML, so each table row
//! shows only what matters: `ns/name l:app=web ip:10.244.0.1,fd00:10:244::1 port:http=8080/TCP
//! node:n0 host phase:Failed`.

use policyc_compiler::diag::Diagnostic;
use policyc_compiler::eval::{Endpoint, Reason};
use policyc_compiler::load::load_texts;
use policyc_compiler::{Cluster, Engine, Family, Protocol};

/// Expands the pod shorthand (one pod per line) into a multi-document YAML text.
fn pods(spec: &str) -> String {
    let mut out = String::new();
    for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut tokens = line.split_whitespace();
        let (ns, name) = tokens.next().unwrap().split_once('/').unwrap();
        let (mut labels, mut ips, mut ports, mut node, mut host, mut phase) = (
            String::new(),
            Vec::new(),
            Vec::new(),
            None,
            false,
            "Running".to_string(),
        );
        for t in tokens {
            if let Some(l) = t.strip_prefix("l:") {
                labels = l
                    .split(',')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        format!("{k:?}: {v:?}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
            } else if let Some(i) = t.strip_prefix("ip:") {
                ips = i.split(',').map(str::to_string).collect();
            } else if let Some(p) = t.strip_prefix("port:") {
                // name=number/proto, or number/proto; proto optional.
                let (name, rest) = match p.split_once('=') {
                    Some((n, r)) => (Some(n), r),
                    None => (None, p),
                };
                let (num, proto) = rest.split_once('/').unwrap_or((rest, "TCP"));
                let name = name.map(|n| format!("name: {n}, ")).unwrap_or_default();
                ports.push(format!("{{{name}containerPort: {num}, protocol: {proto}}}"));
            } else if let Some(n) = t.strip_prefix("node:") {
                node = Some(n.to_string());
            } else if t == "host" {
                host = true;
            } else if let Some(p) = t.strip_prefix("phase:") {
                phase = p.to_string();
            } else {
                panic!("bad pod token {t:?}");
            }
        }
        out.push_str("---\napiVersion: v1\nkind: Pod\n");
        out.push_str(&format!(
            "metadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\n"
        ));
        out.push_str("spec:\n");
        if let Some(n) = node {
            out.push_str(&format!("  nodeName: {n}\n"));
        }
        if host {
            out.push_str("  hostNetwork: true\n");
        }
        out.push_str(&format!(
            "  containers:\n  - name: c\n    image: x\n    ports: [{}]\n",
            ports.join(", ")
        ));
        out.push_str(&format!("status:\n  phase: {phase}\n"));
        if let Some(first) = ips.first() {
            out.push_str(&format!("  podIP: {first:?}\n"));
            let all: Vec<String> = ips.iter().map(|i| format!("{{ip: {i:?}}}")).collect();
            out.push_str(&format!("  podIPs: [{}]\n", all.join(", ")));
        }
    }
    out
}

/// A Namespace document with labels `k=v,...`.
fn ns(name: &str, labels: &str) -> String {
    let labels = labels
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            format!("{k:?}: {v:?}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n")
}

/// A NetworkPolicy document: `spec` is the indented YAML body of `spec:`.
fn np(namespace: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{}\n",
        indent(spec)
    )
}

fn indent(s: &str) -> String {
    // Rows write specs flush-left; re-indent them under `spec:`, keeping relative indentation.
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let strip = lines
        .iter()
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| format!("  {}", &l[strip..]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn load_ok(text: &str) -> Cluster {
    let (cluster, _, diags) = load_texts([("test.yaml", text)]);
    assert!(diags.is_empty(), "unexpected diagnostics: {diags:#?}\n{text}");
    cluster
}

fn load_lenient(text: &str) -> (Cluster, Vec<Diagnostic>) {
    let (cluster, _, diags) = load_texts([("test.yaml", text)]);
    (cluster, diags)
}

/// `ns/pod`, `ns/pod@6` (its IPv6 address) or an IP address.
fn endpoint(engine: &Engine<'_>, s: &str) -> Endpoint {
    if let Ok(ip) = s.parse() {
        return engine.endpoint_for_ip(ip);
    }
    let (pod, family) = match s.strip_suffix("@6") {
        Some(p) => (p, Family::Ipv6),
        None => (s, Family::Ipv4),
    };
    let (namespace, name) = pod.split_once('/').unwrap();
    let i = engine
        .pod_index(namespace, name)
        .unwrap_or_else(|| panic!("no pod {pod}"));
    engine
        .pod_endpoint(i, family)
        .unwrap_or_else(|| panic!("pod {pod} has no addressable {family:?} endpoint"))
}

fn port(s: &str) -> (u16, Protocol) {
    let (n, p) = s.split_once('/').unwrap_or((s, "TCP"));
    (n.parse().unwrap(), Protocol::parse(p).unwrap())
}

/// The verdict for `src -> dst port`, checking that the explained and the fast path agree.
fn allowed(cluster: &Cluster, src: &str, dst: &str, p: &str) -> bool {
    let engine = Engine::new(cluster);
    let indexed = Engine::indexed(cluster);
    let (s, d) = (endpoint(&engine, src), endpoint(&engine, dst));
    let (n, proto) = port(p);
    let v = engine.check(&s, &d, proto, n);
    assert_eq!(v.allowed, v.egress.allowed && v.ingress.allowed);
    assert_eq!(
        v.allowed,
        engine.allowed(&s, &d, proto, n),
        "check vs allowed: {src} -> {dst} {p}"
    );
    assert_eq!(
        v.allowed,
        indexed.allowed(&s, &d, proto, n),
        "indexed: {src} -> {dst} {p}"
    );
    v.allowed
}

type Row<'a> = (&'a str, &'a str, &'a str, &'a str, bool);

/// Runs `(what, src, dst, port, expected)` rows against one cluster.
fn table(cluster: &Cluster, rows: &[Row<'_>]) {
    let mut failures = Vec::new();
    for &(what, src, dst, p, want) in rows {
        let got = allowed(cluster, src, dst, p);
        if got != want {
            failures.push(format!("{what}: {src} -> {dst} {p}: got {got}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A policy set applied to a fixed world, then rows checked; one call per table row group.
fn case(world: &str, policies: &[String], rows: &[Row<'_>]) {
    let text = format!("{world}{}", policies.concat());
    table(&load_ok(&text), rows);
}

const BASIC: &str = "
    a/web l:app=web ip:10.244.0.10 port:http=80/TCP
    a/api l:app=api ip:10.244.0.11 port:http=8080/TCP
    b/web l:app=web ip:10.244.1.10 port:http=80/TCP
    b/cli l:app=cli ip:10.244.1.11
";

fn basic() -> String {
    format!("{}{}{}", ns("a", "team=a"), ns("b", "team=b"), pods(BASIC))
}

#[test]
fn isolation_and_policy_types() {
    let w = basic();
    // No policy: everything is allowed.
    case(&w, &[], &[("no policy", "b/cli", "a/web", "80", true)]);

    // Ingress default-deny in a: isolates a's pods for ingress only.
    let deny_in = np("a", "deny", "podSelector: {}\npolicyTypes: [Ingress]");
    case(
        &w,
        std::slice::from_ref(&deny_in),
        &[
            ("isolated dst", "b/cli", "a/web", "80", false),
            ("same-ns dst", "a/api", "a/web", "80", false),
            ("other ns not isolated", "a/web", "b/web", "80", true),
            ("egress not isolated", "a/web", "b/cli", "9999", true),
        ],
    );

    // A policy only isolates what its podSelector selects, in its own namespace.
    let only_web = np("a", "web", "podSelector: {matchLabels: {app: web}}");
    case(
        &w,
        &[only_web],
        &[
            (
                "selected (policyTypes omitted = Ingress)",
                "b/cli",
                "a/web",
                "80",
                false,
            ),
            ("not selected", "b/cli", "a/api", "8080", true),
            ("same labels, other ns", "a/api", "b/web", "80", true),
        ],
    );

    // policyTypes omitted + egress section: isolates egress too.
    let egress_section = np(
        "a",
        "eg",
        "podSelector: {matchLabels: {app: web}}\negress:\n- to: [{podSelector: {matchLabels: {app: api}}}]",
    );
    case(
        &w,
        &[egress_section],
        &[
            ("egress to allowed peer", "a/web", "a/api", "8080", true),
            ("egress to other", "a/web", "b/web", "80", false),
            ("ingress isolated too, no rules", "a/api", "a/web", "80", false),
        ],
    );

    // policyTypes [Egress] with an ingress section: the ingress rules are ignored, ingress open.
    let egress_only = np(
        "a",
        "eo",
        "podSelector: {matchLabels: {app: web}}\npolicyTypes: [Egress]\ningress:\n- from: [{podSelector: {matchLabels: {app: nothing}}}]",
    );
    case(
        &w,
        &[egress_only],
        &[
            ("ingress not isolated", "b/cli", "a/web", "80", true),
            ("egress isolated, no rules", "a/web", "a/api", "8080", false),
        ],
    );

    // Both directions, no rules: deny everything in and out.
    let both = np("a", "both", "podSelector: {}\npolicyTypes: [Ingress, Egress]");
    case(
        &w,
        &[both],
        &[
            ("in", "b/cli", "a/web", "80", false),
            ("out", "a/web", "b/cli", "80", false),
            ("inside", "a/web", "a/api", "8080", false),
            ("unrelated", "b/cli", "b/web", "80", true),
        ],
    );

    // A connection needs both sides: egress allows but ingress denies, and vice versa.
    let src_allows = np(
        "b",
        "cli-out",
        "podSelector: {matchLabels: {app: cli}}\npolicyTypes: [Egress]\negress: [{}]",
    );
    case(
        &w,
        &[src_allows, deny_in.clone()],
        &[("egress ok, ingress denies", "b/cli", "a/web", "80", false)],
    );
    let dst_allows = np("a", "web-in", "podSelector: {}\ningress: [{}]");
    let src_denies = np(
        "b",
        "cli-out",
        "podSelector: {matchLabels: {app: cli}}\npolicyTypes: [Egress]",
    );
    case(
        &w,
        &[dst_allows, src_denies],
        &[
            ("ingress ok, egress denies", "b/cli", "a/web", "80", false),
            ("other src ok", "b/web", "a/web", "80", true),
        ],
    );

    // An empty `egress: []` is not an egress section: the API server's defaulting only adds
    // Egress when the list has rules (len(spec.egress) != 0).
    let empty_egress = np("a", "ee", "podSelector: {}\negress: []");
    case(
        &w,
        &[empty_egress],
        &[
            ("egress: [] does not isolate egress", "a/web", "b/cli", "80", true),
            ("ingress still isolated", "b/cli", "a/web", "80", false),
        ],
    );

    // `policyTypes: []` is defaulted like an omitted one (len(policyTypes) == 0).
    let empty_types = np("a", "et", "podSelector: {}\npolicyTypes: []");
    case(
        &w,
        &[empty_types],
        &[
            ("policyTypes: [] isolates ingress", "b/cli", "a/web", "80", false),
            ("but not egress", "a/web", "b/cli", "80", true),
        ],
    );

    // A pod talking to itself is never blocked.
    case(
        &w,
        &[np("a", "both", "podSelector: {}\npolicyTypes: [Ingress, Egress]")],
        &[("self", "a/web", "a/web", "80", true)],
    );
}

#[test]
fn rules_or_and_peers_and_ports() {
    let w = basic();
    // Rules of all selecting policies are ORed.
    let p1 = np(
        "a",
        "p1",
        "podSelector: {}\ningress:\n- from: [{podSelector: {matchLabels: {app: api}}}]",
    );
    let p2 = np(
        "a",
        "p2",
        "podSelector: {matchLabels: {app: web}}\ningress:\n- from: [{namespaceSelector: {matchLabels: {team: b}}}]",
    );
    case(
        &w,
        &[p1, p2],
        &[
            ("from p1", "a/api", "a/web", "80", true),
            ("from p2", "b/cli", "a/web", "80", true),
            ("p2 does not select api", "b/cli", "a/api", "8080", false),
        ],
    );

    // Within a rule: peers AND ports; across rules: OR.
    let and = np(
        "a",
        "and",
        "podSelector: {matchLabels: {app: web}}
ingress:
- from: [{namespaceSelector: {matchLabels: {team: b}}, podSelector: {matchLabels: {app: cli}}}]
  ports: [{port: 80}]
- ports: [{port: 81}]",
    );
    case(
        &w,
        &[and],
        &[
            ("peer and port", "b/cli", "a/web", "80", true),
            ("peer, wrong port", "b/cli", "a/web", "82", false),
            ("port, wrong peer", "b/web", "a/web", "80", false),
            ("second rule: any peer on 81", "b/web", "a/web", "81", true),
            ("second rule TCP only", "b/web", "a/web", "81/UDP", false),
        ],
    );

    // Empty or omitted from/ports: everything.
    for spec in [
        "podSelector: {}\ningress: [{}]",
        "podSelector: {}\ningress: [{from: [], ports: []}]",
    ] {
        case(
            &w,
            &[np("a", "all", spec)],
            &[
                ("any peer, any port", "b/cli", "a/web", "1234", true),
                ("UDP too", "b/cli", "a/web", "53/UDP", true),
                ("SCTP too", "b/cli", "a/web", "9/SCTP", true),
            ],
        );
    }
    // The same for egress: `to` and `ports` empty or omitted mean everything; peers AND ports.
    for spec in [
        "podSelector: {matchLabels: {app: cli}}\npolicyTypes: [Egress]\negress: [{}]",
        "podSelector: {matchLabels: {app: cli}}\negress: [{to: [], ports: []}]",
    ] {
        case(
            &w,
            &[np("b", "all-out", spec)],
            &[
                ("egress anywhere", "b/cli", "a/web", "1234", true),
                ("egress UDP", "b/cli", "192.0.2.1", "53/UDP", true),
            ],
        );
    }
    let out = np(
        "b",
        "out",
        "podSelector: {matchLabels: {app: cli}}
policyTypes: [Egress]
egress:
- to: [{namespaceSelector: {matchLabels: {team: a}}, podSelector: {matchLabels: {app: api}}}]
  ports: [{port: 8080}]
- to: [{podSelector: {}}]",
    );
    case(
        &w,
        &[out],
        &[
            ("egress peer and port", "b/cli", "a/api", "8080", true),
            ("egress peer, wrong port", "b/cli", "a/api", "9090", false),
            ("egress port, wrong peer", "b/cli", "a/web", "8080", false),
            (
                "egress second rule: own namespace, any port",
                "b/cli",
                "b/web",
                "1",
                true,
            ),
            (
                "egress to an outside address",
                "b/cli",
                "192.0.2.1",
                "8080",
                false,
            ),
        ],
    );
    case(
        &w,
        &[np(
            "b",
            "none",
            "podSelector: {}\npolicyTypes: [Egress]\negress: []",
        )],
        &[("no egress rules", "b/cli", "b/web", "80", false)],
    );
    // `ingress: []` (or omitted) with Ingress isolation: nothing.
    case(
        &w,
        &[np("a", "none", "podSelector: {}\ningress: []")],
        &[("no rules", "b/cli", "a/web", "80", false)],
    );
}

#[test]
fn peers() {
    let w = format!(
        "{}{}{}{}",
        ns("a", "team=a"),
        ns("b", "team=b"),
        ns("c", "team=c"),
        pods(
            "
            a/dst l:app=dst ip:10.244.0.1
            a/web l:app=web ip:10.244.0.2
            b/web l:app=web ip:10.244.1.2
            b/db  l:app=db  ip:10.244.1.3
            c/web l:app=web ip:10.244.2.2
            "
        )
    );
    let ingress = |from: &str| {
        np(
            "a",
            "p",
            &format!("podSelector: {{matchLabels: {{app: dst}}}}\ningress:\n- from: {from}"),
        )
    };

    case(
        &w,
        &[ingress("[{podSelector: {matchLabels: {app: web}}}]")],
        &[
            ("podSelector alone: own ns", "a/web", "a/dst", "80", true),
            ("podSelector alone: not other ns", "b/web", "a/dst", "80", false),
        ],
    );
    case(
        &w,
        &[ingress("[{namespaceSelector: {matchLabels: {team: b}}}]")],
        &[
            ("nsSelector alone: every pod in b", "b/web", "a/dst", "80", true),
            (
                "nsSelector alone: every pod in b (db)",
                "b/db",
                "a/dst",
                "80",
                true,
            ),
            ("nsSelector alone: not own ns", "a/web", "a/dst", "80", false),
            ("nsSelector alone: not c", "c/web", "a/dst", "80", false),
        ],
    );
    // One peer with both selectors: AND.
    case(
        &w,
        &[ingress(
            "[{namespaceSelector: {matchLabels: {team: b}}, podSelector: {matchLabels: {app: web}}}]",
        )],
        &[
            ("ns AND pod", "b/web", "a/dst", "80", true),
            ("ns, not pod", "b/db", "a/dst", "80", false),
            ("pod, not ns", "c/web", "a/dst", "80", false),
            ("pod in own ns, ns not b", "a/web", "a/dst", "80", false),
        ],
    );
    // The same selectors as two peers: OR (and the podSelector one is own-namespace).
    case(
        &w,
        &[ingress(
            "[{namespaceSelector: {matchLabels: {team: b}}}, {podSelector: {matchLabels: {app: web}}}]",
        )],
        &[
            ("ns peer", "b/db", "a/dst", "80", true),
            ("pod peer, own ns", "a/web", "a/dst", "80", true),
            ("pod peer does not reach c", "c/web", "a/dst", "80", false),
        ],
    );
    case(
        &w,
        &[ingress("[{namespaceSelector: {}}]")],
        &[
            ("empty nsSelector: every namespace", "c/web", "a/dst", "80", true),
            ("empty nsSelector: own too", "a/web", "a/dst", "80", true),
        ],
    );
    case(
        &w,
        &[ingress("[{podSelector: {}}]")],
        &[
            ("empty podSelector: own ns", "a/web", "a/dst", "80", true),
            ("empty podSelector: not others", "b/web", "a/dst", "80", false),
        ],
    );
    case(
        &w,
        &[ingress(
            "[{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: c}}}]",
        )],
        &[
            ("by the metadata.name label", "c/web", "a/dst", "80", true),
            ("not b", "b/web", "a/dst", "80", false),
        ],
    );
    // ipBlock: cidr minus except; matches pod IPs too.
    case(
        &w,
        &[ingress(
            "[{ipBlock: {cidr: 10.244.1.0/24, except: [10.244.1.3/32]}}]",
        )],
        &[
            ("in cidr (a pod)", "b/web", "a/dst", "80", true),
            ("excepted", "b/db", "a/dst", "80", false),
            ("outside cidr", "c/web", "a/dst", "80", false),
            ("plain address in cidr", "10.244.1.200", "a/dst", "80", true),
            ("plain address outside", "192.0.2.1", "a/dst", "80", false),
        ],
    );
    // Egress ipBlock, including host bits in the cidr (the API masks them).
    let egress = np(
        "a",
        "e",
        "podSelector: {matchLabels: {app: dst}}\npolicyTypes: [Egress]\negress:\n- to: [{ipBlock: {cidr: 10.244.2.7/16, except: [10.244.1.0/24]}}]",
    );
    case(
        &w,
        &[egress],
        &[
            ("egress to a pod in cidr", "a/dst", "c/web", "80", true),
            ("egress to excepted range", "a/dst", "b/web", "80", false),
            ("egress to outside address", "a/dst", "192.0.2.1", "80", false),
            ("egress to address in cidr", "a/dst", "10.244.200.1", "80", true),
        ],
    );
}

#[test]
fn selectors() {
    let w = format!(
        "{}{}",
        ns("a", ""),
        pods(
            "
            a/dst l:role=dst ip:10.244.0.1
            a/p1  l:app=web,tier=front ip:10.244.0.2
            a/p2  l:app=web,tier=back  ip:10.244.0.3
            a/p3  l:app=api ip:10.244.0.4
            a/p4  l:other=x ip:10.244.0.5
            "
        )
    );
    let with = |sel: &str| {
        np(
            "a",
            "p",
            &format!(
                "podSelector: {{matchLabels: {{role: dst}}}}\ningress:\n- from: [{{podSelector: {sel}}}]"
            ),
        )
    };
    let rows = |sel: &str, want: [bool; 4]| {
        let rows: Vec<(String, &str, bool)> = ["a/p1", "a/p2", "a/p3", "a/p4"]
            .iter()
            .zip(want)
            .map(|(p, w)| (format!("{sel} from {p}"), *p, w))
            .collect();
        let text = format!("{w}{}", with(sel));
        let cluster = load_ok(&text);
        let table_rows: Vec<Row<'_>> = rows
            .iter()
            .map(|(what, src, want)| (what.as_str(), *src, "a/dst", "80", *want))
            .collect();
        table(&cluster, &table_rows);
    };
    rows("{}", [true, true, true, true]);
    rows("{matchLabels: {app: web}}", [true, true, false, false]);
    rows(
        "{matchLabels: {app: web, tier: front}}",
        [true, false, false, false],
    );
    rows(
        "{matchExpressions: [{key: app, operator: In, values: [web, api]}]}",
        [true, true, true, false],
    );
    // NotIn matches objects that lack the key.
    rows(
        "{matchExpressions: [{key: app, operator: NotIn, values: [web]}]}",
        [false, false, true, true],
    );
    rows(
        "{matchExpressions: [{key: tier, operator: NotIn, values: [back]}]}",
        [true, false, true, true],
    );
    rows(
        "{matchExpressions: [{key: tier, operator: Exists}]}",
        [true, true, false, false],
    );
    rows(
        "{matchExpressions: [{key: tier, operator: DoesNotExist}]}",
        [false, false, true, true],
    );
    // matchLabels AND matchExpressions, and expressions ANDed with each other.
    rows(
        "{matchLabels: {app: web}, matchExpressions: [{key: tier, operator: NotIn, values: [front]}]}",
        [false, true, false, false],
    );
    rows(
        "{matchExpressions: [{key: app, operator: Exists}, {key: app, operator: NotIn, values: [api]}]}",
        [true, true, false, false],
    );
    // Namespace selectors use the same matching; an implicit namespace has only its name label.
    let w2 = format!(
        "{}{}",
        ns("a", "env=prod"),
        pods("a/dst l:role=dst ip:10.244.0.1\nimplicit/x l:app=x ip:10.244.9.1\na/y l:app=y ip:10.244.0.9")
    );
    let nsel = np(
        "a",
        "p",
        "podSelector: {}\ningress:\n- from: [{namespaceSelector: {matchExpressions: [{key: env, operator: DoesNotExist}]}}]",
    );
    case(
        &w2,
        &[nsel],
        &[
            ("implicit ns lacks env", "implicit/x", "a/dst", "80", true),
            ("prod has env", "a/y", "a/dst", "80", false),
        ],
    );
}

#[test]
fn ports() {
    let w = format!(
        "{}{}",
        ns("a", ""),
        pods(
            "
            a/src l:app=src ip:10.244.0.1 port:http=9999/TCP
            a/one l:app=dst ip:10.244.0.2 port:http=80/TCP port:dns=53/UDP
            a/two l:app=dst ip:10.244.0.3 port:http=8080/TCP port:dns=1053/TCP
            a/bare l:app=dst ip:10.244.0.4 port:81/TCP
            "
        )
    );
    let ing = |ports: &str| {
        np(
            "a",
            "p",
            &format!("podSelector: {{matchLabels: {{app: dst}}}}\ningress:\n- ports: {ports}"),
        )
    };
    case(
        &w,
        &[ing("[{port: 80}]")],
        &[
            ("protocol defaults to TCP", "a/src", "a/one", "80", true),
            ("not UDP", "a/src", "a/one", "80/UDP", false),
            ("other port", "a/src", "a/one", "81", false),
        ],
    );
    case(
        &w,
        &[ing("[{port: 53, protocol: UDP}, {port: 9, protocol: SCTP}]")],
        &[
            ("UDP", "a/src", "a/one", "53/UDP", true),
            ("not TCP", "a/src", "a/one", "53", false),
            ("SCTP", "a/src", "a/one", "9/SCTP", true),
            ("SCTP other port", "a/src", "a/one", "10/SCTP", false),
        ],
    );
    case(
        &w,
        &[ing("[{protocol: UDP}]")],
        &[
            (
                "protocol without port: every UDP port",
                "a/src",
                "a/one",
                "12345/UDP",
                true,
            ),
            ("but no TCP", "a/src", "a/one", "12345", false),
        ],
    );
    case(
        &w,
        &[ing("[{port: 8000, endPort: 8080}]")],
        &[
            ("range start", "a/src", "a/two", "8000", true),
            ("range end", "a/src", "a/two", "8080", true),
            ("inside", "a/src", "a/two", "8042", true),
            ("below", "a/src", "a/two", "7999", false),
            ("above", "a/src", "a/two", "8081", false),
        ],
    );
    // Named ports resolve per destination pod, and per protocol.
    case(
        &w,
        &[ing("[{port: http}]")],
        &[
            ("http on one = 80", "a/src", "a/one", "80", true),
            ("http on one != 8080", "a/src", "a/one", "8080", false),
            ("http on two = 8080", "a/src", "a/two", "8080", true),
            ("http on two != 80", "a/src", "a/two", "80", false),
            ("bare has no http: nothing", "a/src", "a/bare", "81", false),
        ],
    );
    case(
        &w,
        &[ing("[{port: dns, protocol: UDP}]")],
        &[
            ("dns/UDP on one = 53", "a/src", "a/one", "53/UDP", true),
            ("not 53/TCP", "a/src", "a/one", "53", false),
            (
                "two's dns is TCP: a UDP entry does not resolve",
                "a/src",
                "a/two",
                "1053/UDP",
                false,
            ),
            ("nor 1053/TCP", "a/src", "a/two", "1053", false),
        ],
    );
    case(
        &w,
        &[ing("[{port: dns}]")],
        &[
            ("dns (TCP) on two = 1053", "a/src", "a/two", "1053", true),
            (
                "one's dns is UDP: a TCP entry does not resolve",
                "a/src",
                "a/one",
                "53",
                false,
            ),
            ("nor 53/UDP", "a/src", "a/one", "53/UDP", false),
        ],
    );
    // Egress named ports resolve on the peer (destination) pod.
    let eg = np(
        "a",
        "e",
        "podSelector: {matchLabels: {app: src}}\npolicyTypes: [Egress]\negress:\n- ports: [{port: http}]",
    );
    case(
        &w,
        &[eg],
        &[
            ("egress http -> one:80", "a/src", "a/one", "80", true),
            ("egress http -> two:8080", "a/src", "a/two", "8080", true),
            (
                "egress: not the source's own http (9999)",
                "a/src",
                "a/two",
                "9999",
                false,
            ),
            ("egress http -> bare: nothing", "a/src", "a/bare", "81", false),
            (
                "egress to a non-pod address: named port matches nothing",
                "a/src",
                "192.0.2.1",
                "80",
                false,
            ),
        ],
    );
}

#[test]
fn host_network_and_addressability() {
    let w = format!(
        "{}{}",
        ns("a", ""),
        pods(
            "
            a/dst  l:app=dst ip:10.244.0.2 node:n1 port:http=80/TCP
            a/src  l:app=src ip:10.244.1.2 node:n2
            a/hn   l:app=src ip:198.18.0.2 node:n2 host port:http=80/TCP
            a/dead l:app=src ip:10.244.1.9 node:n2 phase:Failed
            a/done l:app=src ip:10.244.1.8 node:n2 phase:Succeeded
            a/noip l:app=src node:n2
            "
        )
    );
    let deny_in = np("a", "deny", "podSelector: {}\npolicyTypes: [Ingress]");
    let deny_out = np("a", "deny", "podSelector: {}\npolicyTypes: [Egress]");
    let deny_all = np("a", "deny", "podSelector: {}\npolicyTypes: [Ingress, Egress]");
    case(
        &w,
        &[deny_in],
        &[
            (
                "hostNetwork dst never isolated for ingress",
                "a/src",
                "a/hn",
                "80",
                true,
            ),
            ("ordinary dst is", "a/src", "a/dst", "80", false),
        ],
    );
    case(
        &w,
        &[deny_out],
        &[
            (
                "hostNetwork src never isolated for egress",
                "a/hn",
                "a/dst",
                "80",
                true,
            ),
            ("ordinary src is", "a/src", "a/dst", "80", false),
        ],
    );
    case(
        &w,
        std::slice::from_ref(&deny_all),
        &[("hostNetwork src, isolated dst", "a/hn", "a/dst", "80", false)],
    );
    let by_pods = np(
        "a",
        "pods",
        "podSelector: {}\ningress:\n- from: [{podSelector: {}}, {namespaceSelector: {}}]\negress:\n- to: [{podSelector: {}}, {namespaceSelector: {}}]",
    );
    case(
        &w,
        &[by_pods],
        &[
            (
                "pod peers do not match a hostNetwork source",
                "a/hn",
                "a/dst",
                "80",
                false,
            ),
            (
                "pod peers do not match a hostNetwork destination",
                "a/src",
                "a/hn",
                "80",
                false,
            ),
            ("but match ordinary pods", "a/src", "a/dst", "80", true),
        ],
    );
    let by_ip = np(
        "a",
        "ip",
        "podSelector: {}\ningress:\n- from: [{ipBlock: {cidr: 198.18.0.0/24}}]\negress:\n- to: [{ipBlock: {cidr: 198.18.0.0/24}}]",
    );
    case(
        &w,
        &[by_ip],
        &[
            (
                "ipBlock matches a hostNetwork source",
                "a/hn",
                "a/dst",
                "80",
                true,
            ),
            (
                "ipBlock matches a hostNetwork destination",
                "a/src",
                "a/hn",
                "80",
                true,
            ),
            (
                "the ipBlock does not cover pod addresses",
                "a/src",
                "a/dst",
                "80",
                false,
            ),
        ],
    );
    // Not addressable: no endpoint; their former IPs are not pods.
    let cluster = load_ok(&format!("{w}{deny_all}"));
    let engine = Engine::new(&cluster);
    for name in ["dead", "done", "noip"] {
        let i = engine.pod_index("a", name).unwrap();
        assert!(
            engine.pod_endpoint(i, Family::Ipv4).is_none(),
            "{name} must not be addressable"
        );
    }
    let ep = engine.endpoint_for_ip("10.244.1.9".parse().unwrap());
    assert_eq!(ep.pod, None, "a Failed pod's IP belongs to no pod");
    let v = engine.check(&ep, &endpoint(&engine, "a/dst"), Protocol::Tcp, 80);
    assert_eq!(v.egress.reason, Reason::NotAPod);
    assert!(!v.allowed);
    // A hostNetwork pod's address resolves to no pod (it is its node's).
    assert_eq!(engine.endpoint_for_ip("198.18.0.2".parse().unwrap()).pod, None);
    let hn = endpoint(&engine, "a/hn");
    let v = engine.check(&endpoint(&engine, "a/src"), &hn, Protocol::Tcp, 80);
    assert_eq!(v.ingress.reason, Reason::HostNetwork);
    assert!(v.ingress.allowed);
}

#[test]
fn node_to_pod() {
    let nodes = "---
apiVersion: v1
kind: Node
metadata: {name: n1}
status:
  addresses:
  - {type: InternalIP, address: 198.18.1.1}
  - {type: InternalIP, address: 'fd00:198:18::1'}
  - {type: Hostname, address: n1}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
status:
  addresses: [{type: InternalIP, address: 198.18.2.1}]
";
    let w = format!(
        "{}{nodes}{}",
        ns("a", ""),
        pods(
            "
            a/on1  l:app=x ip:10.244.1.2,fd00:10:244:1::2 node:n1
            a/on2  l:app=x ip:10.244.2.2 node:n2
            a/hn3  l:app=h ip:198.18.3.1 node:n3 host
            a/on3  l:app=x ip:10.244.3.2 node:n3
            a/src  l:app=x ip:10.244.2.3 node:n1
            "
        )
    );
    let deny = np("a", "deny", "podSelector: {}\npolicyTypes: [Ingress, Egress]");
    case(
        &w,
        &[deny],
        &[
            ("own node (Node address)", "198.18.1.1", "a/on1", "80", true),
            ("own node IPv6", "fd00:198:18::1", "a/on1@6", "80", true),
            ("other node", "198.18.1.1", "a/on2", "80", false),
            ("own node n2", "198.18.2.1", "a/on2", "80", true),
            (
                "own node via a hostNetwork pod's IP (no Node object)",
                "198.18.3.1",
                "a/on3",
                "80",
                true,
            ),
            (
                "hostNetwork pod on the node, as a pod",
                "a/hn3",
                "a/on3",
                "80",
                true,
            ),
            ("hostNetwork pod on another node", "a/hn3", "a/on1", "80", false),
            (
                "a pod on the same node is not the node",
                "a/src",
                "a/on1",
                "80",
                false,
            ),
            (
                "pod to its node: egress still applies",
                "a/on1",
                "198.18.1.1",
                "80",
                false,
            ),
        ],
    );
}

#[test]
fn ipv6_and_dual_stack() {
    let w = format!(
        "{}{}",
        ns("a", ""),
        pods(
            "
            a/dst  l:app=dst ip:10.244.0.2,fd00:10:244::2
            a/dual l:app=src ip:10.244.0.3,fd00:10:244::3
            a/v6   l:app=src ip:fd00:10:244::4
            a/v4   l:app=src ip:10.244.0.5
            "
        )
    );
    let v4_block = np(
        "a",
        "v4",
        "podSelector: {matchLabels: {app: dst}}\ningress:\n- from: [{ipBlock: {cidr: 10.244.0.0/16}}]",
    );
    case(
        &w,
        &[v4_block],
        &[
            ("dual over v4 matches v4 block", "a/dual", "a/dst", "80", true),
            ("dual over v6 does not", "a/dual@6", "a/dst@6", "80", false),
            ("v6-only does not", "a/v6@6", "a/dst@6", "80", false),
        ],
    );
    let v6_block = np(
        "a",
        "v6",
        "podSelector: {matchLabels: {app: dst}}\ningress:\n- from: [{ipBlock: {cidr: 'fd00:10:244::/48', except: ['fd00:10:244::4/128']}}]",
    );
    case(
        &w,
        &[v6_block],
        &[
            ("dual over v6 matches v6 block", "a/dual@6", "a/dst@6", "80", true),
            ("v6 excepted", "a/v6@6", "a/dst@6", "80", false),
            ("dual over v4 does not", "a/dual", "a/dst", "80", false),
            ("plain v6 address", "fd00:10:244::99", "a/dst@6", "80", true),
        ],
    );
    let by_pod = np("a", "pod", "podSelector: {matchLabels: {app: dst}}\ningress:\n- from: [{podSelector: {matchLabels: {app: src}}}]");
    case(
        &w,
        &[by_pod],
        &[
            ("pod selector, v4", "a/dual", "a/dst", "80", true),
            ("pod selector, v6", "a/dual@6", "a/dst@6", "80", true),
            ("pod selector, v6-only pod", "a/v6@6", "a/dst@6", "80", true),
        ],
    );
    // The v6 address of a dual-stack pod is that pod.
    let cluster = load_ok(&w);
    let engine = Engine::new(&cluster);
    assert_eq!(
        engine.endpoint_for_ip("fd00:10:244::3".parse().unwrap()).pod,
        engine.pod_index("a", "dual")
    );
}

#[test]
fn invalid_rules_fail_closed() {
    let w = basic();
    // bad has an invalid ingress rule (bad CIDR) and a valid one; good is a sibling policy.
    let bad = np(
        "a",
        "bad",
        "podSelector: {matchLabels: {app: web}}
ingress:
- from: [{ipBlock: {cidr: 10.244.1.0/33}}, {podSelector: {}}]
- from: [{podSelector: {matchLabels: {app: api}}}]
  ports: [{port: 80}]",
    );
    let good = np(
        "b",
        "good",
        "podSelector: {matchLabels: {app: web}}\ningress:\n- from: [{namespaceSelector: {matchLabels: {team: a}}}]",
    );
    let (cluster, diags) = load_lenient(&format!("{w}{bad}{good}"));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    table(
        &cluster,
        &[
            (
                "invalid rule admits nothing (not even its valid peer)",
                "a/api",
                "a/web",
                "8080",
                false,
            ),
            ("the policy still isolates", "b/cli", "a/web", "80", false),
            (
                "the valid rule of the same policy works",
                "a/api",
                "a/web",
                "80",
                true,
            ),
            ("the sibling policy works", "a/web", "b/web", "80", true),
            ("the sibling policy still isolates", "b/cli", "b/web", "80", false),
        ],
    );

    // Each kind of invalid rule fails closed the same way.
    for (what, rule) in INVALID_RULES {
        let bad = np(
            "a",
            "bad",
            &format!("podSelector: {{matchLabels: {{app: web}}}}\ningress:\n{rule}"),
        );
        let (cluster, diags) = load_lenient(&format!("{w}{bad}{good}"));
        assert!(!diags.is_empty(), "{what}: expected a diagnostic");
        table(
            &cluster,
            &[
                (what, "a/api", "a/web", "80", false),
                (what, "b/cli", "a/web", "80", false),
                (what, "a/web", "b/web", "80", true),
            ],
        );
    }

    // An invalid policy-level podSelector: selects the whole namespace, admits nothing.
    let bad_sel = np(
        "a",
        "badsel",
        "podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}\ningress: [{}]",
    );
    let (cluster, diags) = load_lenient(&format!("{w}{bad_sel}{good}"));
    assert_eq!(diags.len(), 1);
    table(
        &cluster,
        &[
            (
                "invalid podSelector isolates all of a",
                "b/cli",
                "a/api",
                "8080",
                false,
            ),
            ("and admits nothing", "b/cli", "a/web", "80", false),
            ("others unaffected", "a/web", "b/web", "80", true),
        ],
    );
}

/// Ingress rules the API server rejects. Each would admit a/api -> a/web:80 if its invalid part
/// were merely dropped, so a lenient engine fails these rows.
const INVALID_RULES: &[(&str, &str)] = &[
    (
        "bad cidr",
        "- from: [{ipBlock: {cidr: 10.0.0.0}}, {podSelector: {}}]",
    ),
    (
        "except outside cidr",
        "- from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.0.0.0/8]}}]",
    ),
    (
        "endPort with named port",
        "- ports: [{port: http, endPort: 90}, {port: 80}]",
    ),
    ("endPort below port", "- ports: [{port: 80, endPort: 70}]"),
    (
        "unknown operator",
        "- from: [{podSelector: {matchExpressions: [{key: app, operator: Equals, values: [api]}]}}]",
    ),
    (
        "unknown protocol",
        "- ports: [{port: 80, protocol: ICMP}, {port: 80}]",
    ),
    ("lowercase protocol", "- ports: [{port: 80, protocol: tcp}]"),
    ("empty peer", "- from: [{}, {podSelector: {}}]"),
    (
        "ipBlock with podSelector",
        "- from: [{ipBlock: {cidr: 0.0.0.0/0}, podSelector: {}}]",
    ),
    (
        "In without values",
        "- from: [{podSelector: {}}, {namespaceSelector: {matchExpressions: [{key: a, operator: In}]}}]",
    ),
    ("port 0", "- ports: [{port: 0}, {port: 80}]"),
];

/// One invalid policy per row: the field path the diagnostic must name.
#[test]
fn diagnostics_name_object_field_and_line() {
    let rows: &[(&str, &str)] = &[
        (
            "ingress:\n- from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 11.0.0.0/24]}}]",
            "spec.ingress[0].from[0].ipBlock.except[1]",
        ),
        (
            "ingress:\n- from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]",
            "spec.ingress[0].from[0].ipBlock.except[0]",
        ),
        (
            "ingress:\n- from: [{ipBlock: {cidr: 'fd00::/8', except: [10.0.0.0/8]}}]",
            "spec.ingress[0].from[0].ipBlock.except[0]",
        ),
        ("ingress:\n- {}\n- from: [{ipBlock: {cidr: 300.0.0.0/8}}]", "spec.ingress[1].from[0].ipBlock.cidr"),
        ("egress:\n- to: [{ipBlock: {cidr: 10.0.0.1}}]", "spec.egress[0].to[0].ipBlock.cidr"),
        ("ingress:\n- ports: [{port: 80}, {port: http, endPort: 90}]", "spec.ingress[0].ports[1].endPort"),
        ("egress:\n- ports: [{port: 80, endPort: 79}]", "spec.egress[0].ports[0].endPort"),
        ("egress:\n- ports: [{endPort: 79}]", "spec.egress[0].ports[0].endPort"),
        ("ingress:\n- ports: [{port: 70000}]", "spec.ingress[0].ports[0].port"),
        ("ingress:\n- ports: [{port: HTTP}]", "spec.ingress[0].ports[0].port"),
        ("ingress:\n- ports: [{port: 53, protocol: ICMP}]", "spec.ingress[0].ports[0].protocol"),
        (
            "ingress:\n- from: [{podSelector: {matchExpressions: [{key: a, operator: Equals, values: [b]}]}}]",
            "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator",
        ),
        (
            "ingress:\n- from: [{namespaceSelector: {matchExpressions: [{key: a, operator: Exists, values: [b]}]}}]",
            "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values",
        ),
        (
            "ingress:\n- from: [{podSelector: {matchLabels: {app: 'bad value!'}}}]",
            "spec.ingress[0].from[0].podSelector.matchLabels[app]",
        ),
        ("ingress:\n- from: [{podSelector: {}}, {}]", "spec.ingress[0].from[1]"),
        (
            "egress:\n- to: [{ipBlock: {cidr: 10.0.0.0/8}, namespaceSelector: {}}]",
            "spec.egress[0].to[0]",
        ),
        ("policyTypes: [Ingress, Sideways]", "spec.policyTypes[1]"),
        (
            "podSelector: {matchExpressions: [{key: app, operator: NotIn}]}",
            "spec.podSelector.matchExpressions[0].values",
        ),
    ];
    // A valid document first, so the policy's line is not 1.
    let prefix = ns("a", "");
    let prefix_lines = prefix.lines().count();
    for (spec, field) in rows {
        let spec = if spec.starts_with("podSelector") {
            spec.to_string()
        } else {
            format!("podSelector: {{}}\n{spec}")
        };
        let text = format!("{prefix}{}", np("a", "broken", &spec));
        let (_, _, diags) = load_texts([("dir/pol.yaml", text.as_str())]);
        assert_eq!(diags.len(), 1, "{field}: {diags:#?}");
        let d = &diags[0];
        assert_eq!(d.object, "NetworkPolicy a/broken");
        assert_eq!(&d.field, field, "{spec}");
        let source = d.source.as_ref().expect("a file source");
        assert_eq!(source.file, "dir/pol.yaml");
        // The document starts after the namespace's lines and the `---` marker.
        assert_eq!(source.line, prefix_lines + 2, "{field}");
        let shown = d.to_string();
        assert!(
            shown.starts_with(&format!(
                "dir/pol.yaml:{}: NetworkPolicy a/broken: {field}: ",
                prefix_lines + 2
            )),
            "{shown}"
        );
    }

    // Every error is reported, not just the first.
    let spec = "podSelector: {}
ingress:
- from: [{ipBlock: {cidr: bad}}]
  ports: [{port: 0}]
egress:
- to: [{}]";
    let (_, _, diags) = load_texts([("x.yaml", np("a", "many", spec).as_str())]);
    let fields: Vec<&str> = diags.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.ingress[0].from[0].ipBlock.cidr",
            "spec.ingress[0].ports[0].port",
            "spec.egress[0].to[0]"
        ]
    );
}

#[test]
fn valid_edge_cases_yield_no_diagnostics() {
    // Things the API server accepts.
    for spec in [
        "podSelector: {}\ningress:\n- ports: [{port: 80, endPort: 80}]",
        "podSelector: {}\ningress:\n- from: [{ipBlock: {cidr: 10.0.0.1/8}}]",
        "podSelector: {}\ningress:\n- from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/9, 10.200.0.1/32]}}]",
        "podSelector: {}\ningress:\n- ports: [{port: http-alt, protocol: SCTP}]",
        "podSelector: {matchLabels: {example.com/app: ''}}\npolicyTypes: [Ingress, Egress]",
        "policyTypes: [Egress]",
    ] {
        let (_, _, diags) = load_texts([("x.yaml", np("a", "ok", spec).as_str())]);
        assert!(diags.is_empty(), "{spec}: {diags:#?}");
    }
}

/// A document or List item that is not a mapping is reported, not skipped: a bare sequence of
/// policies would otherwise vanish from every verdict.
#[test]
fn non_objects_are_reported() {
    let bare = "- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: deny}\n  spec: {podSelector: {}}\n";
    let list = "apiVersion: v1\nkind: List\nitems:\n- 1\n- null\n---\n42\n";
    let (cluster, _, diags) = load_texts([("bare.yaml", bare), ("list.yaml", list)]);
    assert!(cluster.policies.is_empty());
    let got: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(
        got[0].contains("bare.yaml:1") && got[0].contains("found a sequence"),
        "{got:#?}"
    );
    assert!(
        got[1].contains("list.yaml:4") && got[1].contains("found a number"),
        "{got:#?}"
    );
    assert!(
        got[2].contains("list.yaml:5") && got[2].contains("found null"),
        "{got:#?}"
    );
    assert!(
        got[3].contains("list.yaml:7") && got[3].contains("found a number"),
        "{got:#?}"
    );
}

/// Files as Windows editors save them: a byte order mark and CRLF line ends.
#[test]
fn bom_and_crlf_are_read() {
    let text = "\u{feff}apiVersion: v1\r\nkind: Pod\r\nmetadata: {name: p, namespace: x}\r\n---\r\napiVersion: v1\r\nkind: Pod\r\nmetadata: {name: q, namespace: x}\r\n";
    let (cluster, _, diags) = load_texts([("win.yaml", text)]);
    assert!(diags.is_empty(), "{diags:#?}");
    let keys: Vec<String> = cluster.pods.iter().map(|p| p.key()).collect();
    assert_eq!(keys, ["x/p", "x/q"]);
    assert_eq!(cluster.pods[1].source.as_ref().unwrap().line, 5);
}

#[test]
fn input_forms() {
    // kind: List, multi-document, JSON, other kinds ignored, namespace defaulted.
    let list = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p1, labels: {app: one}}
  status: {podIP: 10.244.0.1}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm}
  data: {x: y}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec: {}
"#;
    let json = r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny"}, "spec": {"podSelector": {}}}"#;
    let more = pods("default/p2 l:app=two ip:10.244.0.2\nother/p3 l:app=three ip:10.244.0.3");
    let (cluster, _, diags) = load_texts([
        ("list.yaml", list),
        ("np.json", json),
        ("more.yaml", more.as_str()),
    ]);
    assert!(diags.is_empty(), "{diags:#?}");
    let keys: Vec<String> = cluster.pods.iter().map(|p| p.key()).collect();
    assert_eq!(keys, ["default/p1", "default/p2", "other/p3"]);
    assert_eq!(cluster.policies.len(), 1);
    assert_eq!(cluster.policies[0].key(), "default/deny");
    assert_eq!(cluster.implicit_namespaces(), ["default", "other"]);
    let other = &cluster.namespaces["other"];
    assert_eq!(
        other.labels.iter().collect::<Vec<_>>(),
        [(&"kubernetes.io/metadata.name".to_string(), &"other".to_string())]
    );
    table(
        &cluster,
        &[
            (
                "default/deny isolates default",
                "other/p3",
                "default/p1",
                "80",
                false,
            ),
            ("not other", "default/p1", "other/p3", "80", true),
        ],
    );
    // A typed list as the API returns it (`PodList`): its items carry no kind or apiVersion.
    let typed = "apiVersion: v1
kind: PodList
items:
- metadata: {name: q1, namespace: t}
  status: {podIP: 10.244.5.1}
- metadata: {name: q2, namespace: t}
  status: {podIP: 10.244.5.2}
";
    let (cluster, _, diags) = load_texts([("podlist.yaml", typed)]);
    assert!(diags.is_empty(), "{diags:#?}");
    let keys: Vec<String> = cluster.pods.iter().map(|p| p.key()).collect();
    assert_eq!(keys, ["t/q1", "t/q2"]);

    // Objects of a block-style List point at their own item's line.
    let list = "# a comment
apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: ok, namespace: a}
  spec: {podSelector: {}}

- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: bad, namespace: a}
  spec:
    podSelector: {}
    ingress:
    - from: [{}]
metadata: {resourceVersion: ''}
";
    let (cluster, _, diags) = load_texts([("list.yaml", list)]);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].to_string().split(": ").next(), Some("list.yaml:10"));
    let lines: Vec<usize> = cluster
        .policies
        .iter()
        .map(|p| p.source.as_ref().unwrap().line)
        .collect();
    assert_eq!(lines, [10, 5], "a/bad, a/ok");
    // Flow style or JSON: the List's own line.
    let flow = "\n{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"x\"}}]}";
    let (cluster, _, _) = load_texts([("flow.json", flow)]);
    assert_eq!(cluster.pods[0].source.as_ref().unwrap().line, 2);

    // Diagnostics come in file and line order, whichever stage found them.
    let bad_yaml = "kind: [\n";
    let bad_np = np("a", "x", "podSelector: {}\ningress:\n- from: [{}]");
    let (_, _, diags) = load_texts([("b.yaml", bad_np.as_str()), ("a.yaml", bad_yaml)]);
    let files: Vec<&str> = diags
        .iter()
        .map(|d| d.source.as_ref().unwrap().file.as_str())
        .collect();
    assert_eq!(files, ["a.yaml", "b.yaml"]);

    // A given Namespace is not implicit; its name label is forced to its name.
    let text = format!(
        "{}{}",
        ns("x", "kubernetes.io/metadata.name=spoofed,team=t"),
        pods("x/p ip:10.244.0.1")
    );
    let cluster = load_ok(&text);
    assert!(cluster.implicit_namespaces().is_empty());
    assert_eq!(cluster.namespaces["x"].labels["kubernetes.io/metadata.name"], "x");

    // A malformed document is a diagnostic with its file and line; the rest still loads.
    let text = format!(
        "{}---\nkind: Pod\napiVersion: v1\nmetadata: [not, a, map]\n",
        pods("a/ok ip:10.244.0.1")
    );
    let (cluster, _, diags) = load_texts([("bad.yaml", text.as_str())]);
    assert_eq!(cluster.pods.len(), 1);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].source.as_ref().unwrap().file, "bad.yaml");
    assert_eq!(diags[0].field, "metadata");
    // A malformed object is named as a valid one would be (namespace defaulted).
    let text = "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec: {containers: 3}\n";
    let (_, _, diags) = load_texts([("p.yaml", text)]);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].object, "Pod default/p");
    assert_eq!(diags[0].field, "spec.containers");
    let text = "kind: Node\napiVersion: v1\nmetadata: {name: n}\nstatus: {addresses: 3}\n";
    let (_, _, diags) = load_texts([("n.yaml", text)]);
    assert_eq!(diags[0].object, "Node n");
}
