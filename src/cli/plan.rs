//! `drill plan`: the timeline of what a drill would do, resolved against
//! its target. Touches nothing.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::Output;
use crate::base::error::CliError;
use crate::base::units::{Dur, Percent};
use crate::scenario::Plan;
use crate::scenario::model::{Action, Until};
use crate::scenario::plan::FaultPlan;
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
struct Timeline {
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
    /// Stop guards: what each watches and what it would do.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    guards: Vec<String>,
    /// Where the load is sent from when the target names vantage points
    /// (empty: this process, or `--agents N` at run time).
    load_from: Vec<String>,
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

pub(super) fn run(a: Args, targets_file: Option<&Path>) -> Result<i32, CliError> {
    let targets = super::validate::load_targets(targets_file)?;
    let (plan, def) = super::validate::prepare(&a.scenario, a.target.as_deref(), &targets)?;
    let mut plan = timeline(&plan, &def);
    plan.load_from = targets
        .vantages(def.name())
        .iter()
        .map(vantage_point)
        .collect();
    match a.output {
        Output::Json => super::print_json(&plan),
        Output::Text => print_text(&plan),
    }
    Ok(0)
}

fn print_text(p: &Timeline) {
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
    for g in &p.guards {
        println!("  {g}");
    }
    for v in &p.load_from {
        println!("  load from: {v}");
    }
    println!();
    println!("nothing was touched.");
}

/// One vantage point as the run will create it.
fn vantage_point(v: &crate::targets::vantage::VantageDef) -> String {
    match &v.context {
        Some(ctx) => format!(
            "{}: {} agent(s) as the indexed Job drill-{}-<run> in namespace {} of context {} (image {})",
            v.name,
            v.agents,
            v.name.to_ascii_lowercase(),
            v.namespace,
            ctx,
            v.image
                .clone()
                .unwrap_or_else(crate::agent::k8s::default_image)
        ),
        None => format!(
            "{}: {} local agent process(es), entering {}",
            v.name,
            v.agents,
            v.region
                .as_deref()
                .map_or("through the target's entry".to_string(), |r| format!(
                    "through region {r}'s ingress gateway"
                ))
        ),
    }
}

fn dur(us: u64) -> Dur {
    Dur(Duration::from_micros(us))
}

fn timeline(plan: &Plan, def: &TargetDef) -> Timeline {
    let mut steps = traffic_steps(plan, def);
    let mut t = 0.0;
    let p = plan.phases;
    steps.push(step(
        t,
        false,
        format!("warmup {} (not measured)", p.warmup),
        None,
    ));
    t += p.warmup.as_secs_f64();
    let what = format!(
        "baseline {}: steady state must hold or the drill stops here, nothing injected",
        p.baseline
    );
    steps.push(step(t, false, what, None));
    t += p.baseline.as_secs_f64();
    let (t, approx) = fault_steps(plan, def, t, &mut steps);
    steps.push(step(
        t,
        approx,
        format!("recovery observation {}", p.recovery),
        None,
    ));
    Timeline {
        scenario: plan.name.clone(),
        file: plan.path.display().to_string(),
        description: plan.description.clone(),
        target: def.name().to_string(),
        target_kind: def.kind().to_string(),
        steps,
        recovery: recovery_criteria(plan),
        checks: plan
            .checks
            .iter()
            .map(|c| c.describe())
            .chain(plan.monitoring.iter().flat_map(|m| m.describe()))
            .collect(),
        aborts: abort_lines(plan),
        guards: plan.guards.iter().map(|g| g.describe()).collect(),
        load_from: Vec::new(),
    }
}

/// A step of the timeline at `t` seconds from the start, shown to a tenth
/// of a second.
fn step(t: f64, approximate: bool, what: String, then: Option<String>) -> Step {
    Step {
        at_s: (t * 10.0_f64).round() / 10.0,
        approximate,
        what,
        then,
    }
}

/// The traffic the drill starts at once: its HTTP load and its database
/// writes, when the scenario has them.
fn traffic_steps(plan: &Plan, def: &TargetDef) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(load) = &plan.load {
        let what = format!(
            "load: {} {}{} at {}/s (open loop, timeout {}, keep-alive {})",
            load.method,
            entry(def),
            load.path,
            load.rate,
            Dur(load.timeout),
            load.keep_alive
        );
        steps.push(step(0.0, false, what, None));
    }
    if let Some(db) = &plan.database {
        let what = format!(
            "database writes: {}/s sequence-numbered inserts (write timeout {})",
            db.rate,
            Dur(db.write_timeout)
        );
        steps.push(step(0.0, false, what, None));
    }
    steps
}

/// One step per fault, at its inject (`t`: when the baseline ends), with
/// what ends it. Returns when the last fault ends, and whether that time
/// depends on how the target behaves.
fn fault_steps(plan: &Plan, def: &TargetDef, mut t: f64, steps: &mut Vec<Step>) -> (f64, bool) {
    let mut approx = false;
    for f in &plan.faults {
        t += f.after.as_secs_f64();
        let at = (t, approx);
        let then = fault_end(f, def, &mut t, &mut approx);
        let what = format!("inject {}: {}", f.name, describe(f, def));
        steps.push(step(at.0, at.1, what, then));
    }
    (t, approx)
}

/// What ends fault `f`, if anything does. Moves `t` past its end when
/// that is known (a duration, or the lab's restart delay for a fault that
/// lasts until healed) and sets `approx` once the end depends on the
/// target.
fn fault_end(f: &FaultPlan, def: &TargetDef, t: &mut f64, approx: &mut bool) -> Option<String> {
    match (f.end_condition(), f.duration) {
        (_, Some(d)) => {
            *t += d.as_secs_f64();
            Some(format!("revert after {d}"))
        }
        (Some(Until::Healed), _) => {
            *approx = true;
            if let TargetDef::Lab { settings, .. } = def {
                *t += settings.restart_delay.as_secs_f64();
            }
            Some(format!(
                "ends when the component serves again (at most {})",
                f.timeout
            ))
        }
        (Some(Until::Recovered), _) => {
            *approx = true;
            Some(format!(
                "reverted once traffic meets the recovery criteria (at most {})",
                f.timeout
            ))
        }
        (None, None) => None,
    }
}

/// The recovery criteria, as `every 1s window ≥ 99% for 10s`.
fn recovery_criteria(plan: &Plan) -> String {
    let r = plan.recovery;
    format!(
        "every {} window ≥ {} for {}",
        dur(r.window_us),
        Percent(r.ratio),
        dur(r.hold_us)
    )
}

/// Each abort rule: the availability under which the drill stops early.
fn abort_lines(plan: &Plan) -> Vec<String> {
    plan.aborts
        .iter()
        .map(|ab| {
            format!(
                "availability over {} < {} (from {} after the first inject)",
                ab.over,
                Percent(ab.below),
                ab.after
            )
        })
        .collect()
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
