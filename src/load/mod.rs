//! Load that drill generates: open-loop HTTP against the target's entry point.

#[cfg(test)]
mod conformance;
mod h1;
pub(crate) mod http;
pub(crate) mod reader;
mod spec;
mod timer;
pub mod writer;
