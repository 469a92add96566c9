//! One-command demo: a two-node flannel-vxlan cluster in network namespaces running `examples/`
//! with the real `policyc agent` on each node; prints the matrix observed with real probes next
//! to the one `policyc matrix` predicts, then tears everything down.

fn main() -> std::process::ExitCode {
    match policyc_e2e::demo::run() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
