//! The fault phase: each fault in turn, driven by its lifecycle
//! (self-healing, revertible, one-way). A fault stays in `Drill::active`
//! from its journalled inject until its revert succeeds, so the teardown
//! reverts whatever a stage leaves behind.

use std::time::Duration;

use super::Drill;
use crate::fault;
use crate::measure::{Micros, Rto, fault_impact};
use crate::results::FaultEnd;
use crate::scenario::model::{Action, Lifecycle, Until};
use crate::scenario::plan::FaultPlan;
use crate::targets::TargetError;
use crate::verdict::FaultRun;
use crate::verdict::event::Event;
use crate::verdict::stop::Stop;

/// What a fault's driver hands back: the fault as it ran, and whether the
/// drill goes on.
type Driven = (FaultRun, Result<(), Stop>);

impl Drill<'_> {
    pub(super) async fn faults(&mut self) -> Result<(), Stop> {
        let faults = &self.plan.faults;
        let fault_start = self.clock.now();
        let first_inject = fault_start + faults.first().map_or(0, |f| f.after.micros());
        self.facts.first_inject = Some(first_inject);
        let mut prev_end = fault_start;
        for (i, f) in faults.iter().enumerate() {
            self.observe(prev_end + f.after.micros(), Some(first_inject))
                .await?;
            let id = i as u32 + 1;
            let (run, res) = match f.action.lifecycle() {
                Lifecycle::OneWay => self.one_way(id, f).await,
                Lifecycle::SelfHealing | Lifecycle::Revertible => {
                    self.two_way(id, f, first_inject).await
                }
            };
            prev_end = run.ended_at.unwrap_or_else(|| self.clock.now());
            self.runs.push(run);
            res?;
        }
        Ok(())
    }

    /// A database switchover or failover: journalled, run, never reverted.
    async fn one_way(&mut self, id: u32, f: &FaultPlan) -> Driven {
        let inject_at = self.clock.now();
        let mut run = FaultRun::new(f, inject_at);
        let name = f.name.clone();
        self.event(
            inject_at,
            Event::Inject {
                fault: name.clone(),
                what: format!("{} database", f.action.name()),
            },
        );
        let db = self
            .database
            .as_ref()
            .expect("validated: database faults have a database");
        let journal = self.journal.as_mut().expect("the journal opens first");
        match fault::inject_database(db, journal, id, f).await {
            Ok(steps) => {
                for (at, step) in steps {
                    let t = self.clock.since(at);
                    self.event(
                        t,
                        Event::FaultStep {
                            fault: name.clone(),
                            step,
                        },
                    );
                }
                let t = self.clock.now();
                run.ended_at = Some(t);
                run.ended = FaultEnd::Completed;
                self.event(t, Event::Completed { fault: name });
                self.db_inject.get_or_insert(inject_at);
                (run, Ok(()))
            }
            Err(e) => {
                run.ended = FaultEnd::Failed;
                self.now(Event::OneWayFailed {
                    fault: name.clone(),
                    error: e.to_string(),
                });
                if e.exit_code() == crate::base::exit::REVERT_FAILED {
                    self.facts
                        .manual_actions
                        .push(format!("database fault `{name}`: {e}"));
                }
                let why = format!("database fault `{name}` failed: {e}");
                (run, Err(Stop::FaultFailed(why)))
            }
        }
    }

    /// A fault injected through the target (or a command), then healed by
    /// the target or reverted by drill.
    async fn two_way(&mut self, id: u32, f: &FaultPlan, first_inject: Micros) -> Driven {
        let inject_at = self.clock.now();
        let mut run = FaultRun::new(f, inject_at);
        let name = f.name.clone();
        let target = self.target.as_ref().expect("the target starts first");
        let journal = self.journal.as_mut().expect("the journal opens first");
        let (active, res) = fault::inject(target, journal, id, f, &self.who).await;
        // Journalled: from here on, the teardown reverts it on any way out.
        self.active.extend(active);
        if let Err(e) = res {
            self.now(Event::InjectFailed {
                fault: name,
                error: e.to_string(),
            });
            run.ended = FaultEnd::InjectFailed;
            return (run, Err(Stop::FaultFailed(e.to_string())));
        }
        let what = match (f.component(), f.region()) {
            (Some(c), Some(r)) => format!("{} {c}/{r}", f.action.name()),
            (Some(c), None) => format!("{} {c}", f.action.name()),
            _ => f.action.name().to_string(),
        };
        self.event(inject_at, Event::Inject { fault: name, what });
        let cross_before = self.target().cross_region().await;
        let config_version = self.change_config(f);
        let ended = self.wait_for_end(f, inject_at, first_inject).await;
        let res = match f.action.lifecycle() {
            Lifecycle::SelfHealing => {
                self.healed(
                    f,
                    &mut run,
                    ended.as_ref().ok().copied().flatten(),
                    ended.is_err(),
                )
                .await;
                ended.map(|_| ())
            }
            _ => match ended {
                Ok(_) => self.revert_now(f, &mut run).await,
                // Still active: the teardown reverts it.
                Err(stop) => Err(stop),
            },
        };
        self.target_observations(&mut run, cross_before, config_version)
            .await;
        (run, res)
    }

    /// The routing change some drills make while the control plane is
    /// down; returns the configuration version to watch for.
    fn change_config(&mut self, f: &FaultPlan) -> Option<u64> {
        if !f.change_config {
            return None;
        }
        match self.target().change_config() {
            Ok(v) => {
                self.now(Event::ConfigChange(format!("routing change: mesh configuration version {v} applied to the API server while the control plane is down")));
                Some(v)
            }
            Err(TargetError::Unsupported(why)) => {
                self.now(Event::ConfigChange(format!(
                    "routing change not made: {why}; config sync is not measured on this target"
                )));
                self.facts.config_sync_unmeasurable = true;
                None
            }
            Err(e) => {
                self.now(Event::ConfigChange(format!("routing change failed: {e}")));
                None
            }
        }
    }

    /// Waits for the fault's end condition (healed, recovered) or its
    /// duration. `Ok(Some(t))`: the condition held at `t`; `Ok(None)`: the
    /// deadline passed first; `Err`: the drill must stop.
    async fn wait_for_end(
        &mut self,
        f: &FaultPlan,
        inject_at: Micros,
        first_inject: Micros,
    ) -> Result<Option<Micros>, Stop> {
        let until = f.end_condition();
        let deadline = inject_at + f.deadline();
        let crit = self.plan.recovery;
        loop {
            self.observe(self.clock.now() + 50_000, Some(first_inject))
                .await?;
            let now = self.clock.now();
            match until {
                Some(Until::Healed) => {
                    let a = self.active.last().expect("the fault is active");
                    if let Some(at) = self.target().healed_at(&a.injection) {
                        return Ok(Some(at));
                    }
                }
                Some(Until::Recovered) => {
                    let r = self.recorder();
                    let seen = now.saturating_sub(self.timeout.as_micros() as Micros);
                    let rto =
                        fault_impact(r.buckets(), r.bucket_us(), inject_at, seen, seen, &crit).rto;
                    if let Rto::Recovered(_) = rto {
                        return Ok(Some(now));
                    }
                }
                None => {}
            }
            if now >= deadline {
                // A plain duration ends the fault on time.
                return Ok(until.is_none().then_some(now));
            }
        }
    }

    /// A self-healing fault's end: nothing to revert, its journal entry
    /// closes now whether it healed or not.
    async fn healed(
        &mut self,
        f: &FaultPlan,
        run: &mut FaultRun,
        at: Option<Micros>,
        stopped: bool,
    ) {
        let a = self.active.pop().expect("the fault is active");
        let target = self.target.as_ref().expect("the target starts first");
        let journal = self.journal.as_mut().expect("the journal opens first");
        let closed = fault::revert(target, journal, &a, &self.who).await;
        debug_assert!(closed.is_ok(), "a self-healing fault has nothing to revert");
        run.ended_at = at;
        let name = f.name.clone();
        run.ended = match at {
            Some(t) => {
                self.event(t, Event::Healed { fault: name });
                run.extra.component_ready_s = Some(t.saturating_sub(run.injected_at) as f64 / 1e6);
                FaultEnd::Healed
            }
            None if stopped => FaultEnd::NotHealed,
            None => {
                self.now(Event::HealTimeout {
                    fault: name,
                    timeout: f.timeout.to_string(),
                });
                FaultEnd::HealTimeout
            }
        };
    }

    /// Reverts the newest active fault now that its time is up.
    async fn revert_now(&mut self, f: &FaultPlan, run: &mut FaultRun) -> Result<(), Stop> {
        let a = self.active.pop().expect("the fault is active");
        let target = self.target.as_ref().expect("the target starts first");
        let journal = self.journal.as_mut().expect("the journal opens first");
        let name = f.name.clone();
        match fault::revert(target, journal, &a, &self.who).await {
            Ok(()) => {
                let t = self.clock.now();
                run.ended_at = Some(t);
                match self.target().already_restored(&a.injection) {
                    Some(objects) => {
                        run.ended = FaultEnd::AlreadyRestored;
                        self.event(
                            t,
                            Event::AlreadyRestored {
                                fault: name,
                                objects,
                            },
                        );
                    }
                    None => {
                        run.ended = FaultEnd::Reverted;
                        self.event(t, Event::Reverted { fault: name });
                    }
                }
                if matches!(f.action, Action::Down | Action::RegionOutage) {
                    self.ready_after_restore(f, &a, run, t).await;
                }
                Ok(())
            }
            Err(e) => {
                run.ended = FaultEnd::RevertFailed;
                let manual = fault::manual_instruction(&a, &e, &self.run_id);
                self.facts.manual_actions.push(manual);
                self.now(Event::RevertFailed {
                    fault: name.clone(),
                    error: e,
                });
                Err(Stop::RevertFailed(format!("revert of `{name}` failed")))
            }
        }
    }

    /// Target-side recovery beside the traffic RTO: how long the restored
    /// instances took to be Ready.
    async fn ready_after_restore(
        &mut self,
        f: &FaultPlan,
        a: &fault::Active,
        run: &mut FaultRun,
        t: Micros,
    ) {
        let limit = t + f.timeout.micros();
        while self.clock.now() < limit && !self.interrupt.requested() {
            if let Some(ready) = self.target().healed_at(&a.injection) {
                let after_s = ready.saturating_sub(t) as f64 / 1e6;
                run.extra.ready_after_restore_s = Some(after_s);
                let fault = f.name.clone();
                self.event(ready.max(t), Event::ReadyAfterRestore { fault, after_s });
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Cross-region calls during the fault, and how long the data plane
    /// took to apply the routing change once the control plane returned.
    async fn target_observations(
        &mut self,
        run: &mut FaultRun,
        cross_before: Option<(u64, u64)>,
        config_version: Option<u64>,
    ) {
        if let (Some(before), Some(after)) = (cross_before, self.target().cross_region().await) {
            run.extra.cross_region_calls = Some(after.0.saturating_sub(before.0));
            run.extra.cross_region_failed = Some(after.1.saturating_sub(before.1));
        }
        let (Some(version), Some(restored)) = (config_version, run.ended_at) else {
            return;
        };
        let limit = self.clock.now() + 60_000_000;
        while self.clock.now() < limit && !self.interrupt.requested() {
            if self.target().config_applied(version).await {
                let t = self.clock.now();
                let sync_s = t.saturating_sub(restored) as f64 / 1e6;
                run.extra.config_sync_s = Some(sync_s);
                self.event(t, Event::ConfigSynced { version, sync_s });
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
