//! The agent's pieces wired as `run` wires them (manifests source → sync loop → nft planner),
//! with a recording dataplane instead of the kernel: the transactions are exactly the
//! compiler's `replace` of the first full snapshot, then its `update_from` for a change.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use policyc_compiler::nft::{render, RenderOptions, Transaction};
use tokio::sync::mpsc;

use super::dataplane::{ApplyError, Dataplane};
use super::metrics::Metrics;
use super::source::files;
use super::sync::{Health, NftPlanner, SyncLoop, Timing};

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Transaction>>>);

impl Dataplane<Transaction> for Recorder {
    async fn apply(&mut self, txn: &Transaction) -> Result<(), ApplyError> {
        self.0.lock().unwrap().push(txn.clone());
        Ok(())
    }
}

const EXTRA: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: shop, labels: {app: web}}\nspec: {nodeName: node-0, containers: [{name: c, image: i}]}\nstatus: {phase: Running, podIP: 10.244.0.77}\n";

async fn wait_until(mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out");
}

#[tokio::test]
async fn manifests_to_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for e in std::fs::read_dir(&examples).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let opts = RenderOptions::new("node-0");
    let expected_first = render(&crate::input::load(&[dir.path().into()]).unwrap().cluster, &opts);

    let (tx, rx) = mpsc::channel(64);
    let rec = Recorder::default();
    let health = Arc::new(Health::default());
    let metrics = Arc::new(Metrics::new());
    tokio::spawn(files::run(dir.path().into(), tx, files::POLL));
    let sync = SyncLoop::new(
        NftPlanner { opts: opts.clone() },
        rec.clone(),
        metrics.clone(),
        health.clone(),
        Timing::default(),
    );
    tokio::spawn(sync.run(rx));

    wait_until(|| health.ready()).await;
    assert_eq!(*rec.0.lock().unwrap(), [expected_first.replace()]);
    assert_eq!(metrics.applies.get(), 1);

    std::fs::write(dir.path().join("extra.yaml"), EXTRA).unwrap();
    let second = render(&crate::input::load(&[dir.path().into()]).unwrap().cluster, &opts);
    if second != expected_first {
        wait_until(|| rec.0.lock().unwrap().len() == 2).await;
        assert_eq!(rec.0.lock().unwrap()[1], second.update_from(&expected_first));
    } else {
        // The skeleton renderer ignores pods: then nothing may be applied.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(rec.0.lock().unwrap().len(), 1);
    }
}
