//! `drill run --pushgateway`: each run's results PUT to a Prometheus
//! Pushgateway (src/report/metrics.rs says which metrics). A push that
//! fails is a warning: it never changes the drill's verdict or exit code.

use std::path::Path;
use std::time::Duration;

use crate::base::error::CliError;
use crate::history;
use crate::observe::api::{Endpoint, Pushgateway};
use crate::report::metrics::{self, Schedule};
use crate::results::DrillResult;
use crate::targets::config::Targets;

/// Where to push and the schedule: `--pushgateway` (or DRILL_PUSHGATEWAY)
/// over the targets file's `[pushgateway]`; None when neither names one.
pub(super) struct PushTo {
    endpoint: Endpoint,
    schedule: Option<Schedule>,
}

impl PushTo {
    /// A `--pushgateway` that is not an http(s) URL is a usage error (exit
    /// 2, before anything starts); the file's URL was checked when loaded.
    pub(super) fn resolve(
        flag: Option<&str>,
        targets: &Targets,
    ) -> Result<Option<PushTo>, CliError> {
        if let Some(f) = flag
            && !(f.starts_with("http://") || f.starts_with("https://"))
        {
            return Err(CliError::usage(
                format!("--pushgateway `{f}` is not an http(s) URL"),
                "pass the Pushgateway's base URL, e.g. --pushgateway http://pushgateway.monitoring:9091",
            ));
        }
        let file = targets.pushgateway.as_ref();
        let Some(url) = flag
            .map(str::to_string)
            .or_else(|| file.map(|p| p.url.get_ref().clone()))
        else {
            return Ok(None);
        };
        Ok(Some(PushTo {
            endpoint: Endpoint {
                url,
                token_env: file.and_then(|p| p.token_env.clone()),
                ca_file: None,
            },
            schedule: file.and_then(|p| {
                p.period.map(|period| Schedule {
                    period_s: period.as_secs_f64(),
                    grace_s: p.grace.as_secs_f64(),
                })
            }),
        }))
    }
}

/// Whether the run regressed as `drill history --check` judges it (the
/// default 5 runs and 20%), from the history that now holds it; None
/// without a history.
pub(super) fn regressed(history_dir: Option<&Path>, r: &DrillResult) -> Option<bool> {
    let (records, _) = history::load(history_dir?, Some(&r.scenario), Some(&r.target)).ok()?;
    let last = records.iter().rposition(|x| x.run_id == r.run_id)?;
    let trend = history::trend(&records[..=last], 5, 0.2);
    Some(trend.iter().any(|p| p.regression && p.run == last))
}

/// Pushes every run's groups; says what went wrong, never fails.
pub(super) fn push_all(to: &PushTo, runs: &[(&DrillResult, Option<bool>)]) {
    let gateway = match Pushgateway::to(&to.endpoint) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("warning: cannot push the results to the Pushgateway: {e}");
            return;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warning: cannot push the results: {e}");
            return;
        }
    };
    rt.block_on(async {
        for (r, regressed) in runs {
            for g in metrics::groups(r, *regressed, to.schedule) {
                let path = g.path();
                let put = gateway.replace(&path, &g.body, metrics::CONTENT_TYPE);
                match tokio::time::timeout(Duration::from_secs(15), put).await {
                    Ok(Ok(())) => eprintln!("pushed: {}{path}", gateway.url()),
                    Ok(Err(e)) => eprintln!(
                        "warning: cannot push {} on {} to the Pushgateway ({e}); the verdict stands",
                        r.scenario, r.target
                    ),
                    Err(_) => eprintln!(
                        "warning: the Pushgateway {} did not answer within 15 s; the verdict stands",
                        gateway.url()
                    ),
                }
            }
        }
    });
}
