//! A PostgreSQL server for this test binary: Debian's, started once
//! (initdb and pg_ctl into a temporary directory, TCP on 127.0.0.1, trust
//! authentication), with a fresh database per test. As root it runs as
//! the `postgres` user (initdb refuses root). A watchdog stops it and
//! removes its directory once this test binary has exited, however it
//! ended.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::helpers::ensure_package;

/// The running server.
struct Server {
    port: u16,
    bin: PathBuf,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// A URL to a new, empty database on this binary's server.
pub fn fresh_database() -> String {
    let server = match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(e) => panic!("PostgreSQL could not be started: {e}"),
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst)
    );
    let created = Command::new(server.bin.join("psql"))
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args([
            "-U",
            "lastmile",
            "-d",
            "postgres",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", &format!("CREATE DATABASE {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(created, "database {name} could not be created");
    format!("postgres://lastmile@127.0.0.1:{}/{name}", server.port)
}

/// A fresh database when this test runs on PostgreSQL.
pub fn engine_database() -> Option<String> {
    (std::env::var("LASTMILE_TEST_ENGINE").as_deref() == Ok("postgres")).then(fresh_database)
}

/// The binary's settings for the engine this test runs on: one database
/// per data directory, so a binary started again finds its data.
pub fn engine_env(data: &Path) -> Vec<(String, String)> {
    static BY_DATA: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut known = BY_DATA
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let url = match known.iter().find(|(d, _)| d == data) {
        Some((_, url)) => Some(url.clone()),
        None => engine_database().inspect(|url| known.push((data.to_owned(), url.clone()))),
    };
    match url {
        Some(url) => vec![
            ("LASTMILE__STORAGE__ENGINE".into(), "postgres".into()),
            ("LASTMILE__STORAGE__POSTGRES__URL".into(), url),
        ],
        None => Vec::new(),
    }
}

/// Runs `sql` on the database `url` names, through psql.
pub fn psql(url: &str, sql: &str) -> String {
    let server = SERVER
        .get()
        .and_then(|s| s.as_ref().ok())
        .expect("the server runs");
    let out = Command::new(server.bin.join("psql"))
        .args([url, "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Debian's newest PostgreSQL binaries, installed when missing.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("psql").exists())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn start() -> Result<Server, String> {
    ensure_package("postgresql", &|| binaries().is_some(), "PostgreSQL");
    let bin = binaries().ok_or("no PostgreSQL binaries")?;
    let dir = tempfile::Builder::new()
        .prefix("lastmile-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    let as_root = is_root();
    if as_root {
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir))?;
    }
    run(as_postgres(as_root, &bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "lastmile",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data))?;
    let port = free_port()?;
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 \
         -c fsync=off -c full_page_writes=off",
        dir.display()
    );
    run(as_postgres(as_root, &bin.join("pg_ctl"))
        .args(["-w", "-t", "60", "-o", &options, "-l"])
        .arg(dir.join("log"))
        .arg("-D")
        .arg(&data)
        .arg("start"))?;
    watch(as_root, &bin, &dir);
    Ok(Server { port, bin })
}

/// Stops the server and removes its directory once this process is gone.
fn watch(as_root: bool, bin: &Path, dir: &Path) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = if as_root {
        format!(
            "runuser -u postgres -- {} -D {}/data stop -m immediate",
            pg_ctl.display(),
            dir.display()
        )
    } else {
        format!(
            "{} -D {}/data stop -m immediate",
            pg_ctl.display(),
            dir.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    // Its own session: a Ctrl-C to the tests' process group leaves it to
    // clean up.
    let _ = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn as_postgres(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
