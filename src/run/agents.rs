//! The run's side of generator agents: start them where the load would have
//! started, stop them in the teardown, and turn what each vantage point saw
//! into its own figures (computed as the merged ones are).

use std::time::Duration;

use super::Drill;
use crate::agent::local::LocalAgents;
use crate::agent::runner::Fleet;
use crate::load::http::HttpLoad;
use crate::measure::Micros;
use crate::verdict::agents::AgentsRun;
use crate::verdict::event::Event;
use crate::verdict::stop::Stop;

/// An agent that hears nothing from the runner this long stops by itself.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

impl Drill<'_> {
    /// With `--agents N`: N local agent processes; else the target's
    /// vantage points. Clocks aligned.
    pub(super) async fn spawn_agents(&mut self) -> Result<Option<Fleet>, Stop> {
        let fail = |e: String| Stop::Preflight(format!("agents: {e}; nothing was injected"));
        let plan: Vec<(String, usize, Option<String>)> = match self.agents {
            Some(n) => vec![("local".into(), n, None)],
            None => self
                .vantages
                .iter()
                .map(|v| (v.name.clone(), v.agents, v.region.clone()))
                .collect(),
        };
        if plan.is_empty() {
            return Ok(None);
        }
        if self.agents.is_none() && self.def.kind() == "kubernetes" {
            let vantages = self.kubernetes_agents().await?;
            return self.align(vantages, None).await.map(Some);
        }
        let total: usize = plan.iter().map(|p| p.1).sum();
        self.now(Event::Progress(format!(
            "starting {total} local agent(s): {}",
            plan.iter()
                .map(|(n, k, _)| format!("{n} ×{k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
        let (mut local, mut vantages, mut urls) = (None::<LocalAgents>, Vec::new(), Vec::new());
        for (name, n, region) in &plan {
            let (agents, vantage) = LocalAgents::spawn(*n, name, IDLE_TIMEOUT)
                .await
                .map_err(fail)?;
            match local.as_mut() {
                Some(l) => l.join(agents),
                None => local = Some(agents),
            }
            vantages.push(vantage);
            urls.push(match region {
                Some(r) => Some(self.region_url(r).map_err(fail)?),
                None => None,
            });
        }
        let mut fleet = self.align(vantages, local).await?;
        for (v, url) in fleet.vantages.iter_mut().zip(urls) {
            v.url = url;
        }
        Ok(Some(fleet))
    }

    async fn align(
        &mut self,
        vantages: Vec<crate::agent::Vantage>,
        local: Option<LocalAgents>,
    ) -> Result<Fleet, Stop> {
        let fail = |e: String| Stop::Preflight(format!("agents: {e}; nothing was injected"));
        let fleet = Fleet::align(vantages, local, self.clock)
            .await
            .map_err(fail)?;
        let bounds: Vec<String> = fleet
            .facts
            .lock()
            .expect("facts")
            .iter()
            .map(|f| format!("{} ±{:.3}ms", f.name, f.clock_bound_us as f64 / 1e3))
            .collect();
        self.now(Event::Progress(format!(
            "agents aligned (clock bound): {}",
            bounds.join(", ")
        )));
        Ok(fleet)
    }

    /// A kubernetes target's vantage points: every namespace's verbs
    /// checked first (nothing is created unless all are granted), then per
    /// vantage point its Job journalled, created and waited for.
    async fn kubernetes_agents(&mut self) -> Result<Vec<crate::agent::Vantage>, Stop> {
        use crate::agent::jobs::{self, VantageJob};
        use crate::agent::k8s;
        use crate::targets::k8s::client;
        let fail = |e: String| Stop::Preflight(format!("agents: {e}; nothing was injected"));
        let crate::targets::TargetDef::Kubernetes { settings, .. } = self.def else {
            return Err(fail("not a kubernetes target".into()));
        };
        let kubeconfig =
            client::sources(settings.kubeconfig.as_ref()).map_err(|e| fail(e.to_string()))?;
        let mut clusters = Vec::new();
        for v in &self.vantages {
            // The targets file's check makes `context` a key of `contexts`.
            let key = v.context.as_deref().unwrap_or_default();
            let Some(context) = settings.contexts.get(key) else {
                return Err(fail(format!(
                    "vantage point `{}`: context `{key}` is not one of the target's",
                    v.name
                )));
            };
            let cluster = client::connect(&kubeconfig, context)
                .await
                .map_err(|e| fail(e.to_string()))?;
            k8s::preflight(&cluster, &v.namespace).await.map_err(|e| {
                Stop::Preflight(format!("preflight failed: {e}; nothing was injected"))
            })?;
            clusters.push(cluster);
        }
        let planned = self.planned_length();
        let mut out = Vec::new();
        for (i, (v, cluster)) in self.vantages.clone().iter().zip(clusters).enumerate() {
            self.now(Event::Progress(format!(
                "starting {} agent(s) of `{}` as a Job in {}/{}",
                v.agents, v.name, cluster.context, v.namespace
            )));
            let image = v.image.clone().unwrap_or_else(k8s::default_image);
            let job = VantageJob {
                vantage: &v.name,
                namespace: &v.namespace,
                agents: v.agents as u32,
                image: &image,
                planned,
            };
            let journal = self.journal.as_mut().expect("the journal opens first");
            let (journalled, started) = jobs::launch(
                journal,
                i,
                &kubeconfig,
                &cluster,
                &self.run_id,
                &job,
                k8s::READY_TIMEOUT,
            )
            .await;
            if let Some(j) = journalled {
                self.agent_jobs.push((j, cluster));
            }
            let started = started.map_err(fail)?;
            self.now(Event::Progress(format!(
                "agents of `{}` ready: Job {}/{} on context `{}` (pods {})",
                v.name,
                started.job.namespace,
                started.job.name,
                started.job.context,
                started.pods.join(", ")
            )));
            out.push(crate::agent::Vantage {
                name: v.name.clone(),
                agents: started
                    .pods
                    .iter()
                    .enumerate()
                    .map(|(j, pod)| crate::agent::AgentLink {
                        name: format!("{}/{j}", v.name),
                        transport: crate::agent::Transport::ApiProxy {
                            client: crate::agent::link::ProxyClient(started.proxy.clone()),
                            namespace: v.namespace.clone(),
                            pod: pod.clone(),
                            port: k8s::AGENT_PORT,
                        },
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Deletes the agents' Jobs (with their pods); one not deleted stays in
    /// the journal for `drill cleanup` and makes the drill exit 4.
    pub(super) async fn remove_agent_jobs(&mut self) -> Option<Stop> {
        let mut failed = None;
        for (j, cluster) in std::mem::take(&mut self.agent_jobs) {
            let journal = self.journal.as_mut().expect("a Job implies a journal");
            if let Err(e) = crate::agent::jobs::remove(journal, j.id, &cluster, &j.plan).await {
                let manual = crate::agent::jobs::manual_instruction(&j.plan, &e, &self.run_id);
                self.facts.manual_actions.push(manual);
                self.now(Event::Progress(format!("agents' Job not deleted: {e}")));
                failed = Some(Stop::RevertFailed("an agents' Job was not deleted".into()));
            }
        }
        failed
    }

    /// The load's URL through `region`'s ingress gateway.
    fn region_url(&self, region: &str) -> Result<hyper::Uri, String> {
        let path = self.plan.load.as_ref().map_or("/", |l| l.path.as_str());
        let entry = self
            .target()
            .region_entry_url(region)
            .ok_or_else(|| format!("the target has no ingress in region `{region}`"))?;
        format!("{entry}{path}")
            .parse()
            .map_err(|e| format!("bad URL through region `{region}`: {e}"))
    }

    pub(super) async fn start_agents(
        &mut self,
        fleet: &mut Fleet,
        load: &HttpLoad,
        start: Micros,
    ) -> Result<(), Stop> {
        fleet
            .start(load, self.clock, start, &self.rec, IDLE_TIMEOUT)
            .await
            .map_err(|e| Stop::Preflight(format!("agents: {e}; nothing was injected")))
    }

    /// Tells, as events, the agents that went missing since the last call.
    pub(super) fn drain_agent_events(&mut self) {
        let news = match self.load.as_mut().and_then(|l| l.fleet.as_mut()) {
            Some(f) => f.news(),
            None => return,
        };
        for (at, what) in news {
            self.event(at, Event::Progress(what));
        }
    }

    /// Stops the agents, waits for their last deltas, and keeps what the
    /// result needs; an agent that went missing is an event.
    pub(super) async fn stop_agents(&mut self, mut fleet: Fleet) {
        fleet
            .stop(self.interrupt.hurried(), self.clock, &self.rec)
            .await;
        for (at, what) in fleet.news() {
            self.event(at, Event::Progress(what));
        }
        let facts = fleet.facts.lock().expect("facts").clone();
        let vantages = fleet
            .vantages
            .iter()
            .map(|v| (v.name.clone(), v.agents.clone(), v.rec.clone()))
            .collect();
        self.facts.agents = Some(AgentsRun { facts, vantages });
    }
}
