//! Deltas between two rulesets, as one `nft` transaction whose size follows the change, not the
//! table: element adds and deletes for sets and maps whose contents differ, new sets and chains
//! added, chains whose rules differ flushed and refilled, and sets and chains no longer used
//! deleted. Group chains are named by a hash of their rules, so a pod moving between groups or a
//! policy edit touches the chains of the groups concerned and nothing else.
//!
//! Order inside the transaction, so that nothing is referred to before it exists or after it is
//! gone (the kernel checks references as each command is prepared):
//! 1. new chains, declared empty (map elements and rules may jump to them);
//! 2. new sets and maps, with their elements;
//! 3. changed chains flushed and refilled, new chains filled;
//! 4. element deletes, then element adds (a map entry whose verdict changed is deleted and added);
//! 5. chains no longer used flushed;
//! 6. sets and maps no longer used deleted (their last rules went in steps 3 and 5), then the
//!    chains no longer used (their map entries went in step 4, or with their whole map in 6).
//!
//! Only a change the table cannot take in place falls back to the full atomic replacement: a
//! different table name, a chain that turns base or changes hook, or a set whose type changes
//! under the same name.

use std::collections::BTreeMap;

use super::ir::{Chain, Element, Set};
use super::{text, Command, Ruleset, Transaction};

/// Whether two sets are the same declaration (everything but the elements).
fn same_decl(a: &Set, b: &Set) -> bool {
    a.name == b.name && a.kind == b.kind && a.comment == b.comment
}

fn declaration(set: &Set) -> Set {
    Set {
        name: set.name.clone(),
        kind: set.kind,
        elements: Default::default(),
        comment: set.comment.clone(),
    }
}

pub fn update_from(next: &Ruleset, previous: &Ruleset) -> Transaction {
    if next == previous {
        return Transaction::default();
    }
    if next.table != previous.table {
        return next.replace();
    }
    let old_chains: BTreeMap<&str, &Chain> = previous.chains.iter().map(|c| (c.name.as_str(), c)).collect();
    let new_chains: BTreeMap<&str, &Chain> = next.chains.iter().map(|c| (c.name.as_str(), c)).collect();
    let old_sets: BTreeMap<&str, &Set> = previous.sets.iter().map(|s| (s.name.as_str(), s)).collect();
    let new_sets: BTreeMap<&str, &Set> = next.sets.iter().map(|s| (s.name.as_str(), s)).collect();
    let conflict = next
        .chains
        .iter()
        .any(|c| old_chains.get(c.name.as_str()).is_some_and(|o| o.base != c.base))
        || next
            .sets
            .iter()
            .any(|s| old_sets.get(s.name.as_str()).is_some_and(|o| !same_decl(o, s)));
    if conflict {
        return next.replace();
    }
    let table = || next.table.clone();
    let mut out = Vec::new();
    // 1. New chains, empty.
    for c in next
        .chains
        .iter()
        .filter(|c| !old_chains.contains_key(c.name.as_str()))
    {
        out.push(Command::AddChain {
            table: table(),
            name: c.name.clone(),
            base: c.base,
        });
    }
    // 2. New sets and maps, filled.
    for s in next
        .sets
        .iter()
        .filter(|s| !old_sets.contains_key(s.name.as_str()))
    {
        out.push(Command::AddSet {
            table: table(),
            set: s.clone(),
        });
    }
    // 3. Changed chains refilled, new chains filled.
    for c in &next.chains {
        let changed = match old_chains.get(c.name.as_str()) {
            Some(old) if old.rules == c.rules => continue,
            Some(_) => true,
            None => false,
        };
        if changed {
            out.push(Command::FlushChain {
                table: table(),
                chain: c.name.clone(),
            });
        }
        if !c.rules.is_empty() {
            out.push(Command::AddRules {
                table: table(),
                chain: c.name.clone(),
                rules: c.rules.clone(),
            });
        }
    }
    // 4. Element deletes, then adds, for the sets both sides have.
    let mut adds = Vec::new();
    for new in &next.sets {
        let Some(old) = old_sets.get(new.name.as_str()) else {
            continue;
        };
        if new.elements == old.elements {
            continue;
        }
        let removed: Vec<Element> = old.elements.difference(&new.elements).map(Element::key).collect();
        let added: Vec<Element> = new.elements.difference(&old.elements).cloned().collect();
        if !removed.is_empty() {
            out.push(Command::DeleteElements {
                table: table(),
                set: declaration(new),
                elements: removed,
            });
        }
        if !added.is_empty() {
            adds.push(Command::AddElements {
                table: table(),
                set: declaration(new),
                elements: added,
            });
        }
    }
    out.extend(adds);
    // 5. Chains no longer used, emptied (so no rule of theirs holds a set or another chain).
    let gone: Vec<&Chain> = previous
        .chains
        .iter()
        .filter(|c| !new_chains.contains_key(c.name.as_str()))
        .collect();
    for c in gone.iter().filter(|c| !c.rules.is_empty()) {
        out.push(Command::FlushChain {
            table: table(),
            chain: c.name.clone(),
        });
    }
    // 6. Sets no longer used (a whole map going takes its jumps with it), then the chains.
    for s in previous
        .sets
        .iter()
        .filter(|s| !new_sets.contains_key(s.name.as_str()))
    {
        out.push(Command::DeleteSet {
            table: table(),
            set: declaration(s),
        });
    }
    for c in &gone {
        out.push(Command::DeleteChain {
            table: table(),
            chain: c.name.clone(),
        });
    }
    Transaction::new(out)
}

/// One command as `nft -f` text.
pub fn command_text(c: &Command) -> String {
    match c {
        Command::AddTable(t) => format!("add table inet {t}\n"),
        Command::DeleteTable(t) => format!("delete table inet {t}\n"),
        Command::Define(rs) => text::table_text(rs),
        Command::AddChain { table, name, base } => text::add_chain_command(table, name, base.as_ref()),
        Command::FlushChain { table, chain } => format!("flush chain inet {table} {chain}\n"),
        Command::AddRules { table, chain, rules } => text::add_rules_command(table, chain, rules),
        Command::DeleteChain { table, chain } => format!("delete chain inet {table} {chain}\n"),
        Command::AddSet { table, set } => text::add_set_command(table, set),
        Command::DeleteSet { table, set } => {
            let word = if text::is_map(set.kind) { "map" } else { "set" };
            format!("delete {word} inet {table} {}\n", set.name)
        }
        Command::AddElements { table, set, elements } => {
            text::elements_command("add", table, &set.name, elements)
        }
        Command::DeleteElements { table, set, elements } => {
            text::elements_command("delete", table, &set.name, elements)
        }
    }
}
