//! The rendered transactions against a real kernel, in a throwaway network namespace: a full
//! replace, read back; element-only deltas (add, delete, verdict change); a replace with changed
//! chains; the JSON form through the `nftables` crate's helper; a failing transaction leaving the
//! previous table intact; delete_table; and another table left alone throughout.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::{have_nft, load_dir, manifest_dir, NetNs};
use policyc_compiler::nft::ir::{Element, SetKind};
use policyc_compiler::nft::{delete_table, render, Command, RenderOptions, Ruleset};
use policyc_compiler::{Cluster, Pod};
use serde_json::Value;

/// The table as the kernel has it: set name → element keys (as nft prints them), chain → rule count.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    sets: BTreeMap<String, Vec<String>>,
    chains: BTreeMap<String, usize>,
}

fn elem_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        // A map entry: [key, verdict]; a verdict is {"jump": {"target": c}}.
        Value::Array(kv) if kv.len() == 2 => {
            let verdict = kv[1]
                .as_object()
                .and_then(|o| o.iter().next())
                .map(|(k, t)| format!("{k} {}", t["target"].as_str().unwrap_or_default()))
                .unwrap_or_default();
            format!("{} : {verdict}", elem_key(&kv[0]))
        }
        Value::Object(o) => {
            if let Some(p) = o.get("prefix") {
                format!("{}/{}", elem_key(&p["addr"]), p["len"])
            } else if let Some(r) = o.get("range") {
                format!("{}-{}", elem_key(&r[0]), elem_key(&r[1]))
            } else if let Some(c) = o.get("concat") {
                let parts: Vec<String> = c.as_array().unwrap().iter().map(elem_key).collect();
                parts.join(" . ")
            } else if let Some(e) = o.get("elem") {
                elem_key(&e["val"])
            } else {
                v.to_string()
            }
        }
        _ => v.to_string(),
    }
}

fn list(ns: &NetNs) -> Listed {
    let out = ns.nft_ok(&["-j", "list", "table", "inet", "policyc"], "");
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut sets = BTreeMap::new();
    let mut chains = BTreeMap::new();
    for obj in v["nftables"].as_array().unwrap() {
        if let Some(s) = obj.get("set").or_else(|| obj.get("map")) {
            let mut elems: Vec<String> = s
                .get("elem")
                .and_then(|e| e.as_array())
                .map(|a| a.iter().map(elem_key).collect())
                .unwrap_or_default();
            elems.sort();
            sets.insert(s["name"].as_str().unwrap().to_string(), elems);
        } else if let Some(c) = obj.get("chain") {
            chains.entry(c["name"].as_str().unwrap().to_string()).or_insert(0);
        } else if let Some(r) = obj.get("rule") {
            *chains
                .entry(r["chain"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    Listed { sets, chains }
}

/// What the kernel should list for a ruleset, in nft's spelling of elements.
fn expected(rs: &Ruleset) -> Listed {
    let sets = rs
        .sets
        .iter()
        .map(|s| {
            let mut elems: Vec<String> = s
                .elements
                .iter()
                .map(|e| match (s.kind, e) {
                    (SetKind::Vmap(_), Element::Verdict(ip, v)) => {
                        let (verb, target) = match v {
                            policyc_compiler::nft::ir::Verdict::Jump(c) => ("jump", c),
                            policyc_compiler::nft::ir::Verdict::Goto(c) => ("goto", c),
                            other => panic!("unexpected verdict {other:?}"),
                        };
                        format!("{ip} : {verb} {target}")
                    }
                    _ => policyc_compiler::nft::text::element_text(e),
                })
                .collect();
            elems.sort();
            (s.name.clone(), elems)
        })
        .collect();
    let chains = rs
        .chains
        .iter()
        .map(|c| (c.name.clone(), c.rules.len()))
        .collect();
    Listed { sets, chains }
}

/// Compares what matters and is spelled the same both ways: every set's element count, the exact
/// elements of address sets and verdict maps, and every chain's rule count.
fn assert_listed(ns: &NetNs, rs: &Ruleset) {
    let got = list(ns);
    let want = expected(rs);
    assert_eq!(got.chains, want.chains, "chains");
    assert_eq!(
        got.sets.keys().collect::<Vec<_>>(),
        want.sets.keys().collect::<Vec<_>>(),
        "set names"
    );
    for s in &rs.sets {
        let g = &got.sets[&s.name];
        assert_eq!(g.len(), s.elements.len(), "element count of {}: {g:?}", s.name);
        if matches!(s.kind, SetKind::Vmap(_) | SetKind::Addr(_)) {
            assert_eq!(g, &want.sets[&s.name], "elements of {}", s.name);
        }
    }
}

fn examples() -> Cluster {
    load_dir(&manifest_dir().join("../examples"), false)
}

fn with_pods(cluster: &Cluster, edit: impl FnOnce(&mut Vec<Pod>)) -> Cluster {
    let mut pods = cluster.pods.clone();
    edit(&mut pods);
    Cluster::new(
        cluster.namespaces.values().cloned(),
        pods,
        cluster.policies.clone(),
        cluster.nodes.values().cloned(),
    )
}

fn clone_pod(cluster: &Cluster, name: &str, new_name: &str, ip: &str) -> Pod {
    let mut p = cluster.pod("shop", name).unwrap().clone();
    p.name = new_name.into();
    p.ips = vec![ip.parse::<IpAddr>().unwrap()];
    p
}

fn is_element_only(tx: &policyc_compiler::nft::Transaction) -> bool {
    !tx.is_empty()
        && tx
            .commands
            .iter()
            .all(|c| matches!(c, Command::AddElements { .. } | Command::DeleteElements { .. }))
}

#[test]
fn transactions_apply_to_a_real_kernel() {
    if !have_nft() {
        return;
    }
    let ns = NetNs::new("kernel");
    // Someone else's table, which nothing of ours may touch.
    ns.nft_ok(
        &["-f", "-"],
        "table inet other {\n chain c {\n  type filter hook forward priority 10; policy accept;\n }\n}\n",
    );

    let base = examples();
    let opts = RenderOptions::new("node-1");
    // Two pods per group, so that moving one pod between groups keeps both chains.
    let c0 = with_pods(&base, |pods| {
        pods.push(clone_pod(&base, "api", "api-2", "10.244.1.12"));
        pods.push(clone_pod(&base, "db", "db-2", "10.244.1.13"));
    });
    let rs0 = render(&c0, &opts);
    ns.nft_ok(&["-f", "-"], &rs0.replace().script);
    assert_listed(&ns, &rs0);
    // Replacing over an existing table works the same.
    ns.nft_ok(&["-f", "-"], &rs0.replace().script);
    assert_listed(&ns, &rs0);
    assert!(rs0.update_from(&rs0).is_empty());

    // A pod joins an existing group: elements only.
    let c1 = with_pods(&c0, |pods| {
        pods.push(clone_pod(&base, "api", "api-3", "10.244.1.14"))
    });
    let rs1 = render(&c1, &opts);
    let tx = rs1.update_from(&rs0);
    assert!(is_element_only(&tx), "{}", tx.script);
    ns.nft_ok(&["-f", "-"], &tx.script);
    assert_listed(&ns, &rs1);

    // A pod moves to the other existing group (a verdict changes) and one leaves: elements only.
    let c2 = with_pods(&c1, |pods| {
        pods.retain(|p| p.name != "api-3");
        let p = pods.iter_mut().find(|p| p.name == "api-2").unwrap();
        p.labels.insert("app".into(), "db".into());
        p.ports = base.pod("shop", "db").unwrap().ports.clone();
    });
    let rs2 = render(&c2, &opts);
    let tx = rs2.update_from(&rs1);
    assert!(is_element_only(&tx), "{}", tx.script);
    assert!(tx.script.contains("delete element"), "{}", tx.script);
    // The same delta as JSON, through the nftables crate's helper.
    nftables::helper::apply_ruleset_raw(&tx.json_text(), Some("ip"), ["netns", "exec", &ns.name, "nft"])
        .expect("JSON delta applies");
    assert_listed(&ns, &rs2);

    // A new policy changes chains: a full replacement, also as JSON.
    let mut policies = c2.policies.clone();
    let mut extra = policies.iter().find(|p| p.name == "allow-db").unwrap().clone();
    extra.name = "db-extra".into();
    if let Some(rules) = extra.ingress.as_mut() {
        rules[0].ports = None;
    }
    policies.push(extra);
    let c3 = Cluster::new(
        c2.namespaces.values().cloned(),
        c2.pods.clone(),
        policies,
        c2.nodes.values().cloned(),
    );
    let rs3 = render(&c3, &opts);
    let tx = rs3.update_from(&rs2);
    assert!(
        matches!(tx.commands.last(), Some(Command::Define(_))),
        "{}",
        tx.script
    );
    ns.nft_ok(&["-j", "-f", "-"], &tx.json_text());
    assert_listed(&ns, &rs3);

    // A failing transaction (its last command refers to a missing set) changes nothing.
    let before = ns.nft_ok(&["list", "table", "inet", "policyc"], "");
    let mut broken = render(&c0, &opts).replace().script;
    broken.push_str("add element inet policyc no-such-set { 10.244.9.9 }\n");
    let out = ns.nft(&["-f", "-"], &broken);
    assert!(!out.status.success(), "the broken transaction must fail");
    assert_eq!(ns.nft_ok(&["list", "table", "inet", "policyc"], ""), before);
    assert_listed(&ns, &rs3);

    // Uninstall, twice (the second time there is nothing to delete).
    ns.nft_ok(&["-f", "-"], &delete_table("policyc").script);
    ns.nft_ok(&["-f", "-"], &delete_table("policyc").script);
    assert!(!ns.nft(&["list", "table", "inet", "policyc"], "").status.success());
    ns.nft_ok(&["list", "table", "inet", "other"], "");
}

#[test]
fn json_replace_applies_with_log_drops_and_ipv6() {
    if !have_nft() {
        return;
    }
    let ns = NetNs::new("json");
    let cluster = load_dir(&manifest_dir().join("tests/fixtures/ipv6"), false);
    let mut opts = RenderOptions::new("node-0");
    opts.log_drops = true;
    let rs = render(&cluster, &opts);
    let nftables = rs.replace().json_text();
    nftables::helper::apply_ruleset_raw(&nftables, Some("ip"), ["netns", "exec", &ns.name, "nft"])
        .expect("JSON replace applies");
    assert_listed(&ns, &rs);
}
