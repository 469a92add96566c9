//! The sync loop: updates from a source go into the index; once every kind has been listed,
//! each burst of changes is compiled and reaches the kernel as exactly one transaction.
//!
//! - Nothing is applied before the initial list of every kind (see [`Index::synced`]).
//! - A burst is coalesced: the loop waits [`Timing::quiet`] after the last event, at most
//!   [`Timing::max_delay`] after the first, then syncs once.
//! - The first apply is a full `replace` (it takes over whatever table a previous agent left);
//!   later ones are deltas against the last ruleset the kernel ACCEPTED. Nothing to do, no call.
//! - A failed apply leaves the kernel as it was; it is retried with exponential backoff, and the
//!   retry is a full `replace` (as kube-proxy's nftables backend does after an error), so a table
//!   changed behind our back cannot make every delta fail forever.
//! - After [`Health::unready_after`] consecutive failed applies the agent reports not Ready (the
//!   node still enforces the last accepted ruleset, but no longer follows the cluster); the next
//!   success makes it Ready again.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use policyc_compiler::nft::{self, RenderOptions, Ruleset, Stats, Transaction};
use policyc_compiler::Cluster;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::dataplane::Dataplane;
use super::index::{Index, Update};
use super::metrics::Metrics;

/// Compiles snapshots into desired states and transactions. The agent uses [`NftPlanner`]; the
/// sync loop's tests use a fake whose states are easy to tell apart.
pub trait Planner: Send + 'static {
    type State: Clone + PartialEq + Send + Sync + 'static;
    type Txn: Send + Sync + 'static;
    fn render(&self, cluster: &Cluster) -> Self::State;
    fn replace(&self, state: &Self::State) -> Self::Txn;
    fn update(&self, state: &Self::State, previous: &Self::State) -> Self::Txn;
    fn stats(&self, state: &Self::State) -> Stats;
}

pub struct NftPlanner {
    pub opts: RenderOptions,
}

impl Planner for NftPlanner {
    type State = Ruleset;
    type Txn = Transaction;
    fn render(&self, cluster: &Cluster) -> Ruleset {
        if self.opts.unprogrammed_pods == nft::UnprogrammedPods::Drop
            && self.opts.node_pod_cidrs(cluster).is_empty()
        {
            tracing::warn!(node = self.opts.node, "--unprogrammed-pods=drop guards nothing: the Node has no spec.podCIDRs and no --pod-cidr was given");
        }
        nft::render(cluster, &self.opts)
    }
    fn replace(&self, state: &Ruleset) -> Transaction {
        state.replace()
    }
    fn update(&self, state: &Ruleset, previous: &Ruleset) -> Transaction {
        state.update_from(previous)
    }
    fn stats(&self, state: &Ruleset) -> Stats {
        state.stats()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Quiet time that ends a burst.
    pub quiet: Duration,
    /// Longest a burst may delay a sync.
    pub max_delay: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            quiet: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Consecutive failed applies after which `/readyz` turns 503 (`--unready-after-failures`).
/// With the default backoff (100 ms doubling) five failures take about 3 s: long enough to ride
/// out one nft hiccup, short enough that a node stuck on an old ruleset shows up at once.
pub const DEFAULT_UNREADY_AFTER_FAILURES: u32 = 5;

/// Liveness and readiness, shared with the HTTP server.
#[derive(Debug)]
pub struct Health {
    running: AtomicBool,
    applied: AtomicBool,
    consecutive_failures: AtomicU32,
    /// 0: failures never cost readiness.
    unready_after: u32,
}

impl Default for Health {
    fn default() -> Self {
        Health::new(DEFAULT_UNREADY_AFTER_FAILURES)
    }
}

/// Why the agent is not Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotReady {
    NeverApplied,
    Failing(u32),
}

impl Health {
    pub fn new(unready_after: u32) -> Health {
        Health {
            running: AtomicBool::new(false),
            applied: AtomicBool::new(false),
            consecutive_failures: AtomicU32::new(0),
            unready_after,
        }
    }

    /// True while the sync loop runs.
    pub fn live(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
    /// True once a ruleset has been applied successfully, unless the last `unready_after`
    /// applies all failed.
    pub fn ready(&self) -> bool {
        self.readiness().is_ok()
    }

    pub fn readiness(&self) -> Result<(), NotReady> {
        if !self.applied.load(Ordering::SeqCst) {
            return Err(NotReady::NeverApplied);
        }
        let failures = self.consecutive_failures.load(Ordering::SeqCst);
        if self.unready_after > 0 && failures >= self.unready_after {
            return Err(NotReady::Failing(failures));
        }
        Ok(())
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::SeqCst)
    }

    fn succeeded(&self) {
        self.consecutive_failures.store(0, Ordering::SeqCst);
        self.applied.store(true, Ordering::SeqCst);
    }

    /// Counts a failure; returns the new count.
    fn failed(&self) -> u32 {
        self.consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1
    }

    #[cfg(test)]
    pub fn set_for_test(&self, live: bool, ready: bool) {
        self.running.store(live, Ordering::SeqCst);
        self.applied.store(ready, Ordering::SeqCst);
    }
}

/// Clears `running` however the loop ends (return, panic, task cancelled at shutdown).
struct RunningGuard(Arc<Health>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
    }
}

pub struct SyncLoop<P: Planner, D> {
    planner: P,
    dataplane: D,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    timing: Timing,
    index: Index,
    /// What the kernel has: the last ruleset it accepted.
    applied: Option<P::State>,
    /// The last apply failed: the next one is a full replace.
    failed: bool,
    /// Told every state the kernel accepts (the conntrack flusher watches it).
    on_applied: Option<watch::Sender<Option<P::State>>>,
}

impl<P: Planner, D: Dataplane<P::Txn>> SyncLoop<P, D> {
    pub fn new(planner: P, dataplane: D, metrics: Arc<Metrics>, health: Arc<Health>, timing: Timing) -> Self {
        SyncLoop {
            planner,
            dataplane,
            metrics,
            health,
            timing,
            index: Index::new(),
            applied: None,
            failed: false,
            on_applied: None,
        }
    }

    /// Publishes each state right after the kernel accepted it.
    pub fn publish_applied(mut self, tx: watch::Sender<Option<P::State>>) -> Self {
        self.on_applied = Some(tx);
        self
    }

    /// Runs until every sender is gone.
    pub async fn run(mut self, mut updates: mpsc::Receiver<Update>) {
        self.health.running.store(true, Ordering::SeqCst);
        let _guard = RunningGuard(self.health.clone());
        let mut dirty = false;
        let mut retry_at: Option<Instant> = None;
        let mut backoff = self.timing.backoff_min;
        loop {
            // Wait for the first event of a burst, or for the retry of a failed apply.
            let first = match retry_at {
                Some(at) => tokio::select! {
                    u = updates.recv() => Some(u),
                    _ = tokio::time::sleep_until(at) => None,
                },
                None => Some(updates.recv().await),
            };
            match first {
                Some(None) => return,
                Some(Some(u)) => {
                    dirty |= self.index.update(u);
                    if !self.drain_burst(&mut updates, &mut dirty).await {
                        return;
                    }
                    let invalid = self.index.invalid_policies();
                    self.metrics.invalid_policies.set(invalid as i64);
                    // New events during a backoff wait for the backoff: retrying early would
                    // hammer a failing nft.
                    if retry_at.is_some_and(|at| Instant::now() < at) {
                        continue;
                    }
                }
                None => {}
            }
            if !self.index.synced() {
                tracing::debug!(pending = ?self.index.pending(), "waiting for the initial list");
                continue;
            }
            if !dirty && retry_at.is_none() {
                continue;
            }
            match self.sync().await {
                Ok(()) => {
                    dirty = false;
                    retry_at = None;
                    backoff = self.timing.backoff_min;
                }
                Err(()) => {
                    dirty = false;
                    retry_at = Some(Instant::now() + backoff);
                    tracing::info!(retry_in = ?backoff, "will retry the apply");
                    backoff = (backoff * 2).min(self.timing.backoff_max);
                }
            }
        }
    }

    /// Takes every event of the burst that started just now; false if the senders are gone.
    async fn drain_burst(&mut self, updates: &mut mpsc::Receiver<Update>, dirty: &mut bool) -> bool {
        let deadline = Instant::now() + self.timing.max_delay;
        loop {
            let wait = (Instant::now() + self.timing.quiet).min(deadline);
            match tokio::time::timeout_at(wait, updates.recv()).await {
                Ok(Some(u)) => *dirty |= self.index.update(u),
                Ok(None) => return false,
                Err(_elapsed) => return true,
            }
        }
    }

    /// Renders the current snapshot and applies it; Err after a failed apply (already logged).
    async fn sync(&mut self) -> Result<(), ()> {
        let started = Instant::now();
        let desired = self.planner.render(&self.index.snapshot());
        let (mode, txn) = match &self.applied {
            Some(prev) if *prev == desired && !self.failed => {
                tracing::debug!("ruleset unchanged, nothing to apply");
                return Ok(());
            }
            Some(prev) if !self.failed => ("delta", self.planner.update(&desired, prev)),
            _ => ("replace", self.planner.replace(&desired)),
        };
        let apply_started = Instant::now();
        let result = self.dataplane.apply(&txn).await;
        let apply_took = apply_started.elapsed();
        self.metrics.apply_duration.observe(apply_took.as_secs_f64());
        match result {
            Ok(()) => {
                self.metrics
                    .sync_duration
                    .observe(started.elapsed().as_secs_f64());
                self.metrics.applies.inc();
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                self.metrics.last_success.set(now.as_secs_f64());
                let stats = self.planner.stats(&desired);
                self.metrics.chains.set(stats.chains as i64);
                self.metrics.rules.set(stats.rules as i64);
                self.metrics.sets.set(stats.sets as i64);
                self.metrics.elements.set(stats.elements as i64);
                tracing::info!(
                    mode,
                    rules = stats.rules,
                    sets = stats.sets,
                    elements = stats.elements,
                    took = ?started.elapsed(),
                    nft = ?apply_took,
                    "applied ruleset"
                );
                if let Some(tx) = &self.on_applied {
                    tx.send_replace(Some(desired.clone()));
                }
                self.applied = Some(desired);
                self.failed = false;
                let was_failing = matches!(self.health.readiness(), Err(NotReady::Failing(_)));
                self.health.succeeded();
                if was_failing {
                    tracing::info!("an apply succeeded again: Ready");
                }
                self.metrics.consecutive_failures.set(0);
                Ok(())
            }
            Err(e) => {
                self.metrics.apply_failures.inc();
                let failures = self.health.failed();
                self.metrics.consecutive_failures.set(i64::from(failures));
                tracing::error!(
                    mode,
                    consecutive_failures = failures,
                    "apply failed, the previous ruleset stays in place: {e}"
                );
                if failures == self.health.unready_after {
                    tracing::warn!(
                        consecutive_failures = failures,
                        "not Ready until an apply succeeds (--unready-after-failures)"
                    );
                }
                self.failed = true;
                Err(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
