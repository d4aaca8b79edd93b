//! Role-driven ownership (role `external`): the owner claims the VIPs (after its fence command,
//! if any) and releases them; VRRP takes no part.

use tokio::time::Instant;

use super::{Driver, FENCE_TIMEOUT};
use crate::config::RoleMode;
use crate::fsm::State;
use crate::runner::effects::run_fence;
use crate::runner::{Error, TransitionReason};

impl Driver {
    pub(super) async fn claim(&mut self) -> Result<(), Error> {
        let Some(state) = self.own.external else {
            return Err(Error::NotExternal(self.cfg.name.clone()));
        };
        if state == State::Master {
            return Ok(());
        }
        if let Some(reason) = &self.attach.fault {
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
        self.vips.reconciler.set_want(true);
        self.apply_vips().await;
        self.vips.garp.trigger(Instant::now());
        self.garp_tick();
        self.own.external = Some(State::Master);
        self.publish_transition(state, State::Master, TransitionReason::Claimed, self.now());
        Ok(())
    }

    pub(super) async fn release(&mut self) -> Result<(), Error> {
        let Some(state) = self.own.external else {
            return Err(Error::NotExternal(self.cfg.name.clone()));
        };
        self.vips.garp.stop();
        self.vips.reconciler.set_want(false);
        self.apply_vips().await;
        if state != State::Backup {
            self.own.external = Some(State::Backup);
            self.publish_transition(state, State::Backup, TransitionReason::Released, self.now());
        }
        Ok(())
    }
}
