//! Sync-loop behaviour with a fake planner and a fake dataplane, on tokio's paused clock (sleeps
//! advance virtual time; nothing here waits in real time).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use policyc_compiler::nft::Stats;
use policyc_compiler::Cluster;
use tokio::sync::mpsc;
use tokio::time::{sleep, Instant};

use super::*;
use crate::agent::dataplane::{ApplyError, Dataplane};
use crate::agent::index::{Change, Key, Update};
use crate::agent::testutil::*;

/// Renders the pods only (ignores nodes, so a node change is "rendered equal"); transactions say
/// what they are and, for deltas, which state they were computed from.
struct FakePlanner;

fn pods(c: &Cluster) -> Vec<String> {
    c.pods.iter().map(|p| p.name.clone()).collect()
}

impl Planner for FakePlanner {
    type State = Vec<String>;
    type Txn = String;
    fn render(&self, cluster: &Cluster) -> Vec<String> {
        pods(cluster)
    }
    fn replace(&self, state: &Vec<String>) -> String {
        format!("replace {}", state.join(","))
    }
    fn update(&self, state: &Vec<String>, previous: &Vec<String>) -> String {
        format!("update {} -> {}", previous.join(","), state.join(","))
    }
    fn stats(&self, state: &Vec<String>) -> Stats {
        Stats {
            rules: state.len(),
            ..Stats::default()
        }
    }
}

#[derive(Clone, Default)]
struct FakeDataplane {
    log: Arc<Mutex<Vec<(Instant, String, bool)>>>,
    fail: Arc<AtomicUsize>,
}

impl FakeDataplane {
    fn calls(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t, _)| t.clone())
            .collect()
    }
    fn times(&self) -> Vec<Instant> {
        self.log.lock().unwrap().iter().map(|(at, _, _)| *at).collect()
    }
    fn fail_next(&self, n: usize) {
        self.fail.store(n, Ordering::SeqCst);
    }
}

impl Dataplane<String> for FakeDataplane {
    async fn apply(&mut self, txn: &String) -> Result<(), ApplyError> {
        let fail = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        self.log
            .lock()
            .unwrap()
            .push((Instant::now(), txn.clone(), !fail));
        if fail {
            Err(ApplyError::Rejected {
                status: "exit status: 1".into(),
                stderr: "Error: injected".into(),
            })
        } else {
            Ok(())
        }
    }
}

struct Harness {
    tx: mpsc::Sender<Update>,
    dp: FakeDataplane,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

fn start() -> Harness {
    let (tx, rx) = mpsc::channel(64);
    let dp = FakeDataplane::default();
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let sync = SyncLoop::new(
        FakePlanner,
        dp.clone(),
        metrics.clone(),
        health.clone(),
        Timing::default(),
    );
    tokio::spawn(sync.run(rx));
    Harness {
        tx,
        dp,
        metrics,
        health,
    }
}

fn pod(name: &str) -> Update {
    Update::Pod(Change::Apply(mk_pod("prod", name, "n1", "10.244.1.2", &[])))
}

impl Harness {
    async fn send(&self, u: Update) {
        self.tx.send(u).await.unwrap();
    }
    async fn initial_sync(&self) {
        self.send(Update::Namespace(Change::Reset(vec![mk_ns("prod", &[])])))
            .await;
        self.send(Update::Pod(Change::Reset(vec![mk_pod(
            "prod",
            "a",
            "n1",
            "10.244.1.2",
            &[],
        )])))
        .await;
        self.send(Update::Policy(Change::Reset(vec![deny_all("prod")])))
            .await;
        self.send(Update::Node(Change::Reset(vec![mk_node("n1", "198.18.0.1")])))
            .await;
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_applied_before_every_kind_is_listed() {
    let h = start();
    h.send(Update::Namespace(Change::Reset(vec![]))).await;
    h.send(Update::Pod(Change::Reset(vec![]))).await;
    h.send(pod("early")).await;
    h.send(Update::Policy(Change::Reset(vec![]))).await;
    sleep(Duration::from_secs(10)).await;
    assert!(
        h.dp.calls().is_empty(),
        "applied before Nodes were listed: {:?}",
        h.dp.calls()
    );
    assert!(h.health.live());
    assert!(!h.health.ready());

    h.send(Update::Node(Change::Reset(vec![]))).await;
    sleep(Duration::from_secs(2)).await;
    assert_eq!(h.dp.calls(), ["replace early"]);
    assert!(h.health.ready());
}

#[tokio::test(start_paused = true)]
async fn first_apply_is_a_replace_then_deltas() {
    let h = start();
    h.initial_sync().await;
    sleep(Duration::from_secs(2)).await;
    h.send(pod("b")).await;
    sleep(Duration::from_secs(2)).await;
    assert_eq!(h.dp.calls(), ["replace a", "update a -> a,b"]);
    assert_eq!(h.metrics.applies.get(), 2);
    assert_eq!(h.metrics.rules.get(), 2);
    assert_eq!(h.metrics.invalid_policies.get(), 0);
    let bad = mk_policy(
        "prod",
        "bad",
        serde_json::json!({"podSelector": {}, "ingress": [{"ports": [{"port": 0}]}]}),
    );
    assert!(!bad.diagnostics.is_empty());
    h.send(Update::Policy(Change::Apply(bad))).await;
    sleep(Duration::from_secs(2)).await;
    assert_eq!(h.metrics.invalid_policies.get(), 1);
    assert!(h.metrics.last_success.get() > 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_burst_is_one_transaction() {
    let h = start();
    h.initial_sync().await;
    sleep(Duration::from_secs(2)).await;
    for i in 0..10 {
        h.send(pod(&format!("p{i}"))).await;
        sleep(Duration::from_millis(20)).await;
    }
    h.send(Update::Pod(Change::Delete(Key::new("prod", "p0")))).await;
    sleep(Duration::from_secs(2)).await;
    let calls = h.dp.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1], "update a -> a,p1,p2,p3,p4,p5,p6,p7,p8,p9");
}

#[tokio::test(start_paused = true)]
async fn a_continuous_stream_still_syncs_within_the_max_delay() {
    let h = start();
    h.initial_sync().await;
    sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    for i in 0..60 {
        h.send(pod(&format!("p{i:02}"))).await;
        sleep(Duration::from_millis(50)).await;
    }
    let calls = h.dp.times();
    assert!(calls.len() >= 3, "a 3 s stream gave {} applies", calls.len());
    let first_delta = calls[1] - started;
    assert!(
        first_delta <= Duration::from_millis(1100),
        "first delta after {first_delta:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_changed_means_no_call() {
    let h = start();
    h.initial_sync().await;
    sleep(Duration::from_secs(2)).await;
    // The same objects again (a relist that found everything as it was) ...
    h.initial_sync().await;
    // ... an identical update ...
    h.send(Update::Pod(Change::Apply(mk_pod(
        "prod",
        "a",
        "n1",
        "10.244.1.2",
        &[],
    ))))
    .await;
    sleep(Duration::from_secs(2)).await;
    // ... and a real change that renders the same (the fake ignores nodes).
    h.send(Update::Node(Change::Apply(mk_node("n2", "198.18.0.2"))))
        .await;
    sleep(Duration::from_secs(2)).await;
    assert_eq!(h.dp.calls(), ["replace a"]);
}

#[tokio::test(start_paused = true)]
async fn failed_apply_is_retried_with_backoff_and_previous_state_kept() {
    let h = start();
    h.initial_sync().await;
    sleep(Duration::from_secs(2)).await;
    h.dp.fail_next(3);
    h.send(pod("b")).await;
    sleep(Duration::from_secs(5)).await;
    let calls = h.dp.calls();
    assert_eq!(
        calls,
        [
            "replace a",
            "update a -> a,b",
            "replace a,b",
            "replace a,b",
            "replace a,b"
        ],
        "a failed delta is retried as a full replace until it succeeds"
    );
    assert_eq!(h.metrics.apply_failures.get(), 3);
    assert!(h.health.ready(), "still ready: the old ruleset is in place");

    // Backoff doubles: 100 ms, 200 ms, 400 ms.
    let t = h.dp.times();
    let gaps: Vec<Duration> = t.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(100), "{gaps:?}");
    assert!(gaps[1] >= gaps[0] * 2 - Duration::from_millis(1), "{gaps:?}");
    assert!(gaps[2] >= gaps[1] * 2 - Duration::from_millis(1), "{gaps:?}");

    // The base for the next delta is what the kernel accepted last (a,b), not a failed attempt.
    h.send(pod("c")).await;
    sleep(Duration::from_secs(2)).await;
    assert_eq!(h.dp.calls().last().unwrap(), "update a,b -> a,b,c");
}

#[tokio::test(start_paused = true)]
async fn failure_before_the_first_success_is_not_ready() {
    let h = start();
    h.dp.fail_next(1);
    h.initial_sync().await;
    sleep(Duration::from_millis(150)).await;
    // The burst ends 100 ms after the last event; the failed apply happened, the retry not yet.
    assert_eq!(h.dp.calls(), ["replace a"]);
    assert!(!h.health.ready());
    sleep(Duration::from_secs(2)).await;
    assert_eq!(h.dp.calls(), ["replace a", "replace a"]);
    assert!(h.health.ready());
}

/// Consecutive failures cost readiness at the threshold (not before), the attempts back off
/// exponentially meanwhile, and the first success restores it.
#[tokio::test(start_paused = true)]
async fn repeated_failures_make_it_unready_until_a_success() {
    let h = start();
    h.initial_sync().await;
    sleep(Duration::from_secs(2)).await;
    let n = DEFAULT_UNREADY_AFTER_FAILURES as usize;
    h.dp.fail_next(n + 2);
    h.send(pod("b")).await;
    let mut seen = Vec::new();
    for _ in 0..200 {
        sleep(Duration::from_millis(100)).await;
        let failed = h.dp.calls().len() - 1;
        if seen.last().map(|(f, _, _)| *f) != Some(failed) {
            seen.push((failed, h.health.ready(), h.metrics.consecutive_failures.get()));
        }
    }
    // (failures so far, ready, gauge): ready through n-1 failures, not from n on.
    for &(failed, ready, gauge) in &seen {
        if failed == 0 {
            continue;
        }
        if failed <= n + 2 {
            assert_eq!(gauge as usize, failed, "{seen:?}");
            assert_eq!(ready, failed < n, "after {failed} failures: {seen:?}");
        } else {
            assert_eq!((ready, gauge), (true, 0), "a success makes it Ready: {seen:?}");
        }
    }
    assert_eq!(seen.last().unwrap().0, n + 3, "{seen:?}");
    assert_eq!(h.health.consecutive_failures(), 0);
    let t = h.dp.times();
    let gaps: Vec<Duration> = t.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    for (i, g) in gaps.iter().enumerate() {
        assert!(*g >= Duration::from_millis(100) * (1 << i), "{gaps:?}");
    }

    // Threshold 0: never unready because of failures.
    let health = Health::new(0);
    health.set_for_test(true, true);
    for _ in 0..100 {
        health.failed();
    }
    assert!(health.ready());
}

#[tokio::test(start_paused = true)]
async fn events_during_backoff_are_applied_by_the_retry() {
    let h = start();
    h.initial_sync().await;
    sleep(Duration::from_secs(2)).await;
    h.dp.fail_next(1);
    h.send(pod("b")).await;
    sleep(Duration::from_millis(105)).await;
    h.send(pod("c")).await;
    sleep(Duration::from_secs(3)).await;
    let calls = h.dp.calls();
    assert_eq!(calls[1], "update a -> a,b");
    assert_eq!(calls[2..], ["replace a,b,c"], "{calls:?}");
}

#[tokio::test(start_paused = true)]
async fn health_goes_down_when_the_loop_ends() {
    let h = start();
    h.initial_sync().await;
    sleep(Duration::from_secs(2)).await;
    assert!(h.health.live());
    let health = h.health.clone();
    drop(h);
    sleep(Duration::from_secs(2)).await;
    assert!(!health.live());
}
