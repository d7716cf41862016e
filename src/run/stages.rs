//! The stages before any fault: journal, target, preflight, database, load.
//! Nothing is injected unless every one of them passes.

use std::sync::Arc;
use std::time::Duration;

use super::entry::{http_load, probe_entry};
use super::{Drill, Load};
use crate::load::http::Control;
use crate::load::writer::WriterControl;
use crate::targets::Target;
use crate::targets::database::Database;
use crate::targets::journal::{Entry, Journal, journal_dir};
use crate::verdict::event::Event;
use crate::verdict::stop::Stop;

impl Drill<'_> {
    /// Every stage in order; the first `Err` ends the drill (the teardown
    /// runs either way).
    pub(super) async fn stages(&mut self) -> Result<(), Stop> {
        self.open_journal()?;
        self.start_target().await?;
        self.preflight().await?;
        self.start_monitoring().await?;
        self.guards_started()?;
        self.open_database().await?;
        self.start_load().await?;
        self.baseline().await?;
        self.faults().await?;
        self.recovery().await
    }

    fn open_journal(&mut self) -> Result<(), Stop> {
        let first = Entry::Run {
            run_id: self.run_id.clone(),
            pid: std::process::id(),
            scenario: self.plan.name.clone(),
            target: self.def.name().into(),
            started_at: self.clock.started_at(),
        };
        let j = Journal::create(&self.run_id, &first).map_err(|e| {
            Stop::Preflight(format!(
                "cannot create the fault journal in {}: {e}; nothing was injected",
                journal_dir().display()
            ))
        })?;
        self.journal = Some(j);
        Ok(())
    }

    async fn start_target(&mut self) -> Result<(), Stop> {
        let (def, run_id, clock) = (self.def, self.run_id.clone(), self.clock);
        self.now(Event::Progress(format!(
            "starting target `{}` ({})",
            def.name(),
            def.kind()
        )));
        let tx = self.lab_tx.take().expect("the target starts once");
        let mut target = Target::start(def, &run_id, clock, tx)
            .await
            .map_err(|e| Stop::Preflight(format!("preflight failed: {e}; nothing was injected")))?;
        target.set_seed(self.facts.seed);
        self.facts.entry_url = target.entry_url();
        self.target = Some(target);
        Ok(())
    }

    async fn preflight(&mut self) -> Result<(), Stop> {
        let faults: Vec<_> = self.plan.faults.iter().collect();
        // The claim comes first: a drill started mid-fault of another is
        // told who holds the objects, not that their pods are gone.
        let checked = match self.target().claim(&faults).await {
            Ok(()) => self.target().preflight(&faults).await,
            Err(e) => Err(e),
        };
        let res = match checked {
            Ok(()) => match http_load(self.plan, &self.facts.entry_url, self.workers) {
                Ok(Some(load)) => probe_entry(&load).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
            Err(e) => Err(e.to_string()),
        };
        res.map_err(|e| Stop::Preflight(format!("preflight failed: {e}; nothing was injected")))
    }

    /// The database, when the scenario writes to one: started (lab) or
    /// reached (external), and its standby streaming, before anything else.
    async fn open_database(&mut self) -> Result<(), Stop> {
        if self.plan.database.is_none() {
            return Ok(());
        }
        self.now(Event::Progress(
            "opening the database (the lab starts a PostgreSQL primary and streaming standby)"
                .into(),
        ));
        let opened = match Database::open(self.def).await {
            Ok(mut db) => match db.preflight().await {
                Ok(()) => db.claim(&self.run_id).await.map(|()| db),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match opened {
            Ok(db) => {
                self.now(Event::Progress(
                    "database preflight passed: the standby is streaming".into(),
                ));
                self.database = Some(db);
                Ok(())
            }
            Err(e) => {
                let msg = format!("database preflight failed: {e}; nothing was injected");
                Err(if e.exit_code() == crate::base::exit::INVALID {
                    Stop::Invalid(msg)
                } else {
                    Stop::Preflight(msg)
                })
            }
        }
    }

    /// Starts the HTTP generator, the database writer and reader, and the
    /// status line, all on one schedule origin.
    async fn start_load(&mut self) -> Result<(), Stop> {
        let s = self.plan;
        self.now(Event::Progress(match &s.load {
            Some(ld) => format!(
                "preflight passed; load {} {}{} at {}/s",
                ld.method, self.facts.entry_url, ld.path, ld.rate
            ),
            None => "preflight passed; no HTTP load (database writes only)".to_string(),
        }));
        let http = http_load(self.plan, &self.facts.entry_url, self.workers).map_err(|e| {
            // A header's variable unset or unusable: input, not the target.
            if e.contains("headers_env") {
                Stop::Invalid(format!("{e}; nothing was injected"))
            } else {
                Stop::Preflight(e)
            }
        })?;
        let clock = self.clock;
        // Agents are started and aligned first; their start call must reach
        // them before the schedule begins.
        let mut fleet = match &http {
            Some(_) => self.spawn_agents().await?,
            None => None,
        };
        let lead = fleet.as_ref().map_or(10_000, |f| f.start_lead_us());
        let start = clock.now() + lead;
        self.facts.load_start = start;
        // Before any other load task, so a failed start leaves none running.
        if let (Some(f), Some(load)) = (fleet.as_mut(), http.as_ref()) {
            self.start_agents(f, load, start).await?;
        }
        let control = Arc::new(Control::default());
        let writer_control = Arc::new(WriterControl::new(
            s.database
                .as_ref()
                .map_or(Duration::from_secs(5), |w| w.write_timeout),
        ));
        let db = self.database.as_ref();
        let w = s.database.as_ref();
        let writer = db.zip(w).map(|(db, w)| {
            tokio::spawn(crate::load::writer::run(
                db.writer_dsn(),
                w.rate,
                clock,
                start,
                writer_control.clone(),
            ))
        });
        let reader = db.zip(w.and_then(|w| w.read_rate)).map(|(db, rate)| {
            tokio::spawn(crate::load::reader::run(
                crate::load::reader::any_node(&db.writer_dsn()),
                rate,
                clock,
                start,
                writer_control.clone(),
            ))
        });
        let generator = http.filter(|_| fleet.is_none()).map(|load| {
            tokio::spawn(crate::load::http::run(
                load,
                clock,
                start,
                self.rec.clone(),
                control.clone(),
            ))
        });
        let status = self
            .status
            .start(clock, self.rec.clone(), self.phase_name(), s.rate());
        self.load = Some(Load {
            control,
            writer_control,
            generator,
            fleet,
            writer,
            reader,
            status,
        });
        Ok(())
    }
}
