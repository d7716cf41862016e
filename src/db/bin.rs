//! Where the PostgreSQL server binaries are, and which OS user runs them.
//! PostgreSQL refuses to run as root, so under root the lab runs its servers
//! as `postgres` (the Debian package creates it) or a `drill-pg` user it
//! creates; otherwise as the current user.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::DbError;

/// The server programs the lab needs, all from one installation.
#[derive(Clone, Debug)]
pub(crate) struct PgBin {
    pub dir: PathBuf,
    /// `15.18`, from `postgres --version`.
    pub version: String,
}

const PROGRAMS: [&str; 5] = [
    "initdb",
    "pg_ctl",
    "pg_basebackup",
    "pg_controldata",
    "postgres",
];

/// How to get the binaries, shown whenever they are missing.
pub(crate) const INSTALL_HINT: &str = "install the PostgreSQL server (Debian/Ubuntu: `apt-get install -y postgresql`, \
     which provides /usr/lib/postgresql/<version>/bin/{initdb,pg_ctl,pg_basebackup,postgres}), \
     or set DRILL_PG_BIN to a directory holding initdb, pg_ctl, pg_basebackup and postgres";

impl PgBin {
    /// Finds a directory holding every program: `$DRILL_PG_BIN` alone when
    /// set (an explicit choice is never second-guessed), else the newest
    /// `/usr/lib/postgresql/<ver>/bin`, then the directory of `postgres` on
    /// PATH (symlinks resolved, so the programs come from one version).
    pub(crate) fn discover() -> Result<PgBin, DbError> {
        if let Some(d) = std::env::var_os("DRILL_PG_BIN") {
            return PgBin::find_in(vec![PathBuf::from(d)]);
        }
        let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
        let mut candidates: Vec<PathBuf> = versioned.into_iter().map(|(_, p)| p).collect();
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let pg = dir.join("postgres");
                if pg.is_file() {
                    let real = std::fs::canonicalize(&pg).unwrap_or(pg);
                    if let Some(parent) = real.parent() {
                        candidates.push(parent.to_path_buf());
                    }
                }
            }
        }
        PgBin::find_in(candidates)
    }

    /// The first of `candidates` that holds every program.
    pub(crate) fn find_in(candidates: Vec<PathBuf>) -> Result<PgBin, DbError> {
        let searched = candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let dir = candidates
            .into_iter()
            .find(|d| PROGRAMS.iter().all(|p| is_executable(&d.join(p))))
            .ok_or_else(|| DbError::BinariesMissing {
                hint: format!(
                    "none of [{searched}] holds {}; {INSTALL_HINT}",
                    PROGRAMS.join(", ")
                ),
            })?;
        let out = std::process::Command::new(dir.join("postgres"))
            .arg("--version")
            .output()
            .map_err(|e| DbError::BinariesMissing {
                hint: format!("{}: {e}; {INSTALL_HINT}", dir.join("postgres").display()),
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .split_whitespace()
            .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
            .unwrap_or("unknown")
            .to_string();
        Ok(PgBin { dir, version })
    }

    pub(crate) fn path(&self, program: &str) -> PathBuf {
        self.dir.join(program)
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The OS user the servers run as.
#[derive(Clone, Debug)]
pub(crate) struct RunAs {
    pub name: String,
    /// Set only when drill runs as root and must drop privileges.
    pub ids: Option<(u32, u32)>,
}

impl RunAs {
    pub(crate) fn resolve() -> Result<RunAs, DbError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            let name = std::env::var("USER").unwrap_or_else(|_| "current user".into());
            return Ok(RunAs { name, ids: None });
        }
        if let Some(ids) = lookup("postgres") {
            return Ok(RunAs {
                name: "postgres".into(),
                ids: Some(ids),
            });
        }
        if lookup("drill-pg").is_none() {
            let status = std::process::Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                ])
                .arg("drill-pg")
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                return Err(DbError::Setup {
                    step: "create an unprivileged user for PostgreSQL".into(),
                    detail: "PostgreSQL refuses to run as root and neither user `postgres` \
                             exists nor could `useradd drill-pg` create one; run drill as \
                             an ordinary user or create `postgres`"
                        .into(),
                });
            }
        }
        let ids = lookup("drill-pg").ok_or_else(|| DbError::Setup {
            step: "look up user drill-pg".into(),
            detail: "useradd succeeded but the user is not visible".into(),
        })?;
        Ok(RunAs {
            name: "drill-pg".into(),
            ids: Some(ids),
        })
    }

    /// Gives `path` to the server user (no-op when not root).
    pub(crate) fn own(&self, path: &Path) -> std::io::Result<()> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// Applies the user to a command about to be spawned.
    pub(crate) fn apply(&self, cmd: &mut tokio::process::Command) {
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
        }
    }
}

fn lookup(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    // SAFETY: getpwnam returns null or a pointer to a static passwd record
    // that stays valid until the next getpw* call; we copy the ids out at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null and points to a valid passwd struct.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_say_how_to_install() {
        let empty = std::env::temp_dir().join(format!("drill-no-pg-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let e = PgBin::find_in(vec![empty.clone()]).expect_err("an empty dir has no server");
        let _ = std::fs::remove_dir(&empty);
        let text = e.to_string();
        assert!(matches!(e, DbError::BinariesMissing { .. }), "{text}");
        assert!(text.contains("apt-get install -y postgresql"), "{text}");
        assert!(text.contains(&empty.display().to_string()), "{text}");
        assert_eq!(e.exit_code(), 2);
    }
}
