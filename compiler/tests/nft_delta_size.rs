//! A delta grows with the change, not with the cluster: the issue's three incremental changes
//! (one pod added, one pod's labels changed, one policy changed), made in the same small
//! namespace of a 1,000-pod and of a 10,000-pod synthetic cluster, give transactions of exactly
//! the same size and shape. Sizes are counted, never timed.

#[path = "common/synth.rs"]
mod synth;

use std::collections::BTreeMap;
use std::net::IpAddr;

use policyc_compiler::model::{ContainerPort, Labels, Namespace};
use policyc_compiler::nft::{render, Command, RenderOptions, Transaction, TxSize};
use policyc_compiler::policy::{NamespaceMatch, Peer, PortMatch, Rule};
use policyc_compiler::selector::{Operator, Requirement, Selector};
use policyc_compiler::{Cluster, Pod, Policy, Protocol};

const NODE: &str = "node-7";

fn app(value: &str) -> Selector {
    Selector {
        requirements: vec![Requirement {
            key: "app".into(),
            operator: Operator::In,
            values: [value.to_string()].into(),
        }],
    }
}

/// A pod of the probe namespace on [`NODE`], in a corner of node-7's /23 that synth leaves free.
fn probe_pod(name: &str, label: &str, host: u8) -> Pod {
    Pod {
        namespace: "probe".into(),
        name: name.into(),
        labels: Labels::from([("app".to_string(), label.to_string())]),
        node_name: Some(NODE.into()),
        host_network: false,
        ports: vec![ContainerPort {
            name: Some("http".into()),
            port: 8080,
            protocol: Protocol::Tcp,
        }],
        ips: vec![IpAddr::from([10, 244, 15, host])],
        phase: Some("Running".into()),
        source: None,
    }
}

fn policy(name: &str, selector: Selector, ingress: Option<Vec<Rule>>, egress: Option<Vec<Rule>>) -> Policy {
    Policy {
        namespace: "probe".into(),
        name: name.into(),
        pod_selector: selector,
        ingress,
        egress,
        ignored: vec![],
        invalid_selector: false,
        source: None,
    }
}

fn from_app(label: &str, port: PortMatch) -> Rule {
    Rule {
        index: 0,
        peers: Some(vec![Peer::Pods {
            namespaces: NamespaceMatch::Own("probe".into()),
            pods: app(label),
        }]),
        ports: Some(vec![port]),
        invalid: false,
    }
}

fn tcp(port: u16) -> PortMatch {
    PortMatch::Range {
        protocol: Protocol::Tcp,
        start: port,
        end: port,
    }
}

/// The probe namespace's policies; `b_port` is the port `allow-b` admits.
fn probe_policies(b_port: u16) -> Vec<Policy> {
    vec![
        policy("deny", Selector::everything(), Some(vec![]), Some(vec![])),
        policy("allow-b", app("b"), Some(vec![from_app("a", tcp(b_port))]), None),
        policy("allow-c", app("c"), Some(vec![from_app("a", tcp(9090))]), None),
        policy(
            "a-egress",
            app("a"),
            None,
            Some(vec![from_app(
                "b",
                PortMatch::Named {
                    protocol: Protocol::Tcp,
                    name: "http".into(),
                },
            )]),
        ),
    ]
}

/// `base` plus the probe namespace (no labels, so no other namespace's selector picks it).
fn with_probe(base: &Cluster, pods: Vec<Pod>, policies: Vec<Policy>) -> Cluster {
    Cluster::new(
        base.namespaces
            .values()
            .cloned()
            .chain([Namespace::new("probe", Labels::new(), false)]),
        base.pods.iter().cloned().chain(pods),
        base.policies.iter().cloned().chain(policies),
        base.nodes.values().cloned(),
    )
}

fn probe_pods() -> Vec<Pod> {
    vec![
        probe_pod("a-0", "a", 200),
        probe_pod("b-0", "b", 201),
        probe_pod("b-1", "b", 202),
    ]
}

/// The three changes' transactions for a base cluster.
fn deltas(base: &Cluster) -> BTreeMap<&'static str, Transaction> {
    let opts = RenderOptions::new(NODE);
    let before = render(&with_probe(base, probe_pods(), probe_policies(8080)), &opts);
    let mut added = probe_pods();
    added.push(probe_pod("b-2", "b", 203));
    let mut relabelled = probe_pods();
    relabelled[2].labels.insert("app".into(), "c".into());
    let after = [
        ("one pod added", with_probe(base, added, probe_policies(8080))),
        (
            "one pod's labels changed",
            with_probe(base, relabelled, probe_policies(8080)),
        ),
        (
            "one policy changed",
            with_probe(base, probe_pods(), probe_policies(8081)),
        ),
    ];
    after
        .into_iter()
        .map(|(name, c)| (name, render(&c, &opts).update_from(&before)))
        .collect()
}

/// The kinds of a transaction's commands, in order, with the sets and chains they name.
fn shape(tx: &Transaction) -> Vec<String> {
    tx.commands
        .iter()
        .map(|c| match c {
            Command::AddTable(_) | Command::DeleteTable(_) | Command::Define(_) => format!("{c:?}"),
            Command::AddChain { name, .. } => format!("add chain {name}"),
            Command::FlushChain { chain, .. } => format!("flush chain {chain}"),
            Command::AddRules { chain, rules, .. } => format!("add {} rules {chain}", rules.len()),
            Command::DeleteChain { chain, .. } => format!("delete chain {chain}"),
            Command::AddSet { set, .. } => format!("add set {} ({})", set.name, set.elements.len()),
            Command::DeleteSet { set, .. } => format!("delete set {}", set.name),
            Command::AddElements { set, elements, .. } => format!("add {} to {}", elements.len(), set.name),
            Command::DeleteElements { set, elements, .. } => {
                format!("delete {} from {}", elements.len(), set.name)
            }
        })
        .collect()
}

#[test]
fn deltas_do_not_grow_with_the_cluster() {
    let small = synth::cluster(&synth::Size {
        pods: 1_000,
        policies: 200,
        namespaces: 10,
        nodes: synth::ISSUE.nodes,
    });
    let large = synth::cluster(&synth::ISSUE);
    let opts = RenderOptions::new(NODE);
    let (s, l) = (render(&small, &opts).stats(), render(&large, &opts).stats());
    assert!(
        l.elements > 5 * s.elements,
        "the large node share really is larger: {s:?} vs {l:?}"
    );

    let (ds, dl) = (deltas(&small), deltas(&large));
    for (name, tx) in &dl {
        let small_tx = &ds[name];
        assert!(!tx.is_empty(), "{name}: the change changes the table");
        assert!(
            !tx.commands
                .iter()
                .any(|c| matches!(c, Command::Define(_) | Command::DeleteTable(_))),
            "{name}: a full replace\n{}",
            tx.script
        );
        let size: TxSize = tx.size();
        eprintln!("{name}: {size:?}");
        assert_eq!(
            small_tx.size(),
            size,
            "{name}: size on 1k vs 10k pods\n{}\n---\n{}",
            small_tx.script,
            tx.script
        );
        assert_eq!(shape(small_tx), shape(tx), "{name}");
        // One event's worth: a handful of commands and elements, whatever the cluster.
        assert!(
            size.commands <= 16 && size.elements <= 12,
            "{name}: {size:?}\n{}",
            tx.script
        );
    }
    // The label change makes a new group (pod b-1 alone is now selected by allow-c), the policy
    // change replaces group b's chain by one with the new port and deletes the old one.
    let relabel = &dl["one pod's labels changed"];
    assert!(
        relabel
            .commands
            .iter()
            .any(|c| matches!(c, Command::AddChain { .. })),
        "{}",
        relabel.script
    );
    let edit = &dl["one policy changed"];
    assert!(
        edit.commands
            .iter()
            .any(|c| matches!(c, Command::AddChain { .. })),
        "{}",
        edit.script
    );
    assert!(
        edit.commands
            .iter()
            .any(|c| matches!(c, Command::DeleteChain { .. })),
        "{}",
        edit.script
    );
    assert!(edit.script.contains("th dport 8081"), "{}", edit.script);
    let added = &dl["one pod added"];
    assert!(
        added
            .commands
            .iter()
            .all(|c| matches!(c, Command::AddElements { .. })),
        "{}",
        added.script
    );
}
