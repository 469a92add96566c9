//! Huge inputs stay within bounded memory and finish: 50,000 pods (with 2,000 policies, all in
//! one 17 MiB YAML file), selectors with hundreds of matchExpressions, 20,000 policies. Each
//! case runs load + render (text and JSON) in a child process (this test binary re-executed) and
//! `policyc render -f` (the CLI), both under an address-space limit (`setrlimit(RLIMIT_AS)`) and
//! a generous timeout that only guards against hangs. The test asserts that both finish
//! successfully within the bound; it prints peak RSS, wall and CPU time, which are measurements,
//! never assertions.
//!
//! `POLICYC_HUGE_LIMIT_MIB` (default 2048) sets the bound, `POLICYC_HUGE_TIMEOUT_SECS` (default
//! 900) the hang guard.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const NODES: usize = 50;

fn namespaces(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-{i}\n  labels: {{team: team-{}, env: {}}}\n",
            i % 10,
            if i % 3 == 0 { "prod" } else { "dev" }
        );
    }
    s
}

fn nodes() -> String {
    let mut s = String::new();
    for i in 0..NODES {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: node-{i}\nspec:\n  podCIDR: 10.245.{i}.0/24\n\
             status:\n  addresses:\n  - {{type: InternalIP, address: 198.18.{}.{}}}\n",
            i / 250,
            i % 250 + 1
        );
    }
    s
}

/// `n` pods over `ns` namespaces and every node, 20 app labels per namespace; unique IPv4 (and
/// for every tenth pod IPv6) addresses.
fn pods(n: usize, ns: usize) -> String {
    let mut s = String::with_capacity(n * 420);
    for i in 0..n {
        let (hi, lo) = (i / 256, i % 256);
        let v4 = format!("10.{}.{}.{lo}", 244 + hi / 256, hi % 256);
        let ips = if i % 10 == 0 {
            format!("  podIP: {v4}\n  podIPs:\n  - ip: {v4}\n  - ip: fd00:10:244::{i:x}\n")
        } else {
            format!("  podIP: {v4}\n")
        };
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i}\n  namespace: ns-{}\n\
             \x20 labels: {{app: app-{}, tier: t{}, idx: i{i}}}\nspec:\n  nodeName: node-{}\n  containers:\n  - name: c\n    image: i\n    ports:\n\
             \x20   - {{containerPort: 8080, name: http}}\n    - {{containerPort: 53, name: dns, protocol: UDP}}\nstatus:\n  phase: Running\n{ips}",
            i % ns,
            (i / ns) % 20,
            i % 3,
            i % NODES
        );
    }
    s
}

/// `n` policies spread over `ns` namespaces: per app an ingress allow from a tier in teams, an
/// egress allow to an ipBlock with except and a named port, and a default deny per namespace.
fn policies(n: usize, ns: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let nsi = i % ns;
        if i < ns {
            let _ = write!(
                s,
                "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-{i}\n  namespace: ns-{nsi}\n\
                 spec:\n  podSelector: {{}}\n  policyTypes: [Ingress, Egress]\n"
            );
            continue;
        }
        let _ = write!(
            s,
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: allow-{i}\n  namespace: ns-{nsi}\n\
             spec:\n  podSelector:\n    matchLabels: {{app: app-{}}}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels: {{team: team-{}}}\n\
             \x20     podSelector:\n        matchLabels: {{tier: t{}}}\n    ports:\n    - {{port: 8080, endPort: {}}}\n    - {{port: http}}\n\
             \x20 egress:\n  - to:\n    - ipBlock: {{cidr: 10.{}.0.0/16, except: [10.{}.{}.0/24]}}\n    - podSelector:\n        matchLabels: {{app: app-{}}}\n\
             \x20   ports:\n    - {{port: dns, protocol: UDP}}\n    - {{port: {}}}\n",
            i % 20,
            i % 10,
            i % 3,
            8080 + i % 50,
            i % 200,
            i % 200,
            i % 256,
            (i + 1) % 20,
            1000 + i % 5000
        );
    }
    s
}

/// Policies whose pod selectors and peers have `exprs` matchExpressions each (mostly NotIn on
/// keys the pods lack, so they still match, plus In/Exists on real labels).
fn wide_policies(n: usize, ns: usize, exprs: usize) -> String {
    let selector = |indent: &str, salt: usize| {
        let mut s = format!("{indent}matchExpressions:\n");
        for j in 0..exprs {
            let line = match j % 4 {
                0 => format!(
                    "{indent}- {{key: k{j}, operator: NotIn, values: [v{j}, w{}]}}\n",
                    j + salt
                ),
                1 => format!("{indent}- {{key: absent-{j}, operator: DoesNotExist}}\n"),
                2 => format!("{indent}- {{key: app, operator: Exists}}\n"),
                _ => format!("{indent}- {{key: tier, operator: In, values: [t0, t1, t2, x{j}]}}\n"),
            };
            s.push_str(&line);
        }
        s
    };
    let mut s = String::new();
    for i in 0..n {
        let _ = write!(
            s,
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: wide-{i}\n  namespace: ns-{}\n\
             spec:\n  podSelector:\n{}  ingress:\n  - from:\n    - podSelector:\n{}      namespaceSelector:\n{}  egress:\n  - to:\n    - podSelector:\n{}",
            i % ns,
            selector("    ", i),
            selector("        ", i + 1),
            selector("        ", i + 2),
            selector("        ", i + 3),
        );
    }
    s
}

struct Case {
    name: &'static str,
    what: String,
    files: Vec<(&'static str, String)>,
}

fn cases() -> Vec<Case> {
    let ns = 100;
    vec![
        Case {
            name: "50k-pods",
            what: "50,000 pods, 2,000 policies, 100 namespaces, 50 nodes, all in one YAML file".into(),
            files: vec![(
                "all.yaml",
                format!(
                    "{}{}{}{}",
                    namespaces(ns),
                    nodes(),
                    pods(50_000, ns),
                    policies(2_000, ns)
                ),
            )],
        },
        Case {
            name: "wide-selectors",
            what: "2,000 pods, 40 policies with 4 selectors of 400 matchExpressions each".into(),
            files: vec![
                ("namespaces.yaml", namespaces(10)),
                ("nodes.yaml", nodes()),
                ("pods.yaml", pods(2_000, 10)),
                ("policies.yaml", wide_policies(40, 10, 400)),
            ],
        },
        Case {
            name: "many-policies",
            what: "5,000 pods, 20,000 policies in 100 namespaces".into(),
            files: vec![
                ("namespaces.yaml", namespaces(ns)),
                ("nodes.yaml", nodes()),
                ("pods.yaml", pods(5_000, ns)),
                ("policies.yaml", policies(20_000, ns)),
            ],
        },
    ]
}

/// What a child reported, and what the kernel measured of it.
struct Measured {
    ok: bool,
    stdout: String,
    stderr: String,
    peak_rss_kib: i64,
    cpu: Duration,
    wall: Duration,
}

/// Runs `cmd` under an address-space limit, killing it after `timeout` (a hang).
fn measure(mut cmd: Command, limit_bytes: u64, timeout: Duration) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit_bytes,
                rlim_max: limit_bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn the child");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value to be filled in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our child; status and usage are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > timeout {
            // SAFETY: plain syscall on our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("hang guard: the child ran longer than {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = started.elapsed();
    std::mem::forget(child); // reaped above
    let tv = |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    Measured {
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err)
            .unwrap_or_default()
            .chars()
            .take(4000)
            .collect(),
        peak_rss_kib: usage.ru_maxrss,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        wall,
    }
}

/// Not a test of its own: the in-process pipeline, run by the test below in a child process.
#[test]
fn huge_child() {
    let Ok(dir) = std::env::var("POLICYC_HUGE_CHILD_DIR") else {
        return;
    };
    let loaded = policyc::input::load(&[dir.into()]).expect("load");
    assert!(
        loaded.diagnostics.is_empty(),
        "generated input is valid: {:?}",
        &loaded.diagnostics[..loaded.diagnostics.len().min(5)]
    );
    let cluster = &loaded.cluster;
    let opts = policyc_compiler::nft::RenderOptions::new("node-3");
    let rs = policyc_compiler::nft::render(cluster, &opts);
    let tx = rs.replace();
    let json = tx.json_text();
    let st = rs.stats();
    // One more node, to see memory does not grow per render.
    let rs7 = policyc_compiler::nft::render(cluster, &policyc_compiler::nft::RenderOptions::new("node-7"));
    println!(
        "RESULT pods={} policies={} chains={} rules={} sets={} elements={} script_bytes={} json_bytes={} node7_rules={}",
        cluster.pods.len(),
        cluster.policies.len(),
        st.chains,
        st.rules,
        st.sets,
        st.elements,
        tx.script.len(),
        json.len(),
        rs7.stats().rules
    );
}

fn write_case(dir: &Path, case: &Case) -> u64 {
    let mut bytes = 0;
    for (name, text) in &case.files {
        std::fs::write(dir.join(name), text).unwrap();
        bytes += text.len() as u64;
    }
    bytes
}

#[test]
fn huge_inputs_load_and_render_within_bounded_memory() {
    let limit_mib = env_u64("POLICYC_HUGE_LIMIT_MIB", 2048);
    let limit = limit_mib << 20;
    let timeout = Duration::from_secs(env_u64("POLICYC_HUGE_TIMEOUT_SECS", 900));
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for case in cases() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_case(dir.path(), &case);
        let mut lib = Command::new(std::env::current_exe().unwrap());
        lib.args(["--exact", "huge_child", "--nocapture", "--test-threads=1"])
            .env("POLICYC_HUGE_CHILD_DIR", dir.path());
        let lib = measure(lib, limit, timeout);
        let mut cli = Command::new(env!("CARGO_BIN_EXE_policyc"));
        cli.args(["render", "--node-name", "node-3", "-f"])
            .arg(dir.path());
        let cli = measure(cli, limit, timeout);
        let result = lib
            .stdout
            .lines()
            .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
            .unwrap_or("(no result)")
            .to_string();
        for (what, m) in [("load+render", &lib), ("policyc render", &cli)] {
            report.push(format!(
                "{:<15} {:<15} input {:>6.1} MiB: peak RSS {:>6.1} MiB, wall {:>6.1?}, CPU {:>6.1?}",
                case.name,
                what,
                bytes as f64 / 1048576.0,
                m.peak_rss_kib as f64 / 1024.0,
                m.wall,
                m.cpu
            ));
            if !m.ok {
                failures.push(format!(
                    "{} ({}): {what} failed under a {limit_mib} MiB address-space limit:\n{}",
                    case.name, case.what, m.stderr
                ));
            }
        }
        report.push(format!("{:<15} {} -> {result}", case.name, case.what));
        if cli.ok && !cli.stdout.contains("table inet policyc {") {
            failures.push(format!("{}: policyc render printed no table", case.name));
        }
    }
    eprintln!("huge inputs (address-space limit {limit_mib} MiB, debug build):");
    for l in &report {
        eprintln!("  {l}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
