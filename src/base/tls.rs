//! The one place drill builds a TLS client configuration (rustls): for the
//! load's entry point and for the monitoring APIs alike. A CA file replaces
//! the public roots, as `curl --cacert` does; without one the system's CA
//! certificates are used (`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured).

use std::path::Path;

use rustls::pki_types::{CertificateDer, pem::PemObject};

/// A client configuration trusting `ca_file` only, or the system's roots.
/// Without system certificates every handshake fails verification (and
/// says so), rather than drill refusing to start.
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder();
    let Some(path) = ca_file else {
        use hyper_rustls::ConfigBuilderExt;
        return Ok(match builder.with_native_roots() {
            Ok(b) => b.with_no_client_auth(),
            Err(_) => no_roots(),
        });
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "ca_file {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// A configuration that trusts nothing: every handshake fails verification.
pub(crate) fn no_roots() -> rustls::ClientConfig {
    rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}
