//! The runner's side effects that need memory between loop turns, kept small and testable:
//! the VIP reconciler (desired state + retry with backoff), the interface attach backoff, the
//! GARP burst schedule, and the notify queue.

use std::process::Stdio;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// First retry delay of a failed VIP add/remove.
pub const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest retry delay.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// Whether the VIPs should be on the interface, and when to try again after a failure.
#[derive(Debug, Clone)]
pub struct VipReconciler {
    /// Wanted on the interface.
    pub want: bool,
    /// The kernel matches `want` for every VIP (as far as the last attempt knows).
    pub settled: bool,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl VipReconciler {
    /// Nothing wanted, and not yet known to be absent: a process that was killed (SIGKILL, OOM,
    /// abort) leaves its VIPs on the interface, so the runner removes them once before it can
    /// call the state settled ("address not there" counts as done). Starting as settled would
    /// let a restarted Backup keep a crashed Master's VIP while the peer holds it too.
    pub fn new() -> VipReconciler {
        VipReconciler {
            want: false,
            settled: false,
            backoff: RETRY_MIN,
            retry_at: None,
        }
    }

    /// Changes the wanted state; the caller then applies it at once.
    pub fn set_want(&mut self, want: bool) {
        if want != self.want || !self.settled {
            self.want = want;
            self.settled = false;
            self.backoff = RETRY_MIN;
            self.retry_at = None;
        }
    }

    /// Records the outcome of an attempt made at `now`; on failure schedules the next one with a
    /// doubling delay (100 ms, 200 ms, ... 5 s).
    pub fn attempted(&mut self, ok: bool, now: Instant) {
        if ok {
            self.settled = true;
            self.retry_at = None;
            self.backoff = RETRY_MIN;
        } else {
            self.settled = false;
            self.retry_at = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(RETRY_MAX);
        }
    }

    /// The interface is missing: an add cannot be tried until it is back (no retry timer; the
    /// runner calls [`VipReconciler::unsettle`] and applies again once attached). A remove is
    /// done: the addresses went with the interface.
    pub fn interface_missing(&mut self) {
        if self.want {
            self.settled = false;
            self.retry_at = None;
        } else {
            self.attempted(true, Instant::now());
        }
    }

    /// Forgets what the last attempt achieved (the interface was re-created: the VIPs are not
    /// on the new one); the caller applies again at once.
    pub fn unsettle(&mut self) {
        self.settled = false;
        self.backoff = RETRY_MIN;
        self.retry_at = None;
    }

    /// When to retry (`None` when settled or not yet attempted).
    pub fn retry_at(&self) -> Option<Instant> {
        if self.settled {
            None
        } else {
            self.retry_at
        }
    }
}

/// First retry delay when the interface, its address or its socket is not there yet.
pub const ATTACH_RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest retry delay of the interface attach (link and address events also trigger a retry
/// at once, so this only bounds how late a missed event is noticed).
pub const ATTACH_RETRY_MAX: Duration = Duration::from_secs(2);

/// When to try attaching to the interface again: a doubling delay from
/// [`ATTACH_RETRY_MIN`] to [`ATTACH_RETRY_MAX`], reset by a success.
#[derive(Debug, Clone)]
pub struct AttachBackoff {
    delay: Duration,
    at: Option<Instant>,
}

impl AttachBackoff {
    /// Nothing scheduled.
    pub fn new() -> AttachBackoff {
        AttachBackoff {
            delay: ATTACH_RETRY_MIN,
            at: None,
        }
    }

    /// An attempt failed at `now`: schedule the next one and double the delay.
    pub fn failed(&mut self, now: Instant) {
        self.at = Some(now + self.delay);
        self.delay = (self.delay * 2).min(ATTACH_RETRY_MAX);
    }

    /// Attached: nothing scheduled, the next failure starts from the shortest delay.
    pub fn reset(&mut self) {
        self.delay = ATTACH_RETRY_MIN;
        self.at = None;
    }

    /// When the next attempt is due.
    pub fn due(&self) -> Option<Instant> {
        self.at
    }
}

/// The schedule of gratuitous ARP / NA bursts: `repeat` sends `interval` apart on each trigger,
/// and a new burst every `refresh` while enabled.
#[derive(Debug, Clone)]
pub struct GarpSchedule {
    repeat: u32,
    interval: Duration,
    refresh: Option<Duration>,
    remaining: u32,
    next_send: Option<Instant>,
    next_refresh: Option<Instant>,
}

impl GarpSchedule {
    /// A stopped schedule.
    pub fn new(repeat: u32, interval: Duration, refresh: Option<Duration>) -> GarpSchedule {
        GarpSchedule {
            repeat,
            interval,
            refresh,
            remaining: 0,
            next_send: None,
            next_refresh: None,
        }
    }

    /// Starts a burst now (replacing any running one) and re-arms the refresh.
    pub fn trigger(&mut self, now: Instant) {
        if self.repeat == 0 {
            return;
        }
        self.remaining = self.repeat;
        self.next_send = Some(now);
        self.next_refresh = self.refresh.map(|r| now + r);
    }

    /// New settings (a configuration updated in place). `active`: the VIPs are up, so the
    /// refresh re-arms from `now` with the new period; a running burst keeps going, cut to the
    /// new `repeat`. `repeat == 0` stops everything.
    pub fn reconfigure(
        &mut self,
        repeat: u32,
        interval: Duration,
        refresh: Option<Duration>,
        active: bool,
        now: Instant,
    ) {
        self.repeat = repeat;
        self.interval = interval;
        self.refresh = refresh;
        if repeat == 0 {
            self.stop();
            return;
        }
        self.remaining = self.remaining.min(repeat);
        if self.remaining == 0 {
            self.next_send = None;
        }
        self.next_refresh = if active {
            refresh.map(|r| now + r)
        } else {
            None
        };
    }

    /// Stops bursts and refreshes (on leaving Master).
    pub fn stop(&mut self) {
        self.remaining = 0;
        self.next_send = None;
        self.next_refresh = None;
    }

    /// The next instant something is due.
    pub fn next_due(&self) -> Option<Instant> {
        match (self.next_send, self.next_refresh) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether one announcement is due at `now`; advances the schedule when it is.
    pub fn poll(&mut self, now: Instant) -> bool {
        if let Some(r) = self.next_refresh {
            if r <= now && self.remaining == 0 {
                self.trigger(now);
            }
        }
        match self.next_send {
            Some(t) if t <= now && self.remaining > 0 => {
                self.remaining -= 1;
                self.next_send = (self.remaining > 0).then(|| now + self.interval);
                true
            }
            _ => false,
        }
    }
}

/// One notify command to run.
#[derive(Debug, Clone)]
pub struct NotifyJob {
    /// The command line (run by `sh -c`, with the arguments appended as `"$@"`).
    pub command: String,
    /// `INSTANCE`, name, state, priority: keepalived's `$1 $2 $3 $4`.
    pub args: Vec<String>,
    /// Extra environment (`HAVIP_*`).
    pub env: Vec<(String, String)>,
}

/// Longest a notify command may run before it is killed.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the notify task: runs jobs one at a time, in order (as keepalived does), each bounded
/// by [`NOTIFY_TIMEOUT`]. Failures are sent back on `failures` for counting.
pub fn spawn_notifier(
    failures: mpsc::UnboundedSender<String>,
) -> (
    mpsc::UnboundedSender<NotifyJob>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<NotifyJob>();
    let h = tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            if let Err(e) = run_notify(&job).await {
                tracing::warn!(command = %job.command, error = %e, "notify command failed");
                let _ = failures.send(e);
            }
        }
    });
    (tx, h)
}

/// Runs one notify job to completion (or its timeout).
pub async fn run_notify(job: &NotifyJob) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{} \"$@\"", job.command))
        .arg("havip-notify")
        .args(&job.args)
        .envs(job.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    // On a timeout, or when this future is dropped (a fence's own timeout), the whole process
    // group is killed; a command that finished keeps whatever it started in the background.
    let mut guard = GroupGuard(child.id().and_then(|p| i32::try_from(p).ok()));
    let r = tokio::time::timeout(NOTIFY_TIMEOUT, child.wait()).await;
    if matches!(r, Ok(Ok(_))) {
        guard.0 = None;
    }
    match r {
        Ok(Ok(st)) if st.success() => Ok(()),
        Ok(Ok(st)) => Err(format!("exited with {st}")),
        Ok(Err(e)) => Err(format!("wait: {e}")),
        Err(_) => Err(format!("timed out after {NOTIFY_TIMEOUT:?}")),
    }
}

/// Kills a command's process group when dropped while armed (timed out or cancelled), so a hung
/// notify or fence script leaves nothing behind.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Runs a fence command (`sh -c`), bounded by `limit`: Ok only on exit status 0.
pub async fn run_fence(command: &str, limit: Duration) -> Result<(), String> {
    let job = NotifyJob {
        command: command.to_string(),
        args: Vec::new(),
        env: Vec::new(),
    };
    match tokio::time::timeout(limit, run_notify(&job)).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {limit:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_backoff_doubles_caps_and_resets() {
        let t0 = Instant::now();
        let mut b = AttachBackoff::new();
        assert_eq!(b.due(), None);
        let mut delays = Vec::new();
        for _ in 0..7 {
            b.failed(t0);
            delays.push(b.due().map(|d| d - t0));
        }
        let ms = |v| Some(Duration::from_millis(v));
        assert_eq!(
            delays,
            vec![
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(2000),
                ms(2000)
            ]
        );
        b.reset();
        assert_eq!(b.due(), None);
        b.failed(t0);
        assert_eq!(b.due(), Some(t0 + ATTACH_RETRY_MIN));
    }

    #[test]
    fn vips_wait_for_a_missing_interface_without_a_retry_timer() {
        let mut r = VipReconciler::new();
        r.set_want(true);
        r.interface_missing();
        assert!(!r.settled);
        assert_eq!(r.retry_at(), None, "no timer: the attach applies them");
        r.attempted(true, Instant::now());
        assert!(r.settled);
        r.unsettle();
        assert!(!r.settled, "re-created interface: apply again");
        r.set_want(false);
        r.interface_missing();
        assert!(r.settled, "a remove is done when the interface is gone");
    }

    #[test]
    fn a_new_reconciler_must_remove_before_it_is_settled() {
        // A killed process leaves its VIPs behind: "nothing wanted" is not "nothing held" until
        // a removal has been attempted (or the interface is known to be gone).
        let mut r = VipReconciler::new();
        assert!(!r.want && !r.settled, "a leftover may be on the interface");
        assert_eq!(
            r.retry_at(),
            None,
            "the first attempt is the caller's, at once"
        );
        r.set_want(false);
        assert!(
            !r.settled,
            "asking for nothing again still asks for a removal"
        );
        r.attempted(false, Instant::now());
        assert!(r.retry_at().is_some(), "a failed removal is retried");
        r.attempted(true, Instant::now());
        assert!(r.settled);
        let mut r = VipReconciler::new();
        r.interface_missing();
        assert!(r.settled, "no interface: no address to remove");
    }

    #[test]
    fn vip_retry_backs_off_and_caps() {
        let t0 = Instant::now();
        let mut r = VipReconciler::new();
        r.set_want(true);
        assert!(!r.settled);
        assert_eq!(
            r.retry_at(),
            None,
            "first attempt is immediate, by the caller"
        );
        r.attempted(false, t0);
        assert_eq!(r.retry_at(), Some(t0 + Duration::from_millis(100)));
        r.attempted(false, t0);
        assert_eq!(r.retry_at(), Some(t0 + Duration::from_millis(200)));
        for _ in 0..10 {
            r.attempted(false, t0);
        }
        assert_eq!(r.retry_at(), Some(t0 + RETRY_MAX));
        r.attempted(true, t0);
        assert!(r.settled);
        assert_eq!(r.retry_at(), None);
        r.set_want(false);
        assert!(!r.settled && !r.want);
    }

    #[test]
    fn garp_burst_then_refresh() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut g = GarpSchedule::new(3, ms(100), Some(ms(1000)));
        assert_eq!(g.next_due(), None);
        g.trigger(t0);
        assert!(g.poll(t0));
        assert!(!g.poll(t0 + ms(50)), "not before the interval");
        assert!(g.poll(t0 + ms(100)));
        assert!(g.poll(t0 + ms(200)));
        assert!(!g.poll(t0 + ms(300)), "burst of 3 is over");
        assert_eq!(g.next_due(), Some(t0 + ms(1000)));
        assert!(g.poll(t0 + ms(1000)), "refresh starts a new burst");
        g.stop();
        assert_eq!(g.next_due(), None);
        assert!(!g.poll(t0 + ms(5000)));
    }

    #[test]
    fn garp_reconfigure_rearms_the_refresh_only_while_active() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut g = GarpSchedule::new(3, ms(100), None);
        g.trigger(t0);
        assert!(g.poll(t0));
        g.reconfigure(2, ms(50), Some(ms(1000)), true, t0 + ms(10));
        assert_eq!(g.next_due(), Some(t0 + ms(100)), "the burst goes on");
        assert!(g.poll(t0 + ms(100)));
        assert!(g.poll(t0 + ms(150)), "new interval");
        assert!(!g.poll(t0 + ms(200)), "cut to the new repeat");
        assert_eq!(
            g.next_due(),
            Some(t0 + ms(1010)),
            "refresh armed from the update"
        );
        g.reconfigure(2, ms(50), Some(ms(500)), false, t0 + ms(300));
        assert_eq!(g.next_due(), None, "not Master: nothing to refresh");
        g.trigger(t0 + ms(400));
        g.reconfigure(0, ms(50), Some(ms(500)), true, t0 + ms(400));
        assert_eq!(g.next_due(), None, "repeat 0 turns announcements off");
    }

    #[test]
    fn garp_repeat_zero_is_off() {
        let mut g = GarpSchedule::new(0, Duration::from_millis(100), None);
        let t0 = Instant::now();
        g.trigger(t0);
        assert!(!g.poll(t0));
        assert_eq!(g.next_due(), None);
    }

    #[test]
    fn notify_gets_keepalived_arguments_and_env() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = std::env::temp_dir().join(format!("havip-notify-{}", std::process::id()));
        // The command sees keepalived's arguments as $1..$4 and the HAVIP_* environment.
        let job = NotifyJob {
            command: format!(
                "f() {{ printf '%s %s %s %s|%s' \"$1\" \"$2\" \"$3\" \"$4\" \"$HAVIP_STATE\" >{}; }}; f",
                out.display()
            ),
            args: vec!["INSTANCE".into(), "vi_1".into(), "MASTER".into(), "150".into()],
            env: vec![("HAVIP_STATE".into(), "MASTER".into())],
        };
        rt.block_on(run_notify(&job)).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert_eq!(got, "INSTANCE vi_1 MASTER 150|MASTER");
        let bad = NotifyJob {
            command: "exit 7".into(),
            args: vec![],
            env: vec![],
        };
        let e = rt.block_on(run_notify(&bad)).unwrap_err();
        assert!(e.contains("7"), "{e}");
        assert!(rt
            .block_on(run_fence("false", Duration::from_secs(2)))
            .is_err());
        assert!(rt
            .block_on(run_fence("true", Duration::from_secs(2)))
            .is_ok());
        // A fence that hangs is cut at its limit, its children with it.
        let marker = std::env::temp_dir().join(format!("havip-fence-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let hang = format!("(sleep 0.6; touch {}) & wait", marker.display());
        let e = rt
            .block_on(run_fence(&hang, Duration::from_millis(200)))
            .unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        std::thread::sleep(Duration::from_millis(800));
        assert!(!marker.exists(), "the fence's child survived");
    }
}
