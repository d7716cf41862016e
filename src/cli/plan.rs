//! `drill plan`: the timeline of what a drill would do, resolved against
//! its target. Touches nothing.

use std::path::Path;

use crate::error::CliError;
use std::time::Duration;

use crate::scenario::Plan;
use crate::scenario::model::{Action, Until};
use crate::scenario::plan::FaultPlan;
use crate::scenario::units::{Dur, Percent};
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
    let (plan, def) = super::validate::prepare(&a.scenario, a.target.as_deref(), &targets)?;
    println!(
        "drill plan: {} on target `{}` ({})",
        plan.name,
        def.name(),
        def.kind()
    );
    println!("  {}", plan.description);
    println!();
    print_timeline(&plan, &def);
    println!();
    let r = plan.recovery;
    println!(
        "  recovery: every {} window ≥ {} for {}",
        dur(r.window_us as f64 / 1e6),
        Percent(r.ratio),
        dur(r.hold_us as f64 / 1e6)
    );
    for c in &plan.checks {
        println!("  check: {}", c.describe());
    }
    for line in plan.monitoring.iter().flat_map(|m| m.describe()) {
        println!("  {line}");
    }
    for ab in &plan.aborts {
        println!(
            "  abort: availability over {} < {} (from {} after the first inject)",
            ab.over,
            Percent(ab.below),
            ab.after
        );
    }
    println!();
    println!("nothing was touched.");
    Ok(0)
}

fn dur(s: f64) -> Dur {
    Dur(Duration::from_secs_f64(s))
}

/// Load, phases and each fault's inject and end, on the run clock.
fn print_timeline(plan: &Plan, def: &TargetDef) {
    let mut t = 0.0;
    if let Some(load) = &plan.load {
        println!(
            "  t+{t:>6.1}s  load: {} {}{} at {}/s (open loop, timeout {}, keep-alive {})",
            load.method,
            entry(def),
            load.path,
            load.rate,
            Dur(load.timeout),
            load.keep_alive
        );
    }
    if let Some(db) = &plan.database {
        println!(
            "  t+{t:>6.1}s  database writes: {}/s sequence-numbered inserts (write timeout {})",
            db.rate,
            Dur(db.write_timeout)
        );
    }
    let p = plan.phases;
    println!("  t+{t:>6.1}s  warmup {} (not measured)", p.warmup);
    t += p.warmup.as_secs_f64();
    println!(
        "  t+{t:>6.1}s  baseline {}: steady state must hold or the drill stops here, nothing injected",
        p.baseline
    );
    t += p.baseline.as_secs_f64();
    let mut approx = false;
    let at = |t: f64, approx: bool| {
        if approx {
            format!("~{t:.1}")
        } else {
            format!("{t:.1}")
        }
    };
    for f in &plan.faults {
        t += f.after.as_secs_f64();
        println!(
            "  t+{:>6}s  inject {}: {}",
            at(t, approx),
            f.name,
            describe(f, def)
        );
        match (f.end_condition(), f.duration) {
            (_, Some(d)) => {
                println!("             revert after {d}");
                t += d.as_secs_f64();
            }
            (Some(Until::Healed), _) => {
                println!(
                    "             ends when the component serves again (at most {})",
                    f.timeout
                );
                approx = true;
                if let TargetDef::Lab { settings, .. } = def {
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
    println!(
        "  t+{:>6}s  recovery observation {}",
        at(t, approx),
        p.recovery
    );
}

fn entry(def: &TargetDef) -> String {
    match def {
        TargetDef::Lab { .. } => "<lab entry>".into(),
        TargetDef::Http { url, .. } => url.clone(),
        TargetDef::Kubernetes { settings, .. } => settings.url.clone(),
    }
}

fn describe(f: &FaultPlan, def: &TargetDef) -> String {
    let place = match (f.component(), f.region()) {
        (Some(c), Some(r)) => format!("{c} in {r}"),
        (Some(c), None) => c.to_string(),
        _ => String::new(),
    };
    match (f.action, def) {
        (Action::Command, _) => format!(
            "run `{}` (revert: `{}`)",
            f.inject.as_deref().unwrap_or(""),
            f.revert.as_deref().unwrap_or("")
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
