//! What on-call sees, during a drill: Prometheus and Alertmanager started
//! (lab) or reached (a target's own, named in the targets file, checked to
//! answer and to know every expected alert) before anything is injected,
//! every probe query tried once (an invalid one stops the drill, exit 3), a
//! silence for the expected alerts
//! created and journalled before the first inject, Alertmanager and the
//! probes polled through the drill, and at the end the silence expired and
//! the observations handed to the assembly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch as signal;

use super::Drill;
use crate::base::clock::Clock;
use crate::base::units::Micros;
use crate::observe::api::{Alertmanager, Endpoint, Labels, Matcher, Prometheus, selected_metrics};
use crate::observe::watch::{self, POLL_INTERVAL, Watch};
use crate::results::MonitoringInfo;
use crate::scenario::plan::MonitoringPlan;
use crate::targets::Target;
use crate::targets::journal::{Entry, RevertPlan};
use crate::targets::lab::monitoring::{
    EVALUATION_INTERVAL, FOR_FACTOR, Monitoring, SCRAPE_INTERVAL, SHIPPED_RULES, shorten_for,
};
use crate::verdict::alerts::{MonitoringOutcome, info};
use crate::verdict::event::Event;
use crate::verdict::stop::Stop;

/// Journal ids of silences start here (faults count from 1).
const SILENCE_ID_BASE: u32 = 10_000;

/// Monitoring while the drill runs.
pub(super) struct Monitor {
    lab: Option<Monitoring>,
    prometheus: Prometheus,
    /// None: a target whose scenario reads only probes names no Alertmanager.
    alertmanager: Option<Alertmanager>,
    /// How to reach that Alertmanager again (for the journal and `drill cleanup`).
    am_endpoint: Endpoint,
    watch: Arc<Mutex<Watch>>,
    stop: signal::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// (journal id, silence id) of each silence created.
    silences: Vec<(u32, String)>,
    info: MonitoringInfo,
    /// Episodes already logged as events: (alert, episode, resolved).
    logged: BTreeSet<(Labels, usize, bool)>,
}

impl Monitor {
    /// What stop guards read: Prometheus, Alertmanager (if any), and
    /// Prometheus's rule evaluation interval in seconds when known.
    pub(super) fn sources(&self) -> (Prometheus, Option<Alertmanager>, Option<f64>) {
        (
            self.prometheus.clone(),
            self.alertmanager.clone(),
            self.info.evaluation_interval_s,
        )
    }
}

impl Drill<'_> {
    /// Starts monitoring when the scenario reads alerts or probes. Where it
    /// cannot run (no Prometheus on this machine, a target without one), the
    /// alert and probe checks are skipped with the reason, never passed.
    pub(super) async fn start_monitoring(&mut self) -> Result<(), Stop> {
        let Some(mp) = self.plan.monitoring.as_ref() else {
            return Ok(());
        };
        let Some(Target::Lab(lab)) = self.target.as_ref() else {
            return match self.def.external_monitoring().cloned() {
                Some(ext) => self.start_external_monitoring(mp, &ext).await,
                None => {
                    let why = format!(
                        "target `{}` names no Prometheus/Alertmanager (add [targets.{}.prometheus] and [targets.{}.alertmanager] to the targets file)",
                        self.def.name(),
                        self.def.name(),
                        self.def.name()
                    );
                    self.skip_monitoring(why)
                }
            };
        };
        if let Some(why) = crate::targets::lab::monitoring::unavailable() {
            return self.skip_monitoring(format!("{why}; alert and probe checks skipped"));
        }
        let (external, scrape) = (lab.alertmanager.clone(), lab.scrape_targets());
        let rules = match &mp.rules {
            Some(p) => std::fs::read_to_string(p).map_err(|e| {
                Stop::Invalid(format!("cannot read alert rules {}: {e}", p.display()))
            })?,
            None => SHIPPED_RULES.to_string(),
        };
        self.now(Event::Progress(format!(
            "starting Prometheus and Alertmanager (scrape and evaluation every {}s, each rule's `for` ÷ {FOR_FACTOR})",
            SCRAPE_INTERVAL.as_secs_f64()
        )));
        let mon = Monitoring::start(
            &self.run_id,
            &scrape,
            &shorten_for(&rules, FOR_FACTOR),
            external.as_deref(),
        )
        .await
        .map_err(|e| {
            Stop::Preflight(format!(
                "monitoring failed to start: {e}; nothing was injected"
            ))
        })?;
        let mut i = info(None);
        i.prometheus = Some(mon.prometheus.url().to_string());
        i.alertmanager = Some(mon.alertmanager.url().to_string());
        i.scrape_interval_s = Some(SCRAPE_INTERVAL.as_secs_f64());
        i.evaluation_interval_s = Some(EVALUATION_INTERVAL.as_secs_f64());
        i.for_factor = FOR_FACTOR as f64;
        let (prometheus, alertmanager) = (mon.prometheus.clone(), mon.alertmanager.clone());
        self.monitor = Some(Monitor {
            lab: Some(mon),
            prometheus,
            am_endpoint: Endpoint::plain(alertmanager.url()),
            alertmanager: Some(alertmanager),
            watch: Arc::default(),
            stop: signal::channel(false).0,
            task: None,
            silences: Vec::new(),
            info: i,
            logged: BTreeSet::new(),
        });
        self.monitoring_preflight(mp).await?;
        self.watch_alerts(mp);
        self.start_guards().await?;
        self.silence(mp, external.is_none()).await
    }

    /// The system's own Prometheus and Alertmanager, as the targets file
    /// names them: clients made (tokens read from their variables), then the
    /// same preflight as on the lab plus what only a foreign Prometheus can
    /// get wrong: it does not answer, or does not know an expected alert.
    async fn start_external_monitoring(
        &mut self,
        mp: &MonitoringPlan,
        ext: &crate::targets::config::ExternalMonitoring,
    ) -> Result<(), Stop> {
        let stop =
            |e: String| Stop::Preflight(format!("preflight failed: {e}; nothing was injected"));
        let Some(pe) = &ext.prometheus else {
            return Err(Stop::Invalid(format!(
                "target `{}` names no prometheus",
                self.def.name()
            )));
        };
        let prometheus = Prometheus::to(pe).map_err(Stop::Invalid)?;
        let alertmanager = match &ext.alertmanager {
            Some(e) => Some(Alertmanager::to(e).map_err(Stop::Invalid)?),
            None => None,
        };
        self.now(Event::Progress(format!(
            "reading Prometheus {} and Alertmanager {}",
            prometheus.url(),
            alertmanager.as_ref().map_or("(none)", |a| a.url())
        )));
        prometheus
            .query("vector(1)")
            .await
            .map_err(|e| stop(format!("Prometheus does not answer: {e}")))?;
        let mut i = info(None);
        i.prometheus = Some(prometheus.url().to_string());
        i.alertmanager = alertmanager.as_ref().map(|a| a.url().to_string());
        // Stated in the report as Prometheus runs them; a Prometheus that
        // hides its configuration (some managed ones) leaves them unknown.
        match prometheus.intervals().await {
            Ok((scrape, eval)) => {
                i.scrape_interval_s = Some(scrape.as_secs_f64());
                i.evaluation_interval_s = Some(eval.as_secs_f64());
            }
            Err(e) => self.now(Event::Progress(format!(
                "Prometheus's scrape and evaluation intervals unknown: {e}"
            ))),
        }
        if !mp.alerts.is_empty() {
            let known = prometheus
                .alert_names()
                .await
                .map_err(|e| stop(format!("cannot read Prometheus's alerting rules: {e}")))?;
            if let Some(a) = mp.alerts.iter().find(|a| !known.contains(&a.name)) {
                return Err(stop(format!(
                    "expected alert `{}` is not an alerting rule Prometheus {} has loaded, so it can never fire (loaded: {})",
                    a.name,
                    prometheus.url(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        self.monitor = Some(Monitor {
            lab: None,
            prometheus,
            alertmanager,
            am_endpoint: ext.alertmanager.clone().unwrap_or_default(),
            watch: Arc::default(),
            stop: signal::channel(false).0,
            task: None,
            silences: Vec::new(),
            info: i,
            logged: BTreeSet::new(),
        });
        self.monitoring_preflight(mp).await?;
        self.watch_alerts(mp);
        self.start_guards().await?;
        self.silence(mp, false).await
    }

    fn skip_monitoring(&mut self, why: String) -> Result<(), Stop> {
        self.now(Event::Progress(format!("alerts not measured: {why}")));
        self.facts.monitoring = Some(MonitoringOutcome {
            watch: Watch::default(),
            info: info(Some(why)),
            never_fired: BTreeMap::new(),
        });
        Ok(())
    }

    /// Each probe query once, and Alertmanager's status: an invalid query or
    /// an unanswering endpoint stops the drill before any inject.
    async fn monitoring_preflight(&mut self, mp: &MonitoringPlan) -> Result<(), Stop> {
        let m = self.monitor.as_ref().expect("monitor started");
        let (prom, am) = (m.prometheus.clone(), m.alertmanager.clone());
        for p in &mp.probes {
            prom.query(&p.query).await.map_err(|e| {
                Stop::Preflight(format!(
                    "preflight failed: probe `{}`: {e}; nothing was injected",
                    p.name
                ))
            })?;
        }
        let Some(am) = am else {
            return Ok(());
        };
        am.ready().await.map_err(|e| {
            Stop::Preflight(format!(
                "preflight failed: Alertmanager does not answer: {e}; nothing was injected"
            ))
        })?;
        // Alerts already firing are the system's, not the drill's.
        let before = am.alerts().await.unwrap_or_default();
        let m = self.monitor.as_mut().expect("monitor started");
        m.watch.lock().expect("watch lock").firing_before =
            before.into_iter().map(|a| a.labels).collect();
        Ok(())
    }

    fn watch_alerts(&mut self, mp: &MonitoringPlan) {
        let m = self.monitor.as_mut().expect("monitor started");
        let queries: Vec<String> = mp.probes.iter().map(|p| p.query.clone()).collect();
        m.watch.lock().expect("watch lock").probes = vec![Vec::new(); queries.len()];
        m.task = Some(tokio::spawn(poll(
            self.clock,
            m.prometheus.clone(),
            m.alertmanager.clone(),
            queries,
            m.watch.clone(),
            m.stop.subscribe(),
        )));
    }

    /// One silence per expected alert (its name and labels), journalled.
    /// Each lasts the drill's planned length plus ten minutes, so that even
    /// a silence created just before a crash cannot outlive that.
    async fn silence(&mut self, mp: &MonitoringPlan, ends_with_run: bool) -> Result<(), Stop> {
        if !mp.silence {
            return Ok(());
        }
        let lasts = Duration::from_secs(600) + self.planned_length();
        for (i, a) in mp.alerts.iter().enumerate() {
            let mut matchers = vec![Matcher {
                name: "alertname".into(),
                value: a.name.clone(),
            }];
            matchers.extend(a.labels.iter().map(|(k, v)| Matcher {
                name: k.clone(),
                value: v.clone(),
            }));
            let m = self.monitor.as_ref().expect("monitor started");
            let (Some(am), endpoint) = (m.alertmanager.clone(), m.am_endpoint.clone()) else {
                return Err(Stop::Invalid("a silence needs an Alertmanager".into()));
            };
            let comment = format!("drill run {}: planned drill, do not page", self.run_id);
            let id = am.silence(&matchers, lasts, &comment).await.map_err(|e| {
                Stop::Preflight(format!(
                    "cannot create the silence: {e}; nothing was injected"
                ))
            })?;
            let journal_id = SILENCE_ID_BASE + i as u32;
            let entry = Entry::Inject {
                id: journal_id,
                fault: format!("silence {}", a.display()),
                component: None,
                region: None,
                action: "silence".into(),
                plan: RevertPlan::Silence {
                    alertmanager: am.url().to_string(),
                    silence_id: id.clone(),
                    ends_with_run,
                    token_env: endpoint.token_env,
                    ca_file: endpoint.ca_file,
                },
            };
            let journalled = self.journal.as_mut().map(|j| j.append(&entry));
            let m = self.monitor.as_mut().expect("monitor started");
            m.silences.push((journal_id, id.clone()));
            m.info.silence_id = Some(id.clone());
            if let Some(Err(e)) = journalled {
                return Err(Stop::Preflight(format!(
                    "cannot journal the silence: {e}; nothing was injected"
                )));
            }
            self.now(Event::Progress(format!(
                "silenced {} in Alertmanager (silence {id})",
                a.display()
            )));
        }
        Ok(())
    }

    pub(super) fn planned_length(&self) -> Duration {
        let p = &self.plan.phases;
        let faults: Duration = self
            .plan
            .faults
            .iter()
            .map(|f| f.after.0 + Duration::from_micros(f.deadline()))
            .sum();
        p.warmup.0 + p.baseline.0 + p.recovery.0 + faults
    }

    /// Stops polling, explains expected alerts that never fired, expires the
    /// silences (journalling each), stops Prometheus and Alertmanager.
    pub(super) async fn finish_monitoring(&mut self) {
        let Some(mut m) = self.monitor.take() else {
            return;
        };
        m.stop.send_replace(true);
        if let Some(t) = m.task.take() {
            let _ = t.await;
        }
        for (at, what) in alert_news(&mut m) {
            self.event(at, Event::Progress(what));
        }
        let w = m.watch.lock().expect("watch lock").clone();
        let never_fired = self.explain_silent_alerts(&m, &w).await;
        let mut all_expired = true;
        for (journal_id, id) in std::mem::take(&mut m.silences) {
            let ends_with_run = m.lab.is_some() && self.def_has_no_external_am();
            let res =
                crate::fault::cleanup::expire_silence(&m.am_endpoint, &id, ends_with_run).await;
            let expired = match (&res, &m.alertmanager) {
                (Ok(()), Some(am)) => am.silence_state(&id).await.is_ok_and(|s| s == "expired"),
                _ => false,
            };
            all_expired &= expired;
            let entry = match res {
                Ok(()) => Entry::Reverted { id: journal_id },
                Err(error) => {
                    self.facts.manual_actions.push(format!(
                        "silence {id} in Alertmanager {} was not expired ({error}); run `drill cleanup`",
                        m.am_endpoint.url
                    ));
                    Entry::RevertFailed {
                        id: journal_id,
                        error,
                    }
                }
            };
            if let Some(j) = self.journal.as_mut() {
                let _ = j.append(&entry);
            }
            self.now(Event::Progress(format!(
                "silence {id} {}",
                if expired { "expired" } else { "NOT expired" }
            )));
        }
        if m.info.silence_id.is_some() {
            m.info.silence_expired = Some(all_expired);
        }
        if let Some(mut lab) = m.lab.take() {
            lab.stop().await;
        }
        self.facts.monitoring = Some(MonitoringOutcome {
            watch: w,
            info: m.info,
            never_fired,
        });
    }

    /// Logs the alert episodes seen since the last call: firing, resolved.
    pub(super) fn drain_alert_events(&mut self) {
        let Some(m) = self.monitor.as_mut() else {
            return;
        };
        for (at, what) in alert_news(m) {
            self.event(at, Event::Progress(what));
        }
    }

    fn def_has_no_external_am(&self) -> bool {
        !matches!(self.target.as_ref(), Some(Target::Lab(l)) if l.alertmanager.is_some())
    }

    /// For each expected alert that never fired: is its rule loaded, and do
    /// the metrics its expression reads exist at all?
    async fn explain_silent_alerts(&self, m: &Monitor, w: &Watch) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(mp) = self.plan.monitoring.as_ref() else {
            return out;
        };
        for a in &mp.alerts {
            if w.alerts.keys().any(|l| watch::matches(a, l)) {
                continue;
            }
            let why = match m.prometheus.rule_query(&a.name).await {
                Ok(None) => format!("no alerting rule named {} is loaded", a.name),
                Ok(Some(q)) => {
                    let mut empty = Vec::new();
                    for metric in selected_metrics(&q) {
                        let probe =
                            format!("count(count_over_time({{__name__=\"{metric}\"}}[1h]))");
                        if m.prometheus.query(&probe).await.is_ok_and(|s| s.is_empty()) {
                            empty.push(metric);
                        }
                    }
                    if empty.is_empty() {
                        format!("its condition never held long enough: {q}")
                    } else {
                        format!(
                            "its expression returned no series: nothing exports {}",
                            empty.join(", ")
                        )
                    }
                }
                Err(e) => format!("cannot read its rule: {e}"),
            };
            out.insert(a.display(), why);
        }
        out
    }
}

/// Reads Alertmanager every poll interval and each probe every fourth.
/// The firing and resolution of each episode not logged yet, at the poll
/// that saw it.
fn alert_news(m: &mut Monitor) -> Vec<(Micros, String)> {
    let w = m.watch.lock().expect("watch lock");
    let mut news = Vec::new();
    for (labels, eps) in &w.alerts {
        let name = labels.get("alertname").cloned().unwrap_or_default();
        for (i, e) in eps.iter().enumerate() {
            if m.logged.insert((labels.clone(), i, false)) {
                news.push((e.fired, format!("alert {name} firing")));
            }
            if let Some(r) = e.resolved
                && m.logged.insert((labels.clone(), i, true))
            {
                news.push((r, format!("alert {name} resolved")));
            }
        }
    }
    news
}

async fn poll(
    clock: Clock,
    prometheus: Prometheus,
    alertmanager: Option<Alertmanager>,
    queries: Vec<String>,
    watch: Arc<Mutex<Watch>>,
    mut stop: signal::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let at = clock.now();
        match alertmanager.as_ref().map(|a| a.alerts()) {
            None => {}
            Some(alerts) => match alerts.await {
                Ok(alerts) => {
                    let now: Vec<_> = alerts
                        .into_iter()
                        .map(|a| (a.labels, a.status.state == "suppressed"))
                        .collect();
                    watch.lock().expect("watch lock").observe(at, &now);
                }
                Err(e) => watch.lock().expect("watch lock").last_error = Some(e.to_string()),
            },
        }
        if n % 4 != 0 {
            continue;
        }
        for (i, q) in queries.iter().enumerate() {
            let at = clock.now();
            if let Ok(samples) = prometheus.query(q).await
                && let Some(v) = samples.first().map(|s| s.value)
            {
                watch.lock().expect("watch lock").probes[i].push((at, v));
            }
        }
    }
}
