//! The fixture app: a small HTTP server that tests, benchmarks and the demo run as an
//! LRP instance, and that users can point their own backends' tests at.
//!
//! It listens on `$PORT` and answers:
//! `GET /` (a greeting naming its index), `GET /env` (its environment as JSON),
//! `GET /index` (`$INSTANCE_INDEX`), `POST /exit/<code>` (exits with that code),
//! `GET`/`POST /counter` (read / increment an in-memory counter), `GET /started-at`
//! (Unix ms when it started), `GET /ping`, `GET /sleep/<ms>` (answers after that long).
//! With `$SIDE_PORT` it also answers a fixed body there.
//!
//! Flags: `--ignore-sigterm`, `--exit-after-ms N` with `--exit-code C`, and
//! `--touch-when-up PATH` (creates the file once it listens).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;

/// The fixture app's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "diego-fixture-app",
    about = "A small HTTP app for diego-rs tests and demos"
)]
pub struct Args {
    /// Keep running on SIGTERM (only SIGKILL stops it).
    #[arg(long)]
    pub ignore_sigterm: bool,
    /// Exit on its own after this many milliseconds.
    #[arg(long)]
    pub exit_after_ms: Option<u64>,
    /// The exit code used with `--exit-after-ms`.
    #[arg(long, default_value_t = 0)]
    pub exit_code: i32,
    /// Create this file once listening.
    #[arg(long)]
    pub touch_when_up: Option<std::path::PathBuf>,
}

#[derive(Debug)]
struct App {
    counter: AtomicU64,
    started_at_ms: u64,
}

/// Errors of the fixture app (it is a program: errors end it with a message).
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// `$PORT` is missing or not a port number.
    #[error("PORT must be set to a port number, got {0:?}")]
    BadPort(String),
    /// Listening or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn port_var(var: &str) -> Result<Option<u16>, FixtureError> {
    match std::env::var(var) {
        Err(_) => Ok(None),
        Ok(v) => v.parse().map(Some).map_err(|_| FixtureError::BadPort(v)),
    }
}

/// Runs the fixture app until it is told to exit. Needs a tokio runtime.
pub async fn run(args: Args) -> Result<(), FixtureError> {
    let port = port_var("PORT")?.ok_or_else(|| FixtureError::BadPort(String::new()))?;
    let started_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let app = Arc::new(App {
        counter: AtomicU64::new(0),
        started_at_ms,
    });
    let router = Router::new()
        .route("/", get(root))
        .route("/ping", get(|| async { "pong" }))
        .route("/env", get(env))
        .route("/index", get(index))
        .route("/exit/{code}", post(exit))
        .route("/counter", get(counter).post(increment))
        .route("/started-at", get(started_at))
        .route("/sleep/{ms}", get(sleep))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    if let Some(side) = port_var("SIDE_PORT")? {
        let side_listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], side))).await?;
        let side_app = Router::new().route("/", get(|| async { "side port" }));
        tokio::spawn(async move { axum::serve(side_listener, side_app).await });
    }
    if let Some(path) = &args.touch_when_up {
        std::fs::write(path, b"up")?;
    }
    if args.ignore_sigterm {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::spawn(async move {
                while term.recv().await.is_some() {
                    eprintln!("fixture app: ignoring SIGTERM");
                }
            });
        }
    }
    if let Some(ms) = args.exit_after_ms {
        let code = args.exit_code;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            println!("fixture app: exiting with {code} after {ms}ms");
            std::process::exit(code);
        });
    }
    println!("fixture app listening on port {port}");
    axum::serve(listener, router).await?;
    Ok(())
}

fn instance_index() -> String {
    std::env::var("INSTANCE_INDEX").unwrap_or_default()
}

async fn root() -> String {
    format!("hello from instance {}\n", instance_index())
}

async fn env() -> Json<BTreeMap<String, String>> {
    Json(std::env::vars().collect())
}

async fn index() -> String {
    instance_index()
}

async fn exit(Path(code): Path<i32>) -> &'static str {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        println!("fixture app: exiting with {code} on request");
        std::process::exit(code);
    });
    "exiting"
}

async fn counter(State(app): State<Arc<App>>) -> String {
    app.counter.load(Ordering::SeqCst).to_string()
}

async fn increment(State(app): State<Arc<App>>) -> String {
    (app.counter.fetch_add(1, Ordering::SeqCst) + 1).to_string()
}

async fn started_at(State(app): State<Arc<App>>) -> String {
    app.started_at_ms.to_string()
}

async fn sleep(Path(ms): Path<u64>) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}ms")
}
