//! Text (YAML or JSON, multi-document, `kind: List`) into a [`Cluster`]. Pure: the caller reads
//! the files and hands over their contents, so the CLI and the agent's `--manifests` mode share it.

use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::api::networking::v1 as netv1;
use serde::de::DeserializeOwned;

use crate::convert::{namespace_from_k8s, node_from_k8s, pod_from_k8s};
use crate::diag::Diagnostic;
use crate::model::{Cluster, Source};
use crate::policy::Policy;

/// One API object as read, with where it came from.
#[derive(Clone, Debug)]
pub struct Document {
    pub source: Source,
    pub value: serde_json::Value,
}

/// The objects of the kinds policyc uses, still as API types (lint reads fields the model drops).
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub namespaces: Vec<(corev1::Namespace, Source)>,
    pub pods: Vec<(corev1::Pod, Source)>,
    pub policies: Vec<(netv1::NetworkPolicy, Source)>,
    pub nodes: Vec<(corev1::Node, Source)>,
}

/// Splits a file into documents at `---` lines (a document marker at column 0 cannot occur inside a
/// YAML block scalar, which is indented), parses each one, and flattens `kind: List`.
pub fn parse_documents(text: &str, file: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    let mut docs = Vec::new();
    let mut diags = Vec::new();
    // A byte order mark (Windows editors write one) may start a YAML stream; serde_yaml
    // misreads it as a second document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut chunks: Vec<(usize, String)> = vec![(1, String::new())];
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line == "...";
        if is_marker {
            chunks.push((i + 2, String::new()));
        } else {
            let chunk = &mut chunks.last_mut().expect("never empty").1;
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    for (line, chunk) in chunks {
        if chunk.trim().is_empty() {
            continue;
        }
        // The document's line is that of its first non-blank, non-comment line.
        let first = chunk
            .lines()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .unwrap_or(0);
        let source = Source {
            file: file.to_string(),
            line: line + first,
        };
        match serde_yaml::from_str::<serde_json::Value>(&chunk) {
            Ok(serde_json::Value::Null) => {}
            Ok(value) => {
                let lines = item_lines(&chunk, line);
                flatten(value, source, &lines, &mut docs, &mut diags)
            }
            Err(e) => diags.push(
                Diagnostic::new("document", "", format!("not valid YAML or JSON: {e}")).at(Some(&source)),
            ),
        }
    }
    (docs, diags)
}

/// The line of each entry of a top-level block-style `items:` list (`chunk` starts at line
/// `first_line`), so that objects read from a `kind: List` point at their own line. Empty when the
/// list is not in block style (JSON, flow style); the caller then keeps the document's line.
fn item_lines(chunk: &str, first_line: usize) -> Vec<usize> {
    let mut lines = chunk.lines().enumerate();
    if !lines.any(|(_, l)| l.trim_end() == "items:") {
        return Vec::new();
    }
    let mut indent = None;
    let mut out = Vec::new();
    for (i, l) in lines {
        let body = l.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let depth = l.len() - body.len();
        let is_item = body == "-" || body.starts_with("- ");
        if depth == 0 && !is_item {
            break; // the next top-level key
        }
        if is_item && *indent.get_or_insert(depth) == depth {
            out.push(first_line + i);
        }
    }
    out
}

fn flatten(
    value: serde_json::Value,
    source: Source,
    item_lines: &[usize],
    docs: &mut Vec<Document>,
    diags: &mut Vec<Diagnostic>,
) {
    // kubectl refuses these; ignoring them would silently drop, say, a bare YAML sequence of
    // NetworkPolicies, and every verdict would then be computed without them.
    let found = match &value {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("a sequence"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
    };
    if let Some(found) = found {
        let message =
            format!("not an API object: expected a mapping with apiVersion and kind, found {found}");
        diags.push(Diagnostic::new("document", "", message).at(Some(&source)));
        return;
    }
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
    if kind == "List" || kind.ends_with("List") && value.get("items").is_some() {
        match value.get("items") {
            Some(serde_json::Value::Array(items)) => {
                // A typed list (`PodList`, as the API returns it) leaves kind and apiVersion out of
                // its items; they are the list's.
                let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
                let api = value.get("apiVersion").cloned();
                let lines_known = item_lines.len() == items.len();
                for (n, item) in items.iter().enumerate() {
                    let mut item = item.clone();
                    let mut source = source.clone();
                    if lines_known {
                        source.line = item_lines[n];
                    }
                    if let (Some(k), Some(obj)) = (item_kind, item.as_object_mut()) {
                        obj.entry("kind").or_insert_with(|| k.into());
                        if let Some(api) = &api {
                            obj.entry("apiVersion").or_insert_with(|| api.clone());
                        }
                    }
                    flatten(item, source, &[], docs, diags);
                }
            }
            _ => diags.push(Diagnostic::new(kind.to_string(), "items", "must be a list").at(Some(&source))),
        }
        return;
    }
    docs.push(Document { source, value });
}

fn typed<T: DeserializeOwned>(doc: &Document, kind: &str, diags: &mut Vec<Diagnostic>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(&doc.value) {
        Ok(v) => Some(v),
        Err(e) => {
            let meta = doc.value.get("metadata");
            let name = meta
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or("?");
            // Named as the converters name valid objects: namespaced kinds default to `default`.
            let namespaced = !matches!(kind, "Namespace" | "Node");
            let object = match meta.and_then(|m| m.get("namespace")).and_then(|n| n.as_str()) {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None if namespaced => format!("{kind} default/{name}"),
                None => format!("{kind} {name}"),
            };
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            diags.push(Diagnostic::new(object, field, e.into_inner().to_string()).at(Some(&doc.source)));
            None
        }
    }
}

/// Sorts documents into the kinds policyc uses; every other kind is ignored.
pub fn classify(docs: &[Document]) -> (Objects, Vec<Diagnostic>) {
    let mut objects = Objects::default();
    let mut diags = Vec::new();
    for doc in docs {
        let kind = doc.value.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let api = doc
            .value
            .get("apiVersion")
            .and_then(|k| k.as_str())
            .unwrap_or_default();
        let src = doc.source.clone();
        match (kind, api) {
            ("Namespace", "v1") => {
                if let Some(o) = typed(doc, kind, &mut diags) {
                    objects.namespaces.push((o, src));
                }
            }
            ("Pod", "v1") => {
                if let Some(o) = typed(doc, kind, &mut diags) {
                    objects.pods.push((o, src));
                }
            }
            ("Node", "v1") => {
                if let Some(o) = typed(doc, kind, &mut diags) {
                    objects.nodes.push((o, src));
                }
            }
            ("NetworkPolicy", "networking.k8s.io/v1") => {
                if let Some(o) = typed(doc, kind, &mut diags) {
                    objects.policies.push((o, src));
                }
            }
            _ => {}
        }
    }
    (objects, diags)
}

/// Compiles API objects into a cluster snapshot. Invalid fields are reported and fail closed.
pub fn build_cluster(objects: &Objects) -> (Cluster, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let namespaces = objects.namespaces.iter().map(|(ns, _)| namespace_from_k8s(ns));
    let pods: Vec<_> = objects
        .pods
        .iter()
        .map(|(p, src)| {
            let (pod, d) = pod_from_k8s(p, Some(src));
            diags.extend(d);
            pod
        })
        .collect();
    let policies: Vec<_> = objects
        .policies
        .iter()
        .map(|(p, src)| {
            let (policy, d) = Policy::from_k8s(p, Some(src));
            diags.extend(d);
            policy
        })
        .collect();
    let nodes: Vec<_> = objects
        .nodes
        .iter()
        .map(|(n, src)| {
            let (node, d) = node_from_k8s(n, Some(src));
            diags.extend(d);
            node
        })
        .collect();
    (Cluster::new(namespaces, pods, policies, nodes), diags)
}

/// The whole path from file contents to a snapshot: `(file name, contents)` pairs in, cluster and
/// every diagnostic out.
pub fn load_texts<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (Cluster, Objects, Vec<Diagnostic>) {
    let mut docs = Vec::new();
    let mut diags = Vec::new();
    for (name, text) in files {
        let (d, e) = parse_documents(text, name);
        docs.extend(d);
        diags.extend(e);
    }
    let (objects, e) = classify(&docs);
    diags.extend(e);
    let (cluster, e) = build_cluster(&objects);
    diags.extend(e);
    // In file and line order (stable, so one object's problems keep their field order).
    diags.sort_by(|a, b| a.source.cmp(&b.source));
    (cluster, objects, diags)
}
