//! The per-packet cost of the rendered ruleset does not grow with the cluster: the rules a
//! packet to (or from) a pod can meet are the base chains plus that pod's own group chain, and
//! adding thousands of pods and hundreds of policies elsewhere adds set and map elements, not
//! rules on that path.

use std::fmt::Write;
use std::net::IpAddr;

use policyc_compiler::load::load_texts;
use policyc_compiler::nft::ir::{Action, Verdict};
use policyc_compiler::nft::{render, RenderOptions, Ruleset};

/// `shop` on node-1: web (selected by two policies) and a client; plus `extra` namespaces of
/// `pods_per_ns` pods each, spread over 20 nodes, each namespace with a default deny and an allow.
fn cluster_yaml(extra: usize, pods_per_ns: usize) -> String {
    let mut y = String::new();
    let pod = |y: &mut String, ns: &str, name: &str, app: &str, node: usize, ip: &str| {
        write!(
            y,
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{app: {app}}}}}\n\
             spec: {{nodeName: node-{node}, containers: [{{name: c, ports: [{{name: http, containerPort: 8080}}]}}]}}\n\
             status: {{phase: Running, podIP: {ip}}}\n"
        )
        .unwrap();
    };
    pod(&mut y, "shop", "web", "web", 1, "10.244.1.10");
    pod(&mut y, "shop", "client", "client", 2, "10.244.2.10");
    y.push_str(
        r#"---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: http}]
  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: monitor}}}]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.244.9.0/24]}}]
"#,
    );
    for n in 0..extra {
        let ns = format!("ns{n}");
        for p in 0..pods_per_ns {
            let node = (n * pods_per_ns + p) % 20;
            // Every fourth pod is a monitor: it joins the peer set of shop/web's second rule.
            let app = if p % 4 == 0 { "monitor" } else { "app" };
            let ip = format!("10.244.{}.{}", 20 + n / 2, (n % 2) * 120 + p + 2);
            pod(&mut y, &ns, &format!("p{p}"), app, node, &ip);
        }
        write!(
            y,
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny, namespace: {ns}}}\n\
             spec: {{podSelector: {{}}}}\n\
             ---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: allow, namespace: {ns}}}\n\
             spec: {{podSelector: {{matchLabels: {{app: app}}}}, ingress: [{{from: [{{podSelector: {{}}}}], ports: [{{port: 8080}}]}}]}}\n"
        )
        .unwrap();
    }
    y
}

fn ruleset(extra: usize, pods_per_ns: usize) -> Ruleset {
    let yaml = cluster_yaml(extra, pods_per_ns);
    let (cluster, _, diags) = load_texts([("cluster.yaml", yaml.as_str())]);
    assert!(diags.is_empty(), "{diags:?}");
    render(&cluster, &RenderOptions::new("node-1"))
}

/// Every rule a packet from or to `ip` can be evaluated against on this node: the base chains,
/// and the chains its address's verdict-map entries lead to (followed transitively).
fn path_rules(rs: &Ruleset, ip: IpAddr) -> usize {
    let mut total = 0;
    let mut todo: Vec<String> = Vec::new();
    for chain in rs.chains.iter().filter(|c| c.base.is_some()) {
        total += chain.rules.len();
        for rule in &chain.rules {
            if let Action::Vmap { map, .. } = &rule.action {
                if let Some(Verdict::Jump(t) | Verdict::Goto(t)) =
                    rs.set(map).and_then(|m| m.lookup_verdict(ip))
                {
                    todo.push(t.clone());
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let chain = rs.chain(&name).unwrap_or_else(|| panic!("missing chain {name}"));
        total += chain.rules.len();
        for rule in &chain.rules {
            if let Action::Verdict(Verdict::Jump(t) | Verdict::Goto(t)) = &rule.action {
                todo.push(t.clone());
            }
        }
    }
    total
}

#[test]
fn packet_path_does_not_grow_with_pods_or_policies() {
    let web: IpAddr = "10.244.1.10".parse().unwrap();
    let small = ruleset(0, 0);
    let large = ruleset(100, 40); // 4,000 more pods, 200 more policies
    let (s, l) = (small.stats(), large.stats());
    assert!(
        l.elements > s.elements + 1_000,
        "the large cluster really is larger: {s:?} vs {l:?}"
    );
    let (ps, pl) = (path_rules(&small, web), path_rules(&large, web));
    assert!(ps > 0);
    assert_eq!(
        ps, pl,
        "rules on shop/web's packet path: {ps} with 2 pods, {pl} with 4,002 pods and 202 policies"
    );
}
