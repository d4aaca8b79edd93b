//! Several instances on one interface share one VRRP socket: each receives only its own VRID's
//! adverts (no `vrid_not_configured` for its neighbours'), an instance stopped at runtime leaves
//! the others receiving, and the socket closes with the last instance.

mod runner_common;

use std::time::{Duration, Instant};

use havip::fsm::State;
use havip::runner::{self, InstanceHandle};
use runner_common::{cfg, pair};

const VRIDS: [u8; 5] = [11, 12, 13, 14, 15];

/// VRRP raw sockets (protocol 112 = 0x70 in the "local_address" port column) open in `ns`.
fn vrrp_sockets(ns: &testns::Netns) -> usize {
    let raw = ns.sh("cat /proc/net/raw").expect("read /proc/net/raw");
    raw.lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|local| local.ends_with(":0070"))
        })
        .count()
}

/// Starts one instance per VRID with `priority` on eth0 of the calling thread's namespace.
async fn start_all(priority: u8) -> Vec<InstanceHandle> {
    let mut hs = Vec::new();
    for v in VRIDS {
        let c = cfg(
            &format!("v{v}"),
            v,
            priority,
            &format!("192.0.2.{}/24", 100 + v),
        );
        hs.push(runner::start(c).await.expect("starts"));
    }
    hs
}

async fn wait_for(h: &InstanceHandle, what: &str, pred: impl Fn(&runner::InstanceStatus) -> bool) {
    let mut st = h.status();
    tokio::time::timeout(Duration::from_secs(3), st.wait_for(|s| pred(s)))
        .await
        .unwrap_or_else(|_| panic!("{}: {what}: {:?}", h.name(), h.status().borrow()))
        .expect("instance running");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
#[ignore = "needs root and network namespaces: tests/check runs it"]
fn instances_on_one_interface_share_one_socket_and_count_no_neighbour_drops() {
    let (a, b) = pair("192.0.2.1/24", "192.0.2.2/24");
    // A: five masters (priority 200) on one runtime, until told to stop.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let masters = std::thread::spawn({
        let a = a.clone();
        move || {
            a.run(move || {
                runtime().block_on(async move {
                    let hs = start_all(200).await;
                    let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                    for h in hs {
                        h.shutdown().await;
                    }
                })
            })
            .expect("enter netns")
        }
    });
    let b2 = b.clone();
    b.run(move || {
        runtime().block_on(async move {
            let mut hs = start_all(100).await;
            for h in &hs {
                wait_for(h, "backup of A", |s| {
                    s.state == State::Backup && s.master == Some("192.0.2.1".parse().unwrap())
                })
                .await;
            }
            assert_eq!(vrrp_sockets(&b2), 1, "one socket for five instances");
            // A second of adverts (10 per VRID): each instance took its own only.
            tokio::time::sleep(Duration::from_secs(1)).await;
            for h in &hs {
                let s = h.status().borrow().clone();
                assert!(s.counters.adverts_rx >= 5, "{s:?}");
                assert_eq!(s.counters.drops.get("vrid_not_configured"), None, "{s:?}");
            }
            // Reload removing one instance: the others keep receiving.
            let gone = hs.remove(2);
            gone.shutdown().await;
            let rx: Vec<u64> = hs
                .iter()
                .map(|h| h.status().borrow().counters.adverts_rx)
                .collect();
            for (h, before) in hs.iter().zip(rx) {
                wait_for(h, "still receiving", |s| {
                    s.counters.adverts_rx >= before + 3
                })
                .await;
                assert_eq!(h.status().borrow().state, State::Backup);
            }
            assert_eq!(vrrp_sockets(&b2), 1);
            for h in hs {
                h.shutdown().await;
            }
            // The last instance gone, the socket closes.
            let t0 = Instant::now();
            while vrrp_sockets(&b2) != 0 {
                assert!(t0.elapsed() < Duration::from_secs(2), "socket left open");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    })
    .expect("enter netns");
    let _ = stop_tx.send(());
    masters.join().expect("masters thread");
}
