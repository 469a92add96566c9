//! Label selectors: `matchLabels` and `matchExpressions`, compiled into one canonical list of
//! requirements so that equal selectors compare (and hash, and name nft sets) equal.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

use crate::model::Labels;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: BTreeSet<String>,
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            // NotIn and DoesNotExist hold for objects that lack the key, as the API documents.
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A compiled selector: its requirements are ANDed; none means "everything".
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

impl Selector {
    /// The empty selector, which matches every object.
    pub fn everything() -> Selector {
        Selector::default()
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Compiles an API selector, validating it as the API server does. `field` is the selector's
    /// path, used in the returned error messages `(field, message)`.
    pub fn compile(selector: &LabelSelector, field: &str) -> Result<Selector, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            if let Err(e) = validate_key(key) {
                errors.push((
                    format!("{field}.matchLabels"),
                    format!("invalid label key {key:?}: {e}"),
                ));
            }
            if let Err(e) = validate_value(value) {
                errors.push((
                    format!("{field}.matchLabels[{key}]"),
                    format!("invalid label value {value:?}: {e}"),
                ));
            }
            requirements.push(Requirement {
                key: key.clone(),
                operator: Operator::In,
                values: BTreeSet::from([value.clone()]),
            });
        }
        for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
            let at = format!("{field}.matchExpressions[{i}]");
            if let Err(e) = validate_key(&expr.key) {
                errors.push((
                    format!("{at}.key"),
                    format!("invalid label key {:?}: {e}", expr.key),
                ));
            }
            let values: BTreeSet<String> = expr.values.iter().flatten().cloned().collect();
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    errors.push((
                        format!("{at}.operator"),
                        format!("unknown operator {other:?} (expected In, NotIn, Exists or DoesNotExist)"),
                    ));
                    continue;
                }
            };
            match operator {
                Operator::In | Operator::NotIn if values.is_empty() => errors.push((
                    format!("{at}.values"),
                    format!("operator {} needs at least one value", expr.operator),
                )),
                Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errors.push((
                    format!("{at}.values"),
                    format!("operator {} takes no values", expr.operator),
                )),
                _ => {}
            }
            for v in &values {
                if let Err(e) = validate_value(v) {
                    errors.push((format!("{at}.values"), format!("invalid label value {v:?}: {e}")));
                }
            }
            requirements.push(Requirement {
                key: expr.key.clone(),
                operator,
                values,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        requirements.sort();
        requirements.dedup();
        Ok(Selector { requirements })
    }
}

impl fmt::Display for Selector {
    /// kubectl's selector syntax: `app=web,tier in (a,b),!legacy`; `{}` for the empty selector.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requirements.is_empty() {
            return f.write_str("{}");
        }
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let values = r.values.iter().cloned().collect::<Vec<_>>().join(",");
            match r.operator {
                Operator::In if r.values.len() == 1 => write!(f, "{}={}", r.key, values)?,
                Operator::In => write!(f, "{} in ({})", r.key, values)?,
                Operator::NotIn if r.values.len() == 1 => write!(f, "{}!={}", r.key, values)?,
                Operator::NotIn => write!(f, "{} notin ({})", r.key, values)?,
                Operator::Exists => f.write_str(&r.key)?,
                Operator::DoesNotExist => write!(f, "!{}", r.key)?,
            }
        }
        Ok(())
    }
}

/// A qualified name with an optional DNS-subdomain prefix, as label keys are.
fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !ok {
            return Err("the prefix must be a DNS subdomain".into());
        }
    }
    if name.is_empty() {
        return Err("the name part must not be empty".into());
    }
    validate_value(name)
}

/// A label value: at most 63 characters, alphanumeric at both ends, `-_.` inside.
fn validate_value(v: &str) -> Result<(), String> {
    if v.len() > 63 {
        return Err("must be at most 63 characters".into());
    }
    let ok = v.is_empty()
        || (v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("must be alphanumeric at both ends, with only '-', '_' or '.' inside".into())
    }
}
