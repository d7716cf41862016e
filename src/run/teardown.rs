//! The one way out. Whatever the stages returned, the teardown reverts every
//! active fault (newest first), stops the load and measures data loss, stops
//! the target, closes the journal only when nothing is outstanding, and
//! assembles the result.

use std::collections::BTreeMap;

use super::{Drill, Load};
use crate::fault;
use crate::results::{DrillResult, FaultEnd};
use crate::targets::journal::FinishError;
use crate::verdict::event::Event;
use crate::verdict::stop::Stop;

impl Drill<'_> {
    pub(super) async fn teardown(mut self, stopped: Option<Stop>) -> DrillResult {
        self.halt_guards();
        // Alerts seen so far take their place before the reverts' lines.
        self.drain_alert_events();
        let mut stopped = stopped.max(self.guard_stop());
        if let Some(stop) = self.revert_active().await {
            stopped = stopped.max(Some(stop));
        }
        // Nothing was active at the breach: the teardown is the guard's act.
        self.guard_acting();
        self.finish_guards().await;
        if self.facts.end == 0 {
            // Stopped before the recovery observation: the drill ends now.
            self.end_drill(self.clock.now());
        }
        if let Some(load) = self.load.take() {
            self.stop_load(load).await;
        }
        self.finish_monitoring().await;
        if let Some(db) = self.database.as_mut() {
            db.stop().await;
        }
        self.drain_lab_events();
        if let Some(t) = self.target.as_mut() {
            t.stop().await;
        }
        self.drain_lab_events();
        if let Some(stop) = self.remove_agent_jobs().await {
            stopped = stopped.max(Some(stop));
        }
        self.close_journal();
        self.facts.faults = std::mem::take(&mut self.runs);
        if let Some(stop) = stopped {
            self.facts.abort(stop.reason());
            self.facts.exit_code = Some(stop.exit_code());
        }
        self.status.flush();
        let mut rec = self.rec.lock().expect("recorder lock");
        crate::verdict::assemble(self.facts, &mut rec)
    }

    /// Reverts what is still injected, newest first. Returns a stop when a
    /// revert failed.
    async fn revert_active(&mut self) -> Option<Stop> {
        let mut failed = None;
        while let Some(a) = self.active.pop() {
            self.guard_acting();
            let target = self.target.as_ref().expect("a fault implies a target");
            let journal = self.journal.as_mut().expect("a fault implies a journal");
            let res = fault::revert(target, journal, &a, &self.who).await;
            let already = target.already_restored(&a.injection);
            let t = self.clock.now();
            let name = a.fault.name.clone();
            let mut warn = None;
            if let Some(run) = self.runs.iter_mut().find(|r| r.name == name) {
                run.ended = match (&res, run.ended, &already) {
                    (Ok(()), FaultEnd::InjectFailed, _) => FaultEnd::InjectFailedReverted,
                    (Ok(()), _, Some(objects)) => {
                        warn = Some(objects.clone());
                        FaultEnd::AlreadyRestored
                    }
                    (Ok(()), _, None) => FaultEnd::Reverted,
                    (Err(_), _, _) => FaultEnd::RevertFailed,
                };
                if res.is_ok() && run.ended_at.is_none() {
                    run.ended_at = Some(t);
                }
            }
            match res {
                Ok(()) => match warn {
                    Some(objects) => self.event(
                        t,
                        Event::AlreadyRestored {
                            fault: name,
                            objects,
                        },
                    ),
                    None => self.event(t, Event::Reverted { fault: name }),
                },
                Err(e) => {
                    let manual = fault::manual_instruction(&a, &e, &self.run_id);
                    self.facts.manual_actions.push(manual);
                    self.event(
                        t,
                        Event::RevertFailed {
                            fault: name.clone(),
                            error: e,
                        },
                    );
                    failed = Some(Stop::RevertFailed(format!("revert of `{name}` failed")));
                }
            }
        }
        failed
    }

    /// Stops every load task; the HTTP generator drains its requests in
    /// flight (each ends by its timeout) unless the user is in a hurry.
    async fn stop_load(&mut self, load: Load) {
        load.control.stop();
        load.writer_control.stop();
        if let Some(g) = load.generator {
            if self.interrupt.hurried() {
                g.abort();
            } else {
                let _ = g.await;
            }
        }
        if let Some(fleet) = load.fleet {
            self.stop_agents(fleet).await;
        }
        if let Some(w) = load.writer
            && let Ok(log) = w.await
        {
            let mut per_sec: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
            for &(_, at) in &log.acks {
                per_sec.entry(at / 1_000_000).or_default().0 += 1;
            }
            for &(_, at) in &log.failed {
                per_sec.entry(at / 1_000_000).or_default().1 += 1;
            }
            self.facts.writes = Some(per_sec);
            self.measure_rpo(&log).await;
        }
        if let (Some(rd), Some(at)) = (load.reader, self.db_inject)
            && let Ok(log) = rd.await
            && let Some(rpo) = self.facts.rpo.as_mut()
        {
            rpo.reads = Some(log.summary(at));
        }
        if let Some(s) = load.status {
            s.abort();
            self.status.finish();
        }
    }

    /// Data loss: what the writer had acknowledged against what the new
    /// primary holds, once a database fault ran.
    async fn measure_rpo(&mut self, log: &crate::load::writer::WriterLog) {
        let (Some(at), Some(db)) = (self.db_inject, self.database.as_ref()) else {
            return;
        };
        match db.survivors().await {
            Ok(rows) => {
                let r = crate::measure::rpo::rpo(log, &rows, at);
                self.now(Event::Database(format!(
                    "database: {} acknowledged writes, {} lost, {} indeterminate; RPO {:.3}s",
                    r.acknowledged, r.lost_writes, r.indeterminate, r.rpo_s
                )));
                self.facts.rpo = Some(r);
            }
            Err(e) => self.now(Event::Database(format!(
                "database: cannot read what the new primary holds: {e}"
            ))),
        }
    }

    /// The journal moves to `done/` only when nothing is outstanding; else
    /// it stays for `drill cleanup`, and the result says what to do.
    fn close_journal(&mut self) {
        let Some(j) = self.journal.take() else {
            return;
        };
        match j.finish(&self.run_id) {
            Ok(()) => {}
            Err(FinishError::Outstanding { count }) => {
                if self.facts.manual_actions.is_empty() {
                    self.facts.manual_actions.push(format!(
                        "{count} fault(s) of run {} are still outstanding in the journal; run `drill cleanup`",
                        self.run_id
                    ));
                }
            }
            Err(FinishError::Io(e)) => self.now(Event::Progress(format!(
                "the journal could not be closed ({e}); `drill cleanup` will close it"
            ))),
        }
    }
}
