//! A drill's runtime state, shared by the stages and the teardown, and the
//! few things every stage does: log an event, mark a phase, wait while
//! watching the abort conditions and the user's interrupt.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::signals::Interrupt;
use super::{BUCKET_US, Options, status};
use crate::base::clock::Clock;
use crate::fault::{Active, RunIdentity};
use crate::load::http::Control;
use crate::load::writer::{WriterControl, WriterLog};
use crate::measure::{Micros, Phase, Recorder};
use crate::scenario::Plan;
use crate::targets::database::Database;
use crate::targets::journal::Journal;
use crate::targets::lab::supervisor::LabEvent;
use crate::targets::{Target, TargetDef};
use crate::verdict::event::Event;
use crate::verdict::stop::Stop;
use crate::verdict::{FaultRun, RunFacts};

/// The load's tasks, started together and stopped together.
pub(super) struct Load {
    pub control: Arc<Control>,
    pub writer_control: Arc<WriterControl>,
    pub generator: Option<tokio::task::JoinHandle<()>>,
    /// The agents sending the load instead of `generator`.
    pub fleet: Option<crate::agent::runner::Fleet>,
    pub writer: Option<tokio::task::JoinHandle<WriterLog>>,
    pub reader: Option<tokio::task::JoinHandle<crate::load::reader::ReadLog>>,
    pub status: Option<tokio::task::JoinHandle<()>>,
}

pub(super) struct Drill<'a> {
    pub plan: &'a Plan,
    pub def: &'a TargetDef,
    pub clock: Clock,
    pub run_id: String,
    pub who: RunIdentity,
    pub rec: Arc<Mutex<Recorder>>,
    /// The load's timeout: how long the last request of a phase may take.
    pub timeout: Duration,
    pub facts: RunFacts<'a>,
    pub interrupt: Interrupt,
    phase_name: Arc<Mutex<String>>,
    lab_events: mpsc::UnboundedReceiver<LabEvent>,
    pub lab_tx: Option<mpsc::UnboundedSender<LabEvent>>,
    /// Event lines (in time order) and the live status or heartbeat.
    pub status: status::Status,
    // What the stages opened, for the teardown to close.
    pub journal: Option<Journal>,
    pub target: Option<Target>,
    pub database: Option<Database>,
    pub load: Option<Load>,
    /// Injected and not yet reverted, newest last.
    pub active: Vec<Active>,
    pub runs: Vec<FaultRun>,
    /// The first database fault's inject: the origin of write RTO.
    pub db_inject: Option<Micros>,
    /// Prometheus and Alertmanager, when the scenario reads alerts or probes.
    pub monitor: Option<super::alerts::Monitor>,
    /// The stop guards' watching task, once their preflight passed.
    pub guards: Option<super::guards::Guards>,
    /// `--workers`, overriding the scenario's.
    pub workers: Option<usize>,
    /// `--agents`: local agent processes sending the load.
    pub agents: Option<usize>,
    /// The target's vantage points, when `--agents` is not given.
    pub vantages: Vec<crate::targets::vantage::VantageDef>,
    /// Agent Jobs journalled (kubernetes vantage points), for the teardown.
    pub agent_jobs: Vec<(
        crate::agent::jobs::Journalled,
        crate::targets::k8s::ops::Cluster,
    )>,
}

impl<'a> Drill<'a> {
    pub fn new(plan: &'a Plan, def: &'a TargetDef, opts: &Options, interrupt: Interrupt) -> Self {
        let clock = Clock::start();
        let suffix: u32 = rand::random::<u32>() % 0x10000;
        let run_id = format!("{}-{}-{suffix:04x}", plan.name, clock.stamp());
        let (lab_tx, lab_events) = mpsc::unbounded_channel();
        let timeout = plan.timeout();
        let rec = Arc::new(Mutex::new(Recorder::new(
            BUCKET_US,
            timeout.as_micros() as Micros + 1_000_000,
        )));
        Drill {
            plan,
            def,
            clock,
            who: RunIdentity {
                run_id: run_id.clone(),
                target: def.name().to_string(),
                cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            },
            facts: RunFacts {
                history: opts.history.clone(),
                ..RunFacts::new(plan, def, &run_id, opts.seed, clock)
            },
            run_id,
            rec,
            timeout,
            interrupt,
            phase_name: Arc::new(Mutex::new("starting".into())),
            lab_events,
            lab_tx: Some(lab_tx),
            status: status::Status::new(status::Mode::detect(opts.quiet)),
            journal: None,
            target: None,
            database: None,
            load: None,
            active: Vec::new(),
            runs: Vec::new(),
            db_inject: None,
            monitor: None,
            guards: None,
            workers: opts.workers,
            agents: opts.agents,
            vantages: opts.vantages.clone(),
            agent_jobs: Vec::new(),
        }
    }

    /// Logs an event on the terminal (unless quiet; in time order, see
    /// `status`) and for the report.
    pub fn event(&mut self, at: Micros, e: Event) {
        self.status
            .event(at, format!("  t+{:>7.3}s  {e}", at as f64 / 1e6));
        self.status.release(self.clock.now());
        self.facts.events.push((at, e));
    }

    /// The same, at the current instant.
    pub fn now(&mut self, e: Event) {
        let t = self.clock.now();
        self.event(t, e);
    }

    pub fn drain_lab_events(&mut self) {
        while let Ok(ev) = self.lab_events.try_recv() {
            self.event(ev.at, Event::Target(ev.what));
        }
    }

    pub fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.rec.lock().expect("recorder lock")
    }

    pub fn enter(&mut self, phase: Phase, at: Micros) {
        self.recorder().mark(phase, at);
        self.set_phase(phase);
    }

    /// The phase shown on the status line.
    pub fn set_phase(&self, phase: Phase) {
        *self.phase_name.lock().expect("phase lock") = phase.name().to_string();
    }

    pub fn phase_name(&self) -> Arc<Mutex<String>> {
        self.phase_name.clone()
    }

    pub fn target(&self) -> &Target {
        self.target
            .as_ref()
            .expect("the target starts before any fault")
    }

    /// Sleeps until `until` (run clock) while watching the abort conditions
    /// (from `aborts_from`, the first inject), the stop guards and the
    /// user's interrupt.
    pub async fn observe(
        &mut self,
        until: Micros,
        aborts_from: Option<Micros>,
    ) -> Result<(), Stop> {
        loop {
            self.drain_lab_events();
            self.drain_agent_events();
            self.drain_alert_events();
            let now = self.clock.now();
            self.status.release(now);
            if self.interrupt.requested() {
                return Err(Stop::Interrupted);
            }
            if let Some(stop) = self.guard_stop() {
                return Err(stop);
            }
            if let Some(reason) = aborts_from.and_then(|from| self.abort_reason(now, from)) {
                return Err(Stop::AbortCondition(reason));
            }
            if now >= until {
                return Ok(());
            }
            let step = Duration::from_micros((until - now).min(100_000));
            if self.nap(step).await {
                return Err(Stop::Interrupted);
            }
        }
    }

    fn abort_reason(&self, now: Micros, first_inject: Micros) -> Option<String> {
        let rec = self.recorder();
        for a in &self.plan.aborts {
            if now < first_inject + a.after.micros() + a.over.micros() {
                continue;
            }
            if let Some(r) = rec.good_ratio_between(now - a.over.micros(), now)
                && r < a.below
            {
                return Some(format!(
                    "abort condition: availability {:.2}% over the last {} < {}",
                    r * 100.0,
                    a.over,
                    crate::base::units::Percent(a.below)
                ));
            }
        }
        None
    }
}
