//! The times of recent events (restarts), counted within a period in
//! bounded memory: the restart window of a unit's policy and the intensity
//! of a group both ask "how many within the last `period`?".
//!
//! Up to [`EXACT_UP_TO`] events are kept one by one, exactly. A limit above
//! that (`window(1_000_000, 1h)`, or `u32::MAX` meant as "no limit") would
//! keep a time per restart, and a crash loop restarts hundreds of thousands
//! of times a second: such limits keep the times in steps of 1/1024 of the
//! period instead, each step with its count. An event then counts until
//! the last one of its step leaves the period: up to a step longer, never
//! shorter, so that no limit is exceeded.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Limits up to this many events are counted one by one.
pub(crate) const EXACT_UP_TO: u32 = 1024;

/// Steps a period is cut into above [`EXACT_UP_TO`].
const STEPS: u32 = 1024;

/// Events closer together than the step share one of these.
#[derive(Debug, Clone, Copy)]
struct Step {
    first: Instant,
    /// The latest of its events: the step leaves the period with it.
    last: Instant,
    count: u32,
}

/// Times of events, oldest first, in steps no shorter than `step` apart.
#[derive(Debug)]
pub(crate) struct Recent {
    steps: VecDeque<Step>,
    total: usize,
    /// Zero: every event is a step of its own.
    step: Duration,
}

impl Recent {
    /// For a limit of `max` events within `period`.
    pub(crate) fn new(max: u32, period: Duration) -> Self {
        // At least a nanosecond: a burst at one instant then takes one step
        // whatever the period, where a step of zero kept one per event.
        let step = if max <= EXACT_UP_TO { Duration::ZERO } else { (period / STEPS).max(Duration::from_nanos(1)) };
        Recent { steps: VecDeque::new(), total: 0, step }
    }

    /// How many steps are kept: the memory it takes.
    #[cfg(test)]
    pub(crate) fn steps_kept(&self) -> usize {
        self.steps.len()
    }

    /// How many events are kept.
    pub(crate) fn len(&self) -> usize {
        self.total
    }

    /// Records an event at `at`, in its place among the others (an event
    /// may be recorded after a later one).
    pub(crate) fn push(&mut self, at: Instant) {
        self.total += 1;
        // The first step that ends at or after `at`: joining it counts the
        // event as long as the step, at least as long as the event itself,
        // while the step stays shorter than a step. Measured from where it
        // ends: events recorded in turn further back would stretch it on.
        let position = self.steps.partition_point(|step| step.last < at);
        if let Some(step) = self.steps.get_mut(position)
            && step.last.saturating_duration_since(at) < self.step
        {
            step.first = step.first.min(at);
            step.count += 1;
            return;
        }
        // The newest event of all: it joins the last step, which it then
        // ends, while the step is short enough.
        if position == self.steps.len()
            && let Some(last) = self.steps.back_mut()
            && at.saturating_duration_since(last.first) < self.step
        {
            last.last = at;
            last.count += 1;
            return;
        }
        self.steps.insert(position, Step { first: at, last: at, count: 1 });
    }

    /// Forgets the events more than `period` before `now` (one exactly
    /// `period` before is still within it, as in OTP).
    pub(crate) fn forget_older(&mut self, now: Instant, period: Duration) {
        while let Some(oldest) = self.steps.front()
            && now.saturating_duration_since(oldest.last) > period
        {
            self.total -= oldest.count as usize;
            self.steps.pop_front();
        }
    }

    /// Forgets the oldest event.
    pub(crate) fn forget_oldest(&mut self) {
        let Some(oldest) = self.steps.front_mut() else { return };
        self.total -= 1;
        oldest.count -= 1;
        if oldest.count == 0 {
            self.steps.pop_front();
        }
    }

    /// How many events are within `period` before `at`, without forgetting
    /// any: those older are found by halving, not one by one.
    pub(crate) fn within(&self, at: Instant, period: Duration) -> usize {
        let older = self.steps.partition_point(|step| at.saturating_duration_since(step.last) > period);
        // Few steps, as a rule: their events are taken off the total rather
        // than those within added up.
        self.total - self.steps.range(..older).map(|step| step.count as usize).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn small_limits_count_each_event_exactly() {
        let start = Instant::now();
        let mut recent = Recent::new(3, 10 * SEC);
        for offset in [0, 1, 1, 2] {
            recent.push(start + offset * MS);
        }
        assert_eq!(recent.steps.len(), 4, "one step per event: {recent:?}");
        // Exactly the period after the first: still within it.
        assert_eq!(recent.within(start + 10 * SEC, 10 * SEC), 4);
        assert_eq!(recent.within(start + 10 * SEC + MS, 10 * SEC), 3);
        assert_eq!(recent.within(start + 10 * SEC + 2 * MS, 10 * SEC), 1);
        recent.forget_oldest();
        assert_eq!(recent.len(), 3);
        recent.forget_older(start + 10 * SEC + 2 * MS, 10 * SEC);
        assert_eq!(recent.len(), 1);
    }

    #[test]
    fn an_event_recorded_late_takes_its_place() {
        let start = Instant::now();
        let mut recent = Recent::new(10, 10 * SEC);
        recent.push(start + 5 * SEC);
        recent.push(start);
        recent.forget_older(start + 10 * SEC + MS, 10 * SEC);
        assert_eq!(recent.len(), 1, "the one recorded last was the oldest");
    }

    /// A crash loop under a window of `u32::MAX`: millions of restarts
    /// keep about a thousand steps, and the count within the period stays
    /// exact but for the events of the step at its edge.
    #[test]
    fn large_limits_keep_steps_not_events() {
        let start = Instant::now();
        let period = 1024 * MS;
        let mut recent = Recent::new(u32::MAX, period);
        // Four events a millisecond (a step) for 4 periods.
        for tick in 0..4 * 4096u32 {
            let at = start + Duration::from_micros(250) * tick;
            recent.forget_older(at, period);
            recent.push(at);
        }
        assert!(recent.steps.len() <= 1026, "{} steps kept", recent.steps.len());
        let now = start + Duration::from_micros(250) * (4 * 4096 - 1);
        let exact = 4097; // 4 per millisecond within 1024 ms, both ends included
        let counted = recent.within(now, period);
        assert!((exact..=exact + 4).contains(&counted), "{counted} counted, {exact} within the period");
    }

    #[test]
    fn an_event_counts_at_least_as_long_as_itself() {
        let start = Instant::now();
        let period = 1024 * SEC;
        let mut recent = Recent::new(u32::MAX, period);
        recent.push(start);
        recent.push(start + 500 * MS); // the same step of 1 s
        recent.push(start + 10 * SEC);
        recent.push(start + 200 * MS); // late: joins the first step
        assert_eq!(recent.steps.len(), 2, "{recent:?}");
        // The first step ends with its last event, at 500 ms.
        assert_eq!(recent.within(start + period + 500 * MS, period), 4);
        assert_eq!(recent.within(start + period + 501 * MS, period), 1);
    }

    /// Events recorded after later ones (a group's restarts are recorded
    /// as performed, in the order their delays end): a step they join
    /// stays shorter than a step, so that each counts at most a step
    /// longer than it is within the period. Joined from where the step
    /// began, such a chain stretched one step over 1.8 ms of a 1 ms step.
    #[test]
    fn events_recorded_out_of_order_keep_each_step_short() {
        const US: Duration = Duration::from_micros(1);
        let start = Instant::now();
        let period = 1024 * MS; // a step of 1 ms
        let mut recent = Recent::new(u32::MAX, period);
        for at in [2000, 1400, 800, 200] {
            recent.push(start + at * US);
        }
        // 1.7 ms past the period: only the event at 2.0 ms is within it,
        // and those a step before it may still count.
        let now = start + period + 1700 * US;
        let counted = recent.within(now, period);
        assert!(counted <= 3, "{counted} counted, of which one is within the period: {recent:?}");
        assert!(counted >= 1, "the event within the period counts");
    }

    /// A period under 1,024 ns still has steps: a burst at one instant is
    /// kept as one, where a step of zero kept one entry per event.
    #[test]
    fn a_period_under_1024_ns_keeps_a_burst_in_one_step() {
        let start = Instant::now();
        let period = Duration::from_nanos(1000);
        let mut recent = Recent::new(u32::MAX, period);
        for _ in 0..100_000 {
            recent.forget_older(start, period);
            recent.push(start);
        }
        assert_eq!(recent.len(), 100_000);
        assert!(recent.steps_kept() <= 2, "{} steps kept", recent.steps_kept());
    }
}
