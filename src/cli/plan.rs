//! `drill plan`: the timeline of what a drill would do, resolved against
//! its target. Touches nothing.

use std::path::Path;

use crate::error::CliError;
use crate::scenario::model::{Action, Until};
use crate::targets::TargetDef;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario name (in ./scenarios or built in) or path.
    pub scenario: String,
    /// Target to plan against (default: the scenario's, else `lab`).
    #[arg(long)]
    pub target: Option<String>,
}

pub fn run(a: Args, targets_file: Option<&Path>) -> Result<i32, CliError> {
    let targets = super::validate::load_targets(targets_file)?;
    let (l, def) = super::validate::prepare(&a.scenario, a.target.as_deref(), &targets)?;
    let s = &l.scenario;
    println!(
        "drill plan: {} on target `{}` ({})",
        l.name,
        def.name(),
        def.kind()
    );
    println!("  {}", s.description);
    println!();
    let mut t = 0.0;
    if let Some(load) = &s.load {
        println!(
            "  t+{t:>6.1}s  load: {} {}{} at {}/s (open loop, timeout {}, keep-alive {})",
            load.method.get_ref(),
            entry(&def),
            load.path.get_ref(),
            load.rate.get_ref(),
            load.timeout.get_ref(),
            load.keep_alive
        );
    }
    if let Some(db) = &s.database {
        println!(
            "  t+{t:>6.1}s  database writes: {}/s sequence-numbered inserts (write timeout {})",
            db.get_ref().rate.get_ref(),
            db.get_ref().write_timeout
        );
    }
    println!(
        "  t+{t:>6.1}s  warmup {} (not measured)",
        s.phases.warmup.get_ref()
    );
    t += s.phases.warmup.get_ref().as_secs_f64();
    println!(
        "  t+{t:>6.1}s  baseline {}: steady state must hold or the drill stops here, nothing injected",
        s.phases.baseline.get_ref()
    );
    t += s.phases.baseline.get_ref().as_secs_f64();
    let mut approx = false;
    for f in &s.faults {
        let f = f.get_ref();
        t += f.after.as_secs_f64();
        let at = if approx {
            format!("~{t:.1}")
        } else {
            format!("{t:.1}")
        };
        println!(
            "  t+{at:>6}s  inject {}: {}",
            f.display_name(),
            describe(f, &def)
        );
        let until = f.until.as_ref().map(|u| *u.get_ref()).or(f
            .action
            .get_ref()
            .self_healing()
            .then_some(Until::Healed));
        match (until, &f.duration) {
            (_, Some(d)) => {
                println!("             revert after {}", d.get_ref());
                t += d.get_ref().as_secs_f64();
            }
            (Some(Until::Healed), _) => {
                println!(
                    "             ends when the component serves again (at most {})",
                    f.timeout
                );
                approx = true;
                if let TargetDef::Lab { settings, .. } = &def {
                    t += settings.restart_delay.as_secs_f64();
                }
            }
            (Some(Until::Recovered), _) => {
                println!(
                    "             reverted once traffic meets the recovery criteria (at most {})",
                    f.timeout
                );
                approx = true;
            }
            (None, None) => {}
        }
    }
    let at = if approx {
        format!("~{t:.1}")
    } else {
        format!("{t:.1}")
    };
    println!(
        "  t+{at:>6}s  recovery observation {}",
        s.phases.recovery.get_ref()
    );
    println!();
    println!(
        "  recovery: every {} window ≥ {} for {}",
        s.recovery.window.get_ref(),
        s.recovery.ratio.get_ref(),
        s.recovery.hold.get_ref()
    );
    for c in &s.checks {
        let c = c.get_ref();
        let mut parts = vec![c.kind.get_ref().name().to_string()];
        for (k, v) in [
            ("fault", c.fault.as_ref().map(|x| x.get_ref().clone())),
            ("phase", c.phase.as_ref().map(|x| x.get_ref().clone())),
            (
                "percentile",
                c.percentile.as_ref().map(|x| x.get_ref().clone()),
            ),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        if let Some(m) = &c.max {
            parts.push(format!("≤ {}", m.get_ref()));
        }
        if let Some(m) = &c.min {
            parts.push(format!("≥ {}", m.get_ref()));
        }
        println!("  check: {}", parts.join(" "));
    }
    for ab in &s.abort {
        let ab = ab.get_ref();
        println!(
            "  abort: availability over {} < {} (from {} after the first inject)",
            ab.over,
            ab.availability_below.get_ref(),
            ab.after
        );
    }
    println!();
    println!("nothing was touched.");
    Ok(0)
}

fn entry(def: &TargetDef) -> String {
    match def {
        TargetDef::Lab { .. } => "<lab entry>".into(),
        TargetDef::Http { url, .. } => url.clone(),
        TargetDef::Kubernetes { settings, .. } => settings.url.clone(),
    }
}

fn describe(f: &crate::scenario::model::Fault, def: &TargetDef) -> String {
    let place = match (f.component(), f.region()) {
        (Some(c), Some(r)) => format!("{c} in {r}"),
        (Some(c), None) => c.to_string(),
        _ => String::new(),
    };
    match (f.action.get_ref(), def) {
        (Action::Command, _) => format!(
            "run `{}` (revert: `{}`)",
            f.inject.as_ref().map_or("", |c| c.get_ref()),
            f.revert.as_ref().map_or("", |c| c.get_ref())
        ),
        (_, TargetDef::Kubernetes { settings, .. }) => {
            crate::targets::k8s::describe_fault(settings, f)
        }
        (Action::Delete, TargetDef::Lab { settings, .. }) => {
            format!(
                "delete {place}: kill its process; the lab supervisor recreates it after {}",
                settings.restart_delay
            )
        }
        (Action::RegionOutage, _) => format!(
            "region-outage: every component of {} down",
            f.region().unwrap_or("?")
        ),
        (a, _) => format!("{} {place}", a.name()),
    }
}
