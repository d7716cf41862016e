//! drill's test support, shared by its unit and integration tests (a
//! dev-dependency of drill, never a dependency: nothing here ships).
//!
//! - [`k8s`]: a loopback fake Kubernetes API server ([`k8s::FakeCluster`]).
//! - [`tls`]: a private CA and a certificate for 127.0.0.1 it signed, made
//!   with openssl.

pub mod k8s;
pub mod tls;
