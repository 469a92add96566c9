//! The `--manifests DIR` source: the directory is read like `policyc -f DIR` and re-read when its
//! file list, a file's mtime or its size changes (polled; no inotify, so it works on any
//! filesystem, bind mounts and ConfigMap volumes included). Each read replaces every kind at once.
//!
//! A change is loaded once two consecutive polls agree, so a file caught half-written is not
//! compiled; with a 250 ms poll a change is picked up within about half a second.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::agent::index::{Change, Update};

pub const POLL: Duration = Duration::from_millis(250);

/// What identifies the directory's content without reading it.
type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn fingerprint(dir: &PathBuf) -> anyhow::Result<Fingerprint> {
    let files = crate::input::collect_files(std::slice::from_ref(dir))?;
    Ok(files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let mtime = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map(|m| m.len()).unwrap_or(0);
            (f, mtime, len)
        })
        .collect())
}

/// Reads the directory into one update per kind.
pub fn read(dir: &PathBuf) -> anyhow::Result<Vec<Update>> {
    let loaded = crate::input::load(std::slice::from_ref(dir))?;
    for d in &loaded.diagnostics {
        // Policy problems are logged by the index, with the policy's span.
        if !d.object.starts_with("NetworkPolicy ") {
            tracing::warn!("{d}");
        }
    }
    let o = &loaded.objects;
    Ok(vec![
        Update::Namespace(Change::Reset(
            o.namespaces.iter().map(|(n, _)| super::namespace(n)).collect(),
        )),
        Update::Pod(Change::Reset(
            o.pods
                .iter()
                .map(|(p, s)| policyc_compiler::convert::pod_from_k8s(p, Some(s)).0)
                .collect(),
        )),
        Update::Policy(Change::Reset(
            o.policies
                .iter()
                .map(|(p, s)| super::policy(p, Some(s)))
                .collect(),
        )),
        Update::Node(Change::Reset(
            o.nodes
                .iter()
                .map(|(n, s)| policyc_compiler::convert::node_from_k8s(n, Some(s)).0)
                .collect(),
        )),
    ])
}

/// Polls `dir` every `poll` until the receiver is gone.
pub async fn run(dir: PathBuf, tx: mpsc::Sender<Update>, poll: Duration) {
    let mut loaded: Option<Fingerprint> = None;
    let mut last_seen: Option<Fingerprint> = None;
    let mut last_error: Option<String> = None;
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if tx.is_closed() {
            return;
        }
        let fp = match fingerprint(&dir) {
            Ok(fp) => fp,
            Err(e) => {
                report_once(&mut last_error, format!("{e:#}"));
                last_seen = None;
                continue;
            }
        };
        let settled = loaded.is_none() || last_seen.as_ref() == Some(&fp);
        if loaded.as_ref() != Some(&fp) && settled {
            match read(&dir) {
                Ok(updates) => {
                    last_error = None;
                    tracing::info!(dir = %dir.display(), files = fp.len(), "manifests loaded");
                    for u in updates {
                        if tx.send(u).await.is_err() {
                            return;
                        }
                    }
                    loaded = Some(fp.clone());
                }
                Err(e) => report_once(&mut last_error, format!("{e:#}")),
            }
        }
        last_seen = Some(fp);
    }
}

/// Logs an error when it first appears, not on every poll.
fn report_once(last: &mut Option<String>, msg: String) {
    if last.as_deref() != Some(&msg) {
        tracing::warn!("cannot read manifests (keeping the previous state): {msg}");
        *last = Some(msg);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::timeout;

    use super::*;
    use crate::agent::index::Index;

    const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {namespace: prod, name: web, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.244.1.2}
---
apiVersion: v1
kind: Pod
metadata: {namespace: prod, name: db}
spec: {nodeName: n2, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.244.2.2}
"#;

    const POLICY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: prod, name: deny}
spec: {podSelector: {}, policyTypes: [Ingress]}
"#;

    /// Feeds updates into an index until a full read (all four kinds) has been applied.
    async fn next_snapshot(rx: &mut mpsc::Receiver<Update>, idx: &mut Index) -> policyc_compiler::Cluster {
        // One read is exactly four updates, Node last.
        for _ in 0..4 {
            let u = timeout(Duration::from_secs(1), rx.recv())
                .await
                .expect("a new snapshot within a second")
                .expect("source running");
            idx.update(u);
        }
        idx.snapshot().clone()
    }

    #[tokio::test]
    async fn picks_up_changes_and_deletions_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pods.yaml"), PODS).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(run(dir.path().to_path_buf(), tx, POLL));
        let mut idx = Index::new();

        let snap = next_snapshot(&mut rx, &mut idx).await;
        assert!(idx.synced());
        assert_eq!(snap.pods.len(), 2);
        assert!(snap.policies.is_empty());
        assert_eq!(
            snap.pods[1].source.as_ref().unwrap().line,
            2,
            "sources point at file:line"
        );

        // A new file.
        std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
        let snap = next_snapshot(&mut rx, &mut idx).await;
        assert_eq!(snap.policies.len(), 1);

        // An edit in place (different size).
        std::fs::write(
            dir.path().join("pods.yaml"),
            PODS.replace("10.244.1.2", "10.244.1.22"),
        )
        .unwrap();
        let snap = next_snapshot(&mut rx, &mut idx).await;
        assert_eq!(snap.pod("prod", "web").unwrap().ips[0].to_string(), "10.244.1.22");

        // A deleted file: its objects go.
        std::fs::remove_file(dir.path().join("policy.yaml")).unwrap();
        let snap = next_snapshot(&mut rx, &mut idx).await;
        assert!(snap.policies.is_empty());
        assert_eq!(snap.pods.len(), 2);

        // Nothing changes: no new reads.
        assert!(timeout(Duration::from_millis(800), rx.recv()).await.is_err());
        task.abort();
    }

    #[tokio::test]
    async fn unreadable_directory_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(run(missing.clone(), tx, POLL));
        assert!(timeout(Duration::from_millis(700), rx.recv()).await.is_err());
        // It appears later: then it is read.
        std::fs::create_dir(&missing).unwrap();
        std::fs::write(missing.join("pods.yaml"), PODS).unwrap();
        let mut idx = Index::new();
        let snap = next_snapshot(&mut rx, &mut idx).await;
        assert_eq!(snap.pods.len(), 2);
        task.abort();
    }
}
