//! The runner: start the target, preflight, load, warm up, baseline (steady
//! state must hold before anything is touched), each fault in turn, recovery
//! observation, then revert everything still outstanding on every way out and
//! assemble the result.

pub mod assemble;
pub mod checks;
mod entry;
pub mod signals;
pub mod status;
mod steady;

use entry::{http_load, probe_entry};
pub use steady::steady_state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::fault::journal::{Entry, Journal};
use crate::fault::{self, Active, RunIdentity};
use crate::load::http::Control;
use crate::load::writer::WriterControl;
use crate::measure::{Micros, Phase, Recorder, RecoveryCriteria, Rto, fault_impact};
use crate::report::model::{CheckStatus, DrillResult};
use crate::scenario::Loaded;
use crate::scenario::model::{Action, Until};
use crate::targets::database::Database;
use crate::targets::lab::supervisor::LabEvent;
use crate::targets::{Target, TargetDef};
use assemble::{FaultRun, RunFacts};
use signals::Interrupt;

pub const BUCKET_US: Micros = 100_000;

pub struct Options {
    pub seed: u64,
    pub quiet: bool,
    /// Load generator threads (`--workers`), overriding the scenario's.
    pub workers: Option<usize>,
}

/// What the runner hands back: the drill's result, whether it passed,
/// failed, or stopped before anything was injected.
pub struct Finished {
    pub result: DrillResult,
}

/// Runtime state shared by the phases.
struct Drill<'a> {
    l: &'a Loaded,
    clock: Clock,
    rec: Arc<Mutex<Recorder>>,
    phase_name: Arc<Mutex<String>>,
    events: Vec<(Micros, String)>,
    lab_events: mpsc::UnboundedReceiver<LabEvent>,
    live: bool,
    quiet: bool,
    interrupt: Interrupt,
}

impl Drill<'_> {
    fn event(&mut self, at: Micros, what: String) {
        if !self.quiet {
            if self.live {
                status::clear();
            }
            eprintln!("  t+{:>7.3}s  {what}", at as f64 / 1e6);
        }
        self.events.push((at, what));
    }

    fn drain_lab_events(&mut self) {
        while let Ok(ev) = self.lab_events.try_recv() {
            self.event(ev.at, ev.what);
        }
    }

    fn enter(&mut self, phase: Phase, at: Micros) {
        self.rec.lock().expect("recorder lock").mark(phase, at);
        self.set_phase(phase);
    }

    /// The phase shown on the status line.
    fn set_phase(&self, phase: Phase) {
        *self.phase_name.lock().expect("phase lock") = phase.name().to_string();
    }

    /// Sleeps until `until` (run clock) while watching abort conditions.
    /// Returns the abort reason, if one fired (or the user interrupted).
    async fn observe(&mut self, until: Micros, aborts_from: Option<Micros>) -> Option<String> {
        loop {
            self.drain_lab_events();
            let now = self.clock.now();
            if self.interrupt.requested() {
                return Some("interrupted by the user".into());
            }
            if let Some(reason) = aborts_from.and_then(|from| self.abort_reason(now, from)) {
                return Some(reason);
            }
            if now >= until {
                return None;
            }
            let step = Duration::from_micros((until - now).min(100_000));
            if self.interrupt.sleep(step).await {
                return Some("interrupted by the user".into());
            }
        }
    }

    fn abort_reason(&self, now: Micros, first_inject: Micros) -> Option<String> {
        let rec = self.rec.lock().expect("recorder lock");
        for a in &self.l.scenario.abort {
            let a = a.get_ref();
            if now < first_inject + a.after.micros() + a.over.micros() {
                continue;
            }
            let below = a.availability_below.get_ref().0;
            if let Some(r) = rec.good_ratio_between(now - a.over.micros(), now)
                && r < below
            {
                return Some(format!(
                    "abort condition: availability {:.2}% over the last {} < {}",
                    r * 100.0,
                    a.over,
                    a.availability_below.get_ref()
                ));
            }
        }
        None
    }
}

/// Runs one drill end to end. Never leaves a fault injected: every path out
/// of the fault phase goes through the revert loop below.
pub async fn run(l: &Loaded, def: &TargetDef, opts: &Options, interrupt: Interrupt) -> Finished {
    let clock = Clock::start();
    let suffix: u32 = rand::random::<u32>() % 0x10000;
    let run_id = format!("{}-{}-{suffix:04x}", l.name, clock.stamp());
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let s = &l.scenario;
    let timeout = s
        .load
        .as_ref()
        .map_or(Duration::from_secs(2), |ld| ld.timeout.get_ref().0);
    let rec = Arc::new(Mutex::new(Recorder::new(
        BUCKET_US,
        timeout.as_micros() as Micros + 1_000_000,
    )));
    let live = status::live(opts.quiet);
    let mut d = Drill {
        l,
        clock,
        rec: rec.clone(),
        phase_name: Arc::new(Mutex::new("starting".into())),
        events: Vec::new(),
        lab_events: ev_rx,
        live,
        quiet: opts.quiet,
        interrupt,
    };
    let mut facts = RunFacts::new(l, def, &run_id, opts.seed, clock);

    let who = RunIdentity {
        run_id: run_id.clone(),
        target: def.name().to_string(),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let mut journal = match Journal::create(
        &run_id,
        &Entry::Run {
            run_id: run_id.clone(),
            pid: std::process::id(),
            scenario: l.name.clone(),
            target: def.name().into(),
            started_at: clock.started_at(),
        },
    ) {
        Ok(j) => j,
        Err(e) => {
            facts.abort(format!(
                "cannot create the fault journal in {}: {e}; nothing was injected",
                crate::fault::journal::journal_dir().display()
            ));
            return Finished {
                result: assemble::assemble(facts, &mut rec.lock().expect("recorder lock")),
            };
        }
    };

    // Target and preflight: nothing is injected unless both pass.
    let start_ev = format!("starting target `{}` ({})", def.name(), def.kind());
    d.event(clock.now(), start_ev);
    let mut target = match Target::start(def, &run_id, clock, ev_tx).await {
        Ok(t) => t,
        Err(e) => {
            facts.abort(format!("preflight failed: {e}; nothing was injected"));
            let _ = journal.finish(&run_id);
            return Finished {
                result: assemble::assemble(facts, &mut rec.lock().expect("recorder lock")),
            };
        }
    };
    target.set_seed(opts.seed);
    facts.entry_url = target.entry_url();
    let faults: Vec<_> = s.faults.iter().map(|f| f.get_ref()).collect();
    let preflight = match target.preflight(&faults).await {
        Ok(()) => match &s.load {
            Some(ld) => probe_entry(&facts.entry_url, ld.path.get_ref(), timeout).await,
            None => Ok(()),
        },
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = preflight {
        facts.abort(format!("preflight failed: {e}; nothing was injected"));
        target.stop().await;
        let _ = journal.finish(&run_id);
        return Finished {
            result: assemble::assemble(facts, &mut rec.lock().expect("recorder lock")),
        };
    }
    // The database, when the scenario writes to one: started (lab) or
    // reached (external), and its standby streaming, before anything else.
    let mut database = None;
    if s.database.is_some() {
        d.event(
            clock.now(),
            "opening the database (the lab starts a PostgreSQL primary and streaming standby)"
                .into(),
        );
        let opened = match Database::open(def).await {
            Ok(db) => db.preflight().await.map(|()| db),
            Err(e) => Err(e),
        };
        match opened {
            Ok(db) => {
                d.event(
                    clock.now(),
                    "database preflight passed: the standby is streaming".into(),
                );
                database = Some(db);
            }
            Err(e) => {
                facts.exit_code = Some(e.exit_code().min(crate::error::ABORTED));
                facts.abort(format!(
                    "database preflight failed: {e}; nothing was injected"
                ));
                target.stop().await;
                let _ = journal.finish(&run_id);
                return Finished {
                    result: assemble::assemble(facts, &mut rec.lock().expect("recorder lock")),
                };
            }
        }
    }
    d.event(
        clock.now(),
        match &s.load {
            Some(ld) => format!(
                "preflight passed; load {} {}{} at {}/s",
                ld.method.get_ref(),
                facts.entry_url,
                ld.path.get_ref(),
                ld.rate.get_ref()
            ),
            None => "preflight passed; no HTTP load (database writes only)".to_string(),
        },
    );

    // Load.
    let load = match http_load(l, &facts.entry_url, opts.workers) {
        Ok(load) => load,
        Err(e) => {
            facts.abort(e);
            target.stop().await;
            let _ = journal.finish(&run_id);
            return Finished {
                result: assemble::assemble(facts, &mut rec.lock().expect("recorder lock")),
            };
        }
    };
    let control = Arc::new(Control::default());
    let load_start = clock.now() + 10_000;
    facts.load_start = load_start;
    let writer_control = Arc::new(WriterControl::new(
        s.database
            .as_ref()
            .map_or(Duration::from_secs(5), |w| w.get_ref().write_timeout.0),
    ));
    let writer = match (&database, &s.database) {
        (Some(db), Some(w)) => Some(tokio::spawn(crate::load::writer::run(
            db.writer_dsn(),
            *w.get_ref().rate.get_ref(),
            clock,
            load_start,
            writer_control.clone(),
        ))),
        _ => None,
    };
    let reader = match (
        &database,
        s.database
            .as_ref()
            .and_then(|w| w.get_ref().read_rate.as_ref()),
    ) {
        (Some(db), Some(rate)) => Some(tokio::spawn(crate::load::reader::run(
            crate::load::reader::any_node(&db.writer_dsn()),
            *rate.get_ref(),
            clock,
            load_start,
            writer_control.clone(),
        ))),
        _ => None,
    };
    let generator = load.map(|load| {
        tokio::spawn(crate::load::http::run(
            load,
            clock,
            load_start,
            rec.clone(),
            control.clone(),
        ))
    });
    let status_task = live.then(|| {
        status::spawn(
            clock,
            rec.clone(),
            d.phase_name.clone(),
            s.load.as_ref().map_or(0.0, |ld| *ld.rate.get_ref()),
        )
    });

    // Warmup, then baseline. Phase boundaries known in advance are marked
    // now, so every request is counted in the phase of its due time.
    let baseline_start = load_start + s.phases.warmup.get_ref().micros();
    let baseline_end = baseline_start + s.phases.baseline.get_ref().micros();
    {
        let mut r = rec.lock().expect("recorder lock");
        r.mark(Phase::Warmup, load_start);
        r.mark(Phase::Baseline, baseline_start);
        r.mark(Phase::Fault, baseline_end);
    }
    d.set_phase(Phase::Warmup);
    let writes_at_baseline;
    let mut stop_reason = d.observe(baseline_start, None).await;
    let mut actives: Vec<Active> = Vec::new();
    let mut runs: Vec<FaultRun> = Vec::new();
    if stop_reason.is_none() {
        d.set_phase(Phase::Baseline);
        writes_at_baseline = (writer_control.acked(), writer_control.failed());
        d.event(
            baseline_start,
            format!("baseline {}", s.phases.baseline.get_ref()),
        );
        stop_reason = d.observe(baseline_end, None).await;
        if stop_reason.is_none() {
            // The fault phase has begun; the first inject waits until every
            // baseline request has completed (at most one timeout), so none
            // is cut by the fault and steady state is judged on all of them.
            d.set_phase(Phase::Fault);
            let settle_until = baseline_end + timeout.as_micros() as Micros;
            while rec
                .lock()
                .expect("recorder lock")
                .unfinished(Phase::Baseline)
                > 0
                && clock.now() < settle_until
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let writes = writer.as_ref().map(|_| {
                (
                    writer_control.acked() - writes_at_baseline.0,
                    writer_control.failed() - writes_at_baseline.1,
                )
            });
            let ss = steady_state(l, &rec.lock().expect("recorder lock"), writes);
            let ok = ss.status == CheckStatus::Pass;
            d.event(
                clock.now(),
                format!(
                    "steady state {}: {}",
                    if ok { "holds" } else { "NOT met" },
                    ss.message
                ),
            );
            facts.steady_state = Some(ss.clone());
            if !ok {
                stop_reason = Some(format!(
                    "steady state not met before any fault: {}; nothing was injected",
                    ss.message
                ));
            }
        }
    }

    // First database fault's inject, the origin of write RTO.
    let mut db_inject: Option<Micros> = None;

    // Faults, one after another.
    if stop_reason.is_none() {
        let fault_start = clock.now();
        let mut prev_end = fault_start;
        let first_inject = fault_start + s.faults.first().map_or(0, |f| f.get_ref().after.micros());
        facts.first_inject = Some(first_inject);
        for (i, f) in s.faults.iter().enumerate() {
            let f = f.get_ref();
            if let Some(r) = d
                .observe(prev_end + f.after.micros(), Some(first_inject))
                .await
            {
                stop_reason = Some(r);
                break;
            }
            let inject_at = clock.now();
            if f.action.get_ref().one_way() {
                let mut run = FaultRun::new(f, inject_at);
                d.event(
                    inject_at,
                    format!(
                        "inject {} ({} database)",
                        f.display_name(),
                        f.action.get_ref().name()
                    ),
                );
                let db = database
                    .as_ref()
                    .expect("validated: database faults have a database");
                match fault::inject_database(db, &mut journal, i as u32 + 1, f).await {
                    Ok(steps) => {
                        for (at, what) in steps {
                            d.event(clock.since(at), format!("{}: {what}", f.display_name()));
                        }
                        let t = clock.now();
                        run.ended_at = Some(t);
                        run.ended = "completed".into();
                        d.event(
                            t,
                            format!(
                                "{} completed: the promoted standby is the primary",
                                f.display_name()
                            ),
                        );
                        db_inject.get_or_insert(inject_at);
                    }
                    Err(e) => {
                        run.ended = "failed".into();
                        d.event(clock.now(), format!("{} FAILED: {e}", f.display_name()));
                        if e.exit_code() == crate::error::REVERT_FAILED {
                            facts
                                .manual_actions
                                .push(format!("database fault `{}`: {e}", f.display_name()));
                        }
                        stop_reason =
                            Some(format!("database fault `{}` failed: {e}", f.display_name()));
                    }
                }
                prev_end = run.ended_at.unwrap_or_else(|| clock.now());
                runs.push(run);
                if stop_reason.is_some() {
                    break;
                }
                continue;
            }
            let (active, res) = fault::inject(&target, &mut journal, i as u32 + 1, f, &who).await;
            let what = match (f.component(), f.region()) {
                (Some(c), Some(r)) => format!("{} {c}/{r}", f.action.get_ref().name()),
                (Some(c), None) => format!("{} {c}", f.action.get_ref().name()),
                _ => f.action.get_ref().name().to_string(),
            };
            let mut run = FaultRun::new(f, inject_at);
            if let Some(a) = active {
                actives.push(a);
            }
            if let Err(e) = res {
                d.event(
                    clock.now(),
                    format!("inject {} FAILED: {e}", f.display_name()),
                );
                run.ended = "inject-failed".into();
                runs.push(run);
                stop_reason = Some(e.to_string());
                break;
            }
            d.event(inject_at, format!("inject {} ({what})", f.display_name()));
            let cross_before = target.cross_region().await;
            let mut config_version = None;
            if f.change_config {
                match target.change_config() {
                    Ok(v) => {
                        d.event(clock.now(), format!("routing change: mesh configuration version {v} applied to the API server while the control plane is down"));
                        config_version = Some(v);
                    }
                    Err(crate::targets::TargetError::Unsupported(why)) => {
                        d.event(clock.now(), format!("routing change not made: {why}; config sync is not measured on this target"));
                        facts.config_sync_unmeasurable = true;
                    }
                    Err(e) => d.event(clock.now(), format!("routing change failed: {e}")),
                }
            }
            // Wait for the fault's end condition.
            let a = actives.last().expect("just pushed");
            let until = f.until.as_ref().map(|u| *u.get_ref()).or(f
                .action
                .get_ref()
                .self_healing()
                .then_some(Until::Healed));
            let deadline = inject_at
                + f.duration
                    .as_ref()
                    .map_or(f.timeout.micros(), |d| d.get_ref().micros());
            let mut ended = None;
            loop {
                if let Some(r) = d.observe(clock.now() + 50_000, Some(first_inject)).await {
                    stop_reason = Some(r);
                    break;
                }
                let now = clock.now();
                match until {
                    Some(Until::Healed) => {
                        if let Some(at) = target.healed_at(&a.injection) {
                            ended = Some((at, "healed"));
                            break;
                        }
                    }
                    Some(Until::Recovered) => {
                        let r = rec.lock().expect("recorder lock");
                        let crit = criteria(l);
                        let seen = now.saturating_sub(timeout.as_micros() as Micros);
                        if let Rto::Recovered(_) =
                            fault_impact(r.buckets(), r.bucket_us(), inject_at, seen, seen, &crit)
                                .rto
                        {
                            ended = Some((now, "recovered"));
                            break;
                        }
                    }
                    None => {}
                }
                if now >= deadline {
                    if until.is_none() {
                        ended = Some((now, "duration"));
                    }
                    break;
                }
            }
            let self_healing = f.action.get_ref().self_healing();
            if self_healing {
                // Nothing to revert: the journal entry closes now.
                let r = fault::revert(&target, &mut journal, a, &who).await;
                debug_assert!(r.is_ok());
                actives.pop();
                run.ended_at = ended.map(|(t, _)| t);
                run.ended = match ended {
                    Some(_) => "healed".into(),
                    None if stop_reason.is_some() => "not-healed".into(),
                    None => "heal-timeout".into(),
                };
                if let Some((t, _)) = ended {
                    d.event(
                        t,
                        format!("{} healed: component serving again", f.display_name()),
                    );
                } else if stop_reason.is_none() {
                    d.event(
                        now_of(&clock),
                        format!("{} did not heal within {}", f.display_name(), f.timeout),
                    );
                }
            } else if stop_reason.is_none() {
                let a = actives.pop().expect("active fault");
                match fault::revert(&target, &mut journal, &a, &who).await {
                    Ok(()) => {
                        let t = clock.now();
                        run.ended_at = Some(t);
                        run.ended = "reverted".into();
                        d.event(t, format!("revert {} done", f.display_name()));
                        if matches!(f.action.get_ref(), Action::Down | Action::RegionOutage) {
                            // Target-side recovery beside the traffic RTO:
                            // how long the restored instances took to be Ready.
                            let limit = t + f.timeout.micros();
                            while clock.now() < limit && !d.interrupt.requested() {
                                if let Some(ready) = target.healed_at(&a.injection) {
                                    let after = ready.saturating_sub(t) as f64 / 1e6;
                                    run.extra.insert("ready_after_restore_s".into(), after);
                                    d.event(
                                        ready.max(t),
                                        format!(
                                            "{} ready again {after:.3}s after the restore",
                                            f.display_name()
                                        ),
                                    );
                                    break;
                                }
                                tokio::time::sleep(Duration::from_millis(25)).await;
                            }
                        }
                    }
                    Err(e) => {
                        run.ended = "revert-failed".into();
                        facts.manual_actions.push(fault::manual_instruction(&a, &e));
                        d.event(
                            clock.now(),
                            format!("revert {} FAILED: {e}", f.display_name()),
                        );
                        stop_reason = Some(format!("revert of `{}` failed", f.display_name()));
                    }
                }
            }
            if let (Some(before), Some(after)) = (cross_before, target.cross_region().await) {
                let (calls, failed) = (
                    after.0.saturating_sub(before.0),
                    after.1.saturating_sub(before.1),
                );
                run.extra.insert("cross_region_calls".into(), calls as f64);
                run.extra
                    .insert("cross_region_failed".into(), failed as f64);
            }
            if self_healing && let Some(t) = run.ended_at {
                run.extra.insert(
                    "component_ready_s".into(),
                    (t.saturating_sub(inject_at)) as f64 / 1e6,
                );
            }
            if let (Some(v), Some(restored)) = (config_version, run.ended_at) {
                // Propagation: from the control plane's return until every
                // data-plane process serves the change.
                let limit = clock.now() + 60_000_000;
                while clock.now() < limit && !d.interrupt.requested() {
                    if target.config_applied(v).await {
                        let t = clock.now();
                        let sync = t.saturating_sub(restored) as f64 / 1e6;
                        run.extra.insert("config_sync_s".into(), sync);
                        d.event(t, format!("data plane applied configuration version {v}: sync {sync:.3}s after the control plane returned"));
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            prev_end = run.ended_at.unwrap_or_else(|| clock.now());
            runs.push(run);
            if stop_reason.is_some() {
                break;
            }
        }
    }

    // Every way out: revert what is still injected, newest first.
    while let Some(a) = actives.pop() {
        let r = fault::revert(&target, &mut journal, &a, &who).await;
        let t = clock.now();
        let name = a.fault.display_name();
        if let Some(run) = runs.iter_mut().find(|r| r.name == name) {
            match &r {
                Ok(()) => {
                    if run.ended_at.is_none() {
                        run.ended_at = Some(t);
                    }
                    if run.ended == "inject-failed" {
                        run.ended = "inject-failed, reverted".into();
                    } else {
                        run.ended = "reverted".into();
                    }
                }
                Err(_) => run.ended = "revert-failed".into(),
            }
        }
        match r {
            Ok(()) => d.event(t, format!("revert {name} done")),
            Err(e) => {
                d.event(t, format!("revert {name} FAILED: {e}"));
                facts.manual_actions.push(fault::manual_instruction(&a, &e));
            }
        }
    }

    // Recovery observation (skipped when stopping early).
    let mut end = clock.now();
    if stop_reason.is_none() && !runs.is_empty() {
        d.enter(Phase::Recovery, end);
        d.event(
            end,
            format!("recovery observation {}", s.phases.recovery.get_ref()),
        );
        let until = end + s.phases.recovery.get_ref().micros();
        stop_reason = d.observe(until, facts.first_inject).await;
        end = clock.now().min(until);
    } else if stop_reason.is_none() {
        // A scenario with no faults: the baseline is the whole drill.
        end = clock.now();
    }
    control.stop();
    writer_control.stop();
    if let Some(generator) = generator {
        if !d.interrupt.hurried() {
            let _ = generator.await;
        } else {
            generator.abort();
        }
    }
    if let (Some(w), Some(db)) = (writer, database.as_mut()) {
        if let Ok(log) = w.await {
            let mut per_sec: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
            for &(_, at) in &log.acks {
                per_sec.entry(at / 1_000_000).or_default().0 += 1;
            }
            for &(_, at) in &log.failed {
                per_sec.entry(at / 1_000_000).or_default().1 += 1;
            }
            facts.writes = Some(per_sec);
            match (db_inject, db.survivors().await) {
                (Some(at), Ok(rows)) => {
                    let r = crate::measure::rpo::rpo(&log, &rows, at);
                    d.event(clock.now(), format!(
                        "database: {} acknowledged writes, {} lost, {} indeterminate; RPO {:.3}s",
                        r.acknowledged, r.lost_writes, r.indeterminate, r.rpo_s
                    ));
                    facts.rpo = Some(r);
                }
                (Some(_), Err(e)) => d.event(
                    clock.now(),
                    format!("database: cannot read what the new primary holds: {e}"),
                ),
                (None, _) => {}
            }
        }
        if let (Some(rd), Some(at), Some(rpo)) = (reader, db_inject, facts.rpo.as_mut())
            && let Ok(log) = rd.await
        {
            rpo.reads = Some(log.summary(at));
        }
        db.stop().await;
    }
    if let Some(t) = status_task {
        t.abort();
        status::clear();
    }
    d.drain_lab_events();
    target.stop().await;
    d.drain_lab_events();
    let _ = journal.finish(&run_id);

    facts.end = end;
    facts.last_due = control.last_due();
    facts.faults = runs;
    facts.events = std::mem::take(&mut d.events);
    if let Some(r) = stop_reason {
        facts.abort(r);
    }
    let mut rec = rec.lock().expect("recorder lock");
    Finished {
        result: assemble::assemble(facts, &mut rec),
    }
}

fn now_of(c: &Clock) -> Micros {
    c.now()
}

pub fn criteria(l: &Loaded) -> RecoveryCriteria {
    let r = &l.scenario.recovery;
    RecoveryCriteria {
        window_us: r.window.get_ref().micros(),
        ratio: r.ratio.get_ref().0,
        hold_us: r.hold.get_ref().micros(),
    }
}
