//! Host smoke test of the namespace helpers: two namespaces on a bridge reach each other, and a
//! closure run with `Netns::run` sees its namespace's interfaces, not the host's.

use testns::{Bridge, Netns};

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn two_namespaces_on_a_bridge_ping_each_other() {
    let br = Bridge::new("brs").expect("bridge");
    let a = Netns::new("ns").expect("netns a");
    let b = Netns::new("ns").expect("netns b");
    a.plug(&br, "eth0", "192.168.240.1/24").expect("plug a");
    b.plug(&br, "eth0", "192.168.240.2/24").expect("plug b");
    let out = a
        .exec(&["ping", "-c", "1", "-W", "2", "192.168.240.2"])
        .expect("ping from a to b");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 received"));
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn run_enters_the_namespace() {
    let br = Bridge::new("brs").expect("bridge");
    let a = Netns::new("ns").expect("netns a");
    a.plug(&br, "inside0", "").expect("plug");
    let dev = a
        .run(|| std::fs::read_to_string("/proc/thread-self/net/dev"))
        .expect("enter namespace")
        .expect("read /proc/thread-self/net/dev");
    // /proc/thread-self/net shows the calling thread's namespace: lo and inside0, no bridge.
    assert!(dev.contains("inside0:"), "{dev}");
    assert!(!dev.contains(&format!("{}:", br.name())), "{dev}");
}
