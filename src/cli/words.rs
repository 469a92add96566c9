//! How trace, explain and diff name policies and rules for a person: `file:line` of the policy and
//! of the rule (through the compiler's spans), and rules in words ("admits pods [app=web] in
//! namespace shop on 8080/TCP").

use std::path::PathBuf;

use policyc_compiler::policy::{Direction, Rule};
use policyc_compiler::spans::Spans;
use policyc_compiler::{Cluster, Policy};

/// Field positions of the input files, to cite the line of a rule. Empty for a live cluster.
pub fn spans_of(paths: &[PathBuf]) -> anyhow::Result<Spans> {
    let mut spans = Spans::new();
    for (name, text) in crate::input::read_texts(paths)? {
        spans.add_file(&name, &text);
    }
    Ok(spans)
}

/// Where policies and their rules were written.
pub struct Citer<'a> {
    pub cluster: &'a Cluster,
    pub spans: &'a Spans,
}

impl Citer<'_> {
    pub fn policy(&self, key: &str) -> Option<&Policy> {
        let (ns, name) = key.split_once('/')?;
        self.cluster
            .policies
            .binary_search_by(|p| (p.namespace.as_str(), p.name.as_str()).cmp(&(ns, name)))
            .ok()
            .map(|i| &self.cluster.policies[i])
    }

    /// `file:line` of a field of a policy (`""` for the policy itself), if it came from a file.
    pub fn at(&self, policy: &Policy, field: &str) -> Option<String> {
        let source = policy.source.as_ref()?;
        let pos = [Some(policy.namespace.as_str()), None]
            .into_iter()
            .find_map(|ns| {
                self.spans.locate(
                    &source.file,
                    "NetworkPolicy",
                    ns,
                    &policy.name,
                    field,
                    Some(source.line),
                )
            });
        Some(match pos {
            Some(p) => format!("{}:{}", source.file, p.line),
            None => source.to_string(),
        })
    }

    /// `ns/name (file:line)`.
    pub fn policy_name(&self, key: &str) -> String {
        match self.policy(key).and_then(|p| self.at(p, "")) {
            Some(at) => format!("{key} ({at})"),
            None => key.to_string(),
        }
    }

    /// `ns/name ingress rule 0 (file:line)`, the line being the rule's own.
    pub fn rule_name(&self, key: &str, direction: Direction, index: usize) -> String {
        let at = self
            .policy(key)
            .and_then(|p| self.at(p, &format!("spec.{direction}[{index}]")));
        match at {
            Some(at) => format!("{key} {direction} rule {index} ({at})"),
            None => format!("{key} {direction} rule {index}"),
        }
    }
}

/// Joins names as a person would: `a`, `a and b`, `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// What a rule admits: `from pods [app=web] in namespace shop on 8080/TCP`.
pub fn rule_admits(rule: &Rule, direction: Direction) -> String {
    if rule.invalid {
        return "nothing (the rule has an invalid field)".into();
    }
    let prep = match direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    let peers = match &rule.peers {
        None => format!("{prep} anywhere"),
        Some(ps) if ps.is_empty() => format!("{prep} nowhere"),
        Some(ps) => {
            let ps: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
            format!("{prep} {}", ps.join(" or "))
        }
    };
    let ports = match &rule.ports {
        None => "on every port".to_string(),
        Some(ps) => {
            let ps: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
            format!("on {}", ps.join(", "))
        }
    };
    format!("{peers} {ports}")
}
