//! Restart policies and the pure arithmetic that applies them.
//!
//! Nothing in this module touches the clock or a random source: the unit loop
//! passes `now` and a random number in, so every branch is unit-tested.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::Error;
use crate::recent::Recent;

/// How many restarts a unit may have before the supervisor gives up on it.
///
/// The count is of *restarts*, not runs: `AtMost(3)` lets a unit that keeps
/// failing run four times; it then ends [`Failed`](crate::UnitState::Failed)
/// with `restart_count == 3`. `AtMost(0)` runs a unit once.
///
/// # Examples
///
/// ```
/// use supervisor::MaxRestarts;
///
/// assert_eq!(MaxRestarts::from(-1), MaxRestarts::Unlimited);
/// assert_eq!(MaxRestarts::from(3), MaxRestarts::AtMost(3));
/// assert!(MaxRestarts::AtMost(3).allows(2));
/// assert!(!MaxRestarts::AtMost(3).allows(3));
/// ```
///
/// More kinds of limit may be added: a `match` on it needs a `_` arm.
///
/// ```
/// use supervisor::MaxRestarts;
///
/// fn describe(max: MaxRestarts) -> String {
///     match max {
///         MaxRestarts::Unlimited => "for ever".to_owned(),
///         MaxRestarts::AtMost(n) => format!("at most {n} times"),
///         _ => max.to_string(),
///     }
/// }
/// assert_eq!(describe(MaxRestarts::AtMost(2)), "at most 2 times");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MaxRestarts {
    /// Restart for ever.
    #[default]
    Unlimited,
    /// Restart at most this many times.
    AtMost(u32),
}

impl MaxRestarts {
    /// Whether one more restart is allowed after `performed` restarts.
    ///
    /// ```
    /// use supervisor::MaxRestarts;
    ///
    /// assert!(MaxRestarts::Unlimited.allows(u32::MAX));
    /// assert!(MaxRestarts::AtMost(1).allows(0)); // the first restart
    /// assert!(!MaxRestarts::AtMost(1).allows(1)); // no second one
    /// assert!(!MaxRestarts::AtMost(0).allows(0)); // runs once
    /// ```
    #[must_use]
    pub fn allows(self, performed: u32) -> bool {
        match self {
            MaxRestarts::Unlimited => true,
            MaxRestarts::AtMost(max) => performed < max,
        }
    }
}

/// `-1` (or any negative number) is `Unlimited`; `n >= 0` is `AtMost(n)`,
/// saturating at `u32::MAX`. This is the convention of the macros' `max = -1`.
impl From<i64> for MaxRestarts {
    fn from(value: i64) -> Self {
        if value < 0 { MaxRestarts::Unlimited } else { MaxRestarts::AtMost(u32::try_from(value).unwrap_or(u32::MAX)) }
    }
}

impl From<i32> for MaxRestarts {
    fn from(value: i32) -> Self {
        MaxRestarts::from(i64::from(value))
    }
}

impl fmt::Display for MaxRestarts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxRestarts::Unlimited => f.write_str("unlimited"),
            MaxRestarts::AtMost(n) => write!(f, "{n}"),
        }
    }
}

/// Which endings of a run lead to a restart.
///
/// A run *succeeds* when a task returns `Ok(())` or `()`, or a process exits
/// with code 0. Everything else (an `Err`, a panic, a non-zero exit code, a
/// signal, a failure to spawn) is a failure.
///
/// # Examples
///
/// ```
/// use supervisor::RestartOn;
///
/// assert!(RestartOn::Failure.restarts_after(false));
/// assert!(!RestartOn::Failure.restarts_after(true));
/// ```
///
/// More rules may be added: a `match` on it needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RestartOn {
    /// Restart whatever the ending (a supervisor's usual promise).
    #[default]
    Always,
    /// Restart only after a failure; a successful run ends the unit as
    /// [`Exited`](crate::UnitState::Exited).
    Failure,
    /// Never restart: the unit runs once.
    Never,
}

impl RestartOn {
    /// Whether a run that ended with `succeeded` is restarted.
    ///
    /// ```
    /// use supervisor::RestartOn;
    ///
    /// for succeeded in [true, false] {
    ///     assert!(RestartOn::Always.restarts_after(succeeded));
    ///     assert!(!RestartOn::Never.restarts_after(succeeded));
    /// }
    /// assert!(RestartOn::Failure.restarts_after(false));
    /// assert!(!RestartOn::Failure.restarts_after(true));
    /// ```
    #[must_use]
    pub fn restarts_after(self, succeeded: bool) -> bool {
        match self {
            RestartOn::Always => true,
            RestartOn::Failure => !succeeded,
            RestartOn::Never => false,
        }
    }
}

/// When and how often a unit is restarted.
///
/// `delay` alone is a fixed delay between restarts. Everything else is opt-in:
/// exponential [`backoff`](Self::backoff) capped by [`max_delay`](Self::max_delay),
/// [`jitter`](Self::jitter), a [`reset_after`](Self::reset_after) a stable run,
/// and an intensity [`window`](Self::window) (at most N restarts within a
/// period, like OTP's intensity/period or systemd's `StartLimitBurst`).
///
/// The default is a 1 s delay, unlimited restarts, restart on any ending.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use supervisor::{MaxRestarts, RestartOn, RestartPolicy};
///
/// let policy = RestartPolicy::new()
///     .delay(Duration::from_millis(100))
///     .backoff(2.0)
///     .max_delay(Duration::from_secs(30))
///     .jitter(0.1)
///     .reset_after(Duration::from_secs(60))
///     .window(5, Duration::from_secs(10))
///     .max_restarts(MaxRestarts::Unlimited)
///     .on(RestartOn::Failure);
/// assert_eq!(policy.base_delay(), Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a policy does nothing until it is given to a spec with `.restart(policy)`"]
pub struct RestartPolicy {
    delay: Duration,
    max_restarts: MaxRestarts,
    on: RestartOn,
    /// The opt-in settings, allocated only when one is used: every unit holds
    /// a policy, and most use only the three fields above.
    tuning: Option<Box<Tuning>>,
}

/// Backoff, jitter, reset and window: each off until set.
#[derive(Debug, Clone, PartialEq)]
struct Tuning {
    backoff: f64,
    max_delay: Option<Duration>,
    jitter: f64,
    reset_after: Option<Duration>,
    window: Option<Window>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { backoff: 1.0, max_delay: None, jitter: 0.0, reset_after: None, window: None }
    }
}

/// At most `max` restarts within `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    max: u32,
    period: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            delay: Duration::from_secs(1),
            max_restarts: MaxRestarts::Unlimited,
            on: RestartOn::Always,
            tuning: None,
        }
    }
}

impl RestartPolicy {
    /// The default policy: 1 s fixed delay, unlimited restarts, restart always.
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{MaxRestarts, RestartOn, RestartPolicy};
    ///
    /// let policy = RestartPolicy::new();
    /// assert_eq!(policy.base_delay(), Duration::from_secs(1));
    /// assert_eq!(policy.restart_limit(), MaxRestarts::Unlimited);
    /// assert_eq!(policy.restart_on(), RestartOn::Always);
    /// assert_eq!(policy, RestartPolicy::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The wait before a restart (before backoff and jitter). A wait too
    /// long for the clock to hold (`Duration::MAX`, or a backoff grown that
    /// far) never ends: the unit stays in `Backoff` until a call restarts
    /// or stops it, with `tokio::time::pause()` too.
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{RestartPolicy, TaskSpec};
    ///
    /// let policy = RestartPolicy::new().delay(Duration::from_millis(250));
    /// assert_eq!(policy.base_delay(), Duration::from_millis(250));
    /// let spec = TaskSpec::new("poller", |_ctx| async {}).restart(policy);
    /// # let _ = spec;
    /// ```
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// How many restarts are allowed before the unit is given up as
    /// [`Failed`](crate::UnitState::Failed).
    ///
    /// Takes a [`MaxRestarts`] or, as the macros' `max = ...` does, an integer
    /// where `-1` means unlimited.
    ///
    /// ```
    /// use supervisor::{MaxRestarts, RestartPolicy};
    ///
    /// let policy = RestartPolicy::new().max_restarts(MaxRestarts::AtMost(3));
    /// assert_eq!(policy.restart_limit(), MaxRestarts::AtMost(3));
    /// assert_eq!(RestartPolicy::new().max_restarts(-1).restart_limit(), MaxRestarts::Unlimited);
    /// assert_eq!(RestartPolicy::new().max_restarts(0).restart_limit(), MaxRestarts::AtMost(0));
    /// ```
    pub fn max_restarts(mut self, max: impl Into<MaxRestarts>) -> Self {
        self.max_restarts = max.into();
        self
    }

    /// Which endings are restarted.
    ///
    /// ```
    /// use supervisor::{RestartOn, RestartPolicy};
    ///
    /// // A job that runs until it succeeds, then stays `Exited`.
    /// let policy = RestartPolicy::new().on(RestartOn::Failure);
    /// assert_eq!(policy.restart_on(), RestartOn::Failure);
    /// ```
    pub fn on(mut self, on: RestartOn) -> Self {
        self.on = on;
        self
    }

    /// Multiply the delay by `factor` after each restart (exponential
    /// backoff). `1.0`, the default, keeps the delay fixed. Must be finite and
    /// at least `1.0`; checked when the supervisor is built.
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{RestartPolicy, Supervisor, TaskSpec};
    ///
    /// // 1 s, 2 s, 4 s, ... between restarts, at most 1 min.
    /// let policy = RestartPolicy::new().delay(Duration::from_secs(1)).backoff(2.0).max_delay(Duration::from_secs(60));
    /// # let _ = policy;
    ///
    /// // A factor below 1.0 would shrink the delay: `build()` refuses it.
    /// let err = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |_ctx| async {}).restart(RestartPolicy::new().backoff(0.5)))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("backoff"), "{err}");
    /// ```
    pub fn backoff(mut self, factor: f64) -> Self {
        self.tuning_mut().backoff = factor;
        self
    }

    /// The longest delay there is: backoff and jitter stop at it, and a cap
    /// shorter than the [`delay`](Self::delay) shortens that delay too (a
    /// cap of zero restarts at once).
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::RestartPolicy;
    ///
    /// // 100 ms, 200 ms, 400 ms, ... then 10 s at most.
    /// let policy = RestartPolicy::new()
    ///     .delay(Duration::from_millis(100))
    ///     .backoff(2.0)
    ///     .max_delay(Duration::from_secs(10));
    /// # let _ = policy;
    /// ```
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.tuning_mut().max_delay = Some(max_delay);
        self
    }

    /// Lengthen each delay by a random fraction of itself, up to `fraction`
    /// (`0.0..=1.0`), so that units failing together do not restart in
    /// lockstep. Jitter only ever adds: a delay is never shorter than asked (but for a
    /// [`max_delay`](Self::max_delay) below it).
    /// A fraction outside `0.0..=1.0` is refused when the supervisor is built.
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{RestartPolicy, Supervisor, TaskSpec};
    ///
    /// // Each delay is 5 s to 5.5 s.
    /// let policy = RestartPolicy::new().delay(Duration::from_secs(5)).jitter(0.1);
    /// # let _ = policy;
    ///
    /// let err = Supervisor::builder()
    ///     .task(TaskSpec::new("worker", |_ctx| async {}).restart(RestartPolicy::new().jitter(1.5)))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("jitter"), "{err}");
    /// ```
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.tuning_mut().jitter = fraction;
        self
    }

    /// A run that lasts at least this long counts as stable: the next restart
    /// waits the base delay again, as if backoff had never grown.
    ///
    /// The restart count is not reset: [`max_restarts`](Self::max_restarts)
    /// still counts every restart (use [`window`](Self::window) for a limit
    /// that forgets old restarts).
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::RestartPolicy;
    ///
    /// // Backoff up to 5 min while it keeps crashing; after an hour of running
    /// // well, the next crash waits 1 s again.
    /// let policy = RestartPolicy::new()
    ///     .delay(Duration::from_secs(1))
    ///     .backoff(2.0)
    ///     .max_delay(Duration::from_secs(300))
    ///     .reset_after(Duration::from_secs(3600));
    /// # let _ = policy;
    /// ```
    pub fn reset_after(mut self, stable: Duration) -> Self {
        self.tuning_mut().reset_after = Some(stable);
        self
    }

    /// Give up when a restart would make more than `max_restarts` restarts
    /// within `period` (one exactly `period` earlier is within it, as
    /// systemd's start limit counts). Each restart is timed when it happens, after its
    /// delay: restarts a delay keeps further apart than `period` never fill
    /// the window. The period must be longer than zero; checked when the
    /// supervisor is built.
    ///
    /// # Caveats
    ///
    /// Above 1,024 restarts, the window keeps their times in 1,024 steps of
    /// the period (so that a crash loop under a window it cannot fill does
    /// not keep a time per restart): a restart then counts until the last
    /// one of its step leaves the period, up to 1/1024 of the period
    /// longer than it would alone.
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::{MaxRestarts, RestartPolicy};
    ///
    /// // Restart for ever, but not more than 5 times within 30 s
    /// // (systemd's StartLimitBurst=5, StartLimitIntervalSec=30).
    /// let policy = RestartPolicy::new()
    ///     .max_restarts(MaxRestarts::Unlimited)
    ///     .window(5, Duration::from_secs(30));
    /// # let _ = policy;
    /// ```
    pub fn window(mut self, max_restarts: u32, period: Duration) -> Self {
        self.tuning_mut().window = Some(Window { max: max_restarts, period });
        self
    }

    /// The base delay, as set with [`delay`](Self::delay).
    ///
    /// ```
    /// use std::time::Duration;
    /// use supervisor::RestartPolicy;
    ///
    /// assert_eq!(RestartPolicy::new().delay(Duration::ZERO).base_delay(), Duration::ZERO);
    /// ```
    #[must_use]
    pub fn base_delay(&self) -> Duration {
        self.delay
    }

    /// The restart limit, as set with [`max_restarts`](Self::max_restarts).
    ///
    /// ```
    /// use supervisor::{MaxRestarts, RestartPolicy};
    ///
    /// let policy = RestartPolicy::new().max_restarts(MaxRestarts::AtMost(2));
    /// assert!(policy.restart_limit().allows(1));
    /// assert!(!policy.restart_limit().allows(2));
    /// ```
    #[must_use]
    pub fn restart_limit(&self) -> MaxRestarts {
        self.max_restarts
    }

    /// Which endings are restarted, as set with [`on`](Self::on).
    ///
    /// ```
    /// use supervisor::{RestartOn, RestartPolicy};
    ///
    /// let policy = RestartPolicy::new().on(RestartOn::Never);
    /// assert!(!policy.restart_on().restarts_after(false));
    /// ```
    #[must_use]
    pub fn restart_on(&self) -> RestartOn {
        self.on
    }

    fn tuning_mut(&mut self) -> &mut Tuning {
        self.tuning.get_or_insert_with(Box::default)
    }

    fn tuning(&self) -> &Tuning {
        static UNTUNED: Tuning = Tuning { backoff: 1.0, max_delay: None, jitter: 0.0, reset_after: None, window: None };
        self.tuning.as_deref().unwrap_or(&UNTUNED)
    }

    /// Checks the numbers a type cannot: backoff factor, jitter, window.
    pub(crate) fn validate(&self, unit: &str) -> Result<(), Error> {
        let tuning = self.tuning();
        let invalid =
            |setting, reason: &str| Error::InvalidSetting { unit: unit.to_owned(), setting, reason: reason.to_owned() };
        if !(tuning.backoff.is_finite() && tuning.backoff >= 1.0) {
            return Err(invalid(
                "backoff",
                // `{:?}`: short however large or small (`1e-300`, not 300 digits).
                &format!("factor {:?} must be a finite number of at least 1.0, e.g. 2.0", tuning.backoff),
            ));
        }
        if !(0.0..=1.0).contains(&tuning.jitter) {
            return Err(invalid(
                "jitter",
                &format!("{:?} is not a fraction between 0.0 and 1.0, e.g. 0.1", tuning.jitter),
            ));
        }
        if let Some(window) = tuning.window
            && window.period.is_zero()
        {
            return Err(invalid("window", "the period must be longer than zero, e.g. 60s"));
        }
        Ok(())
    }

    /// The delay before a restart after `streak` restarts without a stable
    /// run, with `random` in `0.0..1.0` drawn for jitter.
    pub(crate) fn delay_for(&self, streak: u32, random: f64) -> Duration {
        let Some(tuning) = self.tuning.as_deref() else {
            return self.delay;
        };
        // Multiplied, zero stays zero, however large the factor grows
        // (zero times an infinite factor is not a number).
        if self.delay.is_zero() {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(streak).unwrap_or(i32::MAX);
        let mut seconds = self.delay.as_secs_f64() * tuning.backoff.powi(exponent);
        seconds += seconds * tuning.jitter * random;
        // Seconds as a float lose nanoseconds on a long delay: never below
        // the delay asked for (the factor is at least 1, the jitter adds).
        let delay = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX).max(self.delay);
        match tuning.max_delay {
            Some(cap) => delay.min(cap),
            None => delay,
        }
    }
}

/// Why the supervisor gave up on a unit.
///
/// # Examples
///
/// ```
/// use supervisor::GiveUpReason;
///
/// let reason = GiveUpReason::MaxRestarts { max: 3 };
/// assert_eq!(reason.to_string(), "reached the limit of 3 restarts");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// `max_restarts` restarts were performed.
    MaxRestarts {
        /// The limit.
        max: u32,
    },
    /// Another restart would exceed the intensity window.
    Window {
        /// Restarts allowed within the period.
        max: u32,
        /// The window's length.
        period: Duration,
    },
    /// Another restart among a group's units would exceed the group's
    /// intensity.
    Intensity {
        /// Restarts allowed within the period.
        max: u32,
        /// The period.
        period: Duration,
    },
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUpReason::MaxRestarts { max } => write!(f, "reached the limit of {max} restarts"),
            GiveUpReason::Window { max, period } | GiveUpReason::Intensity { max, period } => {
                write!(f, "more than {max} restarts within {}", humantime::format_duration(*period))
            }
        }
    }
}

/// What the policy says after a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// Restart after `delay`; this will be restart number `attempt`.
    Restart { attempt: u32, delay: Duration },
    /// The policy does not restart this ending.
    Exit,
    /// The policy would restart, but a limit has been reached.
    GiveUp(GiveUpReason),
}

/// The restart history of one activation of a unit.
#[derive(Debug, Default)]
pub(crate) struct RestartTracker {
    restarts: u32,
    streak: u32,
    /// The times of the last restarts, kept only under a window. Boxed: a
    /// word in every unit's record rather than the times' five.
    recent: Option<Box<Recent>>,
}

impl RestartTracker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Restarts performed so far.
    pub(crate) fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Decides what follows a run that lasted `ran_for` and `succeeded` or
    /// not. `now` is the time of the decision; `random` is in `0.0..1.0`.
    pub(crate) fn decide(
        &mut self,
        policy: &RestartPolicy,
        succeeded: bool,
        ran_for: Duration,
        now: Instant,
        random: f64,
    ) -> Decision {
        if !policy.on.restarts_after(succeeded) {
            return Decision::Exit;
        }
        if policy.tuning().reset_after.is_some_and(|stable| ran_for >= stable) {
            self.streak = 0;
        }
        let delay = policy.delay_for(self.streak, random);
        // Judged at the time the restart would happen, as the window's
        // restarts are timed when they happen: restarts further apart than
        // the period never fill it, however long the delay between them.
        if let Some(reason) = self.limit_reached(policy, now.checked_add(delay)) {
            return if succeeded { Decision::Exit } else { Decision::GiveUp(reason) };
        }
        Decision::Restart { attempt: self.restarts.saturating_add(1), delay }
    }

    /// Records that a restart decided on was performed at `now`.
    pub(crate) fn record_restart(&mut self, policy: &RestartPolicy, now: Instant) {
        self.restarts = self.restarts.saturating_add(1);
        self.streak = self.streak.saturating_add(1);
        if let Some(window) = policy.tuning().window {
            let recent = self.recent.get_or_insert_with(|| Box::new(Recent::new(window.max, window.period)));
            // Time only goes on: what is out of the period now is out of it
            // for every restart to come.
            recent.forget_older(now, window.period);
            recent.push(now);
            if recent.len() > window.max as usize {
                recent.forget_oldest();
            }
        }
    }

    /// Whether a restart at `at` would be one too many; `None`: a restart
    /// so far off (a delay near `Duration::MAX`) that no window holds it.
    fn limit_reached(&self, policy: &RestartPolicy, at: Option<Instant>) -> Option<GiveUpReason> {
        if let MaxRestarts::AtMost(max) = policy.max_restarts
            && self.restarts >= max
        {
            return Some(GiveUpReason::MaxRestarts { max });
        }
        let window = policy.tuning().window?;
        let at = at?;
        // Counted, not pruned: a restart that a stop cancels must not have
        // pruned any.
        let within = self.recent.as_ref().map_or(0, |recent| recent.within(at, window.period));
        (within >= window.max as usize).then_some(GiveUpReason::Window { max: window.max, period: window.period })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn fixed(delay: Duration, max: MaxRestarts) -> RestartPolicy {
        RestartPolicy::new().delay(delay).max_restarts(max)
    }

    fn run_until_stop(policy: &RestartPolicy, succeeded: bool) -> (u32, Decision) {
        let mut tracker = RestartTracker::new();
        let now = Instant::now();
        loop {
            match tracker.decide(policy, succeeded, Duration::ZERO, now, 0.0) {
                Decision::Restart { .. } => tracker.record_restart(policy, now),
                other => return (tracker.restarts(), other),
            }
            assert!(tracker.restarts() < 1000, "policy never stopped");
        }
    }

    #[test]
    fn max_zero_runs_once_and_gives_up_on_failure() {
        let (restarts, decision) = run_until_stop(&fixed(SEC, MaxRestarts::AtMost(0)), false);
        assert_eq!(restarts, 0);
        assert_eq!(decision, Decision::GiveUp(GiveUpReason::MaxRestarts { max: 0 }));
    }

    #[test]
    fn max_three_restarts_three_times() {
        let (restarts, decision) = run_until_stop(&fixed(SEC, MaxRestarts::AtMost(3)), false);
        assert_eq!(restarts, 3);
        assert_eq!(decision, Decision::GiveUp(GiveUpReason::MaxRestarts { max: 3 }));
    }

    #[test]
    fn success_at_the_limit_exits_rather_than_fails() {
        let (restarts, decision) = run_until_stop(&fixed(SEC, MaxRestarts::AtMost(2)), true);
        assert_eq!(restarts, 2);
        assert_eq!(decision, Decision::Exit);
    }

    #[test]
    fn unlimited_keeps_restarting() {
        let policy = fixed(SEC, MaxRestarts::Unlimited);
        let mut tracker = RestartTracker::new();
        let now = Instant::now();
        for attempt in 1..=10_000 {
            assert_eq!(
                tracker.decide(&policy, false, Duration::ZERO, now, 0.0),
                Decision::Restart { attempt, delay: SEC }
            );
            tracker.record_restart(&policy, now);
        }
    }

    #[test]
    fn restart_on_selects_endings() {
        let mut tracker = RestartTracker::new();
        let now = Instant::now();
        let on = |on| RestartPolicy::new().on(on);
        assert!(matches!(tracker.decide(&on(RestartOn::Always), true, SEC, now, 0.0), Decision::Restart { .. }));
        assert!(matches!(tracker.decide(&on(RestartOn::Always), false, SEC, now, 0.0), Decision::Restart { .. }));
        assert_eq!(tracker.decide(&on(RestartOn::Failure), true, SEC, now, 0.0), Decision::Exit);
        assert!(matches!(tracker.decide(&on(RestartOn::Failure), false, SEC, now, 0.0), Decision::Restart { .. }));
        assert_eq!(tracker.decide(&on(RestartOn::Never), true, SEC, now, 0.0), Decision::Exit);
        assert_eq!(tracker.decide(&on(RestartOn::Never), false, SEC, now, 0.0), Decision::Exit);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RestartPolicy::new().delay(SEC).backoff(2.0).max_delay(Duration::from_secs(5));
        let delays: Vec<_> = (0..5).map(|streak| policy.delay_for(streak, 0.0)).collect();
        let secs = |s| Duration::from_secs(s);
        assert_eq!(delays, [secs(1), secs(2), secs(4), secs(5), secs(5)]);
    }

    #[test]
    fn backoff_without_cap_saturates_instead_of_overflowing() {
        let policy = RestartPolicy::new().delay(SEC).backoff(10.0);
        assert_eq!(policy.delay_for(u32::MAX, 0.0), Duration::MAX);
    }

    #[test]
    fn a_zero_delay_stays_zero_however_large_the_backoff_grows() {
        let huge = RestartPolicy::new().delay(Duration::ZERO).backoff(1e300).jitter(1.0);
        assert_eq!([0, 1, 2, 1025].map(|streak| huge.delay_for(streak, 0.9)), [Duration::ZERO; 4]);
        let doubling = RestartPolicy::new().delay(Duration::ZERO).backoff(2.0);
        assert_eq!(doubling.delay_for(u32::MAX, 0.0), Duration::ZERO);
    }

    #[test]
    fn jitter_only_lengthens_and_respects_the_cap() {
        let policy = RestartPolicy::new().delay(SEC).jitter(0.5);
        assert_eq!(policy.delay_for(0, 0.0), SEC);
        assert_eq!(policy.delay_for(0, 0.5), Duration::from_millis(1250));
        let capped = policy.max_delay(Duration::from_millis(1100));
        assert_eq!(capped.delay_for(0, 0.9), Duration::from_millis(1100));
    }

    #[test]
    fn stable_run_resets_backoff_but_not_the_count() {
        let policy = RestartPolicy::new().delay(SEC).backoff(2.0).reset_after(Duration::from_secs(60));
        let mut tracker = RestartTracker::new();
        let now = Instant::now();
        for _ in 0..3 {
            tracker.decide(&policy, false, SEC, now, 0.0);
            tracker.record_restart(&policy, now);
        }
        assert_eq!(
            tracker.decide(&policy, false, SEC, now, 0.0),
            Decision::Restart { attempt: 4, delay: Duration::from_secs(8) }
        );
        assert_eq!(
            tracker.decide(&policy, false, Duration::from_secs(60), now, 0.0),
            Decision::Restart { attempt: 4, delay: SEC }
        );
    }

    #[test]
    fn window_gives_up_on_too_many_restarts_in_the_period() {
        let period = Duration::from_secs(10);
        let policy = RestartPolicy::new().delay(Duration::ZERO).window(3, period);
        let mut tracker = RestartTracker::new();
        let start = Instant::now();
        for i in 0..3 {
            let now = start + Duration::from_secs(i);
            assert!(matches!(tracker.decide(&policy, false, SEC, now, 0.0), Decision::Restart { .. }));
            tracker.record_restart(&policy, now);
        }
        let now = start + Duration::from_secs(3);
        assert_eq!(
            tracker.decide(&policy, false, SEC, now, 0.0),
            Decision::GiveUp(GiveUpReason::Window { max: 3, period })
        );
        // Exactly `period` after the first, it is still within the window;
        // once it has left, one more is allowed.
        assert!(matches!(tracker.decide(&policy, false, SEC, start + period, 0.0), Decision::GiveUp(_)));
        let later = start + period + Duration::from_millis(1);
        assert!(matches!(tracker.decide(&policy, false, SEC, later, 0.0), Decision::Restart { attempt: 4, .. }));
    }

    #[test]
    fn window_judges_a_restart_at_the_time_it_happens() {
        // Restarts 10 s apart never make two within 5 s.
        let period = Duration::from_secs(5);
        let policy = RestartPolicy::new().delay(Duration::from_secs(10)).window(1, period);
        let mut tracker = RestartTracker::new();
        let mut now = Instant::now();
        for attempt in 1..=5 {
            let decision = tracker.decide(&policy, false, Duration::ZERO, now, 0.0);
            assert_eq!(decision, Decision::Restart { attempt, delay: Duration::from_secs(10) });
            now += Duration::from_secs(10);
            tracker.record_restart(&policy, now);
        }
        // A delay too long for any window is never one too many.
        let endless = RestartPolicy::new().delay(Duration::MAX).window(1, period);
        let mut tracker = RestartTracker::new();
        tracker.record_restart(&endless, now);
        assert!(matches!(tracker.decide(&endless, false, Duration::ZERO, now, 0.0), Decision::Restart { .. }));
    }

    #[test]
    fn a_tuned_delay_is_never_shorter_than_asked() {
        // A year and a nanosecond is not exact in seconds as a float.
        let delay = Duration::from_secs(365 * 24 * 3600) + Duration::from_nanos(1);
        let policy = RestartPolicy::new().delay(delay).backoff(1.0).jitter(0.0);
        assert_eq!(policy.delay_for(0, 0.0), delay);
        assert_eq!(policy.delay_for(7, 0.5), delay);
    }

    /// Each decision looked at every restart the window kept: a crash loop
    /// under `window(200_000, 1h)` slowed from 600k restarts a second to
    /// 1,400 as the window filled.
    #[test]
    fn a_decision_under_a_full_window_does_not_look_at_each_restart_kept() {
        const KEPT: u32 = 100_000;
        let policy = RestartPolicy::new().delay(Duration::ZERO).window(KEPT, Duration::from_secs(3600));
        let mut tracker = RestartTracker::new();
        let start = Instant::now();
        let at = |i: u32| start + Duration::from_millis(u64::from(i));
        for i in 0..KEPT - 1 {
            tracker.record_restart(&policy, at(i));
        }
        let began = std::time::Instant::now();
        for _ in 0..KEPT {
            let decision = tracker.decide(&policy, false, Duration::ZERO, at(KEPT), 0.0);
            assert!(matches!(decision, Decision::Restart { .. }), "{decision:?}");
        }
        tracker.record_restart(&policy, at(KEPT));
        let decision = tracker.decide(&policy, false, Duration::ZERO, at(KEPT), 0.0);
        assert!(matches!(decision, Decision::GiveUp(GiveUpReason::Window { .. })), "{decision:?}");
        // An hour after the first restarts, they have left the window: all
        // of them once the last of their step has (a limit that high keeps
        // the times in steps of 1/1024 of the period).
        let later = start + Duration::from_secs(3600) + Duration::from_secs(3600) / 1024 + Duration::from_millis(1);
        let decision = tracker.decide(&policy, false, Duration::ZERO, later, 0.0);
        assert!(matches!(decision, Decision::Restart { .. }), "{decision:?}");
        let took = began.elapsed();
        assert!(took < Duration::from_secs(5), "{KEPT} decisions took {took:?}");
    }

    /// A window too large to fill (`u32::MAX`, meant as "no limit") kept a
    /// time per restart, for ever: a crash loop grew by 16 bytes a restart,
    /// hundreds of megabytes a minute.
    #[test]
    fn a_window_too_large_to_fill_keeps_bounded_memory() {
        let period = Duration::from_secs(60);
        let policy = RestartPolicy::new().delay(Duration::ZERO).window(u32::MAX, period);
        let mut tracker = RestartTracker::new();
        let start = Instant::now();
        // 2,000 restarts a second for 200 s: over three periods.
        let at = |i: u32| start + Duration::from_micros(u64::from(i) * 500);
        for i in 0..400_000 {
            let decision = tracker.decide(&policy, false, Duration::ZERO, at(i), 0.0);
            assert!(matches!(decision, Decision::Restart { .. }), "{decision:?}");
            tracker.record_restart(&policy, at(i));
        }
        let recent = tracker.recent.as_ref().expect("kept under a window");
        assert!(recent.steps_kept() <= 1026, "{} steps kept", recent.steps_kept());
        // The last minute's: exactly 120,001, and those of the step at its
        // edge (60 s / 1024, about 117 restarts) at most.
        let within = recent.within(at(399_999), period);
        assert!((120_001..=120_001 + 118).contains(&within), "{within} within the period");
    }

    /// `jitter(-1e-300)` was named in a message of over 300 digits.
    #[test]
    fn a_bad_number_is_named_short_however_small_or_large() {
        let message = |policy: RestartPolicy| policy.validate("u").expect_err("invalid").to_string();
        let jitter = message(RestartPolicy::new().jitter(-1e-300));
        assert!(jitter.contains("-1e-300 is not a fraction") && jitter.len() < 200, "{jitter}");
        let backoff = message(RestartPolicy::new().backoff(1e-300));
        assert!(backoff.contains("factor 1e-300 must") && backoff.len() < 200, "{backoff}");
        assert!(message(RestartPolicy::new().jitter(1.5)).contains("1.5 is not a fraction"));
    }

    #[test]
    fn the_attempt_number_stops_at_the_largest() {
        let policy = RestartPolicy::new().max_restarts(MaxRestarts::Unlimited);
        let mut tracker = RestartTracker { restarts: u32::MAX, ..RestartTracker::new() };
        let decision = tracker.decide(&policy, false, Duration::ZERO, Instant::now(), 0.0);
        assert!(matches!(decision, Decision::Restart { attempt: u32::MAX, .. }), "{decision:?}");
    }

    #[test]
    fn window_of_zero_never_restarts() {
        let policy = RestartPolicy::new().window(0, SEC);
        let (restarts, decision) = run_until_stop(&policy, false);
        assert_eq!(restarts, 0);
        assert_eq!(decision, Decision::GiveUp(GiveUpReason::Window { max: 0, period: SEC }));
    }

    #[test]
    fn validation_names_the_setting() {
        let err = RestartPolicy::new().backoff(0.5).validate("w").unwrap_err().to_string();
        assert!(err.contains("backoff") && err.contains("at least 1.0"), "{err}");
        let err = RestartPolicy::new().backoff(f64::NAN).validate("w").unwrap_err().to_string();
        assert!(err.contains("backoff"), "{err}");
        let err = RestartPolicy::new().jitter(1.5).validate("w").unwrap_err().to_string();
        assert!(err.contains("jitter") && err.contains("`w`"), "{err}");
        let err = RestartPolicy::new().window(3, Duration::ZERO).validate("w").unwrap_err().to_string();
        assert!(err.contains("window"), "{err}");
        assert!(RestartPolicy::new().backoff(2.0).jitter(1.0).validate("w").is_ok());
    }

    #[test]
    fn max_restarts_conversions() {
        assert_eq!(MaxRestarts::from(-1i64), MaxRestarts::Unlimited);
        assert_eq!(MaxRestarts::from(0i32), MaxRestarts::AtMost(0));
        assert_eq!(MaxRestarts::from(i64::MAX), MaxRestarts::AtMost(u32::MAX));
        assert_eq!(MaxRestarts::Unlimited.to_string(), "unlimited");
        assert_eq!(MaxRestarts::AtMost(4).to_string(), "4");
    }
}
