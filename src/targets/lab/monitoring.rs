//! Real Prometheus and Alertmanager for the lab, from the system's binaries
//! (Debian's `prometheus` and `prometheus-alertmanager`): started on free
//! loopback ports in a temporary directory when a scenario reads alerts or
//! metrics, scraping every lab process and itself, loaded with the alert
//! rules with each `for` shortened by `FOR_FACTOR`, and stopped with the run.
//! Each runs under a shell lifeline holding our pipe: when drill ends, even
//! by SIGKILL, the pipe closes and the shell kills it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::observe::api::{Alertmanager, Prometheus};

/// Prometheus's scrape interval and rule evaluation interval on the lab.
pub(crate) const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
pub(crate) const EVALUATION_INTERVAL: Duration = Duration::from_secs(1);
/// Each rule's `for` is divided by this on the lab, so that a drill lasts
/// about a minute (1 min → 3 s, 2 min → 6 s, 5 min → 15 s).
pub(crate) const FOR_FACTOR: u32 = 20;

/// The rule file drill ships (rules/drill-alerts.yml).
pub(crate) const SHIPPED_RULES: &str = include_str!("../../../rules/drill-alerts.yml");

pub(crate) const PROMETHEUS_BIN: &str = "prometheus";
pub(crate) const ALERTMANAGER_BIN: &str = "prometheus-alertmanager";

/// Why monitoring cannot run here (binaries missing), or None when it can.
pub(crate) fn unavailable() -> Option<String> {
    let missing: Vec<&str> = [PROMETHEUS_BIN, ALERTMANAGER_BIN]
        .into_iter()
        .filter(|b| find(b).is_none())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{} not installed (Debian: apt-get install prometheus prometheus-alertmanager)",
            missing.join(" and ")
        )
    })
}

fn find(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// A lab process Prometheus scrapes, labelled as Kubernetes service
/// discovery would relabel its pod.
#[derive(Clone, Debug)]
pub struct ScrapeTarget {
    pub port: u16,
    pub app: String,
    pub cluster: String,
}

/// Running Prometheus and Alertmanager.
pub(crate) struct Monitoring {
    pub prometheus: Prometheus,
    pub alertmanager: Alertmanager,
    children: Vec<Child>,
    dir: PathBuf,
}

/// Divides every `for: <duration>` of a rule file by `factor`.
pub(crate) fn shorten_for(rules: &str, factor: u32) -> String {
    rules
        .lines()
        .map(|line| {
            let t = line.trim_start();
            let Some(d) = t.strip_prefix("for:") else {
                return line.to_string();
            };
            let indent = &line[..line.len() - t.len()];
            match humantime::parse_duration(d.trim()) {
                Ok(d) => format!("{indent}for: {}ms", (d / factor.max(1)).as_millis()),
                Err(_) => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn free_port() -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind("127.0.0.1:0")
}

fn prometheus_config(prom_port: u16, am_addr: &str, targets: &[ScrapeTarget]) -> String {
    let mut groups: BTreeMap<(String, String), Vec<u16>> = BTreeMap::new();
    for t in targets {
        groups
            .entry((t.app.clone(), t.cluster.clone()))
            .or_default()
            .push(t.port);
    }
    let mut s = format!(
        "global:\n  scrape_interval: {}ms\n  scrape_timeout: 500ms\n  evaluation_interval: {}ms\n\
         rule_files:\n  - rules.yml\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{am_addr}']\n\
         scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{prom_port}']\n\
         \x20 - job_name: lab\n    static_configs:\n",
        SCRAPE_INTERVAL.as_millis(),
        EVALUATION_INTERVAL.as_millis()
    );
    for ((app, cluster), ports) in groups {
        let list: Vec<String> = ports.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
        s.push_str(&format!(
            "      - targets: [{}]\n        labels: {{app: '{app}', cluster: '{cluster}'}}\n",
            list.join(", ")
        ));
    }
    s
}

const ALERTMANAGER_CONFIG: &str = "route:\n  receiver: drill\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: drill\n";

/// Runs `bin args` under a shell that kills it when our pipe to the shell's
/// stdin closes. In a process group of its own: a Ctrl-C at the terminal
/// goes to drill's group, and drill stops Prometheus and Alertmanager
/// itself once the alert checks are judged (and the silence expired);
/// if drill dies, the closed pipe still ends them.
fn spawn_with_lifeline(bin: &str, args: &[String], log: &Path) -> std::io::Result<Child> {
    let script = "\"$@\" </dev/null >\"$DRILL_MON_LOG\" 2>&1 & c=$!; cat >/dev/null; kill $c 2>/dev/null; wait $c";
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("drill-lifeline")
        .arg(bin)
        .args(args)
        .env("DRILL_MON_LOG", log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

/// What a log line says when a port picked free was taken by someone else
/// between our probe and the server's own bind.
const PORT_TAKEN: &str = "address already in use";

/// How many times the stack is started on fresh ports when a port picked
/// free was taken before Prometheus or Alertmanager bound it.
const START_ATTEMPTS: u32 = 3;

impl Monitoring {
    /// Starts Alertmanager, then Prometheus with `rules` (already shortened
    /// as wanted), and waits until both answer. The ports are probed free
    /// and then handed over, so another process may bind one in between:
    /// such a start is stopped and made again on new ports (up to
    /// `START_ATTEMPTS`); any other failure is returned at once.
    pub(crate) async fn start(
        run_id: &str,
        targets: &[ScrapeTarget],
        rules: &str,
        external_alertmanager: Option<&str>,
    ) -> Result<Monitoring, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        let mut attempt = 1;
        loop {
            match Self::start_once(run_id, targets, rules, external_alertmanager).await {
                Err(e) if e.contains(PORT_TAKEN) && attempt < START_ATTEMPTS => {
                    tracing::debug!(attempt, "monitoring port taken, starting again: {e}");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once(
        run_id: &str,
        targets: &[ScrapeTarget],
        rules: &str,
        external_alertmanager: Option<&str>,
    ) -> Result<Monitoring, String> {
        let dir = std::env::temp_dir().join(format!("drill-monitoring-{run_id}"));
        let io = |e: std::io::Error| format!("monitoring in {}: {e}", dir.display());
        std::fs::create_dir_all(&dir).map_err(io)?;
        let (l1, l2, l3) = (
            free_port().map_err(io)?,
            free_port().map_err(io)?,
            free_port().map_err(io)?,
        );
        let prom_port = l1.local_addr().map_err(io)?.port();
        let am_port = l2.local_addr().map_err(io)?.port();
        let am_cluster_port = l3.local_addr().map_err(io)?.port();
        drop((l1, l2, l3));
        std::fs::write(dir.join("rules.yml"), rules).map_err(io)?;
        let am_addr = match external_alertmanager {
            Some(url) => url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            None => format!("127.0.0.1:{am_port}"),
        };
        std::fs::write(
            dir.join("prometheus.yml"),
            prometheus_config(prom_port, &am_addr, targets),
        )
        .map_err(io)?;
        std::fs::write(dir.join("alertmanager.yml"), ALERTMANAGER_CONFIG).map_err(io)?;
        let p = |f: &str| dir.join(f).display().to_string();
        let am_args = vec![
            format!("--config.file={}", p("alertmanager.yml")),
            format!("--storage.path={}", p("am-data")),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            // A lone Alertmanager: no gossip, but its port must not collide.
            "--cluster.listen-address=".to_string(),
            format!("--cluster.advertise-address=127.0.0.1:{am_cluster_port}"),
        ];
        let prom_args = vec![
            format!("--config.file={}", p("prometheus.yml")),
            format!("--storage.tsdb.path={}", p("prom-data")),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
            "--rules.alert.resend-delay=1s".to_string(),
        ];
        let mut mon = Monitoring {
            prometheus: Prometheus::new(&format!("http://127.0.0.1:{prom_port}")),
            alertmanager: Alertmanager::new(&format!("http://{am_addr}")),
            children: Vec::new(),
            dir: dir.clone(),
        };
        let started = async {
            if external_alertmanager.is_none() {
                mon.children.push(
                    spawn_with_lifeline(ALERTMANAGER_BIN, &am_args, &dir.join("alertmanager.log"))
                        .map_err(io)?,
                );
            }
            mon.children.push(
                spawn_with_lifeline(PROMETHEUS_BIN, &prom_args, &dir.join("prometheus.log"))
                    .map_err(io)?,
            );
            mon.wait_ready(Duration::from_secs(30)).await?;
            // Prometheus and itself: every target once, before anything is
            // measured against what it saw.
            mon.wait_scraped(targets.len() + 1, Duration::from_secs(30))
                .await?;
            // A server that lost its port to another one answering there
            // would have made the waits above pass on the wrong server.
            mon.port_taken().map_or(Ok(()), Err)
        };
        match started.await {
            Ok(()) => Ok(mon),
            Err(e) => {
                let logs = mon.logs();
                mon.stop().await;
                Err(format!("{e}{logs}"))
            }
        }
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(taken) = self.port_taken() {
                return Err(taken);
            }
            let am = self.alertmanager.ready().await.is_ok();
            if am && self.prometheus.ready().await {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "Prometheus ({}) or Alertmanager ({}) not ready after {limit:?}",
                    self.prometheus.url(),
                    self.alertmanager.url()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until Prometheus has scraped each of its `expected` targets at
    /// least once. Prometheus 2.x begins scraping some seconds after it says
    /// ready; a drill whose baseline starts before that would read a target
    /// never scraped as absent (and a time to detect from a blind start).
    async fn wait_scraped(&self, expected: usize, limit: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let seen = match self.prometheus.query("count(up)").await {
                Ok(v) => v.first().map_or(0, |s| s.value as usize),
                Err(_) => 0,
            };
            if seen >= expected {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "Prometheus ({}) scraped {seen} of its {expected} targets within {limit:?}",
                    self.prometheus.url()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The log line of a server that could not bind its port, if one says so.
    fn port_taken(&self) -> Option<String> {
        ["prometheus.log", "alertmanager.log"].iter().find_map(|f| {
            let text = std::fs::read_to_string(self.dir.join(f)).ok()?;
            let line = text.lines().find(|l| l.contains(PORT_TAKEN))?;
            Some(format!("{f}: {line}"))
        })
    }

    /// The end of each log, to explain a failed start.
    fn logs(&self) -> String {
        ["prometheus.log", "alertmanager.log"]
            .iter()
            .filter_map(|f| {
                let text = std::fs::read_to_string(self.dir.join(f)).ok()?;
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                Some(format!(
                    "\n{f}:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ))
            })
            .collect()
    }

    /// Stops both (closing their lifelines) and removes the directory.
    pub(crate) async fn stop(&mut self) {
        for mut c in self.children.drain(..) {
            drop(c.stdin.take());
            if tokio::time::timeout(Duration::from_secs(10), c.wait())
                .await
                .is_err()
            {
                let _ = c.start_kill();
                let _ = c.wait().await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_for_is_divided_and_nothing_else_changes() {
        let rules = "      - alert: A\n        expr: up == 0\n        for: 1m\n      - alert: B\n        for: 5m\n";
        let out = shorten_for(rules, 20);
        assert!(out.contains("        for: 3000ms\n"), "{out}");
        assert!(out.contains("        for: 15000ms\n"), "{out}");
        assert!(out.contains("expr: up == 0"));
        let shipped = shorten_for(SHIPPED_RULES, FOR_FACTOR);
        assert_eq!(
            shipped.matches("for: 3000ms").count(),
            1,
            "IngressGatewayDown"
        );
        assert_eq!(
            shipped.matches("for: 6000ms").count(),
            2,
            "IstiodDown, CircuitBreaker"
        );
        assert_eq!(shipped.matches("for: 15000ms").count(), 4);
    }

    #[test]
    fn config_labels_targets_like_service_discovery() {
        let c = prometheus_config(
            9090,
            "127.0.0.1:9093",
            &[ScrapeTarget {
                port: 4000,
                app: "istio-ingressgateway".into(),
                cluster: "primary".into(),
            }],
        );
        assert!(c.contains("targets: ['127.0.0.1:4000']"), "{c}");
        assert!(
            c.contains("app: 'istio-ingressgateway', cluster: 'primary'"),
            "{c}"
        );
        assert!(c.contains("scrape_interval: 1000ms"), "{c}");
        assert!(c.contains("'127.0.0.1:9093'"), "{c}");
    }

    #[tokio::test]
    async fn prometheus_scrapes_itself_and_alertmanager_keeps_a_silence_then_both_stop() {
        let rules = shorten_for(SHIPPED_RULES, FOR_FACTOR);
        let mut m = Monitoring::start("unit-monitoring", &[], &rules, None)
            .await
            .expect("prometheus and alertmanager start");
        let mut up = Vec::new();
        for _ in 0..50 {
            up = m.prometheus.query("up{job=\"prometheus\"}").await.unwrap();
            if !up.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(up.len(), 1, "Prometheus scrapes itself");
        assert_eq!(up[0].value, 1.0);
        let bad = m.prometheus.query("sum(").await.unwrap_err().to_string();
        assert!(bad.contains("400"), "{bad}");
        let id = m
            .alertmanager
            .silence(
                &[crate::observe::api::Matcher {
                    name: "alertname".into(),
                    value: "IngressGatewayDown".into(),
                }],
                Duration::from_secs(600),
                "unit test",
            )
            .await
            .unwrap();
        assert_eq!(m.alertmanager.silence_state(&id).await.unwrap(), "active");
        m.alertmanager.expire(&id).await.unwrap();
        assert_eq!(m.alertmanager.silence_state(&id).await.unwrap(), "expired");
        let url = m.prometheus.url().to_string();
        m.stop().await;
        assert!(
            !crate::observe::api::Prometheus::new(&url).ready().await,
            "Prometheus stopped with its monitoring"
        );
    }
}
