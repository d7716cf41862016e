//! Stop guards while a drill runs. At preflight, after Prometheus and
//! Alertmanager answer and before the silence and the first fault: every
//! PromQL guard is parsed by the Prometheus it will read (a rejected one is
//! invalid input, exit 2), its `for` is checked against Prometheus's
//! evaluation interval, and every guard is read once — one already
//! breaching, or unreadable, refuses the drill (exit 3, nothing injected).
//! Then a task reads Alertmanager every poll interval and each PromQL guard
//! every `interval` until the teardown; the first breach (or, fail safe,
//! an unreadable source) is recorded and wakes the runner's waits, which
//! return `Stop::Guard`, and the one teardown reverts every active fault.
//! The first revert request is noted for time to guard.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch as signal;

use super::Drill;
use crate::base::clock::Clock;
use crate::measure::Micros;
use crate::observe::api::{Alertmanager, Prometheus, Sample};
use crate::observe::guard::{AlertSeen, Breaching, Spell, alert_breach};
use crate::observe::watch::POLL_INTERVAL;
use crate::scenario::guard::{GuardPlan, GuardWatch};
use crate::scenario::plan::AlertPlan;
use crate::verdict::event::Event;
use crate::verdict::guards::{Breach, GuardState, Track};
use crate::verdict::stop::Stop;

/// The guards' watching task and what it shares.
pub(super) struct Guards {
    state: Arc<Mutex<GuardState>>,
    tripped: signal::Receiver<bool>,
    stop: signal::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Where guards read from.
#[derive(Clone)]
struct Sources {
    prometheus: Prometheus,
    alertmanager: Option<Alertmanager>,
    clock: Clock,
}

impl Sources {
    async fn alerts(&self) -> Result<Vec<AlertSeen>, String> {
        let Some(am) = &self.alertmanager else {
            return Err("no Alertmanager to read".into());
        };
        let alerts = am.alerts().await.map_err(|e| e.to_string())?;
        Ok(alerts
            .into_iter()
            .map(|a| AlertSeen {
                starts_at: a
                    .starts_at
                    .as_deref()
                    .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
                    .map(|t: SystemTime| self.clock.of_wall(t)),
                labels: a.labels,
            })
            .collect())
    }

    async fn query(&self, q: &str) -> Result<Vec<Sample>, String> {
        self.prometheus.query(q).await.map_err(|e| e.to_string())
    }
}

/// Reads one guard now. `alerts`: Alertmanager's answer, read once for
/// every alert guard of this round.
async fn read_one(
    g: &GuardPlan,
    src: &Sources,
    expected: &[AlertPlan],
    alerts: &Option<Result<Vec<AlertSeen>, String>>,
    spell: &mut Spell,
    at: Micros,
) -> Result<Option<Breaching>, String> {
    match &g.watch {
        GuardWatch::Promql {
            query, limit, for_, ..
        } => {
            let samples = src.query(query).await?;
            Ok(spell.reading(*limit, for_.micros(), at, &samples))
        }
        w => match alerts {
            Some(Ok(list)) => Ok(alert_breach(w, expected, list, at)),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(None),
        },
    }
}

fn unreachable_breach(i: usize, at: Micros, error: &str, source: &str) -> Breach {
    Breach {
        guard: i,
        breaching: Breaching {
            value: None,
            what: format!("{source} could not be read: {error}"),
            visible_at: at,
        },
        seen_at: at,
        at_preflight: false,
        unreachable: true,
    }
}

fn source(g: &GuardPlan) -> &'static str {
    if g.watch.reads_alertmanager() {
        "Alertmanager"
    } else {
        "Prometheus"
    }
}

/// Reads Alertmanager every poll interval and each PromQL guard when due,
/// until stopped or a guard breaches.
async fn watch(
    guards: Vec<GuardPlan>,
    expected: Vec<AlertPlan>,
    src: Sources,
    state: Arc<Mutex<GuardState>>,
    trip: signal::Sender<bool>,
    mut stop: signal::Receiver<bool>,
) {
    let mut spells = vec![Spell::default(); guards.len()];
    let mut due: Vec<Option<Micros>> = vec![None; guards.len()];
    let reads_am = guards.iter().any(|g| g.watch.reads_alertmanager());
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let at = src.clock.now();
        let alerts = if reads_am {
            Some(src.alerts().await)
        } else {
            None
        };
        for (i, g) in guards.iter().enumerate() {
            let mut read_at = src.clock.now();
            if let GuardWatch::Promql { interval, .. } = &g.watch {
                // A fixed schedule, one reading every `interval` (each late
                // by at most a poll), and each reading taken as of its
                // scheduled time, so that `for` counts whole intervals
                // rather than missing one by a read's delay.
                let iv = interval.micros();
                match due[i] {
                    Some(d) if at < d => continue,
                    Some(d) if at < d + iv => read_at = d,
                    _ => {}
                }
                due[i] = Some(read_at + iv);
            }
            let res = read_one(g, &src, &expected, &alerts, &mut spells[i], read_at).await;
            if *stop.borrow() {
                // The drill ended while this read was in flight: what it
                // read is past the end of recovery.
                return;
            }
            let mut s = state.lock().expect("guard state lock");
            let breach = match res {
                Ok(b) => {
                    s.tracks[i].readings += 1;
                    b.map(|breaching| Breach {
                        guard: i,
                        breaching,
                        seen_at: src.clock.now(),
                        at_preflight: false,
                        unreachable: false,
                    })
                }
                Err(e) => {
                    let t = &mut s.tracks[i];
                    t.failed_reads += 1;
                    t.last_error = Some(e.clone());
                    g.stop_on_unreachable
                        .then(|| unreachable_breach(i, read_at, &e, source(g)))
                }
            };
            if let Some(b) = breach {
                if s.breach.is_none() {
                    s.breach = Some(b);
                }
                trip.send_replace(true);
                return;
            }
        }
    }
}

/// Checks each guard against the live sources before any reading: one
/// that reads Alertmanager needs one; Prometheus must accept its expression
/// (when it has format_query); its `for` must not be shorter than
/// Prometheus's evaluation interval. Each failure is invalid input
/// ("nothing was injected").
async fn check_guards_against_sources(
    guards: &[GuardPlan],
    src: &Sources,
    eval_s: Option<f64>,
) -> Result<(), Stop> {
    let invalid = |g: &GuardPlan, e: String| {
        Stop::Invalid(format!(
            "{}: guard `{}`: {e}; nothing was injected",
            g.at, g.name
        ))
    };
    for g in guards {
        if g.watch.reads_alertmanager() && src.alertmanager.is_none() {
            return Err(invalid(
                g,
                "needs an Alertmanager, and the target names none".into(),
            ));
        }
        let GuardWatch::Promql { query, for_, .. } = &g.watch else {
            continue;
        };
        match src.prometheus.format_query(query).await {
            Ok(_) => {}
            Err(crate::observe::api::ApiError::Status {
                status: 400, body, ..
            }) => {
                return Err(invalid(
                    g,
                    format!(
                        "Prometheus {} rejects the expression: {body}",
                        src.prometheus.url()
                    ),
                ));
            }
            // An older Prometheus without format_query: the reading
            // below still fails on a bad expression.
            Err(_) => {}
        }
        if let Some(eval) = eval_s
            && !for_.0.is_zero()
            && for_.as_secs_f64() < eval
        {
            return Err(invalid(
                g,
                format!(
                    "for = \"{for_}\" is shorter than Prometheus's evaluation interval ({eval}s): raise `for` to at least that"
                ),
            ));
        }
    }
    Ok(())
}

impl Drill<'_> {
    /// Preflight of the guards, then their watching task. Called once
    /// Prometheus and Alertmanager answer, before the silence. Any guard
    /// that cannot be read, is malformed, or already breaches stops the
    /// drill here, before anything is injected.
    pub(super) async fn start_guards(&mut self) -> Result<(), Stop> {
        let plan = self.plan;
        let guards = &plan.guards;
        if guards.is_empty() {
            return Ok(());
        }
        let Some((prometheus, alertmanager, eval_s)) = self.monitor.as_ref().map(|m| m.sources())
        else {
            return Err(self.no_guard_source());
        };
        let src = Sources {
            prometheus,
            alertmanager,
            clock: self.clock,
        };
        check_guards_against_sources(guards, &src, eval_s).await?;
        let expected: Vec<AlertPlan> = plan
            .monitoring
            .as_ref()
            .map(|m| m.alerts.clone())
            .unwrap_or_default();
        let state = self.first_readings(guards, &src, &expected).await?;
        self.watch_guards(guards, expected, src, state);
        Ok(())
    }

    /// One reading of every guard at preflight: a system already past a
    /// guard is not one to inject faults into, whatever its `for`. A guard
    /// already breaching stops the drill (its breach kept for the report);
    /// a guard that cannot be read fails preflight.
    async fn first_readings(
        &mut self,
        guards: &[GuardPlan],
        src: &Sources,
        expected: &[AlertPlan],
    ) -> Result<GuardState, Stop> {
        let mut state = GuardState {
            tracks: vec![Track::default(); guards.len()],
            ..GuardState::default()
        };
        let reads_am = guards.iter().any(|g| g.watch.reads_alertmanager());
        let alerts = if reads_am {
            Some(src.alerts().await)
        } else {
            None
        };
        for (i, g) in guards.iter().enumerate() {
            let at = self.clock.now();
            // One reading decides at preflight: a system already past a
            // guard is not one to inject faults into, whatever its `for`.
            let mut spell = Spell::default();
            let res = match &g.watch {
                GuardWatch::Promql { query, limit, .. } => src
                    .query(query)
                    .await
                    .map(|s| spell.reading(*limit, 0, at, &s)),
                _ => read_one(g, src, expected, &alerts, &mut spell, at).await,
            };
            match res {
                Ok(None) => state.tracks[i].readings += 1,
                Ok(Some(breaching)) => {
                    state.tracks[i].readings += 1;
                    let reason = format!(
                        "guard `{}` already breaching before the first fault: {}; nothing was injected",
                        g.name, breaching.what
                    );
                    state.breach = Some(Breach {
                        guard: i,
                        breaching,
                        seen_at: self.clock.now(),
                        at_preflight: true,
                        unreachable: false,
                    });
                    self.facts.guards = Some(state);
                    return Err(Stop::Guard(reason));
                }
                Err(e) => {
                    return Err(Stop::Preflight(format!(
                        "preflight failed: guard `{}` cannot read {}: {e}; nothing was injected",
                        g.name,
                        source(g)
                    )));
                }
            }
        }
        Ok(state)
    }

    /// Starts the task that watches the guards until the end of recovery
    /// (tripping the drill on a breach) and says so on the terminal.
    fn watch_guards(
        &mut self,
        guards: &[GuardPlan],
        expected: Vec<AlertPlan>,
        src: Sources,
        state: GuardState,
    ) {
        let state = Arc::new(Mutex::new(state));
        let (trip, tripped) = signal::channel(false);
        let stop = signal::channel(false).0;
        let task = tokio::spawn(watch(
            guards.to_vec(),
            expected,
            src,
            state.clone(),
            trip,
            stop.subscribe(),
        ));
        self.guards = Some(Guards {
            state,
            tripped,
            stop,
            task: Some(task),
        });
        self.now(Event::Progress(format!(
            "{} guard(s) hold; watching them until the end of recovery",
            guards.len()
        )));
    }

    fn no_guard_source(&self) -> Stop {
        Stop::Invalid(format!(
            "guards need Prometheus and Alertmanager, and monitoring could not run on target `{}`: {}; nothing was injected",
            self.def.name(),
            self.facts
                .monitoring
                .as_ref()
                .and_then(|m| m.info.skipped.clone())
                .unwrap_or_else(|| "it names none".into())
        ))
    }

    /// After monitoring started: a scenario with guards whose monitoring
    /// was skipped must not run unguarded.
    pub(super) fn guards_started(&self) -> Result<(), Stop> {
        if self.plan.guards.is_empty() || self.guards.is_some() || self.facts.guards.is_some() {
            return Ok(());
        }
        Err(self.no_guard_source())
    }

    /// The stop a breach calls for, once one is recorded.
    pub(super) fn guard_stop(&self) -> Option<Stop> {
        let g = self.guards.as_ref()?;
        if !*g.tripped.borrow() {
            return None;
        }
        let s = g.state.lock().expect("guard state lock");
        let b = s.breach.as_ref()?;
        let guard = &self.plan.guards[b.guard];
        Some(Stop::Guard(if b.unreachable {
            format!(
                "guard `{}`: {}; stopped, fail safe (on_unreachable = \"continue\" goes on without it)",
                guard.name, b.breaching.what
            )
        } else {
            format!(
                "guard `{}` breached: {}; every active fault reverted",
                guard.name, b.breaching.what
            )
        }))
    }

    /// Sleeps `step`, waking early when a guard breaches. True when the
    /// user interrupted.
    pub(super) async fn nap(&self, step: Duration) -> bool {
        let Some(mut tripped) = self.guards.as_ref().map(|g| g.tripped.clone()) else {
            return self.interrupt.sleep(step).await;
        };
        tokio::select! {
            r = self.interrupt.sleep(step) => r,
            _ = tripped.wait_for(|t| *t) => false,
        }
    }

    /// Notes the first revert request after a breach (called by the
    /// teardown before each revert, and once after them all).
    pub(super) fn guard_acting(&mut self) {
        let now = self.clock.now();
        if let Some(g) = self.guards.as_ref() {
            let mut s = g.state.lock().expect("guard state lock");
            if s.breach.is_some() && s.acted_at.is_none() {
                s.acted_at = Some(now);
            }
        } else if let Some(s) = self.facts.guards.as_mut()
            && s.breach.is_some()
            && s.acted_at.is_none()
        {
            s.acted_at = Some(now);
        }
    }

    /// The end of what guards watch (the teardown's start): no breach is
    /// recorded after it.
    pub(super) fn halt_guards(&self) {
        if let Some(g) = self.guards.as_ref() {
            g.stop.send_replace(true);
        }
    }

    /// Stops the watching task and hands what it saw to the assembly.
    pub(super) async fn finish_guards(&mut self) {
        let Some(mut g) = self.guards.take() else {
            return;
        };
        g.stop.send_replace(true);
        if let Some(t) = g.task.take() {
            let _ = t.await;
        }
        let s = g.state.lock().expect("guard state lock").clone();
        if let Some(b) = &s.breach {
            let name = self.plan.guards[b.guard].name.clone();
            self.event(
                b.breaching.visible_at,
                Event::Progress(format!("guard `{name}`: {}", b.breaching.what)),
            );
        }
        self.facts.guards = Some(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_stop_exits_3_and_outranks_an_interrupt_and_an_abort_condition() {
        let g = Stop::Guard("guard `x` breached".into());
        assert_eq!(g.exit_code(), 3);
        assert_eq!(g.reason(), "guard `x` breached");
        assert!(g > Stop::Interrupted && g > Stop::AbortCondition(String::new()));
        assert!(
            Stop::RevertFailed(String::new()) > g,
            "a failed revert still decides"
        );
    }
}
