//! On a kernel without IPVS (these build hosts), connecting fails with a typed error that says
//! what to do. Runs as a plain test (no root needed to open a generic-netlink socket); skipped,
//! with a note, where IPVS exists.
#![allow(clippy::unwrap_used)]

#[test]
fn connect_without_ipvs_says_load_ip_vs() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        eprintln!("IPVS is present here: nothing to check");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt.block_on(ipvs::Conn::connect()).unwrap_err();
    assert!(matches!(err, ipvs::Error::NotAvailable), "{err:?}");
    assert_eq!(
        err.to_string(),
        "IPVS not available in this kernel/namespace: load ip_vs (generic netlink family \"IPVS\" not found)"
    );
}
