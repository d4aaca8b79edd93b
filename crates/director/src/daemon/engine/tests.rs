//! `gate_role` and the transient errnos.

use std::time::SystemTime;

use super::io::is_transient;
use super::*;

fn role(state: VrrpState, vips_held: bool, reason: TransitionReason) -> VrrpRole {
    VrrpRole {
        state,
        vips_held,
        since: SystemTime::UNIX_EPOCH,
        reason,
    }
}

#[test]
fn only_real_decisions_become_gate_roles() {
    use TransitionReason::Created;
    let backup = role(VrrpState::Backup, false, Created);
    // The Backup havip starts in is no decision: a restart may still preempt and adopt.
    assert_eq!(gate_role(&backup, false, false), None);
    // Another master heard for the settle time, or a Master that stepped down: withdraw.
    assert_eq!(gate_role(&backup, true, false), Some(Role::Released));
    assert_eq!(gate_role(&backup, false, true), Some(Role::Released));
    assert_eq!(
        gate_role(
            &role(VrrpState::Backup, false, TransitionReason::Stopped),
            false,
            false
        ),
        Some(Role::Released)
    );
    assert_eq!(
        gate_role(&role(VrrpState::Fault, false, Created), false, false),
        Some(Role::Released)
    );
    // Master: held VIPs are MasterHeld; without them the takeover request speaks.
    assert_eq!(
        gate_role(&role(VrrpState::Master, true, Created), false, false),
        Some(Role::MasterHeld)
    );
    assert_eq!(
        gate_role(&role(VrrpState::Master, false, Created), true, true),
        None
    );
    assert_eq!(
        gate_role(&role(VrrpState::Initialize, false, Created), false, false),
        None
    );
}

#[test]
fn transient_errnos_are_retried() {
    assert!(is_transient(ipvs::Errno::ENOMEM));
    assert!(is_transient(ipvs::Errno::EBUSY));
    assert!(!is_transient(ipvs::Errno::EINVAL));
    assert!(!is_transient(ipvs::Errno::ENOENT));
}
