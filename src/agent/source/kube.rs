//! The Kubernetes API source: one kube-runtime `watcher` per kind. Each (re)list is buffered from
//! `Init` to `InitDone` and handed over as one `Reset`, so the index never sees a half list and
//! learns which objects vanished while the watch was down (after a 410 Gone, say).
//!
//! All pods are watched, not just this node's: ingress peers are pods anywhere in the cluster and
//! their IPs go into the peer sets. Nodes are watched for their addresses, which the semantics
//! always admit towards pods on that node (kubelet probes); the list is small and the trimmed
//! projection makes status heartbeats compare equal, so they cost no sync.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::{core::v1 as corev1, networking::v1 as netv1};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::agent::index::{Change, Key, Kind, Projection, Update};
use crate::agent::metrics::Metrics;

/// An API type the agent watches, with its projection into the model.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
    type Model: Projection + Send + 'static;
    fn project(&self) -> Self::Model;
    fn wrap(change: Change<Self::Model>) -> Update;
}

impl Watched for corev1::Namespace {
    type Model = policyc_compiler::model::Namespace;
    fn project(&self) -> Self::Model {
        super::namespace(self)
    }
    fn wrap(change: Change<Self::Model>) -> Update {
        Update::Namespace(change)
    }
}

impl Watched for corev1::Pod {
    type Model = policyc_compiler::model::Pod;
    fn project(&self) -> Self::Model {
        super::pod(self, None)
    }
    fn wrap(change: Change<Self::Model>) -> Update {
        Update::Pod(change)
    }
}

impl Watched for netv1::NetworkPolicy {
    type Model = crate::agent::index::PolicyEntry;
    fn project(&self) -> Self::Model {
        super::policy(self, None)
    }
    fn wrap(change: Change<Self::Model>) -> Update {
        Update::Policy(change)
    }
}

impl Watched for corev1::Node {
    type Model = policyc_compiler::model::Node;
    fn project(&self) -> Self::Model {
        super::node(self, None)
    }
    fn wrap(change: Change<Self::Model>) -> Update {
        Update::Node(change)
    }
}

/// Something done once per watched type.
pub trait KindVisitor {
    fn visit<K: Watched>(&mut self);
}

/// THE list of watched types: the watchers spawned and the RBAC rules both come from here.
pub fn for_each_watched(v: &mut impl KindVisitor) {
    v.visit::<corev1::Namespace>();
    v.visit::<corev1::Pod>();
    v.visit::<netv1::NetworkPolicy>();
    v.visit::<corev1::Node>();
}

/// `(apiGroup, resource, verbs)` for every watched type: what the agent's ClusterRole must grant.
pub fn rbac_rules() -> Vec<(String, String, Vec<&'static str>)> {
    struct Rules(Vec<(String, String, Vec<&'static str>)>);
    impl KindVisitor for Rules {
        fn visit<K: Watched>(&mut self) {
            self.0.push((
                K::group(&()).into_owned(),
                K::plural(&()).into_owned(),
                vec!["get", "list", "watch"],
            ));
        }
    }
    let mut r = Rules(Vec::new());
    for_each_watched(&mut r);
    r.0
}

/// Starts one watcher per watched type.
pub fn spawn_all(client: Client, tx: mpsc::Sender<Update>, metrics: Arc<Metrics>) -> Vec<JoinHandle<()>> {
    struct Spawner {
        client: Client,
        tx: mpsc::Sender<Update>,
        metrics: Arc<Metrics>,
        tasks: Vec<JoinHandle<()>>,
    }
    impl KindVisitor for Spawner {
        fn visit<K: Watched>(&mut self) {
            let api: Api<K> = Api::all(self.client.clone());
            self.tasks
                .push(tokio::spawn(watch(api, self.tx.clone(), self.metrics.clone())));
        }
    }
    let mut s = Spawner {
        client,
        tx,
        metrics,
        tasks: Vec::new(),
    };
    for_each_watched(&mut s);
    s.tasks
}

/// Watches one type until the receiver is gone. Errors are logged and counted; kube-runtime's
/// backoff paces the retries and relists after a desync.
pub async fn watch<K: Watched>(api: Api<K>, tx: mpsc::Sender<Update>, metrics: Arc<Metrics>) {
    let kind: Kind = <K::Model as Projection>::KIND;
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut listing: Option<Vec<K::Model>> = None;
    let mut lists = 0u64;
    while let Some(event) = stream.next().await {
        let update = match event {
            Ok(Event::Init) => {
                if lists > 0 {
                    metrics.watch_restart(kind);
                    tracing::info!(kind = kind.as_str(), "relisting");
                }
                listing = Some(Vec::new());
                None
            }
            Ok(Event::InitApply(obj)) => {
                metrics.watch_event(kind);
                listing.get_or_insert_with(Vec::new).push(obj.project());
                None
            }
            Ok(Event::InitDone) => {
                lists += 1;
                let objs = listing.take().unwrap_or_default();
                tracing::info!(kind = kind.as_str(), objects = objs.len(), "listed");
                Some(K::wrap(Change::Reset(objs)))
            }
            Ok(Event::Apply(obj)) => {
                metrics.watch_event(kind);
                Some(K::wrap(Change::Apply(obj.project())))
            }
            Ok(Event::Delete(obj)) => {
                metrics.watch_event(kind);
                // The key from metadata alone: converting a deleted object would only log again
                // whatever was wrong with it.
                let key = Key::new(obj.namespace().unwrap_or_default(), obj.name_any());
                Some(K::wrap(Change::Delete(key)))
            }
            Err(e) => {
                metrics.watch_error(kind);
                tracing::warn!(kind = kind.as_str(), "watch error (will retry): {e}");
                None
            }
        };
        if let Some(u) = update {
            if tx.send(u).await.is_err() {
                return;
            }
        }
    }
}

/// A client from `--kubeconfig`/`--context`, else in-cluster config, else the default kubeconfig.
pub async fn client(kubeconfig: Option<PathBuf>, context: Option<String>) -> anyhow::Result<Client> {
    let config = match crate::live::explicit_config(kubeconfig.as_deref(), context).await? {
        Some(config) => config,
        // In a pod (the DaemonSet), the service account; elsewhere KUBECONFIG or ~/.kube/config.
        None => match kube::Config::incluster() {
            Ok(c) => c,
            Err(in_cluster) => kube::Config::infer().await.with_context(|| {
                format!(
                    "no in-cluster config ({in_cluster}) and no kubeconfig (use --kubeconfig or --manifests)"
                )
            })?,
        },
    };
    Client::try_from(config).context("cannot build the Kubernetes client")
}

#[cfg(test)]
mod tests;
