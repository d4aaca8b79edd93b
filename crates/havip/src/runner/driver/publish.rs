//! Everything published about the instance: transitions on the events stream, notify commands,
//! the status and role watches.

use super::Driver;
use crate::fsm::{State, Transition};
use crate::runner::effects::NotifyJob;
use crate::runner::{InstanceEvent, InstanceStatus, Role, TransitionInfo, TransitionReason};
use crate::time::Timestamp;

impl Driver {
    pub(super) fn on_transition(&mut self, t: Transition) {
        if t.to != State::Master {
            self.vips.garp.stop();
        }
        self.publish_transition(t.from, t.to, TransitionReason::Vrrp(t.reason), t.at);
    }

    pub(super) fn publish_transition(
        &mut self,
        from: State,
        to: State,
        why: TransitionReason,
        at: Timestamp,
    ) {
        let reason = why.to_string();
        let info = TransitionInfo {
            from,
            to,
            reason: why,
            at: self.out.origin_wall + at.since_origin(),
        };
        self.out.role_since = info.at;
        self.out.role_reason = why;
        tracing::info!(instance = %self.cfg.name, %from, %to, %reason, "state change");
        self.out.last_transition = Some(info.clone());
        let _ = self.out.events.send(InstanceEvent::Transition {
            instance: self.cfg.name.clone(),
            transition: info,
        });
        let n = &self.cfg.notify;
        let own = match to {
            State::Master => n.master.clone(),
            State::Backup => n.backup.clone(),
            State::Fault => n.fault.clone(),
            State::Initialize => None,
        };
        let jobs: Vec<String> = own.into_iter().chain(n.any.clone()).collect();
        for command in jobs {
            self.notify(command, &to.to_string(), &from.to_string(), &reason);
        }
    }

    pub(super) fn notify(&self, command: String, state: &str, from: &str, reason: &str) {
        let Some(tx) = &self.notifier.tx else { return };
        let prio = self.fsm.priority().to_string();
        let _ = tx.send(NotifyJob {
            command,
            args: vec![
                "INSTANCE".into(),
                self.cfg.name.clone(),
                state.to_string(),
                prio,
            ],
            env: vec![
                ("HAVIP_INSTANCE".into(), self.cfg.name.clone()),
                ("HAVIP_STATE".into(), state.to_string()),
                ("HAVIP_FROM".into(), from.to_string()),
                ("HAVIP_REASON".into(), reason.to_string()),
            ],
        });
    }

    pub(super) fn publish(&self) {
        let state = match (self.own.external, &self.attach.fault) {
            // Role-driven and no interface: nothing can be claimed, say so.
            (Some(_), Some(_)) => State::Fault,
            (Some(s), None) => s,
            (None, _) => self.fsm.state(),
        };
        let fault_reason = if state != State::Fault {
            None
        } else if let Some(r) = &self.attach.fault {
            Some(r.clone())
        } else if !self.attach.own_up {
            Some(format!("interface {} is down", self.cfg.interface))
        } else {
            self.track.fault.clone()
        };
        let master = match (self.own.external, state) {
            (Some(State::Master), _) => self.attach.att.as_ref().map(|a| a.src),
            (Some(_), _) => None,
            (None, _) => self.fsm.master_address(),
        };
        let vips_held = self.vips.reconciler.want && self.vips.reconciler.settled;
        let status = InstanceStatus {
            name: self.cfg.name.clone(),
            state,
            vips: self.cfg.vips.clone(),
            vips_held,
            master,
            effective_priority: self.fsm.priority(),
            fault_reason,
            last_transition: self.out.last_transition.clone(),
            counters: self.counters.clone(),
        };
        self.out.status.send_if_modified(|s| {
            if *s == status {
                false
            } else {
                *s = status;
                true
            }
        });
        // The role wakes its readers only when one of its own fields changes.
        let role = Role {
            state,
            vips_held,
            since: self.out.role_since,
            reason: self.out.role_reason,
        };
        self.out.role.send_if_modified(|r| {
            if *r == role {
                false
            } else {
                *r = role;
                true
            }
        });
    }
}
