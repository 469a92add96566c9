//! Diagnostics for input the API server would reject: which file, object and field, and why.

use std::fmt;

use serde::Serialize;

use crate::model::Source;

/// One problem with one field of one object. `Display` is the line a user reads:
/// `policies.yaml:12: NetworkPolicy prod/web: spec.ingress[0].from[1].ipBlock.cidr: invalid CIDR "10.0.0/8"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    /// Where the object was read from, when it came from a file.
    pub source: Option<Source>,
    /// `Kind namespace/name` (or `Kind name` for cluster-scoped objects, or the document for parse errors).
    pub object: String,
    /// The field path, in the API's own spelling (`spec.ingress[0].ports[1].endPort`); empty for the whole object.
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn new(object: impl Into<String>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            source: None,
            object: object.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn at(mut self, source: Option<&Source>) -> Self {
        if self.source.is_none() {
            self.source = source.cloned();
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.source {
            write!(f, "{source}: ")?;
        }
        f.write_str(&self.object)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects diagnostics while a converter walks an object, prefixing the object name.
pub(crate) struct Diags<'a> {
    pub object: &'a str,
    pub out: Vec<Diagnostic>,
}

impl<'a> Diags<'a> {
    pub fn new(object: &'a str) -> Self {
        Diags {
            object,
            out: Vec::new(),
        }
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.out.push(Diagnostic::new(self.object, field, message));
    }
}
