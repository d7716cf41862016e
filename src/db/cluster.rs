//! The lab database: a real PostgreSQL primary and hot standby with streaming
//! replication, built in a temp dir from the system's binaries; preflight,
//! replication paused and resumed, and what each server holds. The role
//! changes (switchover, failover) are in `roles`. Every server dies with
//! the `LabDatabase`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::bin::{PgBin, RunAs};
use super::node::{self, Node, SUPERUSER, Toolbox};
use super::{DbError, DbSettings};

/// A role with a password, so the lab can show what an auth failure reads like.
pub const PASSWORD_ROLE: &str = "drill_secret";
const PASSWORD: &str = "drill-lab-secret";

const CONF: &str = "
# drill lab
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 5
wal_keep_size = '256MB'
hot_standby = on
# The lab measures replication, not disks: a killed process still leaves its
# writes in the OS page cache, which is all a failover drill needs.
fsync = off
synchronous_commit = on
shared_buffers = '32MB'
max_connections = 40
wal_retrieve_retry_interval = '200ms'
wal_receiver_status_interval = '1s'
logging_collector = off
";

const HBA: &str = "
host all drill_secret 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
";

/// A primary and a hot standby on 127.0.0.1, in a temp dir.
pub struct LabDatabase {
    pub(super) tools: Toolbox,
    pub(super) settings: DbSettings,
    /// Client ports of nodes `a` and `b`; they never change.
    ports: [u16; 2],
    pub(super) state: Mutex<State>,
}

pub(super) struct State {
    pub(super) nodes: [Node; 2],
    pub(super) primary: usize,
    /// The node that lost the primary role at the last role change.
    pub(super) old_primary: Option<usize>,
    /// The standby's replication connection is cut (`pause_replication`).
    pub(super) paused: bool,
}

impl State {
    pub(super) fn standby(&self) -> usize {
        1 - self.primary
    }
}

/// Starts a primary and a streaming hot standby; returns once the primary
/// sees the standby `streaming` (and `sync` when asked).
pub async fn start(settings: &DbSettings) -> Result<LabDatabase, DbError> {
    // Free ports are found by binding port 0 and letting go; another
    // process may take one before the server binds it, so retry a few times.
    let mut attempt = 1;
    loop {
        match start_once(settings).await {
            Err(e) if port_taken(&e) && attempt < 4 => attempt += 1,
            done => return done,
        }
    }
}

fn port_taken(e: &DbError) -> bool {
    matches!(e, DbError::Setup { detail, .. } if detail.contains("could not bind"))
}

async fn start_once(settings: &DbSettings) -> Result<LabDatabase, DbError> {
    let bin = PgBin::discover()?;
    let user = RunAs::resolve()?;
    let root = make_root(&user)?;
    let (pa, pb) = free_ports()?;
    let db = LabDatabase {
        settings: settings.clone(),
        ports: [pa, pb],
        state: Mutex::new(State {
            nodes: [Node::new("a", &root, pa), Node::new("b", &root, pb)],
            primary: 0,
            old_primary: None,
            paused: false,
        }),
        tools: Toolbox { bin, user, root },
    };
    db.build().await?;
    Ok(db)
}

fn make_root(user: &RunAs) -> Result<PathBuf, DbError> {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU32, Ordering};
    static LABS: AtomicU32 = AtomicU32::new(0);
    let n = LABS.fetch_add(1, Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("drill-db-{}-{n}", std::process::id()));
    let setup = |e: std::io::Error| DbError::Setup {
        step: format!("create {}", root.display()),
        detail: e.to_string(),
    };
    // A leftover of a crashed run with the same pid is not ours to reuse.
    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(setup)?;
    }
    std::fs::create_dir(&root).map_err(setup)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).map_err(setup)?;
    user.own(&root).map_err(setup)?;
    Ok(root)
}

fn free_ports() -> Result<(u16, u16), DbError> {
    let bind = || {
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| DbError::Setup {
            step: "find free ports".into(),
            detail: e.to_string(),
        })
    };
    // Both held at once so they differ.
    let a = bind()?;
    let b = bind()?;
    let port = |l: &std::net::TcpListener| l.local_addr().map(|a| a.port()).unwrap_or(0);
    Ok((port(&a), port(&b)))
}

impl LabDatabase {
    async fn build(&self) -> Result<(), DbError> {
        let tools = &self.tools;
        let mut st = self.state.lock().await;
        let (a_data, a_port) = (st.nodes[0].data.clone(), st.nodes[0].port);
        let a_str = a_data.display().to_string();
        tools
            .run(
                "initdb",
                "initdb",
                &[
                    "-D",
                    &a_str,
                    "-U",
                    SUPERUSER,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-N",
                ],
            )
            .await?;
        append(&a_data.join("postgresql.conf"), CONF)?;
        write(&a_data.join("pg_hba.conf"), HBA)?;
        st.nodes[0].start(tools, a_port, &[]).await?;

        let client = super::connect(&node::dsn(a_port)).await?;
        client
            .batch_execute(&format!(
                "CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}';
                 CREATE TABLE IF NOT EXISTS drill_writes (
                     seq bigint PRIMARY KEY,
                     written_at timestamptz DEFAULT now());
                 GRANT ALL ON drill_writes TO {PASSWORD_ROLE};"
            ))
            .await
            .map_err(|e| DbError::query("creating the lab's role and table", &e))?;

        let b_data = st.nodes[1].data.clone();
        let b_str = b_data.display().to_string();
        tools
            .run(
                "pg_basebackup",
                "pg_basebackup",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &a_port.to_string(),
                    "-U",
                    SUPERUSER,
                    "-D",
                    &b_str,
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "-N",
                ],
            )
            .await?;
        self.follow(&st.nodes[1], a_port)?;
        let b_port = st.nodes[1].port;
        st.nodes[1].start(tools, b_port, &[]).await?;
        drop(st);
        if self.settings.synchronous {
            self.set_sync_names(0, "*").await?;
        }
        self.wait_streaming(Duration::from_secs(30)).await
    }

    /// Makes `standby` follow the server on `primary_port` at its next start.
    pub(super) fn follow(&self, standby: &Node, primary_port: u16) -> Result<(), DbError> {
        let signal = standby.data.join("standby.signal");
        write(&signal, "")?;
        self.tools.user.own(&signal).map_err(|e| DbError::Setup {
            step: format!("chown {}", signal.display()),
            detail: e.to_string(),
        })?;
        append(
            &standby.data.join("postgresql.auto.conf"),
            &format!(
                "primary_conninfo = '{}'\n",
                conninfo(primary_port, &standby.name)
            ),
        )
    }

    pub(super) async fn set_sync_names(&self, node: usize, names: &str) -> Result<(), DbError> {
        let port = self.state.lock().await.nodes[node].port;
        let client = super::connect(&node::dsn(port)).await?;
        client
            .batch_execute(&format!(
                "ALTER SYSTEM SET synchronous_standby_names = '{names}'"
            ))
            .await
            .map_err(|e| DbError::query("setting synchronous_standby_names", &e))?;
        // ALTER SYSTEM may not share a transaction with anything.
        client
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .map_err(|e| DbError::query("reloading the configuration", &e))
    }

    /// Waits until the primary reports its standby `streaming`.
    pub(super) async fn wait_streaming(&self, limit: Duration) -> Result<(), DbError> {
        let deadline = Instant::now() + limit;
        loop {
            match self.preflight().await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The DSN writers use: both servers, `target_session_attrs=read-write`,
    /// so a client finds whichever is primary by itself.
    pub fn writer_dsn(&self) -> String {
        format!(
            "host=127.0.0.1,127.0.0.1 port={},{} user={SUPERUSER} dbname=postgres \
             target_session_attrs=read-write connect_timeout=2",
            self.ports[0], self.ports[1]
        )
    }

    /// A DSN for the password-protected role on the current primary.
    pub async fn password_dsn(&self, password: &str) -> String {
        let port = self.primary_port().await;
        format!(
            "host=127.0.0.1 port={port} user={PASSWORD_ROLE} password={password} dbname=postgres connect_timeout=3"
        )
    }

    /// The password of `PASSWORD_ROLE` (lab only; never a real secret).
    pub fn lab_password(&self) -> &'static str {
        PASSWORD
    }

    pub async fn primary_port(&self) -> u16 {
        let st = self.state.lock().await;
        st.nodes[st.primary].port
    }

    /// The old primary's DSN while it runs (after a switchover, as a standby).
    pub async fn old_primary_dsn(&self) -> Option<String> {
        let st = self.state.lock().await;
        let n = &st.nodes[st.old_primary?];
        n.running().then(|| node::dsn(n.port))
    }

    /// The lab's directory (data dirs and server logs).
    pub fn dir(&self) -> &std::path::Path {
        &self.tools.root
    }

    pub fn version(&self) -> &str {
        &self.tools.bin.version
    }

    /// The standby must be connected and streaming (`sync` when synchronous),
    /// else `NotStreaming`: nothing may be injected.
    pub async fn preflight(&self) -> Result<(), DbError> {
        let st = self.state.lock().await;
        let (p, s) = (&st.nodes[st.primary], &st.nodes[st.standby()]);
        if !s.running() {
            return Err(DbError::NotStreaming {
                detail: format!(
                    "standby {} (port {}) is not running; {}",
                    s.name,
                    s.port,
                    s.log_tail()
                ),
            });
        }
        let client = super::connect(&node::dsn(p.port)).await?;
        let rows = client
            .query(
                "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1",
                &[&s.name],
            )
            .await
            .map_err(|e| DbError::query("reading pg_stat_replication", &e))?;
        let Some(row) = rows.first() else {
            let why = if st.paused {
                "replication is paused (resume_replication)".to_string()
            } else {
                s.log_tail()
            };
            return Err(DbError::NotStreaming {
                detail: format!(
                    "primary {} (port {}) has no replication connection from standby {} (port {}); {why}",
                    p.name, p.port, s.name, s.port,
                ),
            });
        };
        let state: String = row.get(0);
        let sync_state: String = row.get(1);
        if state != "streaming" {
            return Err(DbError::NotStreaming {
                detail: format!("standby {} is `{state}`, not `streaming`", s.name),
            });
        }
        if self.settings.synchronous && sync_state != "sync" {
            return Err(DbError::NotStreaming {
                detail: format!(
                    "synchronous replication asked but standby {} is `{sync_state}`",
                    s.name
                ),
            });
        }
        Ok(())
    }

    /// Cuts the standby's replication connection (its `primary_conninfo`
    /// emptied and reloaded), so it falls behind by whatever is written
    /// meanwhile, as across a broken inter-region link. Returns once the
    /// primary no longer sees it. Unlike stopping a process with SIGSTOP,
    /// this leaves nothing stuck if drill itself is killed.
    pub async fn pause_replication(&self) -> Result<(), DbError> {
        let mut st = self.state.lock().await;
        if st.paused {
            return Ok(());
        }
        let (p, s) = (&st.nodes[st.primary], &st.nodes[st.standby()]);
        if !s.running() {
            return Err(DbError::NotStreaming {
                detail: format!("standby {} is not running", s.name),
            });
        }
        let (p_port, s_port, s_name) = (p.port, s.port, s.name.clone());
        set_conninfo(s_port, "").await?;
        st.paused = true;
        let primary = super::connect(&node::dsn(p_port)).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = primary
                .query(
                    "SELECT 1 FROM pg_stat_replication WHERE application_name = $1",
                    &[&s_name],
                )
                .await
                .map_err(|e| DbError::query("reading pg_stat_replication", &e))?;
            if rows.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(DbError::Query {
                    what: "pausing replication".into(),
                    detail: format!("standby {s_name} still connected after 10s"),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Restores the standby's replication connection: it catches up.
    pub async fn resume_replication(&self) -> Result<(), DbError> {
        let mut st = self.state.lock().await;
        if !st.paused {
            return Ok(());
        }
        let (p, s) = (&st.nodes[st.primary], &st.nodes[st.standby()]);
        let info = conninfo(p.port, &s.name);
        set_conninfo(s.port, &info).await?;
        st.paused = false;
        Ok(())
    }

    /// Stops the standby (fast shutdown): a standby outage, and how tests
    /// show preflight refusing to start a drill.
    pub async fn stop_standby(&self) {
        let mut st = self.state.lock().await;
        let s = st.standby();
        st.nodes[s].stop_fast(Duration::from_secs(30)).await;
    }

    /// Sorted sequence numbers in `drill_writes` on the current primary.
    pub async fn rows_on_primary(&self) -> Result<Vec<u64>, DbError> {
        let port = self.primary_port().await;
        read_seqs(&node::dsn(port)).await
    }

    /// The independent truth after a role change: what the old primary's
    /// data directory holds. A killed old primary is started on its own (no
    /// standby.signal, read-only sessions) on a fresh port no writer knows,
    /// read, and stopped; a running one (after a switchover) is read directly.
    pub async fn old_primary_rows(&self) -> Result<Vec<u64>, DbError> {
        let mut st = self.state.lock().await;
        let p = st
            .old_primary
            .ok_or_else(|| DbError::Invalid("no switchover or failover has happened yet".into()))?;
        if st.nodes[p].running() {
            return read_seqs(&node::dsn(st.nodes[p].port)).await;
        }
        let _ = std::fs::remove_file(st.nodes[p].data.join("standby.signal"));
        let mut attempt = 1;
        let port = loop {
            let (port, _) = free_ports()?;
            let started = st.nodes[p]
                .start(
                    &self.tools,
                    port,
                    &[
                        ("default_transaction_read_only", "on"),
                        ("synchronous_standby_names", ""),
                    ],
                )
                .await;
            match started {
                Ok(()) => break port,
                Err(e) if port_taken(&e) && attempt < 4 => attempt += 1,
                Err(e) => return Err(e),
            }
        };
        let rows = read_seqs(&node::dsn(port)).await;
        st.nodes[p].stop_fast(Duration::from_secs(30)).await;
        rows
    }

    /// Stops every server (fast) and removes the temp dir.
    pub async fn stop(&mut self) {
        let st = self.state.get_mut();
        for n in st.nodes.iter_mut() {
            n.stop_fast(Duration::from_secs(10)).await;
        }
        self.remove_dir();
    }

    fn remove_dir(&self) {
        if std::env::var_os("DRILL_DB_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.tools.root);
        }
    }
}

impl Drop for LabDatabase {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        for n in st.nodes.iter_mut() {
            n.kill_now();
        }
        self.remove_dir();
    }
}

/// How a standby reaches its primary; `application_name` names it in
/// `pg_stat_replication` and `synchronous_standby_names`.
fn conninfo(primary_port: u16, standby: &str) -> String {
    format!("host=127.0.0.1 port={primary_port} user={SUPERUSER} application_name={standby}")
}

/// Changes a standby's `primary_conninfo` at run time (PostgreSQL ≥ 13
/// restarts the walreceiver on reload).
async fn set_conninfo(port: u16, conninfo: &str) -> Result<(), DbError> {
    let client = super::connect(&node::dsn(port)).await?;
    client
        .batch_execute(&format!("ALTER SYSTEM SET primary_conninfo = '{conninfo}'"))
        .await
        .map_err(|e| DbError::query("changing primary_conninfo", &e))?;
    client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .map_err(|e| DbError::query("reloading the configuration", &e))
}

async fn read_seqs(dsn: &str) -> Result<Vec<u64>, DbError> {
    let client = super::connect(dsn).await?;
    let exists: bool = client
        .query_one("SELECT to_regclass('drill_writes') IS NOT NULL", &[])
        .await
        .map_err(|e| DbError::query("looking for drill_writes", &e))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query("SELECT seq FROM drill_writes ORDER BY seq", &[])
        .await
        .map_err(|e| DbError::query("reading drill_writes", &e))?;
    Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
}

fn append(path: &std::path::Path, text: &str) -> Result<(), DbError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| DbError::Setup {
            step: format!("write {}", path.display()),
            detail: e.to_string(),
        })
}

fn write(path: &std::path::Path, text: &str) -> Result<(), DbError> {
    std::fs::write(path, text).map_err(|e| DbError::Setup {
        step: format!("write {}", path.display()),
        detail: e.to_string(),
    })
}
