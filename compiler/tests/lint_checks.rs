//! One fixture per lint check that triggers it and one that does not, plus the registry's
//! invariants, suppression, and locations.

use std::collections::BTreeSet;

use policyc_compiler::lint::{self, Config, Finding, CHECKS};
use policyc_compiler::load::load_texts;
use policyc_compiler::spans::Spans;

/// Namespaces x, y, kube-system; pods x/a (http=80/TCP), y/b (web=81/TCP), kube-system/coredns
/// (dns=53/UDP), and the hostNetwork pod x/h.
const BASE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: y, labels: {team: y}}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: x, labels: {app: a}}
  spec: {nodeName: n0, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
  status: {phase: Running, podIP: 10.244.0.10}
- apiVersion: v1
  kind: Pod
  metadata: {name: b, namespace: y, labels: {app: b}}
  spec: {nodeName: n1, containers: [{name: c, ports: [{name: web, containerPort: 81}]}]}
  status: {phase: Running, podIP: 10.244.1.10}
- apiVersion: v1
  kind: Pod
  metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
  spec: {nodeName: n0, containers: [{name: c, ports: [{name: dns, containerPort: 53, protocol: UDP}]}]}
  status: {phase: Running, podIP: 10.244.0.2}
- apiVersion: v1
  kind: Pod
  metadata: {name: h, namespace: x, labels: {app: h}}
  spec: {nodeName: n0, hostNetwork: true, containers: [{name: c}]}
  status: {phase: Running, podIP: 198.18.0.1}
"#;

fn lint_files(files: &[(&str, &str)], config: &Config) -> Vec<Finding> {
    let mut spans = Spans::new();
    for (name, text) in files {
        spans.add_file(name, text);
    }
    let (cluster, objects, diagnostics) = load_texts(files.iter().copied());
    lint::lint(
        &lint::Input {
            cluster: &cluster,
            objects: &objects,
            diagnostics: &diagnostics,
            spans: Some(&spans),
        },
        config,
    )
}

fn all() -> Config {
    Config {
        all: true,
        ..Config::default()
    }
}

fn codes(policies: &str) -> BTreeSet<&'static str> {
    lint_files(&[("base.yaml", BASE), ("case.yaml", policies)], &all())
        .iter()
        .map(|f| f.code)
        .collect()
}

fn np(name: &str, ns: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{}\n---\n",
        spec.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
    )
}

const DNS_RULE: &str = "- to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]\n  ports: [{port: 53, protocol: UDP}]";

fn deny_all(ns: &str) -> String {
    np(
        &format!("deny-{ns}"),
        ns,
        "podSelector: {}\npolicyTypes: [Ingress]",
    )
}

/// (code, fixture that triggers it, fixture that does not).
fn cases() -> Vec<(&'static str, String, String)> {
    let ingress = |from_ports: &str| {
        np(
            "p",
            "x",
            &format!("podSelector: {{matchLabels: {{app: a}}}}\ningress:\n{from_ports}"),
        )
    };
    let egress = |rules: &str| {
        np(
            "p",
            "x",
            &format!("podSelector: {{matchLabels: {{app: a}}}}\npolicyTypes: [Egress]\negress:\n{rules}\n{DNS_RULE}"),
        )
    };
    vec![
        (
            "invalid-field",
            ingress("- ports: [{port: 80, protocol: ICMP}]"),
            ingress("- ports: [{port: 80, protocol: UDP}]"),
        ),
        (
            "ignored-rules",
            np("p", "x", &format!("podSelector: {{}}\npolicyTypes: [Egress]\ningress:\n- from: [{{podSelector: {{}}}}]\negress:\n{DNS_RULE}")),
            np("p", "x", &format!("podSelector: {{}}\npolicyTypes: [Ingress, Egress]\ningress:\n- from: [{{podSelector: {{}}}}]\negress:\n{DNS_RULE}")),
        ),
        (
            "except-outside-cidr",
            ingress("- from: [{ipBlock: {cidr: 203.0.0.0/8, except: [192.168.0.0/16]}}]"),
            ingress("- from: [{ipBlock: {cidr: 203.0.0.0/8, except: [203.1.0.0/16]}}]"),
        ),
        (
            "cidr-host-bits",
            ingress("- from: [{ipBlock: {cidr: 203.0.113.7/24}}]"),
            ingress("- from: [{ipBlock: {cidr: 203.0.113.0/24}}]"),
        ),
        (
            "endport-misuse",
            ingress("- ports: [{port: 8080, endPort: 8000}]"),
            ingress("- ports: [{port: 8000, endPort: 8080}]"),
        ),
        (
            "redundant-endport",
            ingress("- ports: [{port: 8080, endPort: 8080}]"),
            ingress("- ports: [{port: 8080, endPort: 8081}]"),
        ),
        (
            "empty-peer",
            ingress("- from: [{}]"),
            ingress("- from: [{podSelector: {}}]"),
        ),
        (
            "conflicting-peer",
            ingress("- from: [{ipBlock: {cidr: 203.0.113.0/24}, podSelector: {}}]"),
            ingress("- from: [{ipBlock: {cidr: 203.0.113.0/24}}, {podSelector: {}}]"),
        ),
        (
            "unsatisfiable-selector",
            ingress("- from: [{podSelector: {matchLabels: {app: a}, matchExpressions: [{key: app, operator: NotIn, values: [a]}]}}]"),
            ingress("- from: [{podSelector: {matchLabels: {app: a}, matchExpressions: [{key: app, operator: NotIn, values: [b]}]}}]"),
        ),
        (
            "selects-no-pods",
            np("p", "x", "podSelector: {matchLabels: {app: nope}}\npolicyTypes: [Ingress]"),
            np("p", "x", "podSelector: {matchLabels: {app: a}}\npolicyTypes: [Ingress]"),
        ),
        (
            "peer-matches-nothing",
            ingress("- from: [{namespaceSelector: {matchLabels: {team: y}}, podSelector: {matchLabels: {app: a}}}]"),
            ingress("- from: [{namespaceSelector: {matchLabels: {team: y}}, podSelector: {matchLabels: {app: b}}}]"),
        ),
        (
            "named-port-undefined",
            ingress("- ports: [{port: metrics}]"),
            ingress("- ports: [{port: http}]"),
        ),
        (
            "named-port-wrong-protocol",
            ingress("- ports: [{port: http, protocol: UDP}]"),
            ingress("- ports: [{port: http, protocol: TCP}]"),
        ),
        (
            "named-port-ipblock",
            egress("- to: [{ipBlock: {cidr: 203.0.113.0/24}}]\n  ports: [{port: https}]"),
            egress("- to: [{ipBlock: {cidr: 203.0.113.0/24}}]\n  ports: [{port: 443}]"),
        ),
        (
            "egress-blocks-dns",
            np("p", "x", "podSelector: {matchLabels: {app: a}}\npolicyTypes: [Egress]\negress:\n- to: [{namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}]"),
            egress("- to: [{namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}]"),
        ),
        (
            "and-or-slip",
            ingress("- from:\n  - namespaceSelector: {matchLabels: {team: y}}\n  - podSelector: {matchLabels: {app: b}}"),
            ingress("- from:\n  - namespaceSelector: {matchLabels: {team: y}}\n    podSelector: {matchLabels: {app: b}}"),
        ),
        (
            "ipblock-covers-pods",
            ingress("- from: [{ipBlock: {cidr: 10.244.0.0/16}}]"),
            ingress("- from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.0.0/17]}}]"),
        ),
        (
            "host-network-selected",
            np("p", "x", "podSelector: {matchLabels: {app: h}}\npolicyTypes: [Ingress]"),
            np("p", "x", "podSelector: {matchLabels: {app: a}}\npolicyTypes: [Ingress]"),
        ),
        (
            "duplicate-policy",
            np("p", "x", "podSelector: {}\npolicyTypes: [Ingress]") + &np("p", "x", "podSelector: {}\npolicyTypes: [Ingress]"),
            np("p", "x", "podSelector: {}\npolicyTypes: [Ingress]") + &np("q", "x", "podSelector: {}\npolicyTypes: [Ingress]"),
        ),
        (
            "shadowed-rule",
            ingress("- from: [{podSelector: {}}]\n  ports: [{port: 80}]\n- from: [{podSelector: {matchLabels: {app: a}}}]\n  ports: [{port: 80}]"),
            ingress("- from: [{podSelector: {}}]\n  ports: [{port: 80}]\n- from: [{podSelector: {matchLabels: {app: a}}}]\n  ports: [{port: 81}]"),
        ),
        (
            "one-sided-rule",
            egress("- to: [{namespaceSelector: {matchLabels: {team: y}}}]") + &deny_all("y"),
            egress("- to: [{namespaceSelector: {matchLabels: {team: y}}}]")
                + &np("from-x", "y", "podSelector: {}\ningress:\n- from: [{namespaceSelector: {matchLabels: {team: x}}}]"),
        ),
        (
            "allow-all-rule",
            ingress("- from: []"),
            ingress("- from: [{podSelector: {}}]"),
        ),
        (
            "missing-namespace",
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}}\n".into(),
            np("p", "default", "podSelector: {}"),
        ),
        (
            "unisolated-pod",
            deny_all("x") + &deny_all("y"),
            deny_all("x") + &deny_all("y") + &deny_all("kube-system"),
        ),
        (
            "namespace-without-default-deny",
            deny_all("x") + &np("some", "y", "podSelector: {}\ningress: [{}]") + &deny_all("kube-system"),
            deny_all("x") + &deny_all("y") + &deny_all("kube-system"),
        ),
    ]
}

#[test]
fn every_check_triggers_on_its_fixture_and_not_on_the_fixed_one() {
    let cases = cases();
    for (code, trigger, clean) in &cases {
        let hit = codes(trigger);
        assert!(
            hit.contains(code),
            "{code} not reported on its fixture; got {hit:?}\n{trigger}"
        );
        let miss = codes(clean);
        assert!(
            !miss.contains(code),
            "{code} reported on the fixed fixture; got {miss:?}\n{clean}"
        );
    }
    let tested: BTreeSet<&str> = cases.iter().map(|(c, _, _)| *c).collect();
    let all: BTreeSet<&str> = CHECKS.iter().map(|c| c.code).collect();
    assert_eq!(tested, all, "every check needs a triggering and a clean fixture");
}

#[test]
fn codes_are_unique_kebab_case_and_documented() {
    assert!(CHECKS.len() >= 20, "only {} checks", CHECKS.len());
    let mut seen = BTreeSet::new();
    for c in CHECKS {
        assert!(seen.insert(c.code), "duplicate code {}", c.code);
        let kebab = !c.code.is_empty()
            && !c.code.starts_with('-')
            && !c.code.ends_with('-')
            && !c.code.contains("--")
            && c.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        assert!(kebab, "{} is not kebab-case", c.code);
        assert!(
            !c.description.is_empty() && !c.description.contains('\n'),
            "{}: description",
            c.code
        );
        assert!(
            c.explanation.len() > c.description.len(),
            "{}: explanation",
            c.code
        );
        assert_eq!(lint::find(c.code), Some(c));
    }
}

#[test]
fn opt_in_checks_are_off_by_default_and_enable_turns_them_on() {
    let files = [("base.yaml", BASE)];
    let default: BTreeSet<_> = lint_files(&files, &Config::default())
        .iter()
        .map(|f| f.code)
        .collect();
    assert!(!default.contains("unisolated-pod") && !default.contains("namespace-without-default-deny"));
    let enabled = Config {
        enable: ["unisolated-pod".to_string()].into(),
        ..Config::default()
    };
    let got: BTreeSet<_> = lint_files(&files, &enabled).iter().map(|f| f.code).collect();
    assert!(got.contains("unisolated-pod") && !got.contains("namespace-without-default-deny"));
}

#[test]
fn disable_and_annotation_suppress() {
    let text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: x\n  annotations: {policyc.dev/lint-disable: \"cidr-host-bits, and-or-slip\"}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 203.0.113.7/24}}, {}]\n";
    let got: BTreeSet<_> = lint_files(&[("p.yaml", text)], &Config::default())
        .iter()
        .map(|f| f.code)
        .collect();
    assert!(!got.contains("cidr-host-bits"), "annotation ignored: {got:?}");
    assert!(
        got.contains("empty-peer"),
        "annotation suppressed too much: {got:?}"
    );
    let disabled = Config {
        disable: ["empty-peer".to_string()].into(),
        ..Config::default()
    };
    let got: BTreeSet<_> = lint_files(&[("p.yaml", text)], &disabled)
        .iter()
        .map(|f| f.code)
        .collect();
    assert!(
        !got.contains("empty-peer") && !got.contains("invalid-field"),
        "{got:?}"
    );
    assert!(
        Config {
            disable: ["no-such".into()].into(),
            ..Config::default()
        }
        .unknown_codes()
            == ["no-such"]
    );
}

#[test]
fn findings_point_at_the_field() {
    let text = "# leading comment\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}\n    - ipBlock:\n        cidr: 203.0.113.7/24\n";
    let found = lint_files(&[("p.yaml", text)], &Config::default());
    let f = found
        .iter()
        .find(|f| f.code == "cidr-host-bits")
        .expect("reported");
    let loc = f.location.as_ref().expect("located");
    assert_eq!((loc.file.as_str(), loc.line, loc.col), ("p.yaml", 11, 9));
    assert_eq!(f.field, "spec.ingress[0].from[1].ipBlock.cidr");
}

#[test]
fn unparseable_input_is_a_finding_not_a_crash() {
    let found = lint_files(
        &[(
            "bad.yaml",
            "kind: [oops\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n",
        )],
        &Config::default(),
    );
    let invalid: Vec<_> = found.iter().filter(|f| f.code == "invalid-field").collect();
    assert_eq!(invalid.len(), 2, "{found:#?}");
    assert!(invalid
        .iter()
        .all(|f| f.location.as_ref().is_some_and(|l| l.file == "bad.yaml")));
}

#[test]
fn without_pods_the_workload_checks_stay_quiet() {
    let policy = np("p", "x", "podSelector: {matchLabels: {app: nope}}\ningress:\n- from: [{podSelector: {matchLabels: {app: nobody}}}]\n  ports: [{port: metrics}]");
    let got: BTreeSet<_> = lint_files(&[("p.yaml", &policy)], &all())
        .iter()
        .map(|f| f.code)
        .collect();
    for code in [
        "selects-no-pods",
        "peer-matches-nothing",
        "named-port-undefined",
        "unisolated-pod",
    ] {
        assert!(!got.contains(code), "{code} reported without pods: {got:?}");
    }
}

#[test]
fn namespaces_the_input_does_not_describe_are_not_judged() {
    // Pods of x only: a policy in z and peers into kube-system (no pods given there) are unknowns.
    let pods = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.244.0.10}\n";
    let policies = np(
        "elsewhere",
        "z",
        "podSelector: {matchLabels: {app: nope}}\npolicyTypes: [Ingress]",
    ) + &np(
        "p",
        "x",
        &format!("podSelector: {{}}\npolicyTypes: [Egress]\negress:\n{DNS_RULE}"),
    );
    let got: BTreeSet<_> = lint_files(&[("pods.yaml", pods), ("p.yaml", &policies)], &Config::default())
        .iter()
        .map(|f| f.code)
        .collect();
    assert!(!got.contains("selects-no-pods"), "{got:?}");
    assert!(!got.contains("peer-matches-nothing"), "{got:?}");
    assert!(!got.contains("egress-blocks-dns"), "{got:?}");
}

#[test]
fn own_namespace_or_other_namespaces_is_not_an_and_or_slip() {
    let policy = np("p", "x", "podSelector: {}\ningress:\n- from:\n  - namespaceSelector: {matchLabels: {team: y}}\n  - podSelector: {}");
    assert!(!codes(&policy).contains("and-or-slip"));
}

#[test]
fn invalid_selectors_are_no_and_or_slip() {
    let policy = np(
        "p",
        "x",
        "podSelector: {}\ningress:\n- from:\n  - namespaceSelector: {matchExpressions: [{key: k, operator: In, values: []}]}\n  - podSelector: {matchLabels: {app: a}}",
    );
    let got = codes(&policy);
    assert!(got.contains("invalid-field"), "{got:?}");
    assert!(!got.contains("and-or-slip"), "{got:?}");
}

#[test]
fn the_ci_guide_lists_every_code() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ci.md")).expect("docs/ci.md");
    for c in CHECKS {
        assert!(
            doc.contains(&format!("| `{}` | {} |", c.code, c.severity)),
            "docs/ci.md lacks {}",
            c.code
        );
    }
}
