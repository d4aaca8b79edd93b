//! Why an instance changed state: a [`Reason`] on every [`super::Transition`], readable by an
//! operator (its `Display`) and matchable by code.

use std::fmt;
use std::net::IpAddr;

/// What armed the Master_Down_Timer that fired (so "became Master" says why the old one went).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DownCause {
    /// Set at Startup (or after a fault) and no usable advert was heard since.
    NoMasterHeard,
    /// The Master was heard, then fell silent (crash, partition).
    AdvertsStopped {
        /// IP source of the last advert heard from the Master (its primary address).
        last_master: IpAddr,
    },
    /// The Master resigned with priority 0 (graceful stop): the timer was set to Skew_Time.
    MasterResigned {
        /// IP source of the priority-0 advert.
        from: IpAddr,
    },
    /// The Master has a lower priority and we preempt it (its adverts were discarded).
    Preempting {
        /// The lower-priority Master (IP source of its adverts).
        from: IpAddr,
        /// The priority its adverts carry (below ours).
        priority: u8,
    },
}

/// The reason for a state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Startup of an address owner (priority 255): Master at once (RFC 9568 - Section 6.4.1).
    StartupOwner,
    /// Startup of a non-owner: Backup, waiting Master_Down_Interval (RFC 9568 - Section 6.4.1).
    Startup,
    /// The Master_Down_Timer fired (RFC 9568 - Section 6.4.2).
    MasterDown(DownCause),
    /// A Master heard a higher priority (RFC 9568 - Section 6.4.3).
    HigherPriority {
        /// The router whose advert we yield to (its IP source).
        from: IpAddr,
        /// The priority its advert carried (above our effective priority).
        priority: u8,
    },
    /// A Master heard an equal priority from a higher primary address (RFC 9568 - Section 6.4.3).
    EqualPriorityHigherAddress {
        /// The router whose advert we yield to: same priority, higher primary address.
        from: IpAddr,
    },
    /// A Shutdown event.
    Shutdown,
    /// The interface went down.
    InterfaceDown,
    /// A tracked check declared FAULT.
    TrackFault,
    /// The fault cleared (interface up, checks fine): restarted as at Startup.
    FaultCleared,
}

impl fmt::Display for DownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownCause::NoMasterHeard => write!(f, "no master heard"),
            DownCause::AdvertsStopped { last_master } => {
                write!(f, "master {last_master} stopped advertising")
            }
            DownCause::MasterResigned { from } => {
                write!(f, "master {from} resigned (priority 0)")
            }
            DownCause::Preempting { from, priority } => {
                write!(
                    f,
                    "preempting lower-priority master {from} (priority {priority})"
                )
            }
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::StartupOwner => write!(f, "startup as address owner (priority 255)"),
            Reason::Startup => write!(f, "startup"),
            Reason::MasterDown(cause) => write!(f, "master down timer fired: {cause}"),
            Reason::HigherPriority { from, priority } => {
                write!(f, "heard higher priority {priority} from {from}")
            }
            Reason::EqualPriorityHigherAddress { from } => {
                write!(f, "heard equal priority from higher address {from}")
            }
            Reason::Shutdown => write!(f, "shutdown"),
            Reason::InterfaceDown => write!(f, "interface down"),
            Reason::TrackFault => write!(f, "tracked check failed"),
            Reason::FaultCleared => write!(f, "fault cleared"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn reasons_read_well() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            Reason::MasterDown(DownCause::MasterResigned { from: a }).to_string(),
            "master down timer fired: master 10.0.0.2 resigned (priority 0)"
        );
        assert_eq!(
            Reason::HigherPriority {
                from: a,
                priority: 200
            }
            .to_string(),
            "heard higher priority 200 from 10.0.0.2"
        );
    }
}
