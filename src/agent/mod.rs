//! Generator agents: the open-loop generator as separate processes (local,
//! or Jobs on Kubernetes), each sending its share of the one-generator
//! schedule from a vantage point, merged exactly by the runner.
//! The protocol: src/agent/protocol.rs; the contract: docs/contract.md, "Agents".

pub(crate) mod jobs;
pub(crate) mod k8s;
pub(crate) mod link;
pub(crate) mod local;
pub(crate) mod protocol;
pub(crate) mod runner;
pub(crate) mod server;

pub(crate) use link::Transport;

/// A place the load comes from: its name in reports and its agents.
pub(crate) struct Vantage {
    pub name: String,
    pub agents: Vec<AgentLink>,
}

/// One agent as the runner reaches it.
pub(crate) struct AgentLink {
    /// `<vantage>/<index>`, in reports.
    pub name: String,
    pub transport: Transport,
}
