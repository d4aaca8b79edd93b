//! Configuration changes applied in place (`InstanceHandle::update`): notify commands, GARP
//! settings, tracked links and checks, and a non-owner's priority. The state is kept; what the
//! change implies for the election (a new effective priority, a check now failing) reaches the
//! state machine as tracking does.

use tokio::time::Instant;

use super::open::{spawn_checks, track_link};
use super::parts::TrackedLink;
use super::Driver;
use crate::config::InstanceConfig;
use crate::runner::Error;
use crate::track::CheckState;

impl Driver {
    pub(super) async fn update(&mut self, new: InstanceConfig) -> Result<(), Error> {
        let fields = self.cfg.restart_needed(&new);
        if !fields.is_empty() {
            return Err(Error::RestartNeeded {
                instance: self.cfg.name.clone(),
                fields,
            });
        }
        if new == self.cfg {
            return Ok(());
        }
        tracing::info!(instance = %self.cfg.name, "configuration updated in place");
        if new.garp != self.cfg.garp {
            // Refreshes re-arm from now while the VIPs are up; a running burst is not extended.
            let active = self.vips.reconciler.want;
            self.vips.garp.reconfigure(
                new.garp.repeat,
                new.garp.interval,
                new.garp.refresh,
                active,
                Instant::now(),
            );
        }
        if new.checks != self.cfg.checks {
            for h in self.track.tasks.drain(..) {
                h.abort();
            }
            // A check whose probe did not change keeps its state until its new task reports.
            let states: Vec<CheckState> = new
                .checks
                .iter()
                .map(|c| {
                    self.cfg
                        .checks
                        .iter()
                        .zip(&self.track.checks)
                        .find(|(old, _)| old.check == c.check)
                        .map_or(CheckState::Unknown, |(_, st)| st.clone())
                })
                .collect();
            let (tasks, rx) = spawn_checks(&new.checks);
            self.track.tasks = tasks;
            self.track.rx = rx;
            self.track.checks = states;
        }
        if new.track_interfaces != self.cfg.track_interfaces {
            let mut links = Vec::new();
            for t in &new.track_interfaces {
                let known = self.track.links.iter().find(|l| l.name == t.name);
                links.push(match known {
                    Some(l) => TrackedLink {
                        name: l.name.clone(),
                        index: l.index,
                        weight: t.weight,
                        up: l.up,
                    },
                    None => track_link(&self.netlink, &self.cfg.name, t).await,
                });
            }
            self.track.links = links;
        }
        self.cfg = new;
        // The base priority, the checks and the links decide the effective priority or FAULT.
        self.retrack().await;
        Ok(())
    }
}
