//! Deltas between two rulesets: element adds and deletes when only set and map contents differ
//! (cheap: the common case of a pod coming, going or changing labels within existing groups),
//! else a full atomic replacement. Both are one `nft -f` transaction.

use super::ir::{Element, Set};
use super::{text, Command, Ruleset, Transaction};

/// Whether two sets are the same declaration (everything but the elements).
fn same_decl(a: &Set, b: &Set) -> bool {
    a.name == b.name && a.kind == b.kind && a.comment == b.comment
}

pub fn update_from(next: &Ruleset, previous: &Ruleset) -> Transaction {
    if next == previous {
        return Transaction::default();
    }
    let same_shape = next.table == previous.table
        && next.chains == previous.chains
        && next.sets.len() == previous.sets.len()
        && next.sets.iter().zip(&previous.sets).all(|(a, b)| same_decl(a, b));
    if !same_shape {
        return next.replace();
    }
    let mut deletes = Vec::new();
    let mut adds = Vec::new();
    for (new, old) in next.sets.iter().zip(&previous.sets) {
        if new.elements == old.elements {
            continue;
        }
        // A map entry whose verdict changed is deleted and added again, in the same transaction.
        let removed: Vec<Element> = old.elements.difference(&new.elements).map(Element::key).collect();
        let added: Vec<Element> = new.elements.difference(&old.elements).cloned().collect();
        let decl = Set {
            elements: Default::default(),
            ..new.clone()
        };
        if !removed.is_empty() {
            deletes.push(Command::DeleteElements {
                table: next.table.clone(),
                set: decl.clone(),
                elements: removed,
            });
        }
        if !added.is_empty() {
            adds.push(Command::AddElements {
                table: next.table.clone(),
                set: decl,
                elements: added,
            });
        }
    }
    deletes.extend(adds);
    Transaction::new(deletes)
}

/// One command as `nft -f` text.
pub fn command_text(c: &Command) -> String {
    match c {
        Command::AddTable(t) => format!("add table inet {t}\n"),
        Command::DeleteTable(t) => format!("delete table inet {t}\n"),
        Command::Define(rs) => text::table_text(rs),
        Command::AddElements { table, set, elements } => {
            text::elements_command("add", table, &set.name, elements)
        }
        Command::DeleteElements { table, set, elements } => {
            text::elements_command("delete", table, &set.name, elements)
        }
    }
}
