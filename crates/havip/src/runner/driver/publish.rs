//! Role-driven ownership (claim/release) and everything published about the instance:
//! transitions on the events stream, notify commands, the status watch.

use super::{Driver, FENCE_TIMEOUT};
use crate::config::RoleMode;
use crate::fsm::{State, Transition};
use crate::runner::effects::{run_fence, NotifyJob};
use crate::runner::{Error, InstanceEvent, InstanceStatus, Role, TransitionInfo, TransitionReason};
use crate::time::Timestamp;
use tokio::time::Instant;

impl Driver {
    pub(super) async fn claim(&mut self) -> Result<(), Error> {
        let Some(state) = self.external else {
            return Err(Error::NotExternal(self.cfg.name.clone()));
        };
        if state == State::Master {
            return Ok(());
        }
        if let Some(reason) = &self.attach_fault {
            return Err(Error::Fault {
                instance: self.cfg.name.clone(),
                reason: reason.clone(),
            });
        }
        if let RoleMode::External { fence: Some(f) } = &self.cfg.role {
            if let Err(detail) = run_fence(f, FENCE_TIMEOUT).await {
                tracing::warn!(instance = %self.cfg.name, %detail, "fence failed: VIP not taken");
                return Err(Error::FenceFailed {
                    instance: self.cfg.name.clone(),
                    detail,
                });
            }
        }
        self.vip.set_want(true);
        self.apply_vips().await;
        self.garp.trigger(Instant::now());
        self.garp_tick();
        self.external = Some(State::Master);
        self.publish_transition(state, State::Master, TransitionReason::Claimed, self.now());
        Ok(())
    }

    pub(super) async fn release(&mut self) -> Result<(), Error> {
        let Some(state) = self.external else {
            return Err(Error::NotExternal(self.cfg.name.clone()));
        };
        self.garp.stop();
        self.vip.set_want(false);
        self.apply_vips().await;
        if state != State::Backup {
            self.external = Some(State::Backup);
            self.publish_transition(state, State::Backup, TransitionReason::Released, self.now());
        }
        Ok(())
    }

    pub(super) fn on_transition(&mut self, t: Transition) {
        if t.to != State::Master {
            self.garp.stop();
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
            reason: reason.clone(),
            at: self.origin_wall + at.since_origin(),
        };
        self.role_since = info.at;
        self.role_reason = why;
        tracing::info!(instance = %self.cfg.name, %from, %to, %reason, "state change");
        self.last_transition = Some(info.clone());
        let _ = self.events.send(InstanceEvent::Transition {
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
        let Some(tx) = &self.notify_tx else { return };
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
        let state = match (self.external, &self.attach_fault) {
            // Role-driven and no interface: nothing can be claimed, say so.
            (Some(_), Some(_)) => State::Fault,
            (Some(s), None) => s,
            (None, _) => self.fsm.state(),
        };
        let fault_reason = if state != State::Fault {
            None
        } else if let Some(r) = &self.attach_fault {
            Some(r.clone())
        } else if !self.own_up {
            Some(format!("interface {} is down", self.cfg.interface))
        } else {
            self.track_fault.clone()
        };
        let master = match (self.external, state) {
            (Some(State::Master), _) => self.att.as_ref().map(|a| a.src),
            (Some(_), _) => None,
            (None, _) => self.fsm.master_address(),
        };
        let vips_held = self.vip.want && self.vip.settled;
        let status = InstanceStatus {
            name: self.cfg.name.clone(),
            state,
            vips: self.cfg.vips.clone(),
            vips_held,
            master,
            effective_priority: self.fsm.priority(),
            fault_reason,
            last_transition: self.last_transition.clone(),
            counters: self.counters.clone(),
        };
        self.status_tx.send_if_modified(|s| {
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
            since: self.role_since,
            reason: self.role_reason,
        };
        self.role_tx.send_if_modified(|r| {
            if *r == role {
                false
            } else {
                *r = role;
                true
            }
        });
    }
}
