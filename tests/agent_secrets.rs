//! The agent's logs and `/metrics` never carry secrets or environment values: the real binary at
//! `RUST_LOG=trace`, with secret-looking environment variables and a kubeconfig bearer token,
//! (a) against a fake API server (plain HTTP, so the token really is sent: the fake server records
//! it, proving the test is not vacuous) that refuses every request, and (b) in `--manifests` mode
//! enforcing real rules. Everything runs in a throwaway network namespace (the agent, its nft, its
//! port, the fake server). Needs root, `ip`, `nft` and `curl`; skipped with a reason otherwise,
//! except under CI=true.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Substrings of every planted secret; none may appear in any log line or metric.
mod common;
use common::{can_run, run, wait_for, Killed};

const TOOLS: &[(&str, &str)] = &[("nft", "--version"), ("ip", "-V"), ("curl", "--version")];

const MARKERS: [&str; 2] = ["envsecret", "tokensecret"];
const TOKEN: &str = "tokensecret-3b9f1c7e2a";

/// Secret-looking environment variables as a cluster would give a pod (and some that a careless
/// `?std::env::vars()` would print).
const SECRET_ENV: [(&str, &str); 4] = [
    ("AWS_SECRET_ACCESS_KEY", "envsecret-aws-9d2e"),
    ("POLICYC_DB_PASSWORD", "envsecret-db-41ab"),
    ("KUBE_TOKEN", "envsecret-kube-77f0"),
    ("HTTPS_PROXY_PASSWORD", "envsecret-proxy-c3d1"),
];

/// A network namespace removed however the test ends.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "policyc-secrets-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        assert!(run("ip", &["netns", "add", &name]).status.success());
        let ns = Netns(name);
        assert!(run("ip", &["-n", &ns.0, "link", "set", "lo", "up"])
            .status
            .success());
        ns
    }

    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, prog]);
        c
    }

    fn curl(&self, url: &str) -> String {
        let out = self
            .command("curl")
            .args(["-s", "-m", "5", url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// The agent in `ns`, at trace level, with the secret environment, logging to `log`.
fn agent(ns: &Netns, args: &[&str], log: &Path) -> Killed {
    let out = std::fs::File::create(log).unwrap();
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_policyc"));
    cmd.arg("agent")
        .args(args)
        .args(["--listen", "127.0.0.1:9750"])
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in SECRET_ENV {
        cmd.env(k, v);
    }
    Killed(cmd.spawn().expect("start the agent"))
}

fn assert_clean(what: &str, text: &str) {
    for m in MARKERS {
        if let Some(at) = text.find(m) {
            let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
            panic!(
                "{what} carries a secret ({m}): {}",
                &text[from..to.min(from + 2000)]
            );
        }
    }
}

/// Not a test of its own: the fake API server, run by the test below inside the namespace (this
/// test binary re-executed there). It records each request's head and refuses it with a 403.
#[test]
fn fake_api_server() {
    let Ok(addr) = std::env::var("POLICYC_FAKE_API_LISTEN") else {
        return;
    };
    let record = PathBuf::from(std::env::var("POLICYC_FAKE_API_RECORD").unwrap());
    let listener = std::net::TcpListener::bind(&addr).unwrap();
    println!("listening");
    std::io::stdout().flush().unwrap();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let record = record.clone();
        std::thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                if let Some(len) = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                {
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body);
                }
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&record)
                    .unwrap();
                let _ = writeln!(f, "{head}");
                let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden","reason":"Forbidden","code":403}"#;
                let resp = format!(
                    "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if conn.write_all(resp.as_bytes()).is_err() {
                    return;
                }
            }
        });
    }
}

#[test]
fn logs_and_metrics_never_carry_the_token_or_environment_values() {
    if !can_run(
        "logs_and_metrics_never_carry_the_token_or_environment_values",
        TOOLS,
    ) {
        return;
    }
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("requests");
    let server = ns
        .command(std::env::current_exe().unwrap().to_str().unwrap())
        .args(["--exact", "fake_api_server", "--nocapture", "--test-threads=1"])
        .env("POLICYC_FAKE_API_LISTEN", "127.0.0.1:6443")
        .env("POLICYC_FAKE_API_RECORD", &record)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Killed(server);
    let mut line = String::new();
    let mut out = BufReader::new(server.0.stdout.take().unwrap());
    while !line.contains("listening") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the fake API server did not start"
        );
    }

    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:6443\n\
             users:\n- name: u\n  user:\n    token: {TOKEN}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
             current-context: x\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("kube.log");
    let agent_kube = agent(
        &ns,
        &[
            "--node-name",
            "node-0",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        &log,
    );
    // The token really goes out (to the fake server), so a leak would have something to leak.
    wait_for("requests carrying the token", Duration::from_secs(20), || {
        std::fs::read_to_string(&record).is_ok_and(|r| r.contains(&format!("Bearer {TOKEN}")))
    });
    // A few rounds of refused lists and retries, with everything at trace level.
    std::thread::sleep(Duration::from_secs(3));
    let metrics = ns.curl("http://127.0.0.1:9750/metrics");
    assert!(metrics.contains("policyc_"), "metrics served: {metrics}");
    drop(agent_kube);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.lines().count() > 20 && logs.contains("TRACE"),
        "trace logging is on: {logs}"
    );
    assert!(
        logs.contains("403") || logs.to_lowercase().contains("forbidden"),
        "{logs}"
    );
    assert_clean("the agent's log (kube source)", &logs);
    assert_clean("/metrics (kube source)", &metrics);

    // The manifests source, enforcing real rules through real nft in the namespace.
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for e in std::fs::read_dir(examples).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, manifests.join(p.file_name().unwrap())).unwrap();
    }
    let log = dir.path().join("files.log");
    let agent_files = agent(
        &ns,
        &[
            "--node-name",
            "node-0",
            "--manifests",
            manifests.to_str().unwrap(),
        ],
        &log,
    );
    wait_for("the agent's first apply", Duration::from_secs(20), || {
        ns.curl("http://127.0.0.1:9750/readyz").contains("ok")
            || run(
                "ip",
                &["netns", "exec", &ns.0, "nft", "list", "table", "inet", "policyc"],
            )
            .status
            .success()
    });
    // A change (and so another sync) with the logs at trace.
    std::fs::write(
        manifests.join("extra.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: shop, labels: {app: web}}\n\
         spec: {nodeName: node-0, containers: [{name: c, image: i}]}\nstatus: {phase: Running, podIP: 10.244.0.77}\n",
    )
    .unwrap();
    wait_for("the change", Duration::from_secs(10), || {
        String::from_utf8_lossy(
            &run(
                "ip",
                &["netns", "exec", &ns.0, "nft", "list", "table", "inet", "policyc"],
            )
            .stdout,
        )
        .contains("10.244.0.77")
    });
    let metrics = ns.curl("http://127.0.0.1:9750/metrics");
    assert!(metrics.contains("policyc_"), "metrics served: {metrics}");
    drop(agent_files);
    let logs = std::fs::read_to_string(&log).unwrap();
    // At trace level, though little below info is emitted on this path: what is, is checked.
    assert!(logs.contains("applied ruleset"), "{logs}");
    assert_clean("the agent's log (manifests source)", &logs);
    assert_clean("/metrics (manifests source)", &metrics);
}
