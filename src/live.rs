//! The read commands against a live cluster: Namespaces, Nodes, Pods and NetworkPolicies listed
//! through the kubeconfig's current (or `--context`) cluster into the same [`Objects`] the file
//! loader produces, so `build_cluster` and everything after it are shared with offline mode.
//! `-f PATH` alongside overlays the files on the live state (a file's object replaces the live
//! object of the same kind, namespace and name), to try a change before applying it.
//!
//! Live objects have no file: their [`Source`] has an empty file name, which every printer treats
//! as "nothing to cite" (see [`strip_live_sources`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::api::networking::v1 as netv1;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Resource};
use policyc_compiler::load::{build_cluster, Objects};
use policyc_compiler::model::Source;
use policyc_compiler::{Cluster, Diagnostic};
use serde::de::DeserializeOwned;

use crate::input::Loaded;

/// Page size for lists: big clusters are read in chunks, as kubectl does.
const PAGE: u32 = 500;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct LiveArgs {
    /// Read the objects from the live cluster (the kubeconfig's current context); with -f, the
    /// files are overlaid on it. Implied by --kubeconfig, --context, -n and -A.
    #[arg(long, visible_alias = "cluster")]
    pub live: bool,
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config, then in-cluster config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Read only this namespace's Pods and NetworkPolicies (Namespaces and Nodes are always read
    /// whole, since selectors reach across namespaces).
    #[arg(
        short = 'n',
        long,
        value_name = "NAMESPACE",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// Read every namespace (the default: policies and peers cross namespaces).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

impl LiveArgs {
    pub fn enabled(&self) -> bool {
        self.live
            || self.kubeconfig.is_some()
            || self.context.is_some()
            || self.namespace.is_some()
            || self.all_namespaces
    }
}

/// A client for the kubeconfig's context (or `--context`), from `--kubeconfig` or the usual places.
pub async fn client(args: &LiveArgs) -> anyhow::Result<Client> {
    let config = match explicit_config(args.kubeconfig.as_deref(), args.context.clone()).await? {
        Some(config) => config,
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found (set KUBECONFIG, or pass --kubeconfig)")?,
    };
    Client::try_from(config).context("cannot build the Kubernetes client")
}

/// The config that `--kubeconfig` and/or `--context` name; `None` when neither is given, so that
/// the CLI and the agent each choose their own default. Shared by both.
pub async fn explicit_config(
    kubeconfig: Option<&std::path::Path>,
    context: Option<String>,
) -> anyhow::Result<Option<kube::Config>> {
    let opts = KubeConfigOptions {
        context,
        ..Default::default()
    };
    Ok(Some(match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read --kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .with_context(|| format!("invalid --kubeconfig {}", path.display()))?
        }
        None if opts.context.is_some() => kube::Config::from_kubeconfig(&opts)
            .await
            .context("cannot load the kubeconfig for --context")?,
        None => return Ok(None),
    }))
}

fn live_source() -> Source {
    Source {
        file: String::new(),
        line: 0,
    }
}

/// Every object of a kind, page by page.
async fn list_all<K>(api: Api<K>, what: &str) -> anyhow::Result<Vec<(K, Source)>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api
            .list(&lp)
            .await
            .with_context(|| format!("cannot list {what}"))?;
        out.extend(page.items.into_iter().map(|o| (o, live_source())));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Lists the four kinds policyc reads. `namespace` limits Pods and NetworkPolicies.
pub async fn fetch(client: Client, namespace: Option<&str>) -> anyhow::Result<Objects> {
    fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let namespaces = list_all(Api::<corev1::Namespace>::all(client.clone()), "namespaces").await?;
    let nodes = list_all(Api::<corev1::Node>::all(client.clone()), "nodes").await?;
    let pods = list_all(scoped::<corev1::Pod>(&client, namespace), "pods").await?;
    let policies = list_all(
        scoped::<netv1::NetworkPolicy>(&client, namespace),
        "networkpolicies",
    )
    .await?;
    Ok(Objects {
        namespaces,
        pods,
        policies,
        nodes,
    })
}

fn key(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    namespaced: bool,
) -> (String, String) {
    let ns = if namespaced {
        meta.namespace.clone().unwrap_or_else(|| "default".into())
    } else {
        String::new()
    };
    (ns, meta.name.clone().unwrap_or_default())
}

fn replace<T>(
    live: Vec<(T, Source)>,
    files: &[(T, Source)],
    meta: impl Fn(&T) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    namespaced: bool,
) -> Vec<(T, Source)>
where
    T: Clone,
{
    let from_files: BTreeSet<(String, String)> =
        files.iter().map(|(o, _)| key(meta(o), namespaced)).collect();
    live.into_iter()
        .filter(|(o, _)| !from_files.contains(&key(meta(o), namespaced)))
        .chain(files.iter().cloned())
        .collect()
}

/// The live objects with the files' objects laid over them (same kind/namespace/name: the file wins).
pub fn overlay(live: Objects, files: &Objects) -> Objects {
    Objects {
        namespaces: replace(live.namespaces, &files.namespaces, |o| &o.metadata, false),
        pods: replace(live.pods, &files.pods, |o| &o.metadata, true),
        policies: replace(live.policies, &files.policies, |o| &o.metadata, true),
        nodes: replace(live.nodes, &files.nodes, |o| &o.metadata, false),
    }
}

/// Live objects have no file to cite: drop their sources from the model and the diagnostics.
pub fn strip_live_sources(cluster: &mut Cluster, diagnostics: &mut [Diagnostic]) {
    let live = |s: &Option<Source>| s.as_ref().is_some_and(|s| s.file.is_empty());
    for p in &mut cluster.policies {
        if live(&p.source) {
            p.source = None;
        }
    }
    for p in &mut cluster.pods {
        if live(&p.source) {
            p.source = None;
        }
    }
    for d in diagnostics {
        if live(&d.source) {
            d.source = None;
        }
    }
}

/// Fetches the live objects (blocking: the CLI is synchronous) and overlays `files` on them.
pub fn fetch_blocking(args: &LiveArgs, files: &Objects) -> anyhow::Result<Objects> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let live = runtime.block_on(async {
        let client = client(args).await?;
        fetch(client, args.namespace.as_deref()).await
    })?;
    Ok(overlay(live, files))
}

/// The live cluster (with `files` overlaid), loaded as the file loader would.
pub fn load(args: &LiveArgs, files: &[PathBuf]) -> anyhow::Result<Loaded> {
    let from_files = if files.is_empty() {
        Loaded {
            cluster: Cluster::default(),
            objects: Objects::default(),
            diagnostics: Vec::new(),
        }
    } else {
        crate::input::load(files)?
    };
    let objects = fetch_blocking(args, &from_files.objects)?;
    Ok(loaded_from(objects, from_files.diagnostics))
}

/// Builds the snapshot of fetched (and overlaid) objects. `parse_diagnostics` are the files'
/// parse-level problems, which `build_cluster` cannot see again.
pub fn loaded_from(objects: Objects, parse_diagnostics: Vec<Diagnostic>) -> Loaded {
    let (mut cluster, built) = build_cluster(&objects);
    // The files' build diagnostics come back from build_cluster; keep only the parse-level ones.
    let mut diagnostics: Vec<Diagnostic> = parse_diagnostics
        .into_iter()
        .filter(|d| !built.contains(d))
        .collect();
    diagnostics.extend(built);
    strip_live_sources(&mut cluster, &mut diagnostics);
    Loaded {
        cluster,
        objects,
        diagnostics,
    }
}

#[cfg(test)]
mod tests;
