//! `Conn::connect` says whether this kernel (network namespace) has IPVS, and says it right in
//! each environment: where the generic-netlink family "IPVS" is missing (these build hosts) it
//! fails with a typed error that says what to do; where it exists (the module is loaded, or the
//! kernel loaded it on the family lookup) it connects. `/proc/net/ip_vs`, which the module
//! creates in every namespace, must agree either way. Runs as a plain test: no root is needed
//! to open a generic-netlink socket and look a family up.
#![allow(clippy::unwrap_used)]

#[test]
fn connect_says_load_ip_vs_exactly_when_ipvs_is_missing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connected = rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(10), ipvs::Conn::connect())
            .await
            .expect("connect did not answer within 10 s")
    });
    // Read after the lookup: the lookup may have loaded the module.
    let proc_entry = std::path::Path::new("/proc/net/ip_vs").exists();
    match connected {
        Ok(_) => {
            eprintln!("IPVS is present here: connected");
            assert!(proc_entry, "connected, yet /proc/net/ip_vs is missing");
        }
        Err(err) => {
            eprintln!("IPVS is missing here: {err}");
            assert!(matches!(err, ipvs::Error::NotAvailable), "{err:?}");
            assert_eq!(
                err.to_string(),
                "IPVS not available in this kernel/namespace: load ip_vs (generic netlink family \"IPVS\" not found)"
            );
            assert!(
                !proc_entry,
                "/proc/net/ip_vs exists, yet the IPVS family was not found"
            );
        }
    }
}
