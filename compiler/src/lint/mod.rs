//! `policyc lint`: pure checks over the compiled cluster and the raw API objects, each finding
//! with a stable code, a severity and the `file:line:col` of the field it is about.
//!
//! ```text
//!  Objects + Cluster + loader Diagnostics ──checks──► Findings ──suppress/locate/sort──► report
//! ```
//!
//! Checks that need to know the workloads (selectors that match nothing, named ports, DNS) run only
//! when the input contains pods, so linting a directory of policies alone stays quiet about them.
//! Every check is O(policies × pods) at worst.

mod checks;
pub mod registry;
pub mod report;

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::diag::Diagnostic;
use crate::load::Objects;
use crate::model::{Cluster, Source};
use crate::spans::Spans;

pub use registry::{find, Check, CHECKS};

/// The annotation that disables codes on one object: `"code-a,code-b"` or `"all"`.
pub const DISABLE_ANNOTATION: &str = "policyc.dev/lint-disable";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None if self.name.is_empty() => f.write_str(&self.kind),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Where a finding points: a file and a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub object: ObjectRef,
    /// The API field path (`spec.ingress[0].from[1]`); empty for the whole object.
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Where the object itself starts (its `apiVersion` line), to cite beside the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_location: Option<Location>,
    /// The object's document, before the field is located within it.
    #[serde(skip)]
    pub source: Option<Source>,
}

/// Which checks run.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Run every check, opt-in ones included.
    pub all: bool,
    /// Opt-in checks to run.
    pub enable: BTreeSet<String>,
    /// Checks not to run (wins over `enable` and `all`).
    pub disable: BTreeSet<String>,
}

impl Config {
    pub fn enabled(&self, check: &Check) -> bool {
        !self.disable.contains(check.code)
            && (self.all || check.default_enabled || self.enable.contains(check.code))
    }

    /// Codes named in `enable`/`disable` that no check has.
    pub fn unknown_codes(&self) -> Vec<String> {
        self.enable
            .iter()
            .chain(&self.disable)
            .filter(|c| find(c).is_none())
            .cloned()
            .collect()
    }
}

/// Everything a lint run reads.
pub struct Input<'a> {
    pub cluster: &'a Cluster,
    pub objects: &'a Objects,
    /// The loader's validation diagnostics, reported as `invalid-field` unless a more specific
    /// check already reported the same field.
    pub diagnostics: &'a [Diagnostic],
    /// Field positions, when the input came from files.
    pub spans: Option<&'a Spans>,
}

/// Runs the enabled checks and returns the findings, suppressed, located and sorted.
pub fn lint(input: &Input<'_>, config: &Config) -> Vec<Finding> {
    let mut findings = checks::run(input);
    findings.extend(invalid_fields(input, &findings));
    let index = suppressions(input.objects);
    findings.retain(|f| find(f.code).is_some_and(|c| config.enabled(c)) && !suppressed(&index, f));
    for f in &mut findings {
        f.severity = find(f.code).map(|c| c.severity).unwrap_or(f.severity);
        f.location = locate(input.spans, f, &f.field);
        f.object_location = locate(input.spans, f, "");
    }
    findings.sort_by(|a, b| {
        (&a.location, &a.object, &a.field, a.code, &a.message).cmp(&(
            &b.location,
            &b.object,
            &b.field,
            b.code,
            &b.message,
        ))
    });
    findings.dedup();
    findings
}

/// The loader's diagnostics that no specific check has explained already.
fn invalid_fields(input: &Input<'_>, specific: &[Finding]) -> Vec<Finding> {
    let covered: BTreeSet<(String, &str)> = specific
        .iter()
        .map(|f| (f.object.to_string(), f.field.as_str()))
        .collect();
    input
        .diagnostics
        .iter()
        .filter(|d| !covered.contains(&(d.object.clone(), d.field.as_str())))
        .map(|d| Finding {
            code: "invalid-field",
            severity: Severity::Error,
            object: parse_object(&d.object),
            field: d.field.clone(),
            message: d.message.clone(),
            location: None,
            object_location: None,
            source: d.source.clone(),
        })
        .collect()
}

/// `Kind ns/name`, `Kind name` or `document` back into parts.
fn parse_object(s: &str) -> ObjectRef {
    match s.split_once(' ') {
        None => ObjectRef::new(s, None, ""),
        Some((kind, rest)) => match rest.split_once('/') {
            Some((ns, name)) => ObjectRef::new(kind, Some(ns), name),
            None => ObjectRef::new(kind, None, rest),
        },
    }
}

/// Codes disabled by annotation, per object (`Kind`, namespace, name); built once per run.
type Suppressions = std::collections::HashMap<(&'static str, String, String), BTreeSet<String>>;

fn suppressions(objects: &Objects) -> Suppressions {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let mut out = Suppressions::new();
    let mut add = |kind: &'static str, meta: &ObjectMeta, namespaced: bool| {
        let Some(value) = meta.annotations.as_ref().and_then(|a| a.get(DISABLE_ANNOTATION)) else {
            return;
        };
        let ns = if namespaced {
            meta.namespace.clone().unwrap_or_else(|| "default".into())
        } else {
            String::new()
        };
        let codes = value
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        out.entry((kind, ns, meta.name.clone().unwrap_or_default()))
            .or_default()
            .extend(codes);
    };
    for (p, _) in &objects.policies {
        add("NetworkPolicy", &p.metadata, true);
    }
    for (p, _) in &objects.pods {
        add("Pod", &p.metadata, true);
    }
    for (n, _) in &objects.namespaces {
        add("Namespace", &n.metadata, false);
    }
    out
}

fn suppressed(index: &Suppressions, f: &Finding) -> bool {
    let kind: &'static str = match f.object.kind.as_str() {
        "NetworkPolicy" => "NetworkPolicy",
        "Pod" => "Pod",
        "Namespace" => "Namespace",
        _ => return false,
    };
    let ns = match kind {
        "Namespace" => String::new(),
        _ => f.object.namespace.clone().unwrap_or_else(|| "default".into()),
    };
    index
        .get(&(kind, ns, f.object.name.clone()))
        .is_some_and(|codes| codes.contains(f.code) || codes.contains("all"))
}

fn locate(spans: Option<&Spans>, f: &Finding, field: &str) -> Option<Location> {
    // Objects read from a live cluster have no file (an empty name): nothing to point at.
    let source = f.source.as_ref().filter(|s| !s.file.is_empty())?;
    let pos = spans.and_then(|s| {
        s.locate(
            &source.file,
            &f.object.kind,
            // Objects written without a namespace are recorded without one.
            f.object.namespace.as_deref(),
            &f.object.name,
            field,
            Some(source.line),
        )
        .or_else(|| {
            s.locate(
                &source.file,
                &f.object.kind,
                None,
                &f.object.name,
                &f.field,
                Some(source.line),
            )
        })
    });
    Some(match pos {
        Some(p) => Location {
            file: source.file.clone(),
            line: p.line,
            col: p.col,
        },
        None => Location {
            file: source.file.clone(),
            line: source.line,
            col: 1,
        },
    })
}
