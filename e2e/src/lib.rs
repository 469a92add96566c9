//! policyc's end-to-end tests: simulated flannel (vxlan, host-gw) and kubenet clusters built from
//! network namespaces, with real servers, real probes and the real `policyc agent` enforcing
//! NetworkPolicy with nftables, compared against `policyc matrix`.
//!
//! Nothing here touches the root network namespace: every link, address, route and nft table is
//! created inside namespaces named `pce2e<pid>x<seq>-*`, removed on drop and swept at start when
//! their process is gone.

pub mod apiserver;
pub mod dataplane;
pub mod demo;
pub mod harness;
pub mod manifest;
pub mod netns;
pub mod observe;
pub mod policyc;
pub mod prereq;
pub mod probe;
pub mod scenarios;
pub mod sctp;
pub mod server;
pub mod sh;
pub mod soak;
pub mod topology;
