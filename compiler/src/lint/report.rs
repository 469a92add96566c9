//! Lint findings as text, JSON, SARIF 2.1.0 and GitHub Actions workflow commands.

use serde::Serialize;
use serde_json::{json, Value};

use super::{Finding, Severity, CHECKS};

/// Counts per severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Summary {
        let mut s = Summary::default();
        for f in findings {
            match f.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
                Severity::Info => s.infos += 1,
            }
        }
        s
    }
}

/// `file:line:col: severity[code]: Kind ns/name: field: message`, one line per finding, then a
/// summary. `paint` styles the `severity[code]` part (the CLI colours it on a terminal).
pub fn text(findings: &[Finding], paint: &dyn Fn(Severity, &str) -> String) -> String {
    let mut out = String::new();
    for f in findings {
        let at = match &f.location {
            Some(l) => l.to_string(),
            None => "<cluster>".to_string(),
        };
        let tag = paint(f.severity, &format!("{}[{}]", f.severity, f.code));
        let field = if f.field.is_empty() {
            String::new()
        } else {
            format!(" {}", f.field)
        };
        out.push_str(&format!(
            "{at}: {tag}: {}{}{field}: {}\n",
            f.object,
            object_line(f),
            f.message
        ));
    }
    let s = Summary::of(findings);
    if findings.is_empty() {
        out.push_str("no findings\n");
    } else {
        out.push_str(&format!(
            "{} error(s), {} warning(s), {} info\n",
            s.errors, s.warnings, s.infos
        ));
    }
    out
}

/// ` (line 12)`: where the object starts, when the finding is about a field further down.
fn object_line(f: &Finding) -> String {
    match (&f.location, &f.object_location) {
        (Some(at), Some(obj)) if at.file == obj.file && at.line != obj.line => {
            format!(" (line {})", obj.line)
        }
        _ => String::new(),
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    findings: &'a [Finding],
    summary: Summary,
}

pub fn json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(&JsonReport {
        findings,
        summary: Summary::of(findings),
    })
    .expect("findings serialize")
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A file name as a SARIF artifact URI: relative paths stay relative (GitHub resolves them against
/// the repository root), absolute ones become `file://` URIs.
fn uri(file: &str) -> String {
    let escaped: String = file
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '%' => "%25".to_string(),
            '#' => "%23".to_string(),
            '?' => "%3F".to_string(),
            c => c.to_string(),
        })
        .collect();
    if escaped.starts_with('/') {
        format!("file://{escaped}")
    } else {
        escaped
    }
}

/// A SARIF 2.1.0 log with one run, one `rules[]` entry per check code (in registry order).
pub fn sarif(findings: &[Finding], tool_version: &str) -> String {
    let rules: Vec<Value> = CHECKS
        .iter()
        .map(|c| {
            json!({
                "id": c.code,
                "name": c.code,
                "shortDescription": {"text": c.description},
                "fullDescription": {"text": c.explanation},
                "help": {"text": c.explanation},
                "defaultConfiguration": {"level": level(c.severity), "enabled": c.default_enabled},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut result = json!({
                "ruleId": f.code,
                "ruleIndex": CHECKS.iter().position(|c| c.code == f.code),
                "level": level(f.severity),
                "message": {"text": format!("{}: {}", f.object, f.message)},
            });
            let logical = json!([{
                "fullyQualifiedName": if f.field.is_empty() {
                    f.object.to_string()
                } else {
                    format!("{} {}", f.object, f.field)
                },
                "kind": "object",
            }]);
            let location = match &f.location {
                Some(l) => json!({
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&l.file)},
                        "region": {"startLine": l.line, "startColumn": l.col},
                    },
                    "logicalLocations": logical,
                }),
                None => json!({"logicalLocations": logical}),
            };
            result["locations"] = json!([location]);
            if let Some(o) = &f.object_location {
                result["relatedLocations"] = json!([{
                    "id": 1,
                    "message": {"text": f.object.to_string()},
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&o.file)},
                        "region": {"startLine": o.line, "startColumn": o.col},
                    },
                }]);
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "policyc",
                "version": tool_version,
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).expect("SARIF serializes")
}

/// Escapes workflow-command data (`%`, CR, LF) and, for properties, also `:` and `,`.
fn escape(s: &str, property: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' if property => out.push_str("%3A"),
            ',' if property => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

/// GitHub Actions workflow commands (`::error file=...,line=...,col=...,title=code::message`),
/// which the runner turns into annotations on the pull request.
pub fn github(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let command = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut props = Vec::new();
        if let Some(l) = &f.location {
            props.push(format!("file={}", escape(&l.file, true)));
            props.push(format!("line={}", l.line));
            props.push(format!("col={}", l.col));
        }
        props.push(format!("title={}", escape(f.code, true)));
        let field = if f.field.is_empty() {
            String::new()
        } else {
            format!(" {}", f.field)
        };
        out.push_str(&format!(
            "::{command} {}::{}\n",
            props.join(","),
            escape(
                &format!("{}{}{field}: {}", f.object, object_line(f), f.message),
                false
            )
        ));
    }
    out
}
