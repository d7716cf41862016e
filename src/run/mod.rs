//! The runner: a drill as stages that each return `Result<_, Stop>`, and one
//! teardown that runs whatever happened. The stages, in order: open the
//! journal, start the target, preflight, open the database, start the load,
//! warm up and judge the baseline, run each fault through its lifecycle,
//! observe recovery. The teardown reverts whatever is still active, stops
//! the load, measures data loss, stops the target, closes the journal only
//! when nothing is outstanding, and assembles the result.

mod agents;
mod alerts;
mod baseline;
mod entry;
mod faults;
pub(crate) mod guards;
pub(crate) mod signals;
mod stages;
pub(crate) mod status;
mod steady;
mod teardown;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::base::clock::Clock;
use crate::fault::{Active, RunIdentity};
use crate::load::http::Control;
use crate::load::writer::{WriterControl, WriterLog};
use crate::measure::{Micros, Phase, Recorder};
use crate::results::DrillResult;
use crate::scenario::Plan;
use crate::targets::database::Database;
use crate::targets::journal::Journal;
use crate::targets::lab::supervisor::LabEvent;
use crate::targets::{Target, TargetDef};
use crate::verdict::event::Event;
use crate::verdict::stop::Stop;
use crate::verdict::{FaultRun, RunFacts};
use signals::Interrupt;

pub(crate) const BUCKET_US: Micros = 100_000;

pub(crate) struct Options {
    pub seed: u64,
    pub quiet: bool,
    /// Earlier runs of this drill, oldest first (for `regression` checks).
    pub history: Vec<crate::history::Record>,
    /// Load generator threads (`--workers`), overriding the scenario's.
    pub workers: Option<usize>,
    /// `--agents N`: the load comes from N local agent processes.
    pub agents: Option<usize>,
    /// The target's vantage points (used without `--agents`).
    pub vantages: Vec<crate::targets::vantage::VantageDef>,
}

/// What the runner hands back: the drill's result, whether it passed,
/// failed, or stopped before anything was injected.
pub(crate) struct Finished {
    pub result: DrillResult,
}

/// Runs one drill end to end. Never leaves a fault injected: whatever a
/// stage returns, the teardown reverts what is active before the result is
/// assembled.
pub(crate) async fn run(
    plan: &Plan,
    def: &TargetDef,
    opts: &Options,
    interrupt: Interrupt,
) -> Finished {
    let mut d = Drill::new(plan, def, opts, interrupt);
    let stopped = d.stages().await.err();
    Finished {
        result: d.teardown(stopped).await,
    }
}

// A drill's runtime state, shared by the stages and the teardown, and the
// few things every stage does: log an event, mark a phase, wait while
// watching the abort conditions and the user's interrupt.

/// The load's tasks, started together and stopped together.
struct Load {
    control: Arc<Control>,
    writer_control: Arc<WriterControl>,
    generator: Option<tokio::task::JoinHandle<()>>,
    /// The agents sending the load instead of `generator`.
    fleet: Option<crate::agent::runner::Fleet>,
    writer: Option<tokio::task::JoinHandle<WriterLog>>,
    reader: Option<tokio::task::JoinHandle<crate::load::reader::ReadLog>>,
    status: Option<tokio::task::JoinHandle<()>>,
}

struct Drill<'a> {
    plan: &'a Plan,
    def: &'a TargetDef,
    clock: Clock,
    run_id: String,
    who: RunIdentity,
    rec: Arc<Mutex<Recorder>>,
    /// The load's timeout: how long the last request of a phase may take.
    timeout: Duration,
    facts: RunFacts<'a>,
    interrupt: Interrupt,
    phase_name: Arc<Mutex<String>>,
    lab_events: mpsc::UnboundedReceiver<LabEvent>,
    lab_tx: Option<mpsc::UnboundedSender<LabEvent>>,
    /// Event lines (in time order) and the live status or heartbeat.
    status: status::Status,
    // What the stages opened, for the teardown to close.
    journal: Option<Journal>,
    target: Option<Target>,
    database: Option<Database>,
    load: Option<Load>,
    /// Injected and not yet reverted, newest last.
    active: Vec<Active>,
    runs: Vec<FaultRun>,
    /// The first database fault's inject: the origin of write RTO.
    db_inject: Option<Micros>,
    /// Prometheus and Alertmanager, when the scenario reads alerts or probes.
    monitor: Option<alerts::Monitor>,
    /// The stop guards' watching task, once their preflight passed.
    guards: Option<guards::Guards>,
    /// `--workers`, overriding the scenario's.
    workers: Option<usize>,
    /// `--agents`: local agent processes sending the load.
    agents: Option<usize>,
    /// The target's vantage points, when `--agents` is not given.
    vantages: Vec<crate::targets::vantage::VantageDef>,
    /// Agent Jobs journalled (kubernetes vantage points), for the teardown.
    agent_jobs: Vec<(
        crate::agent::jobs::Journalled,
        crate::targets::k8s::ops::Cluster,
    )>,
}

impl<'a> Drill<'a> {
    fn new(plan: &'a Plan, def: &'a TargetDef, opts: &Options, interrupt: Interrupt) -> Self {
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
    fn event(&mut self, at: Micros, e: Event) {
        self.status
            .event(at, format!("  t+{:>7.3}s  {e}", at as f64 / 1e6));
        self.status.release(self.clock.now());
        self.facts.events.push((at, e));
    }

    /// The same, at the current instant.
    fn now(&mut self, e: Event) {
        let t = self.clock.now();
        self.event(t, e);
    }

    fn drain_lab_events(&mut self) {
        while let Ok(ev) = self.lab_events.try_recv() {
            self.event(ev.at, Event::Target(ev.what));
        }
    }

    fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.rec.lock().expect("recorder lock")
    }

    fn enter(&mut self, phase: Phase, at: Micros) {
        self.recorder().mark(phase, at);
        self.set_phase(phase);
    }

    /// The phase shown on the status line.
    fn set_phase(&self, phase: Phase) {
        *self.phase_name.lock().expect("phase lock") = phase.name().to_string();
    }

    fn phase_name(&self) -> Arc<Mutex<String>> {
        self.phase_name.clone()
    }

    fn target(&self) -> &Target {
        self.target
            .as_ref()
            .expect("the target starts before any fault")
    }

    /// Sleeps until `until` (run clock) while watching the abort conditions
    /// (from `aborts_from`, the first inject), the stop guards and the
    /// user's interrupt.
    async fn observe(&mut self, until: Micros, aborts_from: Option<Micros>) -> Result<(), Stop> {
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
