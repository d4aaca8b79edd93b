//! The rise/fall filter of a health check, pure: a check turns up after `rise` consecutive
//! successes and down after `fall` consecutive failures, so one lost probe does not move a VIP.
//!
//! The first result sets the state at once (there is nothing to debounce against yet), so an
//! instance learns its checks' state within one probe of starting, as keepalived does.

/// The filtered state of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtered {
    /// No result yet.
    Unknown,
    /// Up (rise reached).
    Up,
    /// Down (fall reached).
    Down,
}

/// Counts consecutive results against the rise and fall thresholds.
#[derive(Debug, Clone)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    state: Filtered,
    streak: u32,
}

impl RiseFall {
    /// A filter needing `rise` successes to go up and `fall` failures to go down (0 counts as 1).
    pub fn new(rise: u32, fall: u32) -> RiseFall {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            state: Filtered::Unknown,
            streak: 0,
        }
    }

    /// The current filtered state.
    pub fn state(&self) -> Filtered {
        self.state
    }

    /// Feeds one probe result; returns the new state when it changed.
    pub fn observe(&mut self, ok: bool) -> Option<Filtered> {
        let target = if ok { Filtered::Up } else { Filtered::Down };
        if self.state == Filtered::Unknown {
            self.state = target;
            self.streak = 0;
            return Some(target);
        }
        if self.state == target {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let need = if ok { self.rise } else { self.fall };
        if self.streak >= need {
            self.state = target;
            self.streak = 0;
            Some(target)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_result_decides() {
        let mut r = RiseFall::new(3, 3);
        assert_eq!(r.state(), Filtered::Unknown);
        assert_eq!(r.observe(false), Some(Filtered::Down));
        let mut r = RiseFall::new(3, 3);
        assert_eq!(r.observe(true), Some(Filtered::Up));
    }

    #[test]
    fn fall_needs_consecutive_failures() {
        let mut r = RiseFall::new(2, 3);
        r.observe(true);
        assert_eq!(r.observe(false), None);
        assert_eq!(r.observe(false), None);
        assert_eq!(r.observe(true), None, "a success resets the failure streak");
        assert_eq!(r.observe(false), None);
        assert_eq!(r.observe(false), None);
        assert_eq!(r.observe(false), Some(Filtered::Down));
        assert_eq!(r.state(), Filtered::Down);
    }

    #[test]
    fn rise_needs_consecutive_successes() {
        let mut r = RiseFall::new(2, 1);
        r.observe(false);
        assert_eq!(r.observe(true), None);
        assert_eq!(
            r.observe(false),
            None,
            "a failure resets the success streak"
        );
        assert_eq!(r.observe(true), None);
        assert_eq!(r.observe(true), Some(Filtered::Up));
        assert_eq!(r.observe(false), Some(Filtered::Down), "fall 1");
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let mut r = RiseFall::new(0, 0);
        r.observe(true);
        assert_eq!(r.observe(false), Some(Filtered::Down));
        assert_eq!(r.observe(true), Some(Filtered::Up));
    }
}
