//! `policyc agent`, the node agent: the I/O shell around the compiler.
//!
//! ```text
//!  source (kube watchers | --manifests DIR) ──Update──► index ──Cluster──► nft::render
//!        └ one task per kind                 sync loop: debounce, wait for every initial list,
//!                                            one transaction per change ──► dataplane (nft -f -)
//!  http: /healthz /readyz /metrics             └─ applied Ruleset ──► conntrack flusher (--flush-conntrack)
//! ```
//!
//! Restarts leave no gap: on SIGTERM/SIGINT the agent exits and leaves its table in the kernel;
//! a new agent keeps that table until its first full sync, then replaces it in one transaction.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use policyc_compiler::nft::{self, RenderOptions};
use tokio::sync::mpsc;

pub mod args;
pub mod conntrack;
pub mod dataplane;
pub mod http;
pub mod index;
pub mod metrics;
pub mod source;
pub mod sync;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use args::{Args, DEFAULT_LISTEN};
pub use http::{HEALTHZ_PATH, METRICS_PATH, READYZ_PATH};
pub use metrics::METRIC_NAMES;
pub use source::kube::rbac_rules;

use dataplane::Nft;
use metrics::Metrics;
use sync::{Health, NftPlanner, SyncLoop, Timing};

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        node_name,
        manifests,
        kubeconfig,
        context,
        listen,
        table,
        log_drops,
        nft,
        cleanup,
        unprogrammed_pods,
        pod_cidrs,
        flush_conntrack,
        conntrack,
        unready_after_failures,
    } = args;
    init_tracing();
    if !nft::valid_table_name(&table) {
        anyhow::bail!("invalid --table {table:?}: a letter followed by letters, digits, '_' or '-'");
    }
    let nft = Nft::new(nft);
    let version = nft.check()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;

    if cleanup {
        rt.block_on(nft.apply_transaction(&nft::delete_table(&table)))
            .with_context(|| format!("cannot delete table inet {table}"))?;
        tracing::info!(table, "table deleted (or was not there)");
        return Ok(ExitCode::SUCCESS);
    }

    let node = node_name.context("--node-name (or NODE_NAME) is required")?;
    let source = match manifests {
        Some(dir) => Source::Files(dir),
        None => Source::Kube { kubeconfig, context },
    };
    tracing::info!(node, table, log_drops, nft = %nft.binary().display(), nft_version = version, "starting");
    let opts = RenderOptions {
        node,
        table,
        log_drops,
        unprogrammed_pods: unprogrammed_pods.into(),
        pod_cidrs,
    };
    if opts.unprogrammed_pods == nft::UnprogrammedPods::Drop {
        tracing::info!(pod_cidrs = ?opts.pod_cidrs, "dropping traffic of unprogrammed pod addresses (empty: the Node's spec.podCIDRs)");
    }
    let flusher = match flush_conntrack {
        true => Some(conntrack::Conntrack::check(conntrack)?),
        false => None,
    };
    rt.block_on(agent(opts, source, listen, nft, flusher, unready_after_failures))
}

enum Source {
    Files(PathBuf),
    Kube {
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
    },
}

async fn agent(
    opts: RenderOptions,
    source: Source,
    listen: std::net::SocketAddr,
    nft: Nft,
    flusher: Option<conntrack::Conntrack>,
    unready_after_failures: u32,
) -> anyhow::Result<ExitCode> {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(unready_after_failures));
    let (addr, server) = http::bind(listen, health.clone(), metrics.clone()).await?;
    tracing::info!(%addr, "serving {HEALTHZ_PATH}, {READYZ_PATH}, {METRICS_PATH}");

    let (tx, rx) = mpsc::channel(1024);
    let sources = match source {
        Source::Files(dir) => {
            tracing::info!(dir = %dir.display(), "reading manifests");
            vec![tokio::spawn(source::files::run(dir, tx, source::files::POLL))]
        }
        Source::Kube { kubeconfig, context } => {
            let client = source::kube::client(kubeconfig, context).await?;
            source::kube::spawn_all(client, tx, metrics.clone())
        }
    };
    let mut sync = SyncLoop::new(
        NftPlanner { opts },
        nft,
        metrics.clone(),
        health,
        Timing::default(),
    );
    if let Some(flusher) = flusher {
        let (tx, rx) = tokio::sync::watch::channel(None);
        sync = sync.publish_applied(tx);
        tokio::spawn(flusher.run(rx, metrics));
    }
    let mut sync = tokio::spawn(sync.run(rx));
    let mut server = tokio::spawn(server);
    tokio::select! {
        r = shutdown_signal() => {
            r?;
            // The table stays: the next agent takes it over without a gap in enforcement.
            tracing::info!("shutting down; the ruleset stays in the kernel");
            Ok(ExitCode::SUCCESS)
        }
        // A source never ends on its own; if one does (a panic), the index would go stale for
        // its kind without anyone noticing: exit instead, leaving the rules, and be restarted.
        (r, _, _) = futures::future::select_all(sources) => {
            anyhow::bail!("a source stopped: {r:?}")
        }
        r = &mut sync => anyhow::bail!("the sync loop stopped: {r:?}"),
        r = &mut server => anyhow::bail!("the HTTP server stopped: {r:?}"),
    }
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
