//! Line and column of every field of every object in a YAML/JSON file, so that findings can point
//! at `spec.ingress[1].from[0]` rather than at the top of the document. The loader keeps only the
//! document's line; this re-reads the text with a position-aware YAML parser (JSON is YAML too).
//!
//! Objects are identified by file, kind, namespace and name (items of a `kind: List` included), so
//! lookups do not depend on how the loader split documents.

use std::collections::{BTreeMap, HashMap};

use saphyr_parser::{Event, Parser, Span};

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

/// One step of a field path: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug)]
struct ObjectSpans {
    kind: String,
    namespace: Option<String>,
    name: String,
    start: Position,
    fields: HashMap<Vec<Seg>, Position>,
}

/// Field positions of every object of every file added.
#[derive(Clone, Debug, Default)]
pub struct Spans {
    files: BTreeMap<String, Vec<ObjectSpans>>,
}

/// A parsed YAML node, just enough to walk paths and read `kind`/`metadata`.
enum Node {
    Scalar(String, Position),
    Seq(Vec<Node>, Position),
    Map(Vec<(String, Position, Node)>, Position),
}

impl Node {
    fn pos(&self) -> Position {
        match self {
            Node::Scalar(_, p) | Node::Seq(_, p) | Node::Map(_, p) => *p,
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries, _) => entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s, _) => Some(s),
            _ => None,
        }
    }
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

impl Spans {
    pub fn new() -> Spans {
        Spans::default()
    }

    /// Reads one file. Text the parser cannot read contributes what it parsed before the error;
    /// the loader reports the error itself.
    pub fn add_file(&mut self, file: &str, text: &str) {
        let mut events = Parser::new_from_str(text).map_while(Result::ok).peekable();
        let mut objects = Vec::new();
        while let Some((event, _)) = events.next() {
            if let Event::DocumentStart(_) = event {
                if let Some(root) = build(&mut events) {
                    collect_objects(root, &mut objects);
                }
            }
        }
        self.files.insert(file.to_string(), objects);
    }

    /// The position of `field` (`spec.ingress[0].from[1]`, `spec.podSelector.matchLabels[app]`) in
    /// the object, or of its nearest ancestor that exists; `near_line` picks among same-named
    /// objects of one file (the first that starts at or after it).
    pub fn locate(
        &self,
        file: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        field: &str,
        near_line: Option<usize>,
    ) -> Option<Position> {
        let candidates: Vec<&ObjectSpans> = self
            .files
            .get(file)?
            .iter()
            .filter(|o| o.kind == kind && o.name == name && o.namespace.as_deref() == namespace)
            .collect();
        let object = near_line
            .and_then(|l| candidates.iter().find(|o| o.start.line >= l))
            .or_else(|| candidates.first())?;
        let mut path = parse_path(field);
        loop {
            if path.is_empty() {
                return Some(object.start);
            }
            if let Some(p) = object.fields.get(&path) {
                return Some(*p);
            }
            path.pop();
        }
    }
}

/// Builds the node that starts at the next event.
fn build<'a, I>(events: &mut std::iter::Peekable<I>) -> Option<Node>
where
    I: Iterator<Item = (Event<'a>, Span)>,
{
    let (event, span) = events.next()?;
    let pos = position(&span);
    match event {
        Event::Scalar(value, ..) => Some(Node::Scalar(value.into_owned(), pos)),
        Event::Alias(_) => Some(Node::Scalar(String::new(), pos)),
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                match events.peek() {
                    None => return Some(Node::Seq(items, pos)),
                    Some((Event::SequenceEnd, _)) => {
                        events.next();
                        return Some(Node::Seq(items, pos));
                    }
                    Some(_) => items.push(build(events)?),
                }
            }
        }
        Event::MappingStart(..) => {
            let mut entries = Vec::new();
            loop {
                match events.peek() {
                    None => return Some(Node::Map(entries, pos)),
                    Some((Event::MappingEnd, _)) => {
                        events.next();
                        return Some(Node::Map(entries, pos));
                    }
                    Some(_) => {
                        let key = build(events)?;
                        let value = build(events)?;
                        let key_pos = key.pos();
                        let key = match key {
                            Node::Scalar(s, _) => s,
                            _ => String::new(),
                        };
                        entries.push((key, key_pos, value));
                    }
                }
            }
        }
        _ => None,
    }
}

fn collect_objects(root: Node, out: &mut Vec<ObjectSpans>) {
    let kind = root
        .get("kind")
        .and_then(Node::str)
        .unwrap_or_default()
        .to_string();
    if kind.ends_with("List") {
        if let Some(Node::Seq(items, _)) = root.get("items") {
            for item in items {
                collect_object(item, out);
            }
        }
        return;
    }
    collect_object(&root, out);
}

fn collect_object(node: &Node, out: &mut Vec<ObjectSpans>) {
    let meta = node.get("metadata");
    let mut fields = HashMap::new();
    walk(node, &mut Vec::new(), &mut fields);
    out.push(ObjectSpans {
        kind: node
            .get("kind")
            .and_then(Node::str)
            .unwrap_or_default()
            .to_string(),
        namespace: meta
            .and_then(|m| m.get("namespace"))
            .and_then(Node::str)
            .map(str::to_string),
        name: meta
            .and_then(|m| m.get("name"))
            .and_then(Node::str)
            .unwrap_or_default()
            .to_string(),
        start: node.pos(),
        fields,
    });
}

fn walk(node: &Node, path: &mut Vec<Seg>, out: &mut HashMap<Vec<Seg>, Position>) {
    match node {
        Node::Scalar(..) => {}
        Node::Seq(items, _) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                out.insert(path.clone(), item.pos());
                walk(item, path, out);
                path.pop();
            }
        }
        Node::Map(entries, _) => {
            for (key, key_pos, value) in entries {
                path.push(Seg::Key(key.clone()));
                // A field is where its key is written; that is the line a reader looks for.
                out.insert(path.clone(), *key_pos);
                walk(value, path, out);
                path.pop();
            }
        }
    }
}

/// `a.b[0].c[key]` into segments; a bracketed non-number is a key (label keys contain dots).
fn parse_path(field: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    out.push(Seg::Key(std::mem::take(&mut cur)));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    out.push(Seg::Key(std::mem::take(&mut cur)));
                }
                let inner: String = chars.by_ref().take_while(|&c| c != ']').collect();
                out.push(match inner.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key(inner),
                });
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(Seg::Key(cur));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
  namespace: x
spec:
  podSelector:
    matchLabels: {app.kubernetes.io/name: web}
  ingress:
  - from:
    - podSelector: {}
    - ipBlock:
        cidr: 10.0.0.1/8
---
kind: List
apiVersion: v1
items:
- kind: Pod
  apiVersion: v1
  metadata: {name: a, namespace: x}
";

    fn spans() -> Spans {
        let mut s = Spans::new();
        s.add_file("f.yaml", TEXT);
        s
    }

    #[test]
    fn locates_fields_and_ancestors() {
        let s = spans();
        let at = |f: &str| {
            s.locate("f.yaml", "NetworkPolicy", Some("x"), "p", f, None)
                .map(|p| (p.line, p.col))
        };
        assert_eq!(at(""), Some((2, 1)));
        assert_eq!(at("spec.ingress[0]"), Some((11, 5)));
        assert_eq!(at("spec.ingress[0].from[1].ipBlock.cidr"), Some((14, 9)));
        assert_eq!(at("spec.ingress[0].from[1].ipBlock.except[0]"), Some((13, 7)));
        assert_eq!(
            at("spec.podSelector.matchLabels[app.kubernetes.io/name]"),
            Some((9, 19))
        );
        assert_eq!(at("spec.egress[3]"), Some((7, 1)));
    }

    #[test]
    fn reads_json_too() {
        let mut s = Spans::new();
        s.add_file(
            "p.json",
            "{\n  \"kind\": \"NetworkPolicy\",\n  \"metadata\": {\"name\": \"j\", \"namespace\": \"x\"},\n  \"spec\": {\"ingress\": [\n    {\"from\": []}]}\n}\n",
        );
        let at = s.locate(
            "p.json",
            "NetworkPolicy",
            Some("x"),
            "j",
            "spec.ingress[0].from",
            None,
        );
        assert_eq!(at.map(|p| (p.line, p.col)), Some((5, 6)));
    }

    #[test]
    fn finds_list_items_and_ignores_broken_text() {
        let s = spans();
        let pod = s.locate("f.yaml", "Pod", Some("x"), "a", "metadata.name", None);
        assert_eq!(pod.map(|p| p.line), Some(21));
        let mut broken = Spans::new();
        broken.add_file("b.yaml", "kind: [unclosed\n");
        assert_eq!(broken.locate("b.yaml", "Pod", None, "a", "", None), None);
    }
}
