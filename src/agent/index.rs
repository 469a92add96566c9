//! The agent's view of the cluster: one store per watched kind, holding only the compiler's
//! trimmed model types (never API objects), so an event that changes nothing the semantics use
//! compares equal and is reported as "no change". Modelled on kubert / linkerd2-policy-controller
//! indexes: `apply`, `delete` and `reset` per kind, where `reset` (after a (re)list) drops every
//! object that vanished while the watch was disconnected.
//!
//! The index also remembers which kinds have completed their initial list: the sync loop compiles
//! nothing before all of them have, so a half-filled cache never becomes an allow-all or deny-all.

use std::collections::BTreeMap;

use policyc_compiler::model::{Namespace, Node, Pod};
use policyc_compiler::{Cluster, Diagnostic, Policy};

/// The kinds the agent watches, in a fixed order (metrics labels, logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Namespace,
    Pod,
    NetworkPolicy,
    Node,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Namespace, Kind::Pod, Kind::NetworkPolicy, Kind::Node];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::Node => "Node",
        }
    }
}

/// `namespace/name` for namespaced kinds; the namespace is empty for cluster-scoped ones.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Key {
        Key {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn cluster(name: impl Into<String>) -> Key {
        Key::new("", name)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// A policy with the problems found converting it. Kept together so that an update that only
/// changes what is wrong with a policy still counts as a change (the invalid gauge moves).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEntry {
    pub policy: Policy,
    pub diagnostics: Vec<Diagnostic>,
}

/// A model type the index can store.
pub trait Projection: Clone + PartialEq + std::fmt::Debug {
    const KIND: Kind;
    fn key(&self) -> Key;
}

impl Projection for Namespace {
    const KIND: Kind = Kind::Namespace;
    fn key(&self) -> Key {
        Key::cluster(&self.name)
    }
}

impl Projection for Pod {
    const KIND: Kind = Kind::Pod;
    fn key(&self) -> Key {
        Key::new(&self.namespace, &self.name)
    }
}

impl Projection for PolicyEntry {
    const KIND: Kind = Kind::NetworkPolicy;
    fn key(&self) -> Key {
        Key::new(&self.policy.namespace, &self.policy.name)
    }
}

impl Projection for Node {
    const KIND: Kind = Kind::Node;
    fn key(&self) -> Key {
        Key::cluster(&self.name)
    }
}

/// What a source tells the index: one change to one kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Change<T> {
    Apply(T),
    Delete(Key),
    /// The complete current set of the kind, after a (re)list.
    Reset(Vec<T>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Namespace(Change<Namespace>),
    Pod(Change<Pod>),
    Policy(Change<PolicyEntry>),
    Node(Change<Node>),
}

impl Update {
    pub fn kind(&self) -> Kind {
        match self {
            Update::Namespace(_) => Kind::Namespace,
            Update::Pod(_) => Kind::Pod,
            Update::Policy(_) => Kind::NetworkPolicy,
            Update::Node(_) => Kind::Node,
        }
    }
}

/// The objects of one kind.
#[derive(Clone, Debug)]
pub struct Store<T: Projection> {
    items: BTreeMap<Key, T>,
    synced: bool,
}

impl<T: Projection> Default for Store<T> {
    fn default() -> Self {
        Store {
            items: BTreeMap::new(),
            synced: false,
        }
    }
}

impl<T: Projection> Store<T> {
    /// Adds or updates an object; true if the stored projection changed.
    pub fn apply(&mut self, obj: T) -> bool {
        let key = obj.key();
        if self.items.get(&key) == Some(&obj) {
            return false;
        }
        self.items.insert(key, obj);
        true
    }

    /// Removes an object; true if it was there.
    pub fn delete(&mut self, key: &Key) -> bool {
        self.items.remove(key).is_some()
    }

    /// Replaces the whole kind with a fresh list and marks it synced; true if anything differs
    /// (including objects that vanished while disconnected).
    pub fn reset(&mut self, objs: Vec<T>) -> bool {
        let fresh: BTreeMap<Key, T> = objs.into_iter().map(|o| (o.key(), o)).collect();
        self.synced = true;
        if fresh == self.items {
            return false;
        }
        self.items = fresh;
        true
    }

    pub fn synced(&self) -> bool {
        self.synced
    }

    pub fn get(&self, key: &Key) -> Option<&T> {
        self.items.get(key)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.items.values()
    }

    pub fn change(&mut self, change: Change<T>) -> bool {
        match change {
            Change::Apply(o) => self.apply(o),
            Change::Delete(k) => self.delete(&k),
            Change::Reset(objs) => self.reset(objs),
        }
    }
}

/// The stores, and the [`Cluster`] they make, kept up to date change by change: a snapshot is a
/// borrow, not a copy of every object (cloning and sorting 10,000 pods took longer than
/// rendering them).
#[derive(Clone, Debug, Default)]
pub struct Index {
    pub namespaces: Store<Namespace>,
    pub pods: Store<Pod>,
    pub policies: Store<PolicyEntry>,
    pub nodes: Store<Node>,
    cluster: Cluster,
}

/// A borrowed [`Cluster`]: derefs to it, and `.clone()` gives an owned copy. A wrapper rather
/// than `&Cluster` so that callers written for an owned snapshot (`render(&idx.snapshot())`)
/// keep working unchanged.
#[derive(Debug, PartialEq)]
pub struct Snapshot<'a>(&'a Cluster);

impl std::ops::Deref for Snapshot<'_> {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        self.0
    }
}

/// Where `(namespace, name)` is, or would go, in a list sorted that way.
fn position<T>(items: &[T], key: &Key, of: impl Fn(&T) -> (&str, &str)) -> Result<usize, usize> {
    items.binary_search_by(|x| of(x).cmp(&(key.namespace.as_str(), key.name.as_str())))
}

fn pod_key(p: &Pod) -> (&str, &str) {
    (&p.namespace, &p.name)
}

fn policy_key(p: &Policy) -> (&str, &str) {
    (&p.namespace, &p.name)
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    /// Applies one update; true if the snapshot changed. Newly stored policies with problems are
    /// logged here (once per change, not once per sync).
    pub fn update(&mut self, update: Update) -> bool {
        match update {
            Update::Namespace(Change::Apply(ns)) => {
                let changed = self.namespaces.apply(ns.clone());
                if changed {
                    self.cluster.namespaces.insert(ns.name.clone(), ns);
                }
                changed
            }
            Update::Namespace(Change::Delete(key)) => {
                let changed = self.namespaces.delete(&key);
                if changed {
                    self.cluster.namespaces.remove(&key.name);
                    self.fix_implicit(&key.name);
                }
                changed
            }
            Update::Pod(Change::Apply(pod)) => {
                let changed = self.pods.apply(pod.clone());
                if changed {
                    let ns = pod.namespace.clone();
                    match position(&self.cluster.pods, &Projection::key(&pod), pod_key) {
                        Ok(i) => self.cluster.pods[i] = pod,
                        Err(i) => self.cluster.pods.insert(i, pod),
                    }
                    self.fix_implicit(&ns);
                }
                changed
            }
            Update::Pod(Change::Delete(key)) => {
                let changed = self.pods.delete(&key);
                if changed {
                    if let Ok(i) = position(&self.cluster.pods, &key, pod_key) {
                        self.cluster.pods.remove(i);
                    }
                    self.fix_implicit(&key.namespace);
                }
                changed
            }
            Update::Policy(c) => {
                log_new_diagnostics(&self.policies, &c);
                match c {
                    Change::Apply(entry) => {
                        let changed = self.policies.apply(entry.clone());
                        if changed {
                            let key = entry.key();
                            let policy = entry.policy;
                            match position(&self.cluster.policies, &key, policy_key) {
                                Ok(i) => self.cluster.policies[i] = policy,
                                Err(i) => self.cluster.policies.insert(i, policy),
                            }
                            self.fix_implicit(&key.namespace);
                        }
                        changed
                    }
                    Change::Delete(key) => {
                        let changed = self.policies.delete(&key);
                        if changed {
                            if let Ok(i) = position(&self.cluster.policies, &key, policy_key) {
                                self.cluster.policies.remove(i);
                            }
                            self.fix_implicit(&key.namespace);
                        }
                        changed
                    }
                    reset => self.reset(|idx| idx.policies.change(reset)),
                }
            }
            Update::Node(Change::Apply(node)) => {
                let changed = self.nodes.apply(node.clone());
                if changed {
                    self.cluster.nodes.insert(node.name.clone(), node);
                }
                changed
            }
            Update::Node(Change::Delete(key)) => {
                let changed = self.nodes.delete(&key);
                if changed {
                    self.cluster.nodes.remove(&key.name);
                }
                changed
            }
            // A (re)list: rare, so the snapshot is simply rebuilt.
            Update::Namespace(reset) => self.reset(|idx| idx.namespaces.change(reset)),
            Update::Pod(reset) => self.reset(|idx| idx.pods.change(reset)),
            Update::Node(reset) => self.reset(|idx| idx.nodes.change(reset)),
        }
    }

    fn reset(&mut self, change: impl FnOnce(&mut Index) -> bool) -> bool {
        let changed = change(self);
        if changed {
            self.cluster = self.rebuilt();
        }
        changed
    }

    /// Keeps the namespace `name` in the snapshot as [`Cluster::new`] would: the stored object if
    /// there is one, else an implicit one while a pod or policy names it, else none.
    fn fix_implicit(&mut self, name: &str) {
        if self.namespaces.get(&Key::cluster(name)).is_some() {
            return;
        }
        let c = &self.cluster;
        let in_ns = |ns: &str| ns == name;
        let start = c.pods.partition_point(|p| p.namespace.as_str() < name);
        let referenced = c.pods.get(start).is_some_and(|p| in_ns(&p.namespace)) || {
            let start = c.policies.partition_point(|p| p.namespace.as_str() < name);
            c.policies.get(start).is_some_and(|p| in_ns(&p.namespace))
        };
        if referenced {
            self.cluster
                .namespaces
                .entry(name.to_string())
                .or_insert_with(|| Namespace::new(name, Default::default(), true));
        } else {
            self.cluster.namespaces.remove(name);
        }
    }

    /// The snapshot built from scratch out of the stores.
    pub fn rebuilt(&self) -> Cluster {
        Cluster::new(
            self.namespaces.values().cloned(),
            self.pods.values().cloned(),
            self.policies.values().map(|p| p.policy.clone()),
            self.nodes.values().cloned(),
        )
    }

    /// True once every watched kind has completed its initial list.
    pub fn synced(&self) -> bool {
        self.pending().is_empty()
    }

    /// The kinds whose initial list has not completed yet.
    pub fn pending(&self) -> Vec<Kind> {
        let synced = [
            self.namespaces.synced(),
            self.pods.synced(),
            self.policies.synced(),
            self.nodes.synced(),
        ];
        Kind::ALL
            .into_iter()
            .zip(synced)
            .filter(|(_, s)| !s)
            .map(|(k, _)| k)
            .collect()
    }

    /// Policies with at least one problem (their invalid parts fail closed).
    pub fn invalid_policies(&self) -> usize {
        self.policies
            .values()
            .filter(|p| !p.diagnostics.is_empty())
            .count()
    }

    /// The current cluster (equal to [`Index::rebuilt`], maintained incrementally), borrowed.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot(&self.cluster)
    }
}

fn log_new_diagnostics(store: &Store<PolicyEntry>, change: &Change<PolicyEntry>) {
    let entries: &[PolicyEntry] = match change {
        Change::Apply(e) => std::slice::from_ref(e),
        Change::Reset(es) => es,
        Change::Delete(_) => &[],
    };
    for entry in entries {
        if entry.diagnostics.is_empty() || store.get(&entry.key()) == Some(entry) {
            continue;
        }
        let span = tracing::info_span!(
            "networkpolicy",
            namespace = %entry.policy.namespace,
            name = %entry.policy.name
        );
        let _enter = span.enter();
        for d in &entry.diagnostics {
            tracing::info!(field = %d.field, object = %d.object, "invalid policy (fails closed): {}", d.message);
        }
    }
}

#[cfg(test)]
mod tests;
