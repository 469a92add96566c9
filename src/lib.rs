//! The `policyc` binary's shells around the pure compiler: the CLI (files or, later, a live
//! cluster in; text or JSON out) and the node agent (watch → index → compile → nft).
//!
//! ```text
//!  -f files ──input──► Cluster ──compiler──► trace / matrix / explain / render (stdout)
//! ```

pub mod agent;
pub mod cli;
pub mod input;
pub mod live;
