//! `director run`: start every instance, serve the status socket, handle signals.
//!
//! ```text
//!  main: load + validate the file (exit 64 if invalid) ─► tokio runtime ─► run()
//!  run:  bind status socket ─► havip::runner::start(each instance) (exit 1 only if one cannot
//!        run at all; a missing interface or address is not that: the instance runs in FAULT,
//!        its status says why, and it attaches when the interface / address appears)
//!        loop select!
//!          SIGTERM / SIGINT ─► every instance resigns (priority 0), VIPs removed, within
//!                              DRAIN_DEADLINE; socket file removed; exit 0
//!          SIGHUP           ─► load + validate again: invalid: keep running, log every
//!                              FILE:LINE:COL; valid: reload::diff(old, new) applied
//!                              (identity changes restart an instance, the rest update it
//!                              in place)
//!  per instance: a task follows its events (havip logs the transitions themselves)
//! ```

pub mod cleanup;
mod control;
pub mod convert;
pub mod drains;
pub mod engine;
pub mod health;
pub mod kernel;
pub mod reload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use havip::runner::{InstanceEvent, InstanceHandle, InstanceStatus, StartOptions, TakeoverGate};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Mutex};

use crate::cli::EXIT_CONFIG;
use crate::config::{self, Config, Instance};
use crate::status::{InstanceView, StatusDoc, Transition, PROTOCOL_VERSION};
use reload::Change;

/// How long a graceful stop may take before the daemon exits anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// One running instance.
struct Entry {
    cfg: Instance,
    /// Shared with a `claim`/`release` in flight (a fence may run for seconds), so those do not
    /// hold the lock on [`Running`] while they wait.
    handle: Arc<InstanceHandle>,
    status: watch::Receiver<InstanceStatus>,
    logger: tokio::task::JoinHandle<()>,
    /// Forwards the instance's role to the IPVS engine; ends with the instance.
    follower: tokio::task::JoinHandle<()>,
}

/// The running instances, in configuration order, shared with the status socket.
pub struct Running {
    config_path: PathBuf,
    entries: Vec<Entry>,
    /// The IPVS side: programs each instance's services while it is Master.
    engine: engine::EngineHandle,
    /// The real servers' health checks.
    health: health::HealthChecks,
    /// havip's takeover barrier, shared by every instance: the engine acks each takeover once
    /// the instance's services are programmed ("program, then VIP").
    takeover: TakeoverGate,
}

impl Running {
    /// The reply to `status`.
    pub fn status_doc(&self) -> StatusDoc {
        let ipvs = self.engine.state();
        StatusDoc {
            version: PROTOCOL_VERSION,
            pid: std::process::id(),
            config: self.config_path.display().to_string(),
            instances: self
                .entries
                .iter()
                .map(|e| {
                    let mut v = view(e);
                    v.ipvs = ipvs.instance(&e.cfg.name).map(crate::status::IpvsView::of);
                    v
                })
                .collect(),
            health: self
                .health
                .status()
                .iter()
                .map(crate::status_health::RealServerHealth::of)
                .collect(),
        }
    }

    /// Each running instance's name and handle.
    pub fn handles(&self) -> Vec<(String, Arc<InstanceHandle>)> {
        self.entries
            .iter()
            .map(|e| (e.cfg.name.clone(), e.handle.clone()))
            .collect()
    }

    /// The IPVS engine.
    pub fn engine(&self) -> &engine::EngineHandle {
        &self.engine
    }

    /// The handle of the instance called `name`.
    pub fn handle(&self, name: &str) -> Result<Arc<InstanceHandle>, String> {
        self.entries
            .iter()
            .find(|e| e.cfg.name == name)
            .map(|e| e.handle.clone())
            .ok_or_else(|| format!("no instance named `{name}`"))
    }
}

/// `claim NAME`: takes the VIP of a `role: external` instance (its fence runs first).
pub async fn claim(handle: &InstanceHandle) -> Result<(), String> {
    tracing::info!(instance = handle.name(), "claim requested");
    handle.claim().await.map_err(|e| e.to_string())
}

/// `release NAME`: gives the VIP of a `role: external` instance up.
pub async fn release(handle: &InstanceHandle) -> Result<(), String> {
    tracing::info!(instance = handle.name(), "release requested");
    handle.release().await.map_err(|e| e.to_string())
}

fn view(e: &Entry) -> InstanceView {
    let s = e.status.borrow();
    InstanceView {
        name: e.cfg.name.clone(),
        interface: e.cfg.interface.clone(),
        vrid: e.cfg.vrid,
        vrrp_version: match e.cfg.version {
            config::Version::V2 => 2,
            config::Version::V3 => 3,
        },
        state: s.state.to_string(),
        vips: e.cfg.vips.iter().map(ToString::to_string).collect(),
        master: s.master.map(|a| a.to_string()),
        priority: e.cfg.priority,
        effective_priority: s.effective_priority,
        fault_reason: s.fault_reason.clone(),
        last_transition: s.last_transition.as_ref().map(|t| Transition {
            from: t.from.to_string(),
            to: t.to.to_string(),
            reason: t.reason.to_string(),
            at_unix_ms: t
                .at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0)),
        }),
        ipvs: None,
    }
}

/// `director run -c FILE [--status-socket PATH]`.
pub fn main(config_path: &Path, status_socket: Option<PathBuf>, state_dir: PathBuf) -> ExitCode {
    let cfg = match config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("director run: configuration not valid, not starting");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.global.log_level));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let socket = status_socket.unwrap_or_else(|| cfg.global.status_socket.clone());
    rt.block_on(run(config_path.to_path_buf(), cfg, socket, state_dir))
}

async fn start_one(
    cfg: &Instance,
    takeover: &TakeoverGate,
    engine: &engine::EngineHandle,
) -> Result<Entry, havip::runner::Error> {
    let opts = StartOptions {
        takeover: Some(takeover.clone()),
    };
    let handle = havip::runner::start_with(convert::to_havip(cfg), opts).await?;
    // A Backup that has never been Master decides to withdraw only after a preempting
    // restart would have taken over (Master_Down_Interval + preempt delay, with a margin).
    let settle = cfg.advert_interval * 3 + cfg.preempt_delay + Duration::from_secs(1);
    let follower = engine.follow(&cfg.name, &handle, settle);
    let status = handle.status();
    let mut events = handle.events();
    let logger = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ev) => log_event(&ev),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event log fell behind");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    Ok(Entry {
        cfg: cfg.clone(),
        handle: Arc::new(handle),
        status,
        logger,
        follower,
    })
}

fn log_event(ev: &InstanceEvent) {
    match ev {
        InstanceEvent::Transition {
            instance,
            transition: t,
        } => tracing::debug!(
            instance = %instance,
            from = %t.from,
            to = %t.to,
            reason = %t.reason,
            "transition"
        ),
        InstanceEvent::VipFailure {
            instance,
            vip,
            detail,
        } => {
            tracing::warn!(instance = %instance, vip = %vip, detail = %detail, "VIP change failed, retrying")
        }
        InstanceEvent::Stopped { instance } => tracing::info!(instance = %instance, "stopped"),
    }
}

async fn stop_one(e: Entry) {
    let name = e.cfg.name.clone();
    // A claim/release in flight holds a clone of the handle: wait for it (bounded by the
    // caller's drain deadline), then shut the instance down.
    let mut handle = e.handle;
    let handle = loop {
        match Arc::try_unwrap(handle) {
            Ok(h) => break h,
            Err(shared) => {
                handle = shared;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    handle.shutdown().await;
    // The logger and the follower end by themselves once the instance's channels close; do
    // not wait for them forever.
    let _ = tokio::time::timeout(Duration::from_millis(200), e.logger).await;
    let _ = tokio::time::timeout(Duration::from_millis(200), e.follower).await;
    tracing::debug!(instance = %name, "instance shut down");
}

async fn run(config_path: PathBuf, cfg: Config, socket: PathBuf, state_dir: PathBuf) -> ExitCode {
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            tracing::error!("cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let listener = match control::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(socket = %socket.display(), error = %e, "cannot open the status socket");
            return ExitCode::FAILURE;
        }
    };
    let (takeover, requests) = TakeoverGate::new();
    let engine = match engine::start(&cfg, &state_dir, requests) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the IPVS engine");
            let _ = std::fs::remove_file(&socket);
            return ExitCode::FAILURE;
        }
    };
    // Checks start before the instances: both directors check, whatever their role.
    let checks = match health::HealthChecks::start(&cfg, engine.clone()) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the health checks");
            let _ = std::fs::remove_file(&socket);
            return ExitCode::FAILURE;
        }
    };
    let mut entries = Vec::new();
    for inst in &cfg.instances {
        match start_one(inst, &takeover, &engine).await {
            Ok(e) => {
                tracing::info!(
                    instance = %inst.name,
                    interface = %inst.interface,
                    vrid = inst.vrid,
                    priority = inst.priority,
                    "instance started"
                );
                entries.push(e);
            }
            Err(err) => {
                tracing::error!(instance = %inst.name, error = %err, "cannot start the instance; stopping");
                for e in entries {
                    stop_one(e).await;
                }
                let _ = std::fs::remove_file(&socket);
                return ExitCode::FAILURE;
            }
        }
    }
    let running = Arc::new(Mutex::new(Running {
        config_path: config_path.clone(),
        entries,
        engine: engine.clone(),
        health: checks.clone(),
        takeover,
    }));
    let quorum = tokio::spawn(health::follow_quorum(
        checks.quorum_effects(),
        running.clone(),
    ));
    let server = tokio::spawn(control::serve(listener, running.clone()));
    tracing::info!(
        config = %config_path.display(),
        socket = %socket.display(),
        instances = cfg.instances.len(),
        virtual_services = cfg.virtual_services.len(),
        "director running"
    );
    let mut current = cfg;
    let signame = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => {
                current = reload_from(&config_path, current, &running).await;
            }
        }
    };
    tracing::info!(
        signal = signame,
        "stopping: resigning every instance and removing the VIPs"
    );
    server.abort();
    quorum.abort();
    // The gates stop programming now and withdraw each instance's services once its VIPs are
    // gone ("VIP off, then withdraw"): the instances are shut down meanwhile.
    let engine_stopped = engine.stop();
    let entries = std::mem::take(&mut running.lock().await.entries);
    let mut set = tokio::task::JoinSet::new();
    for e in entries {
        set.spawn(stop_one(e));
    }
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while set.join_next().await.is_some() {}
        let _ = engine_stopped.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            deadline = ?DRAIN_DEADLINE,
            "graceful stop overran its deadline; exiting anyway"
        );
    }
    let _ = std::fs::remove_file(&socket);
    tracing::info!("director stopped");
    ExitCode::SUCCESS
}

/// SIGHUP: validate the file again; keep the running configuration if it is invalid, apply the
/// difference if it is valid. Returns the configuration now running.
async fn reload_from(path: &Path, old: Config, running: &Arc<Mutex<Running>>) -> Config {
    tracing::info!(config = %path.display(), "SIGHUP: reloading");
    let new = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            for line in e.to_string().lines() {
                tracing::error!("reload refused: {line}");
            }
            tracing::error!("reload refused: keeping the running configuration");
            return old;
        }
    };
    let changes = reload::diff(&old, &new);
    let services_changed = old.virtual_services != new.virtual_services || old.ipvs != new.ipvs;
    if changes.is_empty() && !services_changed {
        tracing::info!("reload: no change");
        return new;
    }
    let mut r = running.lock().await;
    let mut failed: Vec<String> = Vec::new();
    for c in changes {
        match c {
            Change::Remove(name) => {
                if let Some(i) = r.entries.iter().position(|e| e.cfg.name == name) {
                    let e = r.entries.remove(i);
                    tracing::info!(instance = %name, "reload: removing");
                    stop_one(e).await;
                }
            }
            Change::Restart(inst) => {
                if let Some(i) = r.entries.iter().position(|e| e.cfg.name == inst.name) {
                    let e = r.entries.remove(i);
                    tracing::info!(instance = %inst.name, "reload: restarting with new settings");
                    stop_one(e).await;
                }
                if !add(&mut r, &inst).await {
                    failed.push(inst.name.clone());
                }
            }
            Change::Update(inst) => {
                let Some(i) = r.entries.iter().position(|e| e.cfg.name == inst.name) else {
                    continue;
                };
                match r.entries[i].handle.update(convert::to_havip(&inst)).await {
                    Ok(()) => {
                        tracing::info!(instance = %inst.name, "reload: updated in place");
                        r.entries[i].cfg = inst;
                    }
                    Err(err) => {
                        tracing::warn!(instance = %inst.name, error = %err,
                            "reload: cannot update in place, restarting");
                        stop_one(r.entries.remove(i)).await;
                        if !add(&mut r, &inst).await {
                            failed.push(inst.name.clone());
                        }
                    }
                }
            }
            Change::Add(inst) => {
                tracing::info!(instance = %inst.name, "reload: adding");
                if !add(&mut r, &inst).await {
                    failed.push(inst.name.clone());
                }
            }
            Change::GlobalNeedsRestart => tracing::warn!(
                "reload: the `global:` section changed; it applies at the next start"
            ),
        }
    }
    // An instance that failed to start is not running: leave it out, so the next SIGHUP
    // tries it again.
    let mut new = new;
    new.instances.retain(|i| !failed.contains(&i.name));
    // Keep the status in file order.
    r.entries.sort_by_key(|e| {
        new.instances
            .iter()
            .position(|i| i.name == e.cfg.name)
            .unwrap_or(usize::MAX)
    });
    // Services reconcile; VRRP is not touched for them.
    r.health.reload(&new);
    r.engine.reload(&new);
    new
}

/// Starts `inst` and adds it to the running set; false if it could not start.
async fn add(r: &mut Running, inst: &Instance) -> bool {
    match start_one(inst, &r.takeover, &r.engine).await {
        Ok(e) => {
            r.entries.push(e);
            true
        }
        Err(err) => {
            tracing::error!(instance = %inst.name, error = %err, "reload: cannot start");
            false
        }
    }
}
