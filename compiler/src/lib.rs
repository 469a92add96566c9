//! policyc's compiler: the NetworkPolicy v1 semantics and their translation to nftables.
//! Pure and synchronous: text or API objects in, verdicts and rulesets out; no I/O, no clock.
//!
//! ```text
//!  YAML/JSON text ──load──► API objects ──convert/policy──► Cluster (model + policy IR)
//!                                                              │
//!                        ┌─────────────────────────────────────┼──────────────────────┐
//!                        ▼                                     ▼                      ▼
//!                 eval::Engine (oracle)                 explain / matrix        nft (ruleset per node)
//!                 trace verdicts + reasons               views of the oracle      checked against the oracle
//! ```
//!
//! Diagnostics ([`diag::Diagnostic`]) name the file, object and field of anything the API server
//! would reject; such input fails closed (an invalid rule admits nothing) and never panics.

pub mod convert;
pub mod diag;
pub mod eval;
pub mod explain;
pub mod lint;
pub mod load;
pub mod matrix;
pub mod model;
pub mod nft;
pub mod policy;
pub mod selector;
pub mod spans;

pub use diag::Diagnostic;
pub use eval::{Endpoint, Engine, Reason, Side, Verdict};
pub use model::{Cluster, Family, Pod, Protocol};
pub use policy::{Direction, Policy};
