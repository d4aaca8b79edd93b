//! Lab smoke test: the kernel inside `tests/lab/run` has IPVS, and each network namespace has its
//! own IPVS table (`net/netfilter/ipvs/ip_vs_ctl.c` keeps services per `struct netns_ipvs`).

use testns::Netns;

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn a_service_is_visible_in_its_namespace_only() {
    let a = Netns::new("ks").expect("netns a");
    let b = Netns::new("ks").expect("netns b");
    a.exec(&["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "rr"])
        .expect("ipvsadm -A");
    let in_a = a
        .sh("cat /proc/net/ip_vs")
        .expect("read /proc/net/ip_vs in a");
    // /proc/net/ip_vs prints addresses in hex: 10.0.0.1:80 is 0A000001:0050.
    assert!(in_a.contains("TCP  0A000001:0050 rr"), "{in_a}");
    let in_b = b
        .sh("cat /proc/net/ip_vs")
        .expect("read /proc/net/ip_vs in b");
    assert!(
        !in_b.contains("0A000001"),
        "namespace b sees a's service:\n{in_b}"
    );
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn a_thread_inside_a_namespace_sees_its_table() {
    let a = Netns::new("ks").expect("netns a");
    a.exec(&["ipvsadm", "-A", "-u", "10.9.9.9:53", "-s", "wrr"])
        .expect("ipvsadm -A");
    let seen = a
        .run(|| std::fs::read_to_string("/proc/thread-self/net/ip_vs"))
        .expect("enter namespace")
        .expect("read /proc/net/ip_vs");
    // /proc/net follows the thread group leader; /proc/thread-self/net follows this thread.
    assert!(seen.contains("UDP  0A090909:0035 wrr"), "{seen}");
}
