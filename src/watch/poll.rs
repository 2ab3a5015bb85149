//! The adaptive poll interval.

use std::time::Duration;

/// The interval right after a change: more changes usually follow.
pub const FAST: Duration = Duration::from_millis(250);
/// The longest interval while the deployment runs and nothing changes.
/// Bounds how late ferry notices the end to under a second, where `aws
/// deploy wait` polls every 15 s and the Jenkins steps every 10-15 s. Ten
/// quiet minutes cost about 750 GetDeployment calls at this pace; if
/// CodeDeploy throttles them, [`Poll::throttled`] slows down.
pub const IDLE_MAX: Duration = Duration::from_millis(800);
/// How often the loops that wait on a group rather than follow one
/// deployment (the queue, the bake, the rollback's link) read CodeDeploy,
/// and the least a throttled watch waits.
pub const SLOW: Duration = Duration::from_secs(2);
/// The longest interval while throttled or cut off.
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Tracks how long to sleep before the next poll.
#[derive(Debug)]
pub struct Poll {
    interval: Duration,
}

impl Poll {
    /// Starts fast: a new deployment changes quickly.
    pub fn new() -> Poll {
        Poll { interval: FAST }
    }

    /// After a successful read: fast again on change, else 1.5× slower up to [`IDLE_MAX`].
    pub fn observed(&mut self, changed: bool) {
        self.interval = if changed { FAST } else { (self.interval * 3 / 2).min(IDLE_MAX) };
    }

    /// After throttling or a lost connection: double, up to 8 s.
    pub fn throttled(&mut self) {
        self.interval = (self.interval * 2).clamp(SLOW, BACKOFF_MAX);
    }

    /// How long to sleep now.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_polling_backs_off_but_never_past_the_idle_maximum() {
        let mut p = Poll::new();
        for _ in 0..50 {
            p.observed(false);
            assert!(p.interval() < Duration::from_secs(1), "the end could be noticed a second late: {:?}", p.interval());
        }
        assert_eq!(p.interval(), IDLE_MAX);
        p.observed(true);
        assert_eq!(p.interval(), FAST);
    }

    #[test]
    fn throttling_backs_off_further_and_recovers_on_change() {
        let mut p = Poll::new();
        for _ in 0..10 {
            p.throttled();
        }
        assert_eq!(p.interval(), BACKOFF_MAX);
        p.observed(true);
        assert_eq!(p.interval(), FAST);
    }
}
