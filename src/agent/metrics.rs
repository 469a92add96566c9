//! The agent's Prometheus metrics (prometheus-client), registered once and shared by the sync
//! loop, the sources and the HTTP server. Counter names get `_total` appended by the encoder.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::index::Kind;

/// Every metric name as exposed (for docs, dashboards and tests).
pub const METRIC_NAMES: &[&str] = &[
    "policyc_sync_duration_seconds",
    "policyc_apply_duration_seconds",
    "policyc_applies_total",
    "policyc_apply_failures_total",
    "policyc_apply_consecutive_failures",
    "policyc_last_successful_apply_timestamp_seconds",
    "policyc_table_chains",
    "policyc_table_rules",
    "policyc_table_sets",
    "policyc_table_elements",
    "policyc_invalid_policies",
    "policyc_watch_restarts_total",
    "policyc_watch_errors_total",
    "policyc_watch_events_total",
    "policyc_conntrack_deleted_total",
    "policyc_conntrack_flush_failures_total",
];

type KindLabel = [(&'static str, &'static str); 1];

pub struct Metrics {
    registry: Registry,
    /// From the decision to sync to the kernel's answer: render, diff and apply.
    pub sync_duration: Histogram,
    /// The nft call alone.
    pub apply_duration: Histogram,
    pub applies: Counter,
    pub apply_failures: Counter,
    /// Failed applies since the last success (Ready is lost at `--unready-after-failures`).
    pub consecutive_failures: Gauge,
    pub last_success: Gauge<f64, AtomicU64>,
    pub chains: Gauge,
    pub rules: Gauge,
    pub sets: Gauge,
    pub elements: Gauge,
    pub invalid_policies: Gauge,
    /// `--flush-conntrack`: entries deleted because the applied ruleset denies them.
    pub conntrack_deleted: Counter,
    pub conntrack_flush_failures: Counter,
    watch_restarts: Family<KindLabel, Counter>,
    watch_errors: Family<KindLabel, Counter>,
    watch_events: Family<KindLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        // 1 ms .. ~16 s
        let sync_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let apply_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let m = Metrics {
            registry: Registry::default(),
            sync_duration,
            apply_duration,
            applies: Counter::default(),
            apply_failures: Counter::default(),
            consecutive_failures: Gauge::default(),
            last_success: Gauge::default(),
            chains: Gauge::default(),
            rules: Gauge::default(),
            sets: Gauge::default(),
            elements: Gauge::default(),
            invalid_policies: Gauge::default(),
            conntrack_deleted: Counter::default(),
            conntrack_flush_failures: Counter::default(),
            watch_restarts: Family::default(),
            watch_errors: Family::default(),
            watch_events: Family::default(),
        };
        registry.register(
            "policyc_sync_duration_seconds",
            "Time to render, diff and apply one change",
            m.sync_duration.clone(),
        );
        registry.register(
            "policyc_apply_duration_seconds",
            "Time of one nft transaction",
            m.apply_duration.clone(),
        );
        registry.register(
            "policyc_applies",
            "Successful nft transactions",
            m.applies.clone(),
        );
        registry.register(
            "policyc_apply_failures",
            "Failed nft transactions (the previous ruleset stays in place)",
            m.apply_failures.clone(),
        );
        registry.register(
            "policyc_apply_consecutive_failures",
            "Failed nft transactions since the last successful one",
            m.consecutive_failures.clone(),
        );
        registry.register(
            "policyc_last_successful_apply_timestamp_seconds",
            "Unix time of the last successful apply",
            m.last_success.clone(),
        );
        registry.register(
            "policyc_table_chains",
            "Chains in the applied table",
            m.chains.clone(),
        );
        registry.register(
            "policyc_table_rules",
            "Rules in the applied table",
            m.rules.clone(),
        );
        registry.register(
            "policyc_table_sets",
            "Sets and maps in the applied table",
            m.sets.clone(),
        );
        registry.register(
            "policyc_table_elements",
            "Set and map elements in the applied table",
            m.elements.clone(),
        );
        registry.register(
            "policyc_invalid_policies",
            "NetworkPolicies with invalid fields (those parts fail closed)",
            m.invalid_policies.clone(),
        );
        registry.register(
            "policyc_conntrack_deleted",
            "Conntrack entries deleted because the applied ruleset denies their connection (--flush-conntrack)",
            m.conntrack_deleted.clone(),
        );
        registry.register(
            "policyc_conntrack_flush_failures",
            "Failed conntrack listings or deletions (--flush-conntrack)",
            m.conntrack_flush_failures.clone(),
        );
        registry.register(
            "policyc_watch_restarts",
            "Relists of a watched kind after the first (watch expired or reconnected)",
            m.watch_restarts.clone(),
        );
        registry.register(
            "policyc_watch_errors",
            "Watch errors per kind",
            m.watch_errors.clone(),
        );
        registry.register(
            "policyc_watch_events",
            "Watch events per kind",
            m.watch_events.clone(),
        );
        // Created up front so every series is exposed (as 0) before the first event.
        for kind in Kind::ALL {
            let l = [("kind", kind.as_str())];
            let _ = m.watch_restarts.get_or_create(&l);
            let _ = m.watch_errors.get_or_create(&l);
            let _ = m.watch_events.get_or_create(&l);
        }
        Metrics { registry, ..m }
    }

    pub fn watch_restart(&self, kind: Kind) {
        self.watch_restarts
            .get_or_create(&[("kind", kind.as_str())])
            .inc();
    }

    pub fn watch_error(&self, kind: Kind) {
        self.watch_errors.get_or_create(&[("kind", kind.as_str())]).inc();
    }

    pub fn watch_event(&self, kind: Kind) {
        self.watch_events.get_or_create(&[("kind", kind.as_str())]).inc();
    }

    pub fn watch_restarts(&self, kind: Kind) -> u64 {
        self.watch_restarts
            .get_or_create(&[("kind", kind.as_str())])
            .get()
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
