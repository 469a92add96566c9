//! The agent against real nftables, in a throwaway network namespace (never the root one): the
//! nft dataplane's atomicity, and the whole binary taking over, replacing and cleaning up its
//! table. Needs root, `ip` and `nft`; skipped with a reason otherwise, except under CI=true.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use policyc::agent::dataplane::{ApplyError, Nft};

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Ok, or the reason the prerequisites are missing.
fn prerequisites() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("id: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not running as root".into());
    }
    for (bin, arg) in [("nft", "--version"), ("ip", "-V")] {
        match Command::new(bin).arg(arg).output() {
            Ok(o) if o.status.success() => {}
            _ => return Err(format!("{bin} is not installed")),
        }
    }
    Ok(())
}

/// Skips (returns false) when prerequisites are missing, or fails under CI=true.
fn can_run(test: &str) -> bool {
    match prerequisites() {
        Ok(()) => true,
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: prerequisite missing under CI=true: {reason}")
        }
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            false
        }
    }
}

/// A network namespace that is removed however the test ends.
struct Netns {
    name: String,
    dir: tempfile::TempDir,
}

impl Netns {
    fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "policyc-agent-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let out = run("ip", &["netns", "add", &name]);
        assert!(
            out.status.success(),
            "ip netns add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Netns {
            name,
            dir: tempfile::tempdir().unwrap(),
        };
        assert!(run("ip", &["-n", &ns.name, "link", "set", "lo", "up"])
            .status
            .success());
        ns
    }

    /// An `nft` that runs inside the namespace (for `--nft`), failing on `-f` (text or JSON) while
    /// `fail_flag()` exists (to make the agent's applies fail on demand).
    fn nft_wrapper(&self) -> PathBuf {
        let path = self.dir.path().join("nft");
        let script = format!(
            "#!/bin/sh\ncase \" $* \" in *' -f '*) if [ -e '{flag}' ]; then echo 'Error: injected failure' >&2; exit 1; fi;; esac\nexec ip netns exec '{ns}' nft \"$@\"\n",
            flag = self.fail_flag().display(),
            ns = self.name
        );
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn fail_flag(&self) -> PathBuf {
        self.dir.path().join("fail")
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `nft list table inet NAME`, or None if it does not exist.
    fn table(&self, name: &str) -> Option<String> {
        let out = self.exec(&["nft", "list", "table", "inet", name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

const GOOD: &str = "table inet t1 {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ip saddr 10.244.0.10 counter accept\n }\n}\n";

#[tokio::test]
async fn nft_dataplane_applies_atomically_and_keeps_the_old_table_on_failure() {
    if !can_run("nft_dataplane_applies_atomically_and_keeps_the_old_table_on_failure") {
        return;
    }
    let ns = Netns::new();
    let nft = Nft::new(ns.nft_wrapper());
    assert!(nft.check().unwrap().contains("nftables"));

    nft.apply_script(GOOD).await.expect("a valid script applies");
    let before = ns.table("t1").expect("table created");
    assert!(before.contains("10.244.0.10"), "{before}");

    // A transaction that deletes the table and then hits an error: nothing of it takes effect.
    let bad = "delete table inet t1\ntable inet t1 {\n chain input {\n  ip saddr 10.244.0.11 bogus-statement\n }\n}\n";
    let err = nft.apply_script(bad).await.expect_err("invalid script");
    match &err {
        ApplyError::Rejected { stderr, .. } => {
            assert!(stderr.contains("Error"), "nft's own message: {stderr}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ns.table("t1").as_deref(), Some(before.as_str()), "old table kept");

    // The cleanup transaction works whether the table exists or not.
    let delete = policyc_compiler::nft::delete_table("t1");
    nft.apply_script(&delete.script).await.unwrap();
    assert!(ns.table("t1").is_none());
    nft.apply_script(&delete.script)
        .await
        .expect("no error when already gone");
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn copy_examples(to: &Path) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for e in std::fs::read_dir(examples).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

const NEW_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: shop, labels: {app: web}}\nspec: {nodeName: node-0, containers: [{name: c, image: i}]}\nstatus: {phase: Running, podIP: 10.244.0.77}\n";

#[test]
fn agent_takes_over_replaces_survives_sigterm_and_cleans_up() {
    if !can_run("agent_takes_over_replaces_survives_sigterm_and_cleans_up") {
        return;
    }
    let ns = Netns::new();
    let wrapper = ns.nft_wrapper();
    let manifests = tempfile::tempdir().unwrap();
    copy_examples(manifests.path());

    // A previous agent's table, to be taken over.
    let stale = "table inet policyc {\n chain stale-leftover {\n }\n}\n";
    let out = Command::new(&wrapper)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(stale.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());

    let bin = env!("CARGO_BIN_EXE_policyc");
    // Inside the namespace (so its port is too), with the failure-injecting wrapper as --nft.
    let mut agent = Agent(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, bin, "agent", "--node-name", "node-0"])
            .args(["--manifests", manifests.path().to_str().unwrap()])
            .args(["--listen", "127.0.0.1:9750", "--nft", wrapper.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("start agent"),
    );
    wait_for("the first replace", Duration::from_secs(20), || {
        ns.table("policyc").is_some_and(|t| !t.contains("stale-leftover"))
    });
    let first = ns.table("policyc").unwrap();
    assert!(
        first.contains("10.244.0.10"),
        "node-0's pod is enforced:\n{first}"
    );
    let ready = ns.exec(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://127.0.0.1:9750/readyz",
    ]);
    assert_eq!(String::from_utf8_lossy(&ready.stdout), "200");

    // A change: a new pod on this node shows up in the kernel.
    std::fs::write(manifests.path().join("extra.yaml"), NEW_POD).unwrap();
    wait_for("the new pod", Duration::from_secs(5), || {
        ns.table("policyc").is_some_and(|t| t.contains("10.244.0.77"))
    });

    // A failing nft: the table stays as it was; when nft works again the change lands.
    std::fs::write(ns.fail_flag(), "").unwrap();
    std::fs::remove_file(manifests.path().join("extra.yaml")).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let kept = ns.table("policyc").unwrap();
    assert!(kept.contains("10.244.0.77"), "old table kept while applies fail");
    let metrics = ns.exec(&["curl", "-s", "http://127.0.0.1:9750/metrics"]);
    let metrics = String::from_utf8_lossy(&metrics.stdout).into_owned();
    assert!(!metrics.contains("policyc_apply_failures_total 0"), "{metrics}");
    std::fs::remove_file(ns.fail_flag()).unwrap();
    wait_for("the retry", Duration::from_secs(10), || {
        ns.table("policyc").is_some_and(|t| !t.contains("10.244.0.77"))
    });

    // SIGTERM: exit 0, rules stay.
    let pid = agent.0.id().to_string();
    assert!(run("kill", &["-TERM", &pid]).status.success());
    let status = agent.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(ns.table("policyc").is_some(), "the table survives the agent");

    // --cleanup removes it, and is fine when it is already gone.
    for _ in 0..2 {
        let out = Command::new(bin)
            .args(["agent", "--cleanup", "--nft", wrapper.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(ns.table("policyc").is_none());
    }
}

/// A `nft list table` listing as its sets and chains, sorted.
fn blocks(listing: &str) -> Vec<String> {
    // Inside the table: every line but the `table ... {` and `}` that enclose it.
    let inner: Vec<&str> = listing
        .lines()
        .filter(|l| !l.starts_with("table ") && *l != "}")
        .collect();
    let mut v: Vec<String> = inner
        .join("\n")
        .split("\n\n")
        .map(|b| b.trim().to_string())
        .collect();
    v.sort();
    v
}

/// The compiler's transactions for the examples, then for the examples plus one pod on node-0.
fn example_rulesets() -> (policyc_compiler::nft::Ruleset, policyc_compiler::nft::Ruleset) {
    let dir = tempfile::tempdir().unwrap();
    copy_examples(dir.path());
    let opts = policyc_compiler::nft::RenderOptions::new("node-0");
    let load = |d: &Path| policyc::input::load(&[d.to_path_buf()]).unwrap().cluster;
    let first = policyc_compiler::nft::render(&load(dir.path()), &opts);
    std::fs::write(dir.path().join("extra.yaml"), NEW_POD).unwrap();
    let second = policyc_compiler::nft::render(&load(dir.path()), &opts);
    (first, second)
}

#[tokio::test]
async fn json_and_text_transactions_give_the_same_kernel_state() {
    if !can_run("json_and_text_transactions_give_the_same_kernel_state") {
        return;
    }
    use policyc::agent::dataplane::Format;
    let (first, second) = example_rulesets();
    assert_ne!(first, second, "the extra pod changes the ruleset");
    let delta = second.update_from(&first);
    let mut listings = Vec::new();
    for format in [Format::Json, Format::Text] {
        let ns = Netns::new();
        let nft = Nft::new(ns.nft_wrapper()).with_format(format);
        nft.apply_transaction(&first.replace())
            .await
            .expect("replace applies");
        let after_first = ns.table("policyc").expect("table created");
        nft.apply_transaction(&delta).await.expect("delta applies");
        let after_delta = ns.table("policyc").unwrap();
        assert!(after_delta.contains("10.244.0.77"), "{format:?}:\n{after_delta}");
        // A second replace over an existing table (a restarted agent taking over).
        nft.apply_transaction(&second.replace())
            .await
            .expect("replace over an existing table");
        // The same objects; a chain a delta added is listed last (nft lists in creation order).
        assert_eq!(
            blocks(&ns.table("policyc").unwrap()),
            blocks(&after_delta),
            "{format:?}: delta == replace"
        );
        listings.push((after_first, after_delta));
    }
    assert_eq!(listings[0], listings[1], "JSON and text give the same table");
}

#[tokio::test]
async fn a_rejected_json_transaction_reports_nfts_message() {
    if !can_run("a_rejected_json_transaction_reports_nfts_message") {
        return;
    }
    let (first, _) = example_rulesets();
    let ns = Netns::new();
    let nft = Nft::new(ns.nft_wrapper());
    nft.apply_transaction(&first.replace()).await.unwrap();
    let before = ns.table("policyc").unwrap();
    // Elements for a set that does not exist: nft rejects the whole transaction.
    let mut bad = first.replace();
    bad.commands.push(policyc_compiler::nft::Command::AddElements {
        table: "policyc".into(),
        set: policyc_compiler::nft::ir::Set {
            name: "no-such-set".into(),
            ..first.sets[0].clone()
        },
        elements: first.sets[0].elements.iter().cloned().collect(),
    });
    let bad = policyc_compiler::nft::Transaction::new(bad.commands);
    match nft.apply_transaction(&bad).await {
        Err(ApplyError::Rejected { stderr, .. }) => assert!(stderr.contains("Error"), "{stderr}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(ns.table("policyc").unwrap(), before);
}
