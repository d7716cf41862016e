//! A target's kind (`kind = "lab" | "http" | "kubernetes"`), shared by the
//! targets file (src/targets/config.rs) and its vantage points
//! (src/targets/vantage.rs), so that neither needs the other for it.

use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    Lab,
    Http,
    Kubernetes,
}
