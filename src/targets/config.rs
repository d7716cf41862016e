//! The targets file (`drill.toml` in the working directory, or `--targets`):
//! named targets a scenario can run against, besides the built-in `lab`.
//!
//! ```toml
//! [targets.staging]
//! kind = "http"
//! url = "https://staging.example.com"
//!
//! [targets.fast-lab]
//! kind = "lab"
//! lab = { restart_delay = "3s", health = { interval = "200ms" } }
//!
//! [targets.prod]
//! kind = "kubernetes"
//! url = "https://bookinfo.example.com"
//! contexts = { primary = "primary-cluster-context", secondary = "secondary-cluster" }
//!
//! [targets.prod.prometheus]                # the system's own monitoring
//! url = "https://prometheus.monitoring.example:9090"
//! token_env = "DRILL_PROMETHEUS_TOKEN"     # the token's variable, never the token
//! ca_file = "monitoring-ca.pem"            # optional, relative to this file
//!
//! [targets.prod.alertmanager]
//! url = "https://alertmanager.monitoring.example:9093"
//! token_env = "DRILL_ALERTMANAGER_TOKEN"
//!
//! [pushgateway]                              # where every run's results go
//! url = "http://pushgateway.monitoring:9091"
//! period = "31d"                             # the schedule, for DrillOverdue
//! grace = "1d"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::k8s::settings::{ComponentOverride, K8sEntry, K8sSettings};
pub(crate) use super::kind::Kind;
use super::lab::LabSettings;
use crate::base::diag::{self, Diagnostic, Diagnostics};
use crate::observe::api::Endpoint;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetEntry {
    pub kind: Spanned<Kind>,
    /// `http`: the entry URL the load goes to.
    pub url: Option<Spanned<String>>,
    /// `lab`: timings and switches.
    pub lab: Option<LabSettings>,
    /// `kubernetes`: region → kube context.
    pub contexts: Option<BTreeMap<String, String>>,
    /// `kubernetes`: kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<String>,
    /// `kubernetes`: region → that region's ingress URL.
    pub ingress: Option<BTreeMap<String, String>>,
    /// `kubernetes`: per-component overrides of the built-in objects.
    pub components: Option<BTreeMap<String, ComponentOverride>>,
    /// `http`/`kubernetes`: the system's PostgreSQL, for database drills.
    pub database: Option<ExternalDb>,
    /// `http`/`kubernetes`: the system's own Prometheus, for alerts and probes.
    pub prometheus: Option<Spanned<EndpointEntry>>,
    /// `http`/`kubernetes`: the system's own Alertmanager.
    pub alertmanager: Option<Spanned<EndpointEntry>>,
    /// Where generator agents send the load from (src/targets/vantage.rs).
    pub vantage: Option<Vec<Spanned<super::vantage::VantageEntry>>>,
}

/// `[targets.NAME.prometheus]` or `[targets.NAME.alertmanager]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointEntry {
    pub url: Spanned<String>,
    /// Name of the environment variable holding a bearer token.
    pub token_env: Option<Spanned<String>>,
    /// PEM file of the CA that signed the endpoint's certificate (relative
    /// to the targets file); replaces the system's roots.
    pub ca_file: Option<Spanned<String>>,
}

/// A database outside the lab: the writer's DSN comes from an environment
/// variable (never written to a report, log or journal) and switchover and
/// failover are the user's commands (`patronictl switchover …`,
/// `kubectl cnpg promote …`, `oci db autonomous-database switchover …`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExternalDb {
    /// Name of the environment variable holding the writer DSN (a multi-host
    /// DSN with target_session_attrs=read-write finds the new primary).
    pub dsn_env: String,
    pub switchover: Option<String>,
    pub failover: Option<String>,
    #[serde(default = "d5m")]
    pub command_timeout: crate::base::units::Dur,
}

fn d5m() -> crate::base::units::Dur {
    crate::base::units::Dur::secs(300)
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetsFile {
    #[serde(default)]
    pub targets: BTreeMap<String, Spanned<TargetEntry>>,
    /// Where `drill run` pushes each run's results (any target).
    pub pushgateway: Option<PushgatewayEntry>,
}

/// `[pushgateway]`: a Prometheus Pushgateway for every run's results, and
/// the schedule the runs keep (for the `DrillOverdue` alert).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PushgatewayEntry {
    pub url: Spanned<String>,
    /// Name of the environment variable holding a bearer token.
    pub token_env: Option<String>,
    /// How often the job runs (e.g. "31d" for a monthly CronJob).
    pub period: Option<crate::base::units::Dur>,
    /// How late a run may be before it counts as missed.
    #[serde(default = "d1d")]
    pub grace: crate::base::units::Dur,
}

fn d1d() -> crate::base::units::Dur {
    crate::base::units::Dur::secs(86400)
}

/// A resolved target definition.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetDef {
    Lab {
        name: String,
        settings: LabSettings,
    },
    Http {
        name: String,
        url: String,
        database: Option<ExternalDb>,
        monitoring: Option<ExternalMonitoring>,
    },
    Kubernetes {
        name: String,
        settings: K8sSettings,
        database: Option<ExternalDb>,
        monitoring: Option<ExternalMonitoring>,
    },
}

/// The system's own Prometheus and Alertmanager, as the targets file names
/// them, with where each key was written: whether a token variable is set,
/// a CA file exists and both endpoints are there depends on the environment
/// and on the scenario, so those are checked when a scenario is prepared
/// against the target, and reported at the key's file:line:col.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalMonitoring {
    pub prometheus: Option<Endpoint>,
    pub alertmanager: Option<Endpoint>,
    /// Each endpoint's token variable: (variable, its diagnostic if unset).
    tokens: Vec<(String, Diagnostic)>,
    /// Each CA file: (path, its diagnostic if missing).
    ca_files: Vec<(PathBuf, Diagnostic)>,
    /// Points at the target (or its alertmanager table) for a missing
    /// Prometheus.
    no_prometheus: Diagnostic,
    /// Points at the prometheus table for a missing Alertmanager.
    no_alertmanager: Diagnostic,
}

impl ExternalMonitoring {
    /// What keeps a scenario reading alerts or probes from running against
    /// this monitoring, knowable without contacting it (exit 2).
    /// `needs_alertmanager`: the scenario expects alerts, lists unexpected
    /// ones or silences (all read from or written to Alertmanager).
    pub fn problems(&self, needs_alertmanager: bool) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if self.prometheus.is_none() {
            out.push(self.no_prometheus.clone());
        }
        if needs_alertmanager && self.alertmanager.is_none() {
            out.push(self.no_alertmanager.clone());
        }
        for (var, d) in &self.tokens {
            if std::env::var(var).map_or(true, |v| v.trim().is_empty()) {
                out.push(d.clone());
            }
        }
        for (path, d) in &self.ca_files {
            if !path.is_file() {
                out.push(d.clone());
            }
        }
        out
    }
}

impl TargetDef {
    pub fn name(&self) -> &str {
        match self {
            TargetDef::Lab { name, .. }
            | TargetDef::Http { name, .. }
            | TargetDef::Kubernetes { name, .. } => name,
        }
    }
    /// The system's own Prometheus and Alertmanager, if the file names them.
    pub fn external_monitoring(&self) -> Option<&ExternalMonitoring> {
        match self {
            TargetDef::Lab { .. } => None,
            TargetDef::Http { monitoring, .. } | TargetDef::Kubernetes { monitoring, .. } => {
                monitoring.as_ref()
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            TargetDef::Lab { .. } => "lab",
            TargetDef::Http { .. } => "http",
            TargetDef::Kubernetes { .. } => "kubernetes",
        }
    }
}

/// The targets a run can choose from: the built-in lab plus the file's.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    pub file: Option<PathBuf>,
    defs: BTreeMap<String, TargetDef>,
    /// Each target's vantage points (none: the load comes from this process).
    vantages: BTreeMap<String, Vec<super::vantage::VantageDef>>,
    /// The file's `[pushgateway]`, its URL checked.
    pub pushgateway: Option<PushgatewayEntry>,
}

impl Targets {
    /// Loads `path` if given (it must exist), else `./drill.toml` if present.
    pub fn load(path: Option<&Path>) -> Result<Targets, Diagnostics> {
        let chosen = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("drill.toml")).filter(|p| p.exists()),
        };
        let mut t = Targets {
            file: chosen.clone(),
            defs: BTreeMap::new(),
            vantages: BTreeMap::new(),
            pushgateway: None,
        };
        t.defs.insert(
            "lab".into(),
            TargetDef::Lab {
                name: "lab".into(),
                settings: LabSettings::default(),
            },
        );
        let Some(file) = chosen else { return Ok(t) };
        let src = match crate::scenario::read_if_present(&file)? {
            Some(src) => src,
            None => {
                return Err(Diagnostics(vec![
                    Diagnostic::file(&file, "cannot read targets file: it does not exist")
                        .with_hint("pass an existing file to --targets, or create drill.toml"),
                ]));
            }
        };
        let parsed: TargetsFile = toml::from_str(&src)
            .map_err(|e| Diagnostics(vec![diag::from_toml(&file, &src, &e)]))?;
        let mut errors = Vec::new();
        if let Some(p) = parsed.pushgateway {
            let url = p.url.get_ref();
            if url.starts_with("http://") || url.starts_with("https://") {
                t.pushgateway = Some(p);
            } else {
                errors.push(
                    Diagnostic::at(
                        &file,
                        &src,
                        Some(p.url.span()),
                        format!("pushgateway url `{url}` is not an http(s) URL"),
                    )
                    .with_hint("write the Pushgateway's base URL, e.g. url = \"http://pushgateway.monitoring:9091\""),
                );
            }
        }
        for (name, entry) in parsed.targets {
            let span = entry.span();
            let mut entry = entry.into_inner();
            if let Some(vs) = entry.vantage.take() {
                let kind = *entry.kind.get_ref();
                match super::vantage::resolve(&file, &src, &name, kind, entry.contexts.as_ref(), vs)
                {
                    Ok(vs) => {
                        t.vantages.insert(name.clone(), vs);
                    }
                    Err(es) => errors.extend(es),
                }
            }
            match resolve(&file, &src, name.clone(), &span, entry) {
                Ok(def) => {
                    t.defs.insert(name, def);
                }
                Err(es) => errors.extend(es),
            }
        }
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(Diagnostics(errors))
        }
    }

    pub fn get(&self, name: &str) -> Option<&TargetDef> {
        self.defs.get(name)
    }

    /// The vantage points of target `name` (empty: none declared).
    pub fn vantages(&self, name: &str) -> &[super::vantage::VantageDef] {
        self.vantages.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }
}

/// One entry of the targets file as a target definition, or what is wrong
/// with it: the checks run in order, and the first step that finds
/// anything wrong returns what it found.
fn resolve(
    file: &Path,
    src: &str,
    name: String,
    span: &std::ops::Range<usize>,
    entry: TargetEntry,
) -> Result<TargetDef, Vec<Diagnostic>> {
    if let Some(d) = entry_value_problems(file, src, &name, span, &entry) {
        return Err(vec![d]);
    }
    if let Some(d) = kubernetes_keys_problem(file, src, &name, span, &entry) {
        return Err(vec![d]);
    }
    let monitoring = external_monitoring(file, src, &name, span, &entry)?;
    if let Some(d) = database_problem(file, src, &name, span, &entry) {
        return Err(vec![d]);
    }
    if let Some(d) = lab_settings_problem(file, src, &name, span, &entry) {
        return Err(vec![d]);
    }
    match *entry.kind.get_ref() {
        Kind::Kubernetes => kubernetes_def(file, src, name, span, entry, monitoring),
        Kind::Lab => lab_def(file, src, name, span, entry),
        Kind::Http => http_def(file, src, name, span, entry, monitoring),
    }
}

/// Kubernetes-only keys (contexts, kubeconfig, ingress, components) on a
/// target of another kind, reported at the target's table.
fn kubernetes_keys_problem(
    file: &Path,
    src: &str,
    name: &str,
    span: &std::ops::Range<usize>,
    entry: &TargetEntry,
) -> Option<Diagnostic> {
    if *entry.kind.get_ref() == Kind::Kubernetes
        || (entry.contexts.is_none()
            && entry.kubeconfig.is_none()
            && entry.ingress.is_none()
            && entry.components.is_none())
    {
        return None;
    }
    Some(
        Diagnostic::at(
            file,
            src,
            Some(span.clone()),
            format!(
                "target `{name}`: contexts, kubeconfig, ingress and components are for kind = \"kubernetes\""
            ),
        )
        .with_hint("set kind = \"kubernetes\", or remove them"),
    )
}

/// A `database` table whose `dsn_env` is not an environment variable name,
/// reported at its value.
fn database_problem(
    file: &Path,
    src: &str,
    name: &str,
    span: &std::ops::Range<usize>,
    entry: &TargetEntry,
) -> Option<Diagnostic> {
    let v = &entry.database.as_ref()?.dsn_env;
    if !(v.is_empty() || v.contains(['=', '\0']) || v.chars().any(char::is_whitespace)) {
        return None;
    }
    let at = value_after(src, span.start, "dsn_env").unwrap_or(span.clone());
    Some(
        Diagnostic::at(
            file,
            src,
            Some(at),
            format!("target `{name}`: database dsn_env `{v}` is not an environment variable name"),
        )
        .with_hint("name the variable that holds the writer DSN, e.g. dsn_env = \"DRILL_DB_DSN\"; the DSN itself never goes in this file"),
    )
}

/// `lab` settings an http target would ignore, or a mesh that makes no
/// call (`attempts = 0`), reported at the key's value.
fn lab_settings_problem(
    file: &Path,
    src: &str,
    name: &str,
    span: &std::ops::Range<usize>,
    entry: &TargetEntry,
) -> Option<Diagnostic> {
    let at = |key: &str, msg: String| {
        let value = value_after(src, span.start, key).unwrap_or(span.clone());
        Diagnostic::at(file, src, Some(value), msg)
    };
    let lab = entry.lab.as_ref()?;
    if *entry.kind.get_ref() == Kind::Http {
        return Some(
            at(
                "lab",
                format!("target `{name}`: `lab` settings are for kind = \"lab\"; an http target would ignore them"),
            )
            .with_hint("remove `lab`, or set kind = \"lab\""),
        );
    }
    if lab.mesh.attempts == 0 {
        return Some(
            at(
                "attempts",
                format!("target `{name}`: mesh attempts = 0 would make no call at all"),
            )
            .with_hint("attempts counts the first try: 1 for no retries, 3 (the default) for two"),
        );
    }
    None
}

/// A `kind = "kubernetes"` entry as its definition: no `lab` settings, and
/// the cluster keys resolved against the targets file's directory; each
/// problem is reported at the value it quotes, else at the entry.
fn kubernetes_def(
    file: &Path,
    src: &str,
    name: String,
    span: &std::ops::Range<usize>,
    entry: TargetEntry,
    monitoring: Option<ExternalMonitoring>,
) -> Result<TargetDef, Vec<Diagnostic>> {
    let at =
        |sp: &std::ops::Range<usize>, msg: String| Diagnostic::at(file, src, Some(sp.clone()), msg);
    if entry.lab.is_some() {
        return Err(vec![at(
            span,
            format!("target `{name}`: `lab` settings are for kind = \"lab\""),
        )]);
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let k = K8sEntry {
        url: entry.url.map(Spanned::into_inner),
        contexts: entry.contexts.unwrap_or_default(),
        ingress: entry.ingress.unwrap_or_default(),
        kubeconfig: entry.kubeconfig,
        components: entry.components.unwrap_or_default(),
    };
    match k.resolve(base) {
        Ok(settings) => Ok(TargetDef::Kubernetes {
            name,
            settings,
            database: entry.database,
            monitoring,
        }),
        Err(es) => Err(es
            .into_iter()
            .map(|e| {
                let d = at(&quoted_in(src, span, &name, &e), format!("target `{name}`: {e}"));
                if e.contains("selector") {
                    d.with_hint("a label selector as kubectl reads it, narrowing to named values, e.g. selector = \"app=reviews\" or \"app in (reviews,ratings)\"")
                } else {
                    d
                }
            })
            .collect()),
    }
}

/// A `kind = "lab"` entry as its definition: the lab makes its own database
/// and entry point, so a `database` table and a `url` are both reported.
fn lab_def(
    file: &Path,
    src: &str,
    name: String,
    span: &std::ops::Range<usize>,
    entry: TargetEntry,
) -> Result<TargetDef, Vec<Diagnostic>> {
    let at =
        |sp: &std::ops::Range<usize>, msg: String| Diagnostic::at(file, src, Some(sp.clone()), msg);
    let mut errors = Vec::new();
    if entry.database.is_some() {
        errors.push(
            at(
                span,
                format!("target `{name}`: the lab makes its own database"),
            )
            .with_hint(
                "set lab database options under `lab = { database = { synchronous = true } }`",
            ),
        );
    }
    if let Some(url) = &entry.url {
        errors.push(
            at(&url.span(), "a lab target has no url".into())
                .with_hint("the lab starts its own entry point; remove `url`"),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(TargetDef::Lab {
        name,
        settings: entry.lab.unwrap_or_default(),
    })
}

/// A `kind = "http"` entry as its definition: it needs a `url`.
fn http_def(
    file: &Path,
    src: &str,
    name: String,
    span: &std::ops::Range<usize>,
    entry: TargetEntry,
    monitoring: Option<ExternalMonitoring>,
) -> Result<TargetDef, Vec<Diagnostic>> {
    match entry.url {
        Some(url) => Ok(TargetDef::Http {
            name,
            url: url.into_inner(),
            database: entry.database,
            monitoring,
        }),
        None => Err(vec![
            Diagnostic::at(
                file,
                src,
                Some(span.clone()),
                format!("target `{name}` of kind http needs a `url`"),
            )
            .with_hint("add url = \"https://…\" to the target's table"),
        ]),
    }
}

/// The `prometheus` and `alertmanager` tables of a target, checked as far
/// as the file alone tells: a lab has its own, URLs need a host and http(s)
/// and no credentials, a token variable needs a name.
fn external_monitoring(
    file: &Path,
    src: &str,
    name: &str,
    span: &std::ops::Range<usize>,
    entry: &TargetEntry,
) -> Result<Option<ExternalMonitoring>, Vec<Diagnostic>> {
    let at = |sp: std::ops::Range<usize>, msg: String| Diagnostic::at(file, src, Some(sp), msg);
    let tables = [
        ("prometheus", &entry.prometheus),
        ("alertmanager", &entry.alertmanager),
    ];
    if tables.iter().all(|(_, t)| t.is_none()) {
        return Ok(None);
    }
    if *entry.kind.get_ref() == Kind::Lab {
        let (key, t) = tables
            .iter()
            .find_map(|(k, t)| Some((k, t.as_ref()?)))
            .expect("one is set");
        let msg = format!(
            "target `{name}`: a lab target starts its own Prometheus and Alertmanager; `{key}` is for http and kubernetes targets"
        );
        return Err(vec![at(t.get_ref().url.span(), msg).with_hint(
            "remove the table; to have the lab's Prometheus send to your Alertmanager, set lab = { alertmanager = \"http://…\" }",
        )]);
    }
    let missing = |sp, what: &str, needs: &str, example: &str| {
        at(sp, format!("target `{name}` names {what}; {needs}"))
            .with_hint(format!("add [targets.{name}.{example}\""))
    };
    let mut m = ExternalMonitoring {
        prometheus: None,
        alertmanager: None,
        tokens: Vec::new(),
        ca_files: Vec::new(),
        no_prometheus: missing(
            span.clone(),
            "no prometheus",
            "drill reads alert rules, intervals and probes from Prometheus",
            "prometheus] with url = \"https://prometheus.example:9090",
        ),
        no_alertmanager: missing(
            span.clone(),
            "no alertmanager",
            "the scenario's [[alerts]], unexpected_alerts or silence read Alertmanager",
            "alertmanager] with url = \"https://alertmanager.example:9093",
        ),
    };
    let base = file.parent().unwrap_or(Path::new("."));
    let mut errors = Vec::new();
    for (key, t) in tables {
        let Some(t) = t else { continue };
        let e = t.get_ref();
        match endpoint(&at, name, key, e, base, &mut m) {
            Ok(endpoint) if key == "prometheus" => {
                m.no_alertmanager = at(e.url.span(), m.no_alertmanager.message.clone())
                    .with_hint(m.no_alertmanager.hint.clone().unwrap_or_default());
                m.prometheus = Some(endpoint);
            }
            Ok(endpoint) => {
                m.no_prometheus = at(e.url.span(), m.no_prometheus.message.clone())
                    .with_hint(m.no_prometheus.hint.clone().unwrap_or_default());
                m.alertmanager = Some(endpoint);
            }
            Err(d) => errors.push(*d),
        }
    }
    if errors.is_empty() {
        Ok(Some(m))
    } else {
        Err(errors)
    }
}

/// One monitoring table as an endpoint; its token variable and CA file are
/// noted in `m` with their diagnostics, for when a scenario needs them.
fn endpoint(
    at: &impl Fn(std::ops::Range<usize>, String) -> Diagnostic,
    name: &str,
    key: &str,
    e: &EndpointEntry,
    base: &Path,
    m: &mut ExternalMonitoring,
) -> Result<Endpoint, Box<Diagnostic>> {
    let url = e.url.get_ref();
    if let Some(p) = url_problem(url) {
        let port = if key == "prometheus" { 9090 } else { 9093 };
        let hint = url_hint(
            &p,
            "drill writes URLs into reports: put the bearer token in an environment variable and name it with token_env = \"…\"",
            format!(
                "write {key}'s URL with its host, e.g. url = \"https://{key}.monitoring.example:{port}\""
            ),
        );
        return Err(Box::new(
            at(
                e.url.span(),
                format!("target `{name}`: {key} url {}", p.why),
            )
            .with_hint(hint)
            .hiding(userinfo(url).unwrap_or_default()),
        ));
    }
    let mut endpoint = Endpoint::plain(url);
    if let Some(var) = &e.token_env {
        let v = var.get_ref();
        if v.is_empty() || v.contains(['=', '\0']) || v.chars().any(char::is_whitespace) {
            let msg = format!(
                "target `{name}`: {key} token_env `{}` is not an environment variable name",
                diag::escape(v)
            );
            return Err(Box::new(at(var.span(), msg).with_hint(
                "name the variable that holds the bearer token, e.g. token_env = \"DRILL_PROMETHEUS_TOKEN\"; the token itself never goes in this file",
            )));
        }
        let unset = at(
            var.span(),
            format!("target `{name}`: environment variable {v} ({key}'s token_env) is not set"),
        )
        .with_hint(format!(
            "export {v}=<bearer token> before running drill (drill reads it, sends it only to {key}, and writes it nowhere)"
        ));
        m.tokens.push((v.clone(), unset));
        endpoint.token_env = Some(v.clone());
    }
    if let Some(ca) = &e.ca_file {
        let path = base.join(ca.get_ref());
        let missing = at(
            ca.span(),
            format!("target `{name}`: {key} ca_file {} does not exist", path.display()),
        )
        .with_hint(
            "give the PEM file of the CA that signed the endpoint's certificate, relative to the targets file",
        );
        m.ca_files.push((path.clone(), missing));
        endpoint.ca_file = Some(path);
    }
    Ok(endpoint)
}

/// Values in a target's entry that parse but cannot work: an entry URL
/// without a host or with a scheme drill does not speak, a database command
/// time limit of zero.
fn entry_value_problems(
    file: &Path,
    src: &str,
    name: &str,
    span: &std::ops::Range<usize>,
    entry: &TargetEntry,
) -> Option<Diagnostic> {
    if let Some(url) = &entry.url
        && *entry.kind.get_ref() != Kind::Lab
        && let Some(p) = url_problem(url.get_ref())
    {
        let hint = url_hint(
            &p,
            ENTRY_CREDENTIALS_HINT,
            "write the entry URL with its host, e.g. url = \"https://staging.example.com\"".into(),
        );
        return Some(
            Diagnostic::at(
                file,
                src,
                Some(url.span()),
                format!("target `{name}`: {}", p.why),
            )
            .with_hint(hint)
            .hiding(userinfo(url.get_ref()).unwrap_or_default()),
        );
    }
    for (region, url) in entry.ingress.iter().flatten() {
        if let Some(p) = url_problem(url) {
            let from = src[span.start..]
                .find("ingress")
                .map_or(span.start, |i| span.start + i);
            let at = value_after(src, from, region).unwrap_or(span.clone());
            let hint = url_hint(
                &p,
                ENTRY_CREDENTIALS_HINT,
                "write the region's ingress URL with its host, e.g. primary = \"http://10.0.0.1:8080\"".into(),
            );
            return Some(
                Diagnostic::at(
                    file,
                    src,
                    Some(at),
                    format!("target `{name}`: ingress of `{region}`: {}", p.why),
                )
                .with_hint(hint)
                .hiding(userinfo(url).unwrap_or_default()),
            );
        }
    }
    if let Some(db) = &entry.database
        && db.command_timeout.0.is_zero()
    {
        let at = value_after(src, span.start, "command_timeout").unwrap_or(span.clone());
        return Some(
            Diagnostic::at(
                file,
                src,
                Some(at),
                format!("target `{name}`: command_timeout = \"0s\" would stop every switchover or failover command before it starts"),
            )
            .with_hint("give the longest a command may run, e.g. command_timeout = \"5m\" (the default)"),
        );
    }
    None
}

/// Why a URL cannot be used, and what kind of problem it is: a secret in
/// it or a fragment get their own hints.
#[derive(Debug)]
struct UrlProblem {
    why: String,
    kind: UrlProblemKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum UrlProblemKind {
    /// `user:password@` in the authority: it would reach every report.
    Credentials,
    /// `#…`: never sent in an HTTP request.
    Fragment,
    /// Not a URL, a scheme drill does not speak, or no host.
    Shape,
}

/// What to do about credentials in an entry or ingress URL.
pub(crate) const ENTRY_CREDENTIALS_HINT: &str = "drill writes URLs into reports, logs and the history, so it refuses secrets in them: send them as a header whose value comes from an environment variable, e.g. in the scenario's [load]: headers_env = { Authorization = \"DRILL_ENTRY_AUTH\" } with DRILL_ENTRY_AUTH=\"Basic …\" exported";

/// `url` with any `user:password@` replaced by `***@`, for messages.
pub(crate) fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

/// The `user:password` of a URL, if it carries one.
pub(crate) fn userinfo(url: &str) -> Option<&str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    url[start..end].rfind('@').map(|at| &url[start..start + at])
}

/// Why `url` cannot be an entry URL, if it cannot. The URL is shown with
/// any credentials redacted.
fn url_problem(url: &str) -> Option<UrlProblem> {
    let shown = redact_userinfo(url);
    let problem = |kind, why: String| Some(UrlProblem { why, kind });
    if shown != url {
        return problem(
            UrlProblemKind::Credentials,
            format!("`{shown}` carries credentials (user:password@ before the host)"),
        );
    }
    if url.contains('#') {
        return problem(
            UrlProblemKind::Fragment,
            format!("`{shown}` has a fragment (`#…`), which is never sent to the server"),
        );
    }
    let uri: hyper::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            return problem(
                UrlProblemKind::Shape,
                format!("`{shown}` is not a URL ({e})"),
            );
        }
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(s) => {
            return problem(
                UrlProblemKind::Shape,
                format!("`{shown}`: scheme `{s}` is not supported (drill speaks http and https)"),
            );
        }
        None => {
            return problem(
                UrlProblemKind::Shape,
                format!("`{shown}` is not an http(s) URL"),
            );
        }
    }
    match uri.host() {
        Some(h) if !h.is_empty() => None,
        _ => problem(UrlProblemKind::Shape, format!("`{shown}` has no host")),
    }
}

/// The hint for a URL problem: `shape` for a URL of the wrong shape, the
/// credentials and fragment hints otherwise.
fn url_hint(p: &UrlProblem, credentials: &str, shape: String) -> String {
    match p.kind {
        UrlProblemKind::Credentials => credentials.to_string(),
        UrlProblemKind::Fragment => {
            "remove the `#…` part: a fragment is not part of an HTTP request".into()
        }
        UrlProblemKind::Shape => shape,
    }
}

/// Where the first `…`-quoted value of `message` is written in target
/// `name`'s entry or its sub-tables (a selector, a context, a component),
/// else the entry.
fn quoted_in(
    src: &str,
    span: &std::ops::Range<usize>,
    name: &str,
    message: &str,
) -> std::ops::Range<usize> {
    // The longest is the most telling (a selector, not the component's name).
    let mut quoted: Vec<&str> = message
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|q| !q.is_empty() && *q != name)
        .collect();
    quoted.sort_by_key(|q| std::cmp::Reverse(q.len()));
    let from = span.start.min(src.len());
    // Up to the next table of another target.
    let mut to = src.len();
    let mut at = span.end.clamp(from, src.len());
    while let Some(i) = src[at..].find("\n[targets.") {
        let head = &src[at + i + 10..];
        if !(head.starts_with(&format!("{name}.")) || head.starts_with(&format!("{name}]"))) {
            to = at + i;
            break;
        }
        at += i + 10;
    }
    for q in quoted {
        if let Some(i) = src[from..to].find(q) {
            return from + i..from + i + q.len();
        }
    }
    span.clone()
}

/// The value of the first `key = value` after byte `from` (in a table or an
/// inline table), up to the end of the line, a `,` or a `}`.
fn value_after(src: &str, from: usize, key: &str) -> Option<std::ops::Range<usize>> {
    let mut at = from;
    while let Some(i) = src.get(at..)?.find(key) {
        let k = at + i;
        let rest = &src[k + key.len()..];
        let before_ok = k == 0
            || !src.as_bytes()[k - 1].is_ascii_alphanumeric() && src.as_bytes()[k - 1] != b'_';
        if before_ok && let Some(v) = rest.trim_start().strip_prefix('=') {
            let v_start = src.len() - v.trim_start().len();
            let len = src[v_start..]
                .find([',', '}', '\n'])
                .unwrap_or(src.len() - v_start);
            return Some(v_start..v_start + src[v_start..v_start + len].trim_end().len());
        }
        at = k + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `src` as a targets file; the errors, else the target names.
    fn load(src: &str) -> Result<Vec<String>, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drill.toml");
        std::fs::write(&path, src).unwrap();
        Targets::load(Some(&path))
            .map(|t| t.names().map(String::from).collect())
            .map_err(|d| d.0)
    }

    /// The one error points at `at` in `src`, says `says`, and has a hint.
    fn rejects(src: &str, at: &str, says: &str) {
        let ds = load(src).expect_err("invalid");
        assert_eq!(ds.len(), 1, "{ds:#?}");
        let d = &ds[0];
        let off = src.find(at).expect("marker");
        let line = src[..off].matches('\n').count() + 1;
        let col = off - src[..off].rfind('\n').map_or(0, |i| i + 1) + 1;
        assert_eq!((d.line, d.col), (line, col), "{d}");
        assert!(d.message.contains(says), "{d}");
        assert!(d.hint.is_some(), "{d}");
    }

    #[test]
    fn good_targets_load() {
        let names = load(
            "[targets.s]\nkind = \"http\"\nurl = \"http://127.0.0.1:8080/x\"\n\n[targets.l]\nkind = \"lab\"\nlab = { push_interval = \"200ms\", health = { interval = \"10ms\" } }\n",
        )
        .unwrap();
        assert_eq!(names, ["l", "lab", "s"]);
    }

    #[test]
    fn entry_urls_need_a_host_and_an_http_scheme() {
        for (url, says) in [
            ("http://", "not a URL"),
            ("https://:8080/x", "has no host"),
            ("ftp://example.com", "scheme `ftp`"),
            ("example.com", "not an http(s) URL"),
        ] {
            let src = format!("[targets.s]\nkind = \"http\"\nurl = \"{url}\"\n");
            rejects(&src, &format!("\"{url}\""), says);
        }
        let src = "[targets.k]\nkind = \"kubernetes\"\nurl = \"http://\"\ncontexts = { primary = \"a\", secondary = \"b\" }\n";
        rejects(src, "\"http://\"", "not a URL");
        let src = "[targets.k]\nkind = \"kubernetes\"\nurl = \"http://e\"\ncontexts = { primary = \"a\", secondary = \"b\" }\ningress = { primary = \"http://p\", secondary = \"ftp://s\" }\n";
        rejects(
            src,
            "\"ftp://s\"",
            "ingress of `secondary`: `ftp://s`: scheme `ftp`",
        );
    }

    #[test]
    fn lab_periods_a_task_loops_on_must_be_real() {
        for (lab, at, says) in [
            (
                "health = { interval = \"0s\" }",
                "\"0s\"",
                "health-check interval 0s is too short",
            ),
            ("health = { interval = \"1ms\" }", "\"1ms\"", "too short"),
            (
                "push_interval = \"0s\"",
                "\"0s\"",
                "push_interval 0s is too short",
            ),
            (
                "health = { timeout = \"0s\" }",
                "\"0s\"",
                "fails every probe",
            ),
            (
                "health = { unhealthy_threshold = 0 }",
                "0 }",
                "threshold of 0",
            ),
        ] {
            let src = format!("[targets.l]\nkind = \"lab\"\nlab = {{ {lab} }}\n");
            rejects(&src, at, says);
        }
        let src = "[targets.l]\nkind = \"lab\"\n\n[targets.l.lab.health]\ninterval = \"0s\"\n";
        rejects(src, "\"0s\"", "too short");
    }

    #[test]
    fn a_zero_database_command_timeout_is_rejected_at_its_value() {
        let src = "[targets.s]\nkind = \"http\"\nurl = \"http://127.0.0.1:1\"\ndatabase = { dsn_env = \"DSN\", failover = \"x\", command_timeout = \"0s\" }\n";
        rejects(src, "\"0s\"", "command_timeout");
        let src = "[targets.s]\nkind = \"http\"\nurl = \"http://127.0.0.1:1\"\n\n[targets.s.database]\ndsn_env = \"DSN\"\ncommand_timeout = \"0s\"\n";
        rejects(src, "\"0s\"", "command_timeout");
    }

    const PROM: &str =
        "[targets.p]\nkind = \"http\"\nurl = \"http://127.0.0.1:1\"\n\n[targets.p.prometheus]\n";

    #[test]
    fn a_targets_monitoring_loads_with_its_token_variable_named_not_read() {
        let src = format!(
            "{PROM}url = \"https://prometheus.example:9090\"\ntoken_env = \"DRILL_TEST_UNSET_TOKEN\"\n\n[targets.p.alertmanager]\nurl = \"http://127.0.0.1:9093\"\n"
        );
        assert_eq!(load(&src).unwrap(), ["lab", "p"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drill.toml");
        std::fs::write(&path, &src).unwrap();
        let t = Targets::load(Some(&path)).unwrap();
        let m = t.get("p").unwrap().external_monitoring().unwrap();
        assert_eq!(
            m.prometheus.as_ref().unwrap().token_env.as_deref(),
            Some("DRILL_TEST_UNSET_TOKEN")
        );
        // The unset variable is reported at its value, once a scenario
        // needs the monitoring.
        let ds = m.problems(true);
        assert_eq!(ds.len(), 1, "{ds:?}");
        let off = src.find("\"DRILL_TEST_UNSET_TOKEN\"").unwrap();
        assert_eq!(ds[0].line, src[..off].matches('\n').count() + 1);
        assert!(
            ds[0].message.contains("DRILL_TEST_UNSET_TOKEN"),
            "{}",
            ds[0]
        );
        assert!(ds[0].hint.as_deref().unwrap().contains("export"));
    }

    #[test]
    fn entry_and_ingress_urls_refuse_credentials_fragments_and_other_schemes() {
        let http = "[targets.s]\nkind = \"http\"\n";
        let src = format!("{http}url = \"http://admin:S3CRET@host:8080\"\n");
        rejects(&src, "\"http://admin", "carries credentials");
        let ds = load(&src).unwrap_err();
        let shown = ds[0].to_string();
        assert!(!shown.contains("S3CRET"), "the password is echoed: {shown}");
        assert!(shown.contains("***@host"), "{shown}");
        assert!(
            ds[0].hint.as_deref().unwrap().contains("headers_env"),
            "{shown}"
        );
        rejects(
            &format!("{http}url = \"https://host/app#top\"\n"),
            "\"https://host/app#top",
            "fragment",
        );
        rejects(
            &format!("{http}url = \"ws://host\"\n"),
            "\"ws://host",
            "scheme `ws` is not supported",
        );
        let k8s = "[targets.k]\nkind = \"kubernetes\"\nurl = \"http://e\"\ncontexts = { primary = \"a\" }\n";
        rejects(
            &format!("{k8s}ingress = {{ primary = \"http://u:pw@10.0.0.1\" }}\n"),
            "\"http://u:pw",
            "carries credentials",
        );
        let src = format!("{k8s}ingress = {{ primary = \"http://u:pw@10.0.0.1\" }}\n");
        assert!(!load(&src).unwrap_err()[0].to_string().contains(":pw@"));
    }

    #[test]
    fn a_selector_that_does_not_parse_is_refused_at_the_selector() {
        let src = "[targets.k]\nkind = \"kubernetes\"\nurl = \"http://e\"\ncontexts = { primary = \"a\" }\n\n[targets.k.components.reviews]\nselector = \"app in ((\"\n";
        rejects(src, "app in ((", "does not parse");
    }

    #[test]
    fn lab_attempts_zero_is_refused_at_the_value() {
        rejects(
            "[targets.l]\nkind = \"lab\"\nlab = { mesh = { attempts = 0 } }\n",
            "0 } }",
            "attempts = 0",
        );
    }

    #[test]
    fn lab_settings_on_an_http_target_are_refused_not_ignored() {
        rejects(
            "[targets.s]\nkind = \"http\"\nurl = \"http://e\"\nlab = { restart_delay = \"1s\" }\n",
            "{ restart_delay",
            "an http target would ignore them",
        );
    }

    #[test]
    fn an_empty_dsn_env_is_refused_at_the_value() {
        rejects(
            "[targets.s]\nkind = \"http\"\nurl = \"http://e\"\ndatabase = { dsn_env = \"\" }\n",
            "\"\" }",
            "not an environment variable name",
        );
    }

    #[test]
    fn monitoring_urls_tokens_and_kinds_are_checked_where_written() {
        rejects(
            &format!("{PROM}url = \"ftp://p\"\n"),
            "\"ftp://p\"",
            "scheme `ftp`",
        );
        rejects(
            &format!("{PROM}url = \"https://u:pw@p:9090\"\n"),
            "\"https://u:pw",
            "carries credentials",
        );
        rejects(
            &format!("{PROM}url = \"http://p\"\ntoken_env = \"\"\n"),
            "\"\"\n",
            "not an environment variable name",
        );
        rejects(
            "[targets.l]\nkind = \"lab\"\n\n[targets.l.prometheus]\nurl = \"http://p\"\n",
            "\"http://p\"",
            "starts its own Prometheus",
        );
        let ds = load(&format!("{PROM}url = \"http://p\"\ntoken = \"x\"\n")).unwrap_err();
        assert!(ds[0].message.contains("unknown field `token`"), "{}", ds[0]);
    }

    #[test]
    fn a_kubernetes_target_names_its_monitoring_too() {
        let src = "[targets.k]\nkind = \"kubernetes\"\nurl = \"http://e\"\ncontexts = { primary = \"a\", secondary = \"b\" }\nprometheus = { url = \"https://p:9090\", ca_file = \"ca.pem\" }\nalertmanager = { url = \"https://a:9093\" }\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drill.toml");
        std::fs::write(&path, src).unwrap();
        let t = Targets::load(Some(&path)).unwrap();
        let m = t.get("k").unwrap().external_monitoring().unwrap();
        assert_eq!(m.alertmanager.as_ref().unwrap().url, "https://a:9093");
        // The CA file is relative to the targets file, and must exist.
        let ca = dir.path().join("ca.pem");
        assert_eq!(m.prometheus.as_ref().unwrap().ca_file.as_ref(), Some(&ca));
        let ds = m.problems(true);
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert!(ds[0].message.contains("ca_file"), "{}", ds[0]);
        assert_eq!((ds[0].line, ds[0].col), (5, 50), "{}", ds[0]);
        std::fs::write(&ca, "pem").unwrap();
        assert!(m.problems(true).is_empty());
    }

    #[test]
    fn an_alertmanager_alone_lacks_the_prometheus_alerts_need() {
        let src = "[targets.p]\nkind = \"http\"\nurl = \"http://127.0.0.1:1\"\nalertmanager = { url = \"http://127.0.0.1:9093\" }\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drill.toml");
        std::fs::write(&path, src).unwrap();
        let t = Targets::load(Some(&path)).unwrap();
        let ds = t
            .get("p")
            .unwrap()
            .external_monitoring()
            .unwrap()
            .problems(true);
        assert_eq!(ds.len(), 1);
        assert!(ds[0].message.contains("no prometheus"), "{}", ds[0]);
        assert_eq!(ds[0].line, 4);
    }

    #[test]
    fn a_directory_as_targets_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Targets::load(Some(dir.path())).unwrap_err().0;
        assert!(ds[0].message.contains("is a directory"), "{:?}", ds[0]);
        assert_eq!(ds[0].location(), dir.path().display().to_string());
    }
}
