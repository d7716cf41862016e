//! What a target offers a scenario: its components, the regions each exists
//! in and the fault actions each supports. Each target builds one
//! (`TargetDef::catalogue`); validation reads it, knowing nothing else of
//! targets.

use super::model::Action;

/// A component a target knows, the regions it exists in (empty: global) and
/// the fault actions it supports.
#[derive(Clone, Debug)]
pub struct ComponentInfo {
    pub name: &'static str,
    pub regions: Vec<&'static str>,
    pub actions: Vec<Action>,
}

#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    pub components: Vec<ComponentInfo>,
    /// Regions a `region-outage` can take down (empty: not supported).
    pub regions: Vec<&'static str>,
}

impl Catalogue {
    pub fn get(&self, name: &str) -> Option<&ComponentInfo> {
        self.components.iter().find(|c| c.name == name)
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.components.iter().map(|c| c.name).collect()
    }
}
