//! The mock API server: its wire protocol as kube-runtime's watcher uses it (pages, live watch
//! events, 410 after a compaction), and the real `policyc agent --kubeconfig` against it (the
//! initial list becomes a table; one event becomes one delta). Everything runs inside a network
//! namespace of its own; needs root, `ip` and `nft` (skipped otherwise, failing under CI=true).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use policyc_e2e::apiserver::{in_netns, ApiServer, Resource};
use policyc_e2e::netns::{new_run_id, Netns};
use policyc_e2e::{policyc, prereq, sh};
use serde_json::{json, Value};

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn node(name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "status": {"addresses": [{"type": "InternalIP", "address": ip}]}})
}

fn pod(ns: &str, name: &str, node: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
           "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
}

fn deny_all(ns: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "deny-all", "namespace": ns},
           "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
}

/// GET on a fresh connection; the status line and the body as read (to EOF or `Content-Length`).
fn get(addr: std::net::SocketAddr, target: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status.trim().to_string(), String::from_utf8(body).unwrap())
}

/// The next watch event on a chunked stream.
fn next_event(r: &mut BufReader<TcpStream>) -> Value {
    let mut size = String::new();
    r.read_line(&mut size).unwrap();
    let n = usize::from_str_radix(size.trim(), 16).unwrap();
    let mut chunk = vec![0; n + 2];
    r.read_exact(&mut chunk).unwrap();
    serde_json::from_slice(&chunk[..n]).unwrap()
}

fn open_watch(addr: std::net::SocketAddr, target: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
    }
    r
}

#[test]
fn pages_watch_events_and_410_after_compaction() {
    if !prereq::check("pages_watch_events_and_410_after_compaction") {
        return;
    }
    let ns = Netns::create(&format!("{}-api", new_run_id())).unwrap();
    let api = std::sync::Arc::new(ApiServer::start_in(Some(&ns.name)).unwrap());
    api.load([
        pod("a", "p1", "n1", "10.244.1.1"),
        pod("a", "p2", "n1", "10.244.1.2"),
    ])
    .unwrap();
    let addr = api.addr();
    let api2 = api.clone();
    in_netns(Some(&ns.name), move || {
        // Two pages from one snapshot, then the continue token is spent.
        let (st, body) = get(addr, "/api/v1/pods?limit=1");
        assert_eq!(st, "HTTP/1.1 200 OK");
        let page: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        let rv = page["metadata"]["resourceVersion"].as_str().unwrap().to_string();
        let cont = page["metadata"]["continue"].as_str().unwrap().to_string();
        let (_, body) = get(addr, &format!("/api/v1/pods?limit=1&continue={cont}"));
        let page2: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page2["items"][0]["metadata"]["name"], "p2");
        assert!(page2["metadata"].get("continue").is_none(), "{page2}");
        let (st, _) = get(addr, &format!("/api/v1/pods?limit=1&continue={cont}"));
        assert!(st.starts_with("HTTP/1.1 410"), "{st}");

        // A watch from the list's resourceVersion sees a later change, live.
        let mut w = open_watch(addr, &format!("/api/v1/pods?watch=true&resourceVersion={rv}"));
        let new_rv = api2.apply(&pod("a", "p3", "n1", "10.244.1.3")).unwrap();
        let ev = next_event(&mut w);
        assert_eq!(ev["type"], "ADDED");
        assert_eq!(ev["object"]["metadata"]["resourceVersion"], new_rv.to_string());
        api2.delete(Resource::Pods, "a", "p1").unwrap();
        assert_eq!(next_event(&mut w)["type"], "DELETED");
        assert!(api2.written_at(new_rv).is_some());

        // After a compaction, resuming from the old resourceVersion is 410 Gone.
        api2.compact();
        let mut w = open_watch(addr, &format!("/api/v1/pods?watch=true&resourceVersion={rv}"));
        let ev = next_event(&mut w);
        assert_eq!(ev["type"], "ERROR");
        assert_eq!(ev["object"]["code"], 410);
        Ok(())
    })
    .unwrap();
}

#[test]
fn the_agent_lists_then_applies_one_event_as_a_delta() {
    if !prereq::check("the_agent_lists_then_applies_one_event_as_a_delta") {
        return;
    }
    let bins = policyc::build().unwrap();
    let ns = Netns::create(&format!("{}-agent", new_run_id())).unwrap();
    let api = ApiServer::start_in(Some(&ns.name)).unwrap();
    api.load([namespace("prod"), node("n1", "198.18.0.1")]).unwrap();
    api.load([pod("prod", "a", "n1", "10.244.1.2")]).unwrap();
    api.load([deny_all("prod")]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("agent.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut agent = sh::netns_command(&ns.name, bins.policyc.to_str().unwrap())
        .args([
            "agent",
            "--node-name",
            "n1",
            "--listen",
            "127.0.0.1:9750",
            "--kubeconfig",
        ])
        .arg(api.kubeconfig())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let table = || sh::exec(&ns.name, "nft", &["list", "table", "inet", "policyc"]).unwrap_or_default();
    let applies = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("applied ruleset")
            .count()
    };
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !f() {
            if start.elapsed() > Duration::from_secs(30) {
                let text = std::fs::read_to_string(&log).unwrap();
                panic!("timed out waiting for {what}; agent log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait("the initial apply", &|| applies() >= 1);
    assert!(table().contains("10.244.1.2"), "{}", table());
    assert!(!table().contains("10.244.1.3"));
    for r in Resource::ALL {
        assert_eq!(api.requests(r, false), 1, "one list of {r:?}");
    }

    api.apply(&pod("prod", "b", "n1", "10.244.1.3")).unwrap();
    wait("the pod's address in the table", &|| {
        table().contains("10.244.1.3")
    });
    wait("the second apply logged", &|| applies() >= 2);
    let text = std::fs::read_to_string(&log).unwrap();
    let second = text
        .lines()
        .filter(|l| l.contains("applied ruleset"))
        .nth(1)
        .unwrap();
    assert!(second.contains("delta"), "{second}");
    let _ = agent.kill();
    let _ = agent.wait();
}
