use std::collections::BTreeSet;
use std::net::IpAddr;

use policyc_compiler::nft::{render, RenderOptions, UnprogrammedPods};
use policyc_compiler::Protocol;

use super::*;

const SAVE: &str = "\
-A -t 431998 -u SEEN_REPLY,ASSURED -s 10.244.0.10 -d 10.244.0.11 -r 10.244.0.11 -q 10.244.0.10 -p tcp --sport 39012 --dport 80 --reply-port-src 80 --reply-port-dst 39012 --state ESTABLISHED
-A -t 29 -u SEEN_REPLY -s fd00:10:244::10 -d fd00:10:244::11 -r fd00:10:244::11 -q fd00:10:244::10 -p udp --sport 5000 --dport 53 --reply-port-src 53 --reply-port-dst 5000 -w 7
-A -t 29 -s 10.244.0.10 -d 10.244.0.11 -r 10.244.0.11 -q 10.244.0.10 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 12
-A -t 5 -s 10.244.0.10 -p tcp --sport 1 --dport 2
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.
";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn parses_save_output() {
    let (flows, bad) = parse_save(SAVE);
    // The ICMP entry is not judged; the truncated one is counted as unreadable.
    assert_eq!(bad, 1);
    assert_eq!(
        flows,
        [
            Flow {
                protocol: Protocol::Tcp,
                src: ip("10.244.0.10"),
                dst: ip("10.244.0.11"),
                sport: 39012,
                dport: 80,
                reply_src: ip("10.244.0.11"),
                reply_sport: 80,
                zone: None,
            },
            Flow {
                protocol: Protocol::Udp,
                src: ip("fd00:10:244::10"),
                dst: ip("fd00:10:244::11"),
                sport: 5000,
                dport: 53,
                reply_src: ip("fd00:10:244::11"),
                reply_sport: 53,
                zone: Some(7),
            },
        ]
    );
    let refs: Vec<&Flow> = flows.iter().collect();
    assert_eq!(
        delete_script(&refs),
        "-D -s 10.244.0.10 -d 10.244.0.11 -p tcp --sport 39012 --dport 80\n\
         -D -s fd00:10:244::10 -d fd00:10:244::11 -p udp --sport 5000 --dport 53 -w 7\n"
    );
}

/// node-0: a (10.244.0.10, no policy), b (.11, ingress from app=a on TCP 80 only), d (.12,
/// egress to app=b on TCP 80 only); node-1: c (10.244.1.10).
const CLUSTER: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: x}}
- apiVersion: v1
  kind: Node
  metadata: {name: node-0}
  spec: {podCIDR: 10.244.0.0/24}
  status: {addresses: [{type: InternalIP, address: 198.18.0.1}]}
- apiVersion: v1
  kind: Node
  metadata: {name: node-1}
  spec: {podCIDR: 10.244.1.0/24}
  status: {addresses: [{type: InternalIP, address: 198.18.0.2}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: x, labels: {app: a}}
  spec: {nodeName: node-0, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.244.0.10}
- apiVersion: v1
  kind: Pod
  metadata: {name: b, namespace: x, labels: {app: b}}
  spec: {nodeName: node-0, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.244.0.11}
- apiVersion: v1
  kind: Pod
  metadata: {name: d, namespace: x, labels: {app: d}}
  spec: {nodeName: node-0, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.244.0.12}
- apiVersion: v1
  kind: Pod
  metadata: {name: c, namespace: x, labels: {app: c}}
  spec: {nodeName: node-1, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.244.1.10}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b, namespace: x}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: a}}}]
    ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: d, namespace: x}
spec:
  podSelector: {matchLabels: {app: d}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: b}}}]
    ports: [{port: 80}]
"#;

fn flow(protocol: Protocol, src: &str, dst: &str, dport: u16) -> Flow {
    Flow {
        protocol,
        src: ip(src),
        dst: ip(dst),
        sport: 40000,
        dport,
        reply_src: ip(dst),
        reply_sport: dport,
        zone: None,
    }
}

/// node-0's own addresses: underlay, bridge, vxlan, loopback.
fn host() -> BTreeSet<IpAddr> {
    ["198.18.0.1", "10.244.0.1", "10.244.0.0", "127.0.0.1"]
        .iter()
        .map(|s| ip(s))
        .collect()
}

#[test]
fn deletes_exactly_the_flows_the_ruleset_denies() {
    let (cluster, _, diags) = policyc_compiler::load::load_texts([("c.yaml", CLUSTER)]);
    assert!(diags.is_empty(), "{diags:?}");
    let rs = render(&cluster, &RenderOptions::new("node-0"));
    let tcp = Protocol::Tcp;
    // A Service connection: the original destination is the VIP, the reply comes from the
    // backend's port, which is what the rules saw after DNAT.
    let service = |target: u16| Flow {
        reply_src: ip("10.244.0.11"),
        reply_sport: target,
        ..flow(tcp, "10.244.0.10", "198.19.0.10", 80)
    };
    let cases = [
        (
            flow(tcp, "10.244.0.10", "10.244.0.11", 80),
            true,
            "a -> b:80 is admitted",
        ),
        (
            flow(tcp, "10.244.0.10", "10.244.0.11", 8080),
            false,
            "b admits only port 80",
        ),
        (
            flow(Protocol::Udp, "10.244.0.10", "10.244.0.11", 80),
            false,
            "b admits only TCP",
        ),
        (
            flow(tcp, "10.244.1.10", "10.244.0.11", 80),
            false,
            "c (other node) is not admitted by b",
        ),
        (
            flow(tcp, "10.244.0.1", "10.244.0.11", 8080),
            true,
            "the node itself (bridge address) -> b",
        ),
        (
            flow(tcp, "198.18.0.1", "10.244.0.11", 8080),
            true,
            "the node itself -> b",
        ),
        (
            flow(tcp, "198.18.0.2", "10.244.0.11", 8080),
            false,
            "another node -> b is policed",
        ),
        (service(80), true, "a -> VIP, DNAT to b:80"),
        (service(8080), false, "a -> VIP, DNAT to b:8080"),
        (
            flow(tcp, "10.244.0.12", "10.244.0.11", 80),
            false,
            "d -> b:80: d admits it, b does not",
        ),
        (
            flow(tcp, "10.244.0.12", "198.18.0.1", 22),
            false,
            "d -> the node (input): egress denies",
        ),
        (
            flow(tcp, "10.244.0.12", "10.244.1.10", 80),
            false,
            "d -> c: egress denies",
        ),
        (
            flow(tcp, "10.244.0.10", "10.244.1.10", 80),
            true,
            "a has no policy",
        ),
        (
            flow(tcp, "10.244.0.99", "10.244.0.10", 80),
            true,
            "an unprogrammed pod, by default",
        ),
    ];
    let flows: Vec<Flow> = cases.iter().map(|(f, _, _)| f.clone()).collect();
    let gone: BTreeSet<&Flow> = denied(&flows, &rs, &host()).into_iter().collect();
    for (f, keep, why) in &cases {
        assert_eq!(!gone.contains(f), *keep, "{why}: {f:?}");
    }

    // With --unprogrammed-pods=drop the unknown address's connection goes too.
    let mut opts = RenderOptions::new("node-0");
    opts.unprogrammed_pods = UnprogrammedPods::Drop;
    let rs = render(&cluster, &opts);
    let stray = flow(tcp, "10.244.0.99", "10.244.0.10", 80);
    let node = flow(tcp, "10.244.0.1", "10.244.0.99", 80);
    let flows = [stray.clone(), node.clone()];
    assert_eq!(denied(&flows, &rs, &host()), [&stray]);
}
