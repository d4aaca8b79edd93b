//! Kernel tests (run inside the lab VM): connect, info, timeouts, daemons, zero, flush.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ipvs::*;

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn info_and_timeouts() {
    with_conn(|mut c| async move {
        let info = c.info().await.unwrap();
        assert_eq!(info.version_string(), "1.2.1");
        assert!(info.conn_tab_size > 0);
        let text = ipvsadm(&["-Ln"]);
        assert!(
            text.contains(&format!("size={}", info.conn_tab_size)),
            "{text}"
        );
        let t = Timeouts {
            tcp: 901,
            tcp_fin: 121,
            udp: 301,
        };
        let r = c.apply(&[Op::SetTimeouts(t)]).await.unwrap();
        assert!(r.all_ok(), "{r:?}");
        assert_eq!(c.timeouts().await.unwrap(), t);
        assert!(ipvsadm(&["-L", "--timeout"]).contains("901 121 301"));
    });
}
