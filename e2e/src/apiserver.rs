//! A mock Kubernetes API server over real HTTP/1.1, for running the real `policyc agent
//! --kubeconfig` against a cluster that the test or benchmark controls in-process.
//!
//! It serves what kube-runtime's `watcher` asks for on the four kinds the agent watches
//! (`/api/v1/namespaces`, `/api/v1/pods`, `/api/v1/nodes`,
//! `/apis/networking.k8s.io/v1/networkpolicies`):
//! - list: `limit` + `continue` pagination over a snapshot taken at the first page (like etcd);
//!   `resourceVersion=0` returns everything in one page (like the apiserver's watch cache);
//! - watch (`?watch=true&resourceVersion=N`): newline-delimited JSON events, one HTTP chunk each,
//!   replayed from the event history after N, then live; a resourceVersion older than the
//!   history answers a `410 Gone` ERROR event in a 200 stream, as the real apiserver does, which
//!   makes the watcher relist.
//!
//! Control: [`ApiServer::apply`] / [`ApiServer::delete`] push events to open watches,
//! [`ApiServer::break_watches`] cuts every open watch, [`ApiServer::compact`] forgets the history
//! (so resumed watches get 410), [`ApiServer::refuse`] closes the listening socket (connections
//! are refused). [`ApiServer::written_at`] tells when an event was first written to a watch, the
//! start of an "event → enforced" measurement.
//!
//! The HTTP side is hand-written on std sockets rather than hyper: a test double needs to decide
//! exactly when each chunk leaves and how a connection breaks, and the e2e crate has no async
//! runtime. It listens inside a network namespace ([`ApiServer::start_in`]), so an agent in that
//! namespace reaches it on 127.0.0.1 and nothing is opened in the root namespace.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The collections the agent watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Namespaces,
    Pods,
    Nodes,
    NetworkPolicies,
}

impl Resource {
    pub const ALL: [Resource; 4] = [
        Resource::Namespaces,
        Resource::Pods,
        Resource::Nodes,
        Resource::NetworkPolicies,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Resource::Namespaces => "/api/v1/namespaces",
            Resource::Pods => "/api/v1/pods",
            Resource::Nodes => "/api/v1/nodes",
            Resource::NetworkPolicies => "/apis/networking.k8s.io/v1/networkpolicies",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Resource::Namespaces => "Namespace",
            Resource::Pods => "Pod",
            Resource::Nodes => "Node",
            Resource::NetworkPolicies => "NetworkPolicy",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Resource::NetworkPolicies => "networking.k8s.io/v1",
            _ => "v1",
        }
    }

    fn namespaced(self) -> bool {
        matches!(self, Resource::Pods | Resource::NetworkPolicies)
    }

    pub fn of_kind(kind: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.kind() == kind)
    }

    fn of_path(path: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.path() == path)
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// One watch event as it goes on the wire.
struct Event {
    rv: u64,
    line: Arc<str>,
}

#[derive(Default)]
struct Collection {
    /// `(namespace, name)` → the object's JSON, resourceVersion set.
    objects: BTreeMap<(String, String), Arc<str>>,
    history: VecDeque<Event>,
    /// Watches from a resourceVersion below this get 410: their events are gone.
    oldest: u64,
}

/// A list being paged: the objects as they were at the first page.
struct Snapshot {
    rv: u64,
    items: Vec<Arc<str>>,
}

#[derive(Default)]
struct State {
    rv: u64,
    collections: [Collection; 4],
    /// Bumped by `break_watches`: a watch that sees a new epoch drops its connection.
    epoch: u64,
    snapshots: HashMap<u64, Snapshot>,
    next_snapshot: u64,
    /// resourceVersion → when its event was first written to a watch.
    written: HashMap<u64, Instant>,
    /// Requests served, per `(path, watch)`.
    requests: BTreeMap<(String, bool), usize>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    refuse: AtomicBool,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the whole server down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running server; stops (and closes every connection) on drop.
pub struct ApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

/// Runs `f` on a thread that has entered network namespace `netns` (`ip netns` name); `None`
/// runs it in the caller's namespace. Sockets created there stay in that namespace.
pub fn in_netns<T: Send + 'static>(
    netns: Option<&str>,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let netns = netns.map(str::to_string);
    std::thread::spawn(move || {
        if let Some(name) = netns {
            enter_netns(&name)?;
        }
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("thread in netns panicked"))?
}

fn enter_netns(name: &str) -> Result<()> {
    use std::os::fd::AsRawFd;
    let path = Path::new("/run/netns").join(name);
    let f = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: plain syscall on a file descriptor we own; affects this thread only.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        bail!("setns into {name}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn bind(port: u16) -> Result<TcpListener> {
    let l = TcpListener::bind(("127.0.0.1", port)).context("binding the mock API server")?;
    l.set_nonblocking(true)?;
    Ok(l)
}

impl ApiServer {
    /// Listens on 127.0.0.1 (an ephemeral port) inside network namespace `netns`.
    pub fn start_in(netns: Option<&str>) -> Result<ApiServer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            refuse: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let netns_name = netns.map(str::to_string);
        let sh = shared.clone();
        let accept = std::thread::spawn(move || {
            let setup = netns_name
                .as_deref()
                .map_or(Ok(()), enter_netns)
                .and_then(|()| bind(0));
            let listener = match setup {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let addr = listener.local_addr().expect("bound socket has an address");
            let _ = tx.send(Ok(addr));
            accept_loop(listener, addr.port(), sh);
        });
        let addr = rx.recv().context("the mock API server thread died")??;
        let dir = tempfile::tempdir()?;
        let server = ApiServer {
            addr,
            shared,
            accept: Some(accept),
            dir,
        };
        std::fs::write(server.kubeconfig(), server.kubeconfig_text())?;
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for `--kubeconfig`: plain HTTP, no credentials.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn kubeconfig_text(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster: {{server: \"http://{}\"}}\n\
             users:\n- name: mock\n  user: {{}}\ncontexts:\n- name: mock\n  context: {{cluster: mock, user: mock}}\n\
             current-context: mock\n",
            self.addr
        )
    }

    /// The current resourceVersion (of the last change).
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Creates or replaces objects without recording watch events, as if they had been there
    /// since before anyone watched (for loading a cluster before the agent starts); the history
    /// is compacted, so a watch from before the load relists.
    pub fn load<T: serde::Serialize>(&self, objs: impl IntoIterator<Item = T>) -> Result<()> {
        let mut st = self.shared.lock();
        for obj in objs {
            let (res, key, mut v) = identify(serde_json::to_value(obj)?)?;
            st.rv += 1;
            let rv = st.rv;
            stamp(&mut v, rv);
            let c = &mut st.collections[res.slot()];
            c.objects.insert(key, Arc::from(v.to_string()));
        }
        // Watches from before the load would miss these objects: like a compaction.
        let rv = st.rv;
        for c in &mut st.collections {
            c.history.clear();
            c.oldest = rv;
        }
        Ok(())
    }

    /// Creates or replaces an object (ADDED or MODIFIED to open watches); its resourceVersion.
    pub fn apply<T: serde::Serialize>(&self, obj: &T) -> Result<u64> {
        let (res, key, mut v) = identify(serde_json::to_value(obj)?)?;
        let mut st = self.shared.lock();
        st.rv += 1;
        let rv = st.rv;
        stamp(&mut v, rv);
        let text: Arc<str> = Arc::from(v.to_string());
        let c = &mut st.collections[res.slot()];
        let kind = if c.objects.insert(key, text.clone()).is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        c.history.push_back(Event {
            rv,
            line: event_line(kind, &text),
        });
        drop(st);
        self.shared.changed.notify_all();
        Ok(rv)
    }

    /// Deletes an object (DELETED to open watches); its resourceVersion, None if absent.
    pub fn delete(&self, res: Resource, namespace: &str, name: &str) -> Option<u64> {
        let mut st = self.shared.lock();
        let key = (namespace.to_string(), name.to_string());
        if !st.collections[res.slot()].objects.contains_key(&key) {
            return None;
        }
        st.rv += 1;
        let rv = st.rv;
        let c = &mut st.collections[res.slot()];
        let old = c.objects.remove(&key).expect("checked above");
        // The deleted object's last state, with the deletion's resourceVersion.
        let mut v: Value = serde_json::from_str(&old).expect("stored objects are JSON");
        stamp(&mut v, rv);
        c.history.push_back(Event {
            rv,
            line: event_line("DELETED", &v.to_string()),
        });
        drop(st);
        self.shared.changed.notify_all();
        Some(rv)
    }

    /// The stored object, as served.
    pub fn get(&self, res: Resource, namespace: &str, name: &str) -> Option<Value> {
        let st = self.shared.lock();
        let key = (namespace.to_string(), name.to_string());
        st.collections[res.slot()]
            .objects
            .get(&key)
            .map(|t| serde_json::from_str(t).expect("stored objects are JSON"))
    }

    /// Forgets every event so far: a watch resuming from an earlier resourceVersion gets 410.
    pub fn compact(&self) {
        let mut st = self.shared.lock();
        let rv = st.rv;
        for c in &mut st.collections {
            c.history.clear();
            c.oldest = rv;
        }
    }

    /// Cuts every open watch connection (the clients reconnect and resume).
    pub fn break_watches(&self) {
        self.shared.lock().epoch += 1;
        self.shared.changed.notify_all();
    }

    /// While true, the listening socket is closed: new connections are refused. Open
    /// connections are not touched (combine with [`ApiServer::break_watches`]).
    pub fn refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    /// When the event with resourceVersion `rv` was first written to a watch connection.
    pub fn written_at(&self, rv: u64) -> Option<Instant> {
        self.shared.lock().written.get(&rv).copied()
    }

    /// How many list (`watch == false`) or watch requests `resource` has served.
    pub fn requests(&self, res: Resource, watch: bool) -> usize {
        let st = self.shared.lock();
        st.requests
            .get(&(res.path().to_string(), watch))
            .copied()
            .unwrap_or(0)
    }

    /// Open watch connections are counted from the time their first chunk is written.
    pub fn wait_for_watches(&self, n: usize, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let total: usize = Resource::ALL.iter().map(|r| self.requests(*r, true)).sum();
            if total >= n {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("only {total} of {n} watch requests after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.break_watches();
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// The resource, `(namespace, name)` and JSON of an object to store.
fn identify(v: Value) -> Result<(Resource, (String, String), Value)> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    let res = Resource::of_kind(kind).with_context(|| format!("not a served kind: {kind:?}"))?;
    let meta = v.get("metadata").context("object without metadata")?;
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .context("object without metadata.name")?
        .to_string();
    let ns = if res.namespaced() {
        meta.get("namespace")
            .and_then(Value::as_str)
            .with_context(|| format!("{kind} {name} without metadata.namespace"))?
            .to_string()
    } else {
        String::new()
    };
    Ok((res, (ns, name), v))
}

fn stamp(v: &mut Value, rv: u64) {
    let meta = &mut v["metadata"];
    meta["resourceVersion"] = Value::String(rv.to_string());
    if meta.get("uid").is_none() {
        let ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        meta["uid"] = Value::String(format!("uid-{ns}-{name}"));
    }
}

fn event_line(kind: &str, object: &str) -> Arc<str> {
    Arc::from(format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n"))
}

fn accept_loop(listener: TcpListener, port: u16, shared: Arc<Shared>) {
    let mut listener = Some(listener);
    while !shared.stop.load(Ordering::SeqCst) {
        let refusing = shared.refuse.load(Ordering::SeqCst);
        if refusing && listener.is_some() {
            listener = None;
        } else if !refusing && listener.is_none() {
            // The same port again (std sets SO_REUSEADDR), so the kubeconfig stays valid.
            listener = bind(port).ok();
        }
        let Some(l) = listener.as_ref() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        match l.accept() {
            Ok((stream, _)) => {
                let sh = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &sh);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A parsed request line: method, path, query parameters.
struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    // Headers: none matter (no auth, no body on GET); read up to the blank line.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
    }
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Ok(Some(Request {
        method,
        path: path.to_string(),
        query,
    }))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    while let Some(req) = read_request(&mut reader)? {
        if req.method != "GET" {
            respond(
                &mut out,
                405,
                &status(405, "MethodNotAllowed", "only GET is served"),
            )?;
            continue;
        }
        let Some(res) = Resource::of_path(&req.path) else {
            respond(
                &mut out,
                404,
                &status(404, "NotFound", &format!("no such path {}", req.path)),
            )?;
            continue;
        };
        let watch = req.query.get("watch").is_some_and(|w| w == "true" || w == "1");
        *shared
            .lock()
            .requests
            .entry((req.path.clone(), watch))
            .or_default() += 1;
        if watch {
            // A watch ends the connection (timeout, break, or server stop).
            return serve_watch(out, shared, res, &req);
        }
        let (code, body) = list(shared, res, &req);
        respond(&mut out, code, &body)?;
    }
    Ok(())
}

fn respond(out: &mut TcpStream, code: u16, body: &str) -> Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn status(code: u16, reason: &str, message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
    .to_string()
}

/// One page of a list; `(status code, body)`.
fn list(shared: &Shared, res: Resource, req: &Request) -> (u16, String) {
    let limit: Option<usize> = req
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|&l| l > 0);
    let from_cache = req.query.get("resourceVersion").is_some_and(|v| v == "0");
    let mut st = shared.lock();
    let (id, offset) = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let parsed = token
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<usize>().ok()?)));
            match parsed {
                Some((id, off)) if st.snapshots.contains_key(&id) => (id, off),
                _ => {
                    return (
                        410,
                        status(410, "Expired", "the provided continue parameter is too old"),
                    )
                }
            }
        }
        None => {
            let id = st.next_snapshot;
            st.next_snapshot += 1;
            let snap = Snapshot {
                rv: st.rv,
                items: st.collections[res.slot()].objects.values().cloned().collect(),
            };
            st.snapshots.insert(id, snap);
            (id, 0)
        }
    };
    let snap = &st.snapshots[&id];
    let end = match limit {
        Some(l) if !from_cache => (offset + l).min(snap.items.len()),
        _ => snap.items.len(),
    };
    let start = offset.min(end);
    let more = end < snap.items.len();
    let mut body =
        String::with_capacity(snap.items[start..end].iter().map(|i| i.len() + 1).sum::<usize>() + 200);
    body.push_str(&format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{}\"",
        res.kind(),
        res.api_version(),
        snap.rv
    ));
    if more {
        body.push_str(&format!(",\"continue\":\"{id}:{end}\""));
    }
    body.push_str("},\"items\":[");
    for (i, item) in snap.items[start..end].iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push_str("]}");
    if !more {
        st.snapshots.remove(&id);
    }
    (200, body)
}

fn write_chunk(out: &mut TcpStream, data: &str) -> std::io::Result<()> {
    let mut buf = format!("{:x}\r\n", data.len()).into_bytes();
    buf.extend_from_slice(data.as_bytes());
    buf.extend_from_slice(b"\r\n");
    out.write_all(&buf)?;
    out.flush()
}

fn serve_watch(mut out: TcpStream, shared: &Shared, res: Resource, req: &Request) -> Result<()> {
    let timeout = req
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(290), Duration::from_secs);
    let deadline = Instant::now() + timeout;
    let requested: Option<u64> = req
        .query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse().ok());
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )?;
    let mut st = shared.lock();
    let epoch = st.epoch;
    let mut cursor = match requested {
        Some(rv) if rv < st.collections[res.slot()].oldest => {
            drop(st);
            let gone = status(410, "Expired", &format!("too old resource version: {rv}"));
            write_chunk(&mut out, &format!("{{\"type\":\"ERROR\",\"object\":{gone}}}\n"))?;
            write_chunk(&mut out, "")?;
            return Ok(());
        }
        Some(rv) => rv,
        None => {
            // No (or "0") resourceVersion: the current state as ADDED events, then changes.
            let rv = st.rv;
            let lines: Vec<Arc<str>> = st.collections[res.slot()]
                .objects
                .values()
                .map(|o| event_line("ADDED", o))
                .collect();
            drop(st);
            for l in lines {
                write_chunk(&mut out, &l)?;
            }
            st = shared.lock();
            rv
        }
    };
    loop {
        if st.epoch != epoch || shared.stop.load(Ordering::SeqCst) {
            drop(st);
            // Abrupt, as a dying apiserver or a broken network would: no final chunk.
            let _ = out.shutdown(Shutdown::Both);
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            drop(st);
            write_chunk(&mut out, "")?;
            return Ok(());
        }
        let c = &st.collections[res.slot()];
        let first = c.history.partition_point(|e| e.rv <= cursor);
        let pending: Vec<(u64, Arc<str>)> =
            c.history.range(first..).map(|e| (e.rv, e.line.clone())).collect();
        if pending.is_empty() {
            let wait = (deadline - now).min(Duration::from_millis(500));
            st = shared
                .changed
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        drop(st);
        let mut sent = Vec::with_capacity(pending.len());
        for (rv, line) in pending {
            write_chunk(&mut out, &line)?;
            sent.push((rv, Instant::now()));
            cursor = rv;
        }
        st = shared.lock();
        for (rv, at) in sent {
            st.written.entry(rv).or_insert(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%3Db+c"), "a=b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
