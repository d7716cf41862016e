//! Warmup, baseline and the steady-state hypothesis; after the faults, the
//! recovery observation.

use std::time::Duration;

use super::Drill;
use super::steady::steady_state;
use crate::measure::{Micros, Phase};
use crate::results::CheckStatus;
use crate::verdict::event::Event;
use crate::verdict::stop::Stop;

impl Drill<'_> {
    /// Warms up, then holds the baseline; steady state must be met before
    /// anything is injected. Phase boundaries known in advance are marked
    /// now, so every request is counted in the phase of its due time.
    pub(super) async fn baseline(&mut self) -> Result<(), Stop> {
        let p = self.plan.phases;
        let start = self.facts.load_start;
        let baseline_start = start + p.warmup.micros();
        let baseline_end = baseline_start + p.baseline.micros();
        let baseline_len = p.baseline.to_string();
        {
            let mut r = self.recorder();
            r.mark(Phase::Warmup, start);
            r.mark(Phase::Baseline, baseline_start);
            r.mark(Phase::Fault, baseline_end);
            if self.plan.faults.is_empty() {
                // Known now: every sender (agents included, told with their
                // next poll) stops counting where the baseline ends.
                r.close_at(baseline_end);
            }
        }
        self.set_phase(Phase::Warmup);
        self.observe(baseline_start, None).await?;
        self.set_phase(Phase::Baseline);
        let writes_before = self.writes();
        self.event(
            baseline_start,
            Event::Progress(format!("baseline {baseline_len}")),
        );
        self.observe(baseline_end, None).await?;
        // The fault phase has begun; the first inject waits until every
        // baseline request has completed (at most one timeout), so none is
        // cut by the fault and steady state is judged on all of them.
        self.set_phase(Phase::Fault);
        let settle_until = baseline_end + self.timeout.as_micros() as Micros;
        while self.recorder().unfinished(Phase::Baseline) > 0 && self.clock.now() < settle_until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let writes = self.writes().map(|(ok, failed)| {
            let (ok0, failed0) = writes_before.unwrap_or_default();
            (ok - ok0, failed - failed0)
        });
        let ss = steady_state(self.plan, &self.recorder(), writes);
        let holds = ss.status == CheckStatus::Pass;
        self.now(Event::SteadyState {
            holds,
            message: ss.message.clone(),
        });
        self.facts.steady_state = Some(ss.clone());
        if holds {
            Ok(())
        } else {
            Err(Stop::SteadyStateNotMet(format!(
                "steady state not met before any fault: {}; nothing was injected",
                ss.message
            )))
        }
    }

    /// Database writes so far (acknowledged, failed), when a writer runs.
    fn writes(&self) -> Option<(u64, u64)> {
        let load = self.load.as_ref()?;
        load.writer.as_ref()?;
        let w = &load.writer_control;
        Some((w.acked(), w.failed()))
    }

    /// After the last fault: watch recovery (abort conditions still apply).
    /// A scenario without faults has nothing to recover from.
    pub(super) async fn recovery(&mut self) -> Result<(), Stop> {
        let end = self.clock.now();
        if self.runs.is_empty() {
            // Nothing was injected: the drill ends where the baseline does,
            // not when its last request was in (later with agents, whose
            // results come every 100 ms), so no sender counts requests due
            // in a fault phase that never had a fault.
            let p = self.plan.phases;
            let baseline_end = self.facts.load_start + p.warmup.micros() + p.baseline.micros();
            self.end_drill(baseline_end.min(end));
            return Ok(());
        }
        self.facts.end = end;
        let len = self.plan.phases.recovery;
        self.enter(Phase::Recovery, end);
        self.event(end, Event::Progress(format!("recovery observation {len}")));
        let until = end + len.micros();
        let res = self.observe(until, self.facts.first_inject).await;
        self.end_drill(self.clock.now().min(until));
        res
    }

    /// The drill's measured window ends at `at`: no sender (the runner's
    /// generator or an agent) counts a request due from then on.
    pub(super) fn end_drill(&mut self, at: Micros) {
        self.facts.end = at;
        self.rec.lock().expect("recorder lock").close_at(at);
    }
}
