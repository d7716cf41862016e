//! A private CA and a server certificate for `localhost`/127.0.0.1 signed
//! by it, made with the openssl command (ci/test.sh installs it).

use std::path::Path;
use std::process::{Command, Stdio};

/// The key type of both the CA and the server certificate.
#[derive(Clone, Copy, Debug)]
pub enum Key {
    Rsa2048,
    /// prime256v1
    EcP256,
}

impl Key {
    fn args(self) -> &'static [&'static str] {
        match self {
            Key::Rsa2048 => &["-newkey", "rsa:2048", "-nodes"],
            Key::EcP256 => &[
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ],
        }
    }
}

/// Runs `openssl args…` in `dir`; panics (naming the arguments) when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (ci/test.sh installs it)");
    assert!(st.success(), "openssl {args:?}");
}

/// Writes, in `dir`: `ca.pem`/`ca.key`, a CA named `ca_name` valid two
/// days, and `srv.pem`/`srv.key`, a certificate for `DNS:localhost` and
/// `IP:127.0.0.1` it signed.
pub fn private_ca(dir: &Path, key: Key, ca_name: &str) {
    let subject = format!("/CN={ca_name}");
    let mut ca = vec!["req", "-x509"];
    ca.extend(key.args());
    ca.extend([
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", &subject,
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(key.args());
    csr.extend([
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("ext.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}
