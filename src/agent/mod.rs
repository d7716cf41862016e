//! Generator agents: the open-loop generator run as separate processes.

pub(crate) mod k8s;
