//! deadline: how long a command may take, how long one AWS request may, and
//! what the user hears while an endpoint is silent.
//!
//! Data layer. Three bounds, from the inside out:
//!
//! - **Every request** carries the SDK's timeouts ([`sdk`]): connect, read
//!   (the answer's head), one attempt and the whole operation with its
//!   retries. A request with a large body ([`for_upload`]) gets time to send
//!   it at a slow but working rate first. A hung endpoint therefore costs
//!   one attempt, not the build.
//! - **The command** has one deadline ([`start`], from `--timeout`): the
//!   stages wrap each phase in a [`Watchdog`], which gives up when it
//!   passes. Once it has passed no deployment is created: the queue checks
//!   it before every CreateDeployment.
//! - **Silence is reported while it lasts**: a phase that hears nothing for
//!   [`STALL_NOTICE`] (less when `--timeout` is short) says so, and says
//!   again when the endpoint answers.
//!
//! Every `Instant + Duration` here is checked, so no value can overflow.

use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_smithy_types::timeout::TimeoutConfig;

use crate::event::{Event, Reporter};

/// While one lives, ferry is waiting for a person at the terminal (an MFA
/// code): no watchdog reports that time as a silent service.
pub struct AskingUser(());

static ASKING_USER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl AskingUser {
    /// Starts waiting for the person; ends when dropped.
    pub fn begin() -> AskingUser {
        ASKING_USER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        AskingUser(())
    }

    fn now() -> bool {
        ASKING_USER.load(std::sync::atomic::Ordering::SeqCst) > 0
    }
}

impl Drop for AskingUser {
    fn drop(&mut self) {
        ASKING_USER.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Silence longer than this is reported (and again after as long again).
pub const STALL_NOTICE: Duration = Duration::from_secs(20);
/// How long ferry waits for the head of an answer before the SDK retries,
/// unless `FERRY_READ_TIMEOUT` (seconds) says otherwise.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a TCP (and TLS) connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The slowest upload ferry still waits for before retrying a request with
/// a body: 128 KiB/s. A 16 MiB PUT gets 128 s more than [`READ_TIMEOUT`].
pub const MIN_UPLOAD_RATE: u64 = 128 << 10;
/// Attempts the SDK's standard retry makes; the operation timeout covers them.
const ATTEMPTS: u32 = 3;

/// A point in time a command must be done by, and the budget it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// `budget` from now (saturating: a budget too large for the clock means
    /// "no deadline in practice", never an overflow panic).
    pub fn after(budget: Duration) -> Deadline {
        Deadline { at: after(budget), budget }
    }

    /// The `--timeout` it was made from.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// `now + d`, or as far ahead as the clock goes: never panics.
pub fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| {
        // Halve until it fits: about 2^63 ns is the most any platform needs.
        let mut d = d;
        loop {
            d /= 2;
            if let Some(t) = now.checked_add(d) {
                return t;
            }
        }
    })
}

static COMMAND: OnceLock<Deadline> = OnceLock::new();

/// Starts the command's clock: `budget` (its `--timeout`) from now. Only the
/// first call counts; the face makes it once, before anything else.
pub fn start(budget: Duration) {
    let _ = COMMAND.set(Deadline::after(budget));
}

/// The command's deadline, if it has one.
pub fn command() -> Option<Deadline> {
    COMMAND.get().copied()
}

/// Whether the command's deadline has passed (false when there is none).
pub fn passed() -> bool {
    command().is_some_and(|d| d.passed())
}

/// The earlier of `at` and the command's deadline.
pub fn earlier(at: Instant) -> Instant {
    command().map_or(at, |d| d.at.min(at))
}

/// `FERRY_READ_TIMEOUT` in seconds (1-3600), else [`READ_TIMEOUT`].
pub fn read_timeout() -> Duration {
    static READ: OnceLock<Duration> = OnceLock::new();
    *READ.get_or_init(|| {
        std::env::var("FERRY_READ_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| (1..=3600).contains(s))
            .map_or(READ_TIMEOUT, Duration::from_secs)
    })
}

fn timeouts(read: Duration) -> TimeoutConfig {
    let attempt = read * 2;
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(read))
        .read_timeout(read)
        .operation_attempt_timeout(attempt)
        // Every attempt, plus the standard retry's backoff between them.
        .operation_timeout(attempt * ATTEMPTS + Duration::from_secs(10))
        .build()
}

/// The SDK timeouts every AWS client ferry makes gets: connect, read, one
/// attempt, and the operation with its retries.
pub fn sdk() -> TimeoutConfig {
    timeouts(read_timeout())
}

/// The timeouts for one request that sends `bytes` of body: the SDK's read
/// timeout runs from the first byte sent to the answer's head, so it must
/// cover sending the body at [`MIN_UPLOAD_RATE`].
pub fn for_upload(bytes: u64) -> TimeoutConfig {
    timeouts(read_timeout() + Duration::from_secs(bytes / MIN_UPLOAD_RATE))
}

/// How long a phase may be silent before it is reported: [`STALL_NOTICE`],
/// or half of a shorter `--timeout`, so the notice comes before the end.
pub fn notice_after() -> Duration {
    let half = command().map_or(STALL_NOTICE, |d| d.budget / 2);
    STALL_NOTICE.min(half).max(Duration::from_secs(1))
}

/// The command's deadline passed before a phase was done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "--timeout ({}) ran out while {doing}{}; nothing was deployed by this command. Raise --timeout, or check the network \
     path to {service} (proxy, firewall, AWS_ENDPOINT_URL_* if you set one).",
    humantime::format_duration(*budget),
    silence.map(|s| format!(" (no answer from {service} for the last {} s)", s.as_secs())).unwrap_or_default()
)]
pub struct Passed {
    /// The service the phase was waiting for.
    pub service: &'static str,
    /// What ferry was doing, e.g. "uploading the bundle to S3".
    pub doing: &'static str,
    /// The `--timeout`.
    pub budget: Duration,
    /// How long the service had been silent, if it was.
    pub silence: Option<Duration>,
}

/// Watches one phase of a command (an upload, a wait, a single call): gives
/// up when the command's deadline passes, and reports silence from the
/// service while it lasts.
///
/// It is also a [`Reporter`]: events sent through it (upload progress, say)
/// count as signs of life, so a slow upload that keeps moving is not called
/// a stall. Anything else that proves the service answered calls [`touch`].
///
/// [`touch`]: Watchdog::touch
pub struct Watchdog<'a> {
    service: &'static str,
    doing: &'static str,
    inner: &'a dyn Reporter,
    /// Silence longer than this is reported: [`notice_after`].
    notice: Duration,
    state: Mutex<Quiet>,
}

struct Quiet {
    /// The last sign of life.
    since: Instant,
    /// How long the silence had lasted when it was last reported.
    reported: Option<Duration>,
}

impl<'a> Watchdog<'a> {
    /// A watchdog for `doing` (e.g. "uploading the bundle to S3"), waiting
    /// for `service`, that reports through `inner`.
    pub fn new(service: &'static str, doing: &'static str, inner: &'a dyn Reporter) -> Watchdog<'a> {
        let state = Mutex::new(Quiet { since: Instant::now(), reported: None });
        Watchdog { service, doing, inner, notice: notice_after(), state }
    }

    #[cfg(test)]
    fn with_notice(mut self, notice: Duration) -> Self {
        self.notice = notice;
        self
    }

    /// The service answered: the silence (if any was reported) is over.
    pub fn touch(&self) {
        let mut q = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if q.reported.take().is_some() {
            let message = format!("{} answered again after {} s", self.service, q.since.elapsed().as_secs());
            q.since = Instant::now();
            drop(q);
            self.inner.report(&Event::Warning { message });
        } else {
            q.since = Instant::now();
        }
    }

    /// How long the service has been silent.
    pub fn silence(&self) -> Duration {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).since.elapsed()
    }

    /// Whether a silence has been reported and not yet ended.
    pub fn stalled(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).reported.is_some()
    }

    fn check(&self) {
        let notice = self.notice;
        let mut q = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if AskingUser::now() {
            // The wait is the person's, not the service's.
            q.since = Instant::now();
            return;
        }
        let quiet = q.since.elapsed();
        let due = match q.reported {
            None => quiet >= notice,
            Some(last) => quiet >= last + notice,
        };
        if !due {
            return;
        }
        q.reported = Some(quiet);
        drop(q);
        let left = command().map(|d| format!(", {} s left of --timeout", d.remaining().as_secs())).unwrap_or_default();
        self.inner.report(&Event::Warning {
            message: format!(
                "no answer from {} for {} s while {}; still waiting{left}",
                self.service,
                quiet.as_secs(),
                self.doing
            ),
        });
    }

    /// The error for this phase running out of time.
    pub fn passed(&self) -> Passed {
        let silence = self.silence();
        Passed {
            service: self.service,
            doing: self.doing,
            budget: command().map_or(Duration::ZERO, |d| d.budget),
            silence: (silence >= self.notice).then_some(silence),
        }
    }

    /// Awaits `fut` within the command's deadline, reporting silence.
    pub async fn run<T>(&self, fut: impl Future<Output = T>) -> Result<T, Passed> {
        self.run_until(None, fut).await
    }

    /// Like [`run`](Watchdog::run), but also gives up at `until` (the
    /// earlier of the two wins).
    pub async fn run_until<T>(&self, until: Option<Instant>, fut: impl Future<Output = T>) -> Result<T, Passed> {
        let end = match (until, command().map(|d| d.at)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.watch(end, fut).await
    }

    /// Awaits `fut` to its end whatever the deadline, reporting silence: for
    /// a call that must not be abandoned halfway (one whose effect ferry
    /// has to learn, such as CreateDeployment's).
    pub async fn finish<T>(&self, fut: impl Future<Output = T>) -> T {
        tokio::pin!(fut);
        let mut tick = self.ticker();
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => self.check(),
            }
        }
    }

    fn ticker(&self) -> tokio::time::Interval {
        let mut tick = tokio::time::interval((self.notice / 4).min(Duration::from_millis(500)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    }

    async fn watch<T>(&self, end: Option<Instant>, fut: impl Future<Output = T>) -> Result<T, Passed> {
        tokio::pin!(fut);
        let mut tick = self.ticker();
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                _ = sleep_until(end) => return Err(self.passed()),
                _ = tick.tick() => self.check(),
            }
        }
    }
}

async fn sleep_until(end: Option<Instant>) {
    match end {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Reporter for Watchdog<'_> {
    fn report(&self, event: &Event) {
        self.touch();
        self.inner.report(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Lines(Mutex<Vec<String>>);
    impl Reporter for Lines {
        fn report(&self, event: &Event) {
            if let Event::Warning { message } = event {
                self.0.lock().unwrap().push(message.clone());
            }
        }
    }

    #[test]
    fn a_deadline_beyond_the_clock_saturates_instead_of_panicking() {
        let d = Deadline::after(Duration::from_secs(u64::MAX));
        assert!(!d.passed());
        assert!(d.remaining() > Duration::from_secs(3600 * 24 * 365));
        assert!(after(Duration::MAX) > Instant::now());
    }

    #[test]
    fn uploads_get_time_to_send_their_body_at_the_slowest_rate() {
        let small = sdk();
        let big = for_upload(16 << 20);
        assert_eq!(small.read_timeout(), Some(read_timeout()));
        assert_eq!(big.read_timeout(), Some(read_timeout() + Duration::from_secs(128)));
        assert!(big.operation_attempt_timeout() > small.operation_attempt_timeout());
        for t in [small, big] {
            assert!(t.connect_timeout().is_some() && t.operation_timeout().is_some(), "{t:?}");
        }
    }

    #[tokio::test]
    async fn silence_is_reported_while_it_lasts_and_its_end_too() {
        let lines = Lines(Mutex::new(Vec::new()));
        let dog = Watchdog::new("S3", "uploading the bundle to S3", &lines).with_notice(Duration::from_millis(50));
        // Silent until the watchdog has spoken twice, however slowly the
        // machine runs: the notices are counted, not timed.
        let silent_for_two_notices = async {
            while lines.0.lock().unwrap().len() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        dog.run(silent_for_two_notices).await.unwrap();
        dog.touch();
        let lines = lines.0.into_inner().unwrap();
        assert_eq!(lines.len(), 3, "two notices, then the end of the silence: {lines:?}");
        for notice in &lines[..2] {
            assert!(notice.starts_with("no answer from S3 for "), "{lines:?}");
            assert!(notice.contains(" s while uploading the bundle to S3; still waiting"), "{lines:?}");
        }
        assert!(lines[2].starts_with("S3 answered again after "), "{lines:?}");
    }

    #[tokio::test]
    async fn signs_of_life_keep_a_slow_phase_from_being_called_a_stall() {
        let lines = Lines(Mutex::new(Vec::new()));
        let dog = Watchdog::new("S3", "uploading", &lines).with_notice(Duration::from_millis(300));
        let progress = async {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                dog.report(&Event::UploadProgress { sent: 1, total: 2 });
            }
        };
        dog.run(progress).await.unwrap();
        assert!(lines.0.into_inner().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_phase_gives_up_at_its_own_limit() {
        let lines = Lines(Mutex::new(Vec::new()));
        let dog = Watchdog::new("CodeDeploy", "waiting", &lines).with_notice(Duration::from_millis(50));
        let until = after(Duration::from_millis(200));
        let err = dog.run_until(Some(until), std::future::pending::<()>()).await.unwrap_err();
        assert_eq!((err.service, err.doing), ("CodeDeploy", "waiting"));
        assert!(err.silence.is_some(), "{err:?}");
    }

    #[test]
    fn time_spent_asking_the_user_is_not_called_a_silent_service() {
        let lines = Lines(Mutex::new(Vec::new()));
        // Every check is due: only the person at the terminal holds it back.
        let dog = Watchdog::new("STS", "assuming the role", &lines).with_notice(Duration::ZERO);
        let asking = AskingUser::begin();
        dog.check();
        assert!(lines.0.lock().unwrap().is_empty());
        drop(asking);
        dog.check();
        assert_eq!(lines.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_error_names_the_phase_the_budget_and_the_silence() {
        let e = Passed {
            service: "S3",
            doing: "uploading the bundle to S3",
            budget: Duration::from_secs(20),
            silence: Some(Duration::from_secs(12)),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("--timeout (20s) ran out while uploading the bundle to S3 (no answer from S3 for the last 12 s)")
        );
        assert!(text.contains("nothing was deployed"), "{text}");
    }
}
