//! HTTPS entry points, as the users' real ones are: the generator speaks
//! TLS with the system's CA certificates (`SSL_CERT_FILE` here), and an
//! untrusted certificate stops the drill at preflight, saying why.

mod common;

use std::process::{Child, Command};

use common::Sandbox;
use drill_testkit::tls::{Key, private_ca};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and a Python
/// HTTPS server using it.
fn https_server(sb: &Sandbox) -> (Server, u16) {
    let d = sb.work();
    private_ca(&d, Key::Rsa2048, "drill test CA");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = format!("{}/fixtures/tls/serve.py", env!("CARGO_MANIFEST_DIR"));
    let child = Command::new("python3")
        .args([script.as_str(), &port.to_string(), "srv.pem", "srv.key"])
        .current_dir(&d)
        .spawn()
        .expect("python3");
    common::wait_until(
        std::time::Duration::from_secs(10),
        "the HTTPS server listens",
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    (Server(child), port)
}

fn drill(sb: &Sandbox, port: u16, trust: bool) -> common::Outcome {
    let targets = sb.write(
        "targets.toml",
        &format!("[targets.tls]\nkind = \"http\"\nurl = \"https://127.0.0.1:{port}\"\n"),
    );
    let scenario = sb.write("s.toml", "description = \"https entry\"\n[load]\npath = \"/\"\nrate = 50\n[phases]\nwarmup = \"500ms\"\nbaseline = \"1s\"\nrecovery = \"500ms\"\n");
    let mut cmd = sb.command(&[
        "--targets",
        targets.to_str().unwrap(),
        "run",
        scenario.to_str().unwrap(),
        "--target",
        "tls",
        "--quiet",
        "--report-dir",
        &sb.report_arg(),
    ]);
    if trust {
        cmd.env("SSL_CERT_FILE", sb.work().join("ca.pem"));
    } else {
        cmd.env("SSL_CERT_FILE", sb.work().join("srv.key"))
            .env_remove("SSL_CERT_DIR");
    }
    let out = cmd.output().expect("run drill");
    common::Outcome::of(out)
}

#[test]
fn https_entry_points_are_drilled_over_tls() {
    let sb = Sandbox::new();
    let (_srv, port) = https_server(&sb);
    let out = drill(&sb, port, true);
    assert_eq!(out.code, Some(0), "{out}");
    let r = sb.results();
    assert!(
        r["phases"]["baseline"]["good"].as_u64().unwrap() >= 40,
        "{:#}",
        r["phases"]
    );
    assert_eq!(r["load"]["url"], format!("https://127.0.0.1:{port}/"));
}

#[test]
fn an_untrusted_certificate_stops_the_drill_at_preflight_saying_why() {
    let sb = Sandbox::new();
    let (_srv, port) = https_server(&sb);
    let out = drill(&sb, port, false);
    assert_eq!(out.code, Some(3), "{out}");
    assert!(
        out.stdout.contains("certificate"),
        "the reason names the certificate: {out}"
    );
}
