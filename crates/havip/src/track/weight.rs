//! The pure rule that turns tracked state into the priority an instance advertises, or FAULT.
//! Same meaning of weights as keepalived's `track_script` / `track_interface`:
//!
//! - weight 0: the instance goes to FAULT while the check fails or the link is down;
//! - weight > 0: added to the priority while the check is up (link up);
//! - weight < 0: added (so subtracted) while the check is down (link down);
//! - a file check's value is added, multiplied by its weight when the weight is not 0; its
//!   `fault` content always means FAULT;
//! - a check with no result yet counts neither way;
//! - a fault set by the owner of the instance (`InstanceHandle::set_external_fault`) means FAULT.
//!
//! The result is clamped to 1..=254; an address owner (base 255) keeps 255 unless in FAULT.
//!
//! RFC 9568 - Section 5.2.4: "The priority value for the VRRP Router that owns the IPvX address
//! associated with the Virtual Router MUST be 255 (decimal). VRRP Routers backing up a Virtual
//! Router MUST use priority values between 1-254 (decimal)."

use super::task::CheckState;

/// The outcome of the tracking rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Run with this priority.
    Priority(u8),
    /// Go to FAULT, with why.
    Fault(String),
}

/// One tracked input.
#[derive(Debug, Clone, Copy)]
pub enum Tracked<'a> {
    /// A check, its weight and its current state.
    Check {
        /// Name, for the FAULT reason.
        name: &'a str,
        /// The configured weight.
        weight: i32,
        /// The current state.
        state: &'a CheckState,
    },
    /// A tracked interface, its weight and whether it is up.
    Link {
        /// Name, for the FAULT reason.
        name: &'a str,
        /// The configured weight.
        weight: i32,
        /// Up and running.
        up: bool,
    },
    /// A fault the owner of the instance holds it in (`InstanceHandle::set_external_fault`):
    /// FAULT whatever the weights, `reason` as given.
    OwnerFault {
        /// Why, as the owner put it (the FAULT reason).
        reason: &'a str,
    },
}

/// The priority (or FAULT) for `base` given every tracked input and the owner-pushed weight.
pub fn verdict(base: u8, tracked: &[Tracked<'_>], external: i32) -> Verdict {
    let mut delta: i64 = i64::from(external);
    for t in tracked {
        match *t {
            Tracked::OwnerFault { reason } => return Verdict::Fault(reason.to_owned()),
            Tracked::Link { name, weight, up } => {
                if !up && weight == 0 {
                    return Verdict::Fault(format!("interface {name} is down"));
                }
                if (up && weight > 0) || (!up && weight < 0) {
                    delta = delta.saturating_add(i64::from(weight));
                }
            }
            Tracked::Check {
                name,
                weight,
                state,
            } => match state {
                CheckState::Unknown => {}
                CheckState::Up => {
                    if weight > 0 {
                        delta = delta.saturating_add(i64::from(weight));
                    }
                }
                CheckState::Down { reason } => {
                    if weight == 0 {
                        return Verdict::Fault(format!("check {name} failing: {reason}"));
                    }
                    if weight < 0 {
                        delta = delta.saturating_add(i64::from(weight));
                    }
                }
                CheckState::Value(v) => {
                    let m = if weight == 0 { 1 } else { i64::from(weight) };
                    delta = delta.saturating_add(v.saturating_mul(m));
                }
                CheckState::Fault { reason } => {
                    return Verdict::Fault(format!("check {name}: {reason}"));
                }
            },
        }
    }
    if base == 255 {
        return Verdict::Priority(255);
    }
    let p = i64::from(base).saturating_add(delta).clamp(1, 254);
    Verdict::Priority(u8::try_from(p).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<'a>(weight: i32, state: &'a CheckState) -> Tracked<'a> {
        Tracked::Check {
            name: "c",
            weight,
            state,
        }
    }

    #[test]
    fn weights_add_and_subtract() {
        let up = CheckState::Up;
        let down = CheckState::Down { reason: "r".into() };
        assert_eq!(verdict(100, &[check(10, &up)], 0), Verdict::Priority(110));
        assert_eq!(verdict(100, &[check(10, &down)], 0), Verdict::Priority(100));
        assert_eq!(verdict(100, &[check(-30, &down)], 0), Verdict::Priority(70));
        assert_eq!(verdict(100, &[check(-30, &up)], 0), Verdict::Priority(100));
        assert_eq!(verdict(100, &[], -5), Verdict::Priority(95));
    }

    #[test]
    fn weight_zero_failing_is_fault() {
        let down = CheckState::Down {
            reason: "refused".into(),
        };
        assert_eq!(
            verdict(100, &[check(0, &down)], 0),
            Verdict::Fault("check c failing: refused".into())
        );
        let l = Tracked::Link {
            name: "eth0",
            weight: 0,
            up: false,
        };
        assert_eq!(
            verdict(100, &[l], 0),
            Verdict::Fault("interface eth0 is down".into())
        );
        let l = Tracked::Link {
            name: "eth1",
            weight: -20,
            up: false,
        };
        assert_eq!(verdict(100, &[l], 0), Verdict::Priority(80));
    }

    #[test]
    fn an_owner_fault_is_fault_whatever_the_weights_and_clears_with_it() {
        let up = CheckState::Up;
        let owner = Tracked::OwnerFault {
            reason: "quorum lost",
        };
        for base in [1, 100, 254, 255] {
            assert_eq!(
                verdict(base, &[check(50, &up), owner], 300),
                Verdict::Fault("quorum lost".into()),
                "base {base}"
            );
            // Cleared: the weights apply again.
            let want = if base == 255 { 255 } else { 254 };
            assert_eq!(
                verdict(base, &[check(50, &up)], 300),
                Verdict::Priority(want)
            );
        }
        // A check's own fault keeps its reason first.
        let down = CheckState::Down { reason: "r".into() };
        assert_eq!(
            verdict(100, &[check(0, &down), owner], 0),
            Verdict::Fault("check c failing: r".into())
        );
    }

    #[test]
    fn file_values_and_fault() {
        let v = CheckState::Value(-15);
        assert_eq!(verdict(100, &[check(0, &v)], 0), Verdict::Priority(85));
        assert_eq!(verdict(100, &[check(2, &v)], 0), Verdict::Priority(70));
        let f = CheckState::Fault { reason: "x".into() };
        assert!(matches!(
            verdict(100, &[check(5, &f)], 0),
            Verdict::Fault(_)
        ));
    }

    #[test]
    fn clamped_and_owner_kept() {
        let v = CheckState::Value(i64::MAX);
        assert_eq!(verdict(100, &[check(3, &v)], 0), Verdict::Priority(254));
        let v = CheckState::Value(-1000);
        assert_eq!(verdict(100, &[check(0, &v)], 0), Verdict::Priority(1));
        assert_eq!(verdict(255, &[], -50), Verdict::Priority(255));
        assert_eq!(
            verdict(100, &[check(0, &CheckState::Unknown)], 0),
            Verdict::Priority(100),
            "no result yet counts neither way"
        );
    }
}
