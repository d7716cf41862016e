//! `drill plan`: the timeline of what a drill would do, resolved against
//! its target. Touches nothing.

use std::path::Path;

use serde::Serialize;

use super::Output;
use crate::error::CliError;
use crate::scenario::Loaded;
use crate::scenario::model::{Action, Until};
use crate::targets::TargetDef;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario name (in ./scenarios or built in) or path.
    pub scenario: String,
    /// Target to plan against (default: the scenario's, else `lab`).
    #[arg(long, env = "DRILL_TARGET")]
    pub target: Option<String>,
    /// `text` for people, `json` for programs.
    #[arg(short, long, value_enum, default_value_t, env = "DRILL_OUTPUT")]
    pub output: Output,
}

/// What a drill would do, in order; both outputs print this.
#[derive(Serialize)]
struct Plan {
    scenario: String,
    file: String,
    description: String,
    target: String,
    target_kind: String,
    steps: Vec<Step>,
    /// `every 1s window ≥ 99% for 10s`.
    recovery: String,
    checks: Vec<String>,
    aborts: Vec<String>,
}

#[derive(Serialize)]
struct Step {
    /// Seconds from the start of the run.
    at_s: f64,
    /// True once a step's start depends on how the target behaves (a fault
    /// that lasts until healed or recovered).
    approximate: bool,
    what: String,
    /// What ends the step, when something does.
    #[serde(skip_serializing_if = "Option::is_none")]
    then: Option<String>,
}

pub fn run(a: Args, targets_file: Option<&Path>) -> Result<i32, CliError> {
    let targets = super::validate::load_targets(targets_file)?;
    let (l, def) = super::validate::prepare(&a.scenario, a.target.as_deref(), &targets)?;
    let plan = plan(&l, &def);
    match a.output {
        Output::Json => super::print_json(&plan),
        Output::Text => print_text(&plan),
    }
    Ok(0)
}

fn print_text(p: &Plan) {
    println!(
        "drill plan: {} on target `{}` ({})",
        p.scenario, p.target, p.target_kind
    );
    println!("  {}", p.description);
    println!();
    for s in &p.steps {
        let at = if s.approximate {
            format!("~{:.1}", s.at_s)
        } else {
            format!("{:.1}", s.at_s)
        };
        println!("  t+{at:>6}s  {}", s.what);
        if let Some(then) = &s.then {
            println!("             {then}");
        }
    }
    println!();
    println!("  recovery: {}", p.recovery);
    for c in &p.checks {
        println!("  check: {c}");
    }
    for ab in &p.aborts {
        println!("  abort: {ab}");
    }
    println!();
    println!("nothing was touched.");
}

fn plan(l: &Loaded, def: &TargetDef) -> Plan {
    let s = &l.scenario;
    let mut steps = Vec::new();
    let mut t = 0.0;
    let mut approx = false;
    let mut step = |t: f64, approximate: bool, what: String, then: Option<String>| {
        steps.push(Step {
            at_s: (t * 10.0_f64).round() / 10.0,
            approximate,
            what,
            then,
        })
    };
    if let Some(load) = &s.load {
        step(
            t,
            false,
            format!(
                "load: {} {}{} at {}/s (open loop, timeout {}, keep-alive {})",
                load.method.get_ref(),
                entry(def),
                load.path.get_ref(),
                load.rate.get_ref(),
                load.timeout.get_ref(),
                load.keep_alive
            ),
            None,
        );
    }
    if let Some(db) = &s.database {
        step(
            t,
            false,
            format!(
                "database writes: {}/s sequence-numbered inserts (write timeout {})",
                db.get_ref().rate.get_ref(),
                db.get_ref().write_timeout
            ),
            None,
        );
    }
    step(
        t,
        false,
        format!("warmup {} (not measured)", s.phases.warmup.get_ref()),
        None,
    );
    t += s.phases.warmup.get_ref().as_secs_f64();
    step(
        t,
        false,
        format!(
            "baseline {}: steady state must hold or the drill stops here, nothing injected",
            s.phases.baseline.get_ref()
        ),
        None,
    );
    t += s.phases.baseline.get_ref().as_secs_f64();
    for f in &s.faults {
        let f = f.get_ref();
        t += f.after.as_secs_f64();
        let at = (t, approx);
        let until = f.until.as_ref().map(|u| *u.get_ref()).or(f
            .action
            .get_ref()
            .self_healing()
            .then_some(Until::Healed));
        let then = match (until, &f.duration) {
            (_, Some(d)) => {
                t += d.get_ref().as_secs_f64();
                Some(format!("revert after {}", d.get_ref()))
            }
            (Some(Until::Healed), _) => {
                approx = true;
                if let TargetDef::Lab { settings, .. } = def {
                    t += settings.restart_delay.as_secs_f64();
                }
                Some(format!(
                    "ends when the component serves again (at most {})",
                    f.timeout
                ))
            }
            (Some(Until::Recovered), _) => {
                approx = true;
                Some(format!(
                    "reverted once traffic meets the recovery criteria (at most {})",
                    f.timeout
                ))
            }
            (None, None) => None,
        };
        step(
            at.0,
            at.1,
            format!("inject {}: {}", f.display_name(), describe(f, def)),
            then,
        );
    }
    step(
        t,
        approx,
        format!("recovery observation {}", s.phases.recovery.get_ref()),
        None,
    );
    Plan {
        scenario: l.name.clone(),
        file: l.path.display().to_string(),
        description: s.description.clone(),
        target: def.name().to_string(),
        target_kind: def.kind().to_string(),
        steps,
        recovery: format!(
            "every {} window ≥ {} for {}",
            s.recovery.window.get_ref(),
            s.recovery.ratio.get_ref(),
            s.recovery.hold.get_ref()
        ),
        checks: s.checks.iter().map(|c| check(c.get_ref())).collect(),
        aborts: s
            .abort
            .iter()
            .map(|ab| {
                let ab = ab.get_ref();
                format!(
                    "availability over {} < {} (from {} after the first inject)",
                    ab.over,
                    ab.availability_below.get_ref(),
                    ab.after
                )
            })
            .collect(),
    }
}

fn check(c: &crate::scenario::model::Check) -> String {
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
    parts.join(" ")
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
