//! The agent against real nftables, in a throwaway network namespace (never the root one): the
//! nft dataplane's atomicity, and the whole binary taking over, replacing and cleaning up its
//! table. Needs root, `ip` and `nft`; skipped with a reason otherwise, except under CI=true.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use policyc::agent::dataplane::{ApplyError, Nft};

mod common;
use common::{can_run, run, wait_for, Killed};

const TOOLS: &[(&str, &str)] = &[("nft", "--version"), ("ip", "-V")];

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
    if !can_run(
        "nft_dataplane_applies_atomically_and_keeps_the_old_table_on_failure",
        TOOLS,
    ) {
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
    if !can_run("agent_takes_over_replaces_survives_sigterm_and_cleans_up", TOOLS) {
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
    let mut agent = Killed(
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
    if !can_run("json_and_text_transactions_give_the_same_kernel_state", TOOLS) {
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
    if !can_run("a_rejected_json_transaction_reports_nfts_message", TOOLS) {
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

/// `nft -j list table inet NAME` with what differs between two creations of the same content
/// removed: handles, and the order of set elements (hash sets list them in a per-set random
/// seed's order). None if the table does not exist.
fn normalized_table(ns: &Netns, name: &str) -> Option<serde_json::Value> {
    let out = ns.exec(&["nft", "-j", "list", "table", "inet", name]);
    if !out.status.success() {
        return None;
    }
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("handle");
                for (k, x) in m.iter_mut() {
                    strip(x);
                    if k == "elem" {
                        if let serde_json::Value::Array(a) = x {
                            a.sort_by_key(|e| e.to_string());
                        }
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft -j output");
    strip(&mut v);
    // The metainfo entry (nft version, json schema) is the same each time; keep only the table.
    if let Some(a) = v.get_mut("nftables").and_then(|a| a.as_array_mut()) {
        a.retain(|e| e.get("metainfo").is_none());
    }
    Some(v)
}

/// A cluster large enough that the agent's delta between two versions is thousands of element
/// changes: 10 namespaces of 100 pods over two nodes, a default deny and five app-to-app
/// allows per namespace. `shift` moves every pod address, so every element changes.
fn big_cluster(shift: u8) -> String {
    let mut out = String::new();
    out.push_str("apiVersion: v1\nkind: Node\nmetadata: {name: node-0}\nstatus: {addresses: [{type: InternalIP, address: 198.18.0.1}]}\n");
    out.push_str("---\napiVersion: v1\nkind: Node\nmetadata: {name: node-1}\nstatus: {addresses: [{type: InternalIP, address: 198.18.0.2}]}\n");
    for n in 0..10 {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}, labels: {{team: t{}}}}}\n",
            n % 3
        ));
        for k in 0..100u8 {
            out.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{k}, namespace: ns{n}, labels: {{app: a{}}}}}\nspec: {{nodeName: node-{}, containers: [{{name: c, image: i, ports: [{{containerPort: 80}}]}}]}}\nstatus: {{phase: Running, podIP: 10.244.{n}.{}}}\n",
                k % 5,
                k % 2,
                k + 1 + shift
            ));
        }
        out.push_str(&format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny, namespace: ns{n}}}\nspec: {{podSelector: {{}}, policyTypes: [Ingress, Egress]}}\n"
        ));
        for j in 0..5 {
            out.push_str(&format!(
                "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: a{j}, namespace: ns{n}}}\nspec:\n  podSelector: {{matchLabels: {{app: a{j}}}}}\n  ingress:\n  - from:\n    - namespaceSelector: {{matchLabels: {{team: t{}}}}}\n      podSelector: {{matchLabels: {{app: a{}}}}}\n    ports: [{{port: 80}}]\n  egress:\n  - to:\n    - podSelector: {{matchLabels: {{app: a{}}}}}\n",
                (n + j) % 3,
                (j + 1) % 5,
                (j + 2) % 5
            ));
        }
    }
    out
}

/// Writes `text` as the directory's only manifest, atomically (the agent never reads half).
fn write_manifest(dir: &Path, text: &str) {
    let tmp = dir.join(".cluster.yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("cluster.yaml")).unwrap();
}

/// A tiny deterministic PRNG (xorshift64*): the seed is printed, so a failing run can be
/// replayed with POLICYC_CRASH_SEED.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The nft the crash test hands the agent: the real one (the agent runs inside the namespace),
/// with each transaction's start and end (and exit code) appended to `log`.
fn timing_wrapper(dir: &Path, log: &Path) -> PathBuf {
    let path = dir.join("nft-timed");
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in *' -f '*)\n  echo \"start $(date +%s%N)\" >> '{log}'\n  nft \"$@\"; rc=$?\n  echo \"end $(date +%s%N) $rc\" >> '{log}'\n  exit $rc;;\nesac\nexec nft \"$@\"\n",
        log = log.display()
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The agent in `ns`, in a process group of its own, so that one SIGKILL takes it and the nft
/// it is running (as a node crash or an OOM kill of the container would).
fn spawn_agent_group(ns: &Netns, manifests: &Path, nft: &Path, port: u16) -> GroupAgent {
    use std::os::unix::process::CommandExt;
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_policyc"), "agent"])
        .args([
            "--node-name",
            "node-0",
            "--manifests",
            manifests.to_str().unwrap(),
        ])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--nft",
            nft.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start agent");
    GroupAgent(child)
}

/// Kills the agent's whole process group however the test ends.
struct GroupAgent(Child);

impl Drop for GroupAgent {
    fn drop(&mut self) {
        kill_group(&mut self.0);
    }
}

fn kill_group(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    // The group is the one the child leads (process_group(0)).
    let group = format!("-{}", child.id());
    let out = run("kill", &["-s", "KILL", "--", &group]);
    assert!(
        out.status.success(),
        "kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = child.wait();
}

/// (start, end) pairs of the nft transactions in the timing log, in ns since the epoch; an
/// end of None: killed before it finished.
fn nft_runs(log: &Path) -> Vec<(u128, Option<(u128, i32)>)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut runs: Vec<(u128, Option<(u128, i32)>)> = Vec::new();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["start", t] => runs.push((t.parse().unwrap(), None)),
            ["end", t, rc] => {
                if let Some(last) = runs.last_mut() {
                    last.1 = Some((t.parse().unwrap(), rc.parse().unwrap()));
                }
            }
            _ => {}
        }
    }
    runs
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Issue 8, "crash mid-apply": the agent and its nft are SIGKILLed at random points of the
/// apply of a large change (every pod address moves: thousands of element changes); the
/// kernel's table must then be exactly the old or exactly the new ruleset, never a mix. Half
/// of the kills are timed from the moment nft starts (to land inside the transaction), half
/// from the moment the change is written (before, during or after the apply).
#[test]
fn killed_mid_apply_leaves_the_old_or_the_new_table() {
    if !can_run("killed_mid_apply_leaves_the_old_or_the_new_table", TOOLS) {
        return;
    }
    let ns = Netns::new();
    let log = ns.dir.path().join("nft-times");
    let nft = timing_wrapper(ns.dir.path(), &log);
    let manifests = tempfile::tempdir().unwrap();
    let (a, b) = (big_cluster(0), big_cluster(100));
    // Successful applies of the running agent (one apply may be several nft runs if the
    // dataplane ever splits them: the count comes from the agent, not from the nft log).
    let applies = |n: usize| {
        let (_, metrics) = http_get(&ns, "http://127.0.0.1:9751/metrics");
        metrics
            .lines()
            .find(|l| l.starts_with("policyc_applies_total "))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
            .is_some_and(|got| got >= n)
    };

    // The two expected states, from the agent itself: A by a first replace, B by its delta.
    write_manifest(manifests.path(), &a);
    let mut agent = spawn_agent_group(&ns, manifests.path(), &nft, 9751);
    wait_for("the first apply", Duration::from_secs(60), || applies(1));
    let old = normalized_table(&ns, "policyc").expect("table A");
    let written = now_ns();
    write_manifest(manifests.path(), &b);
    wait_for("the delta", Duration::from_secs(60), || applies(2));
    let new = normalized_table(&ns, "policyc").expect("table B");
    kill_group(&mut agent.0);
    assert_ne!(old, new, "the change must change the table");
    let runs: Vec<_> = nft_runs(&log).into_iter().filter(|r| r.0 > written).collect();
    let (start, end) = (runs[0].0, runs.last().unwrap().1.unwrap().0);
    let (to_start, nft_took) = ((start - written) / 1_000_000, (end - start) / 1_000_000);
    let elements = |v: &serde_json::Value| v.to_string().matches("10.244.").count();
    eprintln!(
        "calibration: change picked up and nft started {to_start} ms after the write; the delta's nft took {nft_took} ms; {} / {} address mentions in the two tables",
        elements(&old),
        elements(&new)
    );

    let seed = std::env::var("POLICYC_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| (now_ns() as u64) | 1);
    eprintln!("seed {seed} (POLICYC_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let iterations = 32;
    let (mut saw_old, mut saw_new, mut killed_in_nft) = (0, 0, 0);
    // Durations (µs) of the deltas that ran to the end, to aim the kills.
    let mut durations: Vec<u128> = vec![(end - start) / 1000];
    for i in 0..iterations {
        write_manifest(manifests.path(), &a);
        let mut agent = spawn_agent_group(&ns, manifests.path(), &nft, 9751);
        wait_for("the restarted agent's replace", Duration::from_secs(60), || {
            applies(1)
        });
        assert_eq!(
            normalized_table(&ns, "policyc").as_ref(),
            Some(&old),
            "#{i}: reset to A"
        );
        let runs_before = nft_runs(&log).len();
        write_manifest(manifests.path(), &b);
        let delay = if i % 2 == 0 {
            // From nft's start: anywhere in the transaction (and a little after).
            wait_for("nft to start", Duration::from_secs(60), || {
                nft_runs(&log).len() > runs_before
            });
            // Up to 1.2 times the median duration of the deltas seen so far.
            let mut seen = durations.clone();
            seen.sort();
            let typical = seen[seen.len() / 2] as u64;
            Duration::from_micros(rng.below(typical * 6 / 5 + 1000))
        } else {
            // From the write: before the change is seen, during the apply, or after it.
            Duration::from_micros(rng.below((to_start + nft_took + 50) as u64 * 1000))
        };
        std::thread::sleep(delay);
        kill_group(&mut agent.0);
        let runs = nft_runs(&log);
        let interrupted = runs[runs_before..].iter().any(|r| r.1.is_none());
        durations.extend(
            runs[runs_before..]
                .iter()
                .filter_map(|r| Some((r.1?.0 - r.0) / 1000)),
        );
        killed_in_nft += usize::from(interrupted);
        let got = normalized_table(&ns, "policyc");
        let verdict = if got.as_ref() == Some(&old) {
            saw_old += 1;
            "old"
        } else if got.as_ref() == Some(&new) {
            saw_new += 1;
            "new"
        } else {
            panic!(
                "#{i}: killed {delay:?} after {}: the table is neither the old nor the new ruleset:\n{}",
                if i % 2 == 0 { "nft started" } else { "the write" },
                got.map(|v| serde_json::to_string_pretty(&v).unwrap())
                    .unwrap_or("(no table)".into())
            )
        };
        eprintln!(
            "#{i}: killed {delay:?} after {}{}: {verdict}",
            if i % 2 == 0 { "nft started" } else { "the write" },
            if interrupted { " (inside nft)" } else { "" }
        );
    }
    eprintln!(
        "{iterations} kills: {saw_old} left the old table, {saw_new} the new one, 0 a mix; {killed_in_nft} landed while nft ran"
    );
    assert!(
        killed_in_nft > 0,
        "no kill landed inside an nft run: the test did not test"
    );
}

fn http_get(ns: &Netns, url: &str) -> (String, String) {
    let out = ns.exec(&["curl", "-s", "-w", "\n%{http_code}", url]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    (code.to_string(), body.to_string())
}

/// Issue 8, "API server unreachable at start": a table left by a previous agent; a new agent
/// whose API server refuses connections must not apply anything (in particular not a ruleset
/// compiled from an empty cache, which would open every isolated pod): the kernel's table
/// stays exactly as it was, `/readyz` is 503, `/healthz` 200, and the watch errors are counted
/// and logged.
#[test]
fn api_unreachable_at_start_keeps_the_previous_table() {
    if !can_run("api_unreachable_at_start_keeps_the_previous_table", TOOLS) {
        return;
    }
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("skipping api_unreachable_at_start_keeps_the_previous_table: no curl");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "curl missing under CI=true"
        );
        return;
    }
    let ns = Netns::new();
    let log = ns.dir.path().join("nft-times");
    let nft = timing_wrapper(ns.dir.path(), &log);
    let manifests = tempfile::tempdir().unwrap();
    copy_examples(manifests.path());
    // The previous agent: the examples' table for node-0, then SIGTERM.
    let mut previous = spawn_agent_group(&ns, manifests.path(), &nft, 9752);
    wait_for("the previous agent's apply", Duration::from_secs(30), || {
        normalized_table(&ns, "policyc").is_some_and(|t| t.to_string().contains("10.244.0.10"))
    });
    let before = normalized_table(&ns, "policyc").expect("table");
    assert!(
        before.to_string().contains("10.244.0.10"),
        "node-0's pod is enforced"
    );
    assert!(run("kill", &["-TERM", &previous.0.id().to_string()])
        .status
        .success());
    assert!(previous.0.wait().unwrap().success());
    let runs = nft_runs(&log).len();

    // Port 1 on the namespace's loopback: nothing listens, every connection is refused.
    let kubeconfig = ns.dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- {name: c, cluster: {server: \"http://127.0.0.1:1\"}}\nusers:\n- {name: u, user: {token: t}}\ncontexts:\n- {name: c, context: {cluster: c, user: u}}\ncurrent-context: c\n",
    )
    .unwrap();
    let agent_log = ns.dir.path().join("agent.log");
    let mut agent = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_policyc"), "agent"])
            .args([
                "--node-name",
                "node-0",
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
            ])
            .args(["--listen", "127.0.0.1:9753", "--nft", nft.to_str().unwrap()])
            .stderr(std::fs::File::create(&agent_log).unwrap())
            .spawn()
            .expect("start agent"),
    );
    wait_for("the watch errors", Duration::from_secs(20), || {
        let (_, metrics) = http_get(&ns, "http://127.0.0.1:9753/metrics");
        ["Pod", "Namespace", "NetworkPolicy", "Node"].iter().all(|k| {
            metrics
                .lines()
                .find(|l| l.starts_with(&format!("policyc_watch_errors_total{{kind=\"{k}\"}}")))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .is_some_and(|n| n >= 2.0)
        })
    });
    // A few more seconds of retries.
    std::thread::sleep(Duration::from_secs(3));
    assert!(agent.0.try_wait().unwrap().is_none(), "the agent keeps running");
    let (ready, body) = http_get(&ns, "http://127.0.0.1:9753/readyz");
    assert_eq!((ready.as_str(), body.trim()), ("503", "no ruleset applied yet"));
    assert_eq!(http_get(&ns, "http://127.0.0.1:9753/healthz").0, "200");
    let (_, metrics) = http_get(&ns, "http://127.0.0.1:9753/metrics");
    assert!(metrics.contains("policyc_applies_total 0"), "{metrics}");
    assert_eq!(nft_runs(&log).len(), runs, "no nft transaction was run");
    assert_eq!(
        normalized_table(&ns, "policyc").as_ref(),
        Some(&before),
        "the table is untouched"
    );
    let text = std::fs::read_to_string(&agent_log).unwrap();
    assert!(text.contains("watch error (will retry)"), "{text}");
    eprintln!(
        "API unreachable: {} watch-error log lines, no apply, table kept; metrics: {}",
        text.matches("watch error").count(),
        metrics
            .lines()
            .filter(|l| l.starts_with("policyc_watch_errors_total"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
