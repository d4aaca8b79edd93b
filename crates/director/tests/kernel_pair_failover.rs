//! The LVS director pair end to end with OUR director (`director run`) as both directors, inside
//! the IPVS lab VM: the same scenarios as kernel_keepalived_pair.rs (same topology, timers, real
//! servers and load: `lab_pair::scenarios`), where ours promises more: only the VIP holder has
//! the virtual services, the Backup's table stays empty, the new Master programs them on takeover.
//! Run: `tests/lab/run '<test binary> --ignored --test-threads=2'` (tests/check does).

mod lab_pair;
mod netns_common;

use lab_pair::checks::secs;
use lab_pair::scenarios;
use lab_pair::Implementation;

fn ours() -> Implementation {
    Implementation::director(netns_common::BIN)
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_spreads_and_survives_the_masters_death() {
    scenarios::dr_spreads_and_survives_the_masters_death(&ours());
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_kill_9_of_the_director_alone_loses_at_most_the_request_in_flight() {
    scenarios::dr_kill_9_of_the_daemon_alone(&ours());
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn nat_gateway_follows_the_master() {
    scenarios::nat_gateway_follows_the_master(&ours());
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn ipip_tunnel_spreads_and_fails_over() {
    scenarios::ipip_tunnel_spreads_and_fails_over(&ours());
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn gue_tunnel_spreads() {
    scenarios::gue_tunnel_spreads(&ours());
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_graceful_stop_then_the_old_master_preempts() {
    // the debug binary takes up to ~3 s to start under emulation before VRRP begins
    scenarios::dr_graceful_stop_then_the_old_master_preempts(&ours(), secs(3.0));
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_return_without_preemption_stays_backup_with_an_empty_table() {
    scenarios::dr_return_without_preemption_stays_backup(&ours());
}

#[test]
#[ignore = "needs the IPVS lab kernel (tests/lab/run)"]
fn dr_connection_survives_failover_with_the_sync_daemon() {
    scenarios::dr_connection_survives_failover_with_the_sync_daemon(&ours());
}
