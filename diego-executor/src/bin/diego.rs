//! `diego`: a command line for a diego-rs BBS (like Diego's cfdot), and `diego local`
//! to run the local cluster.
//!
//! The BBS is found at `--bbs-url`, else `$DIEGO_BBS_URL`, else `http://127.0.0.1:8889`
//! (several URLs separated by commas: the client fails over to the active one).
//! With feature `daemon`, `diego bbs` and `diego cell` run the daemons of a
//! multi-machine deployment, configured by `--config FILE` (TOML) and `DIEGO_BBS_*` /
//! `DIEGO_CELL_*` environment variables, and `diego rotate-keys` re-encrypts a SQL
//! store's rows under its active key.
//! Tables by default, `--json` for scripts. Bad input exits 2; a refused or failed call
//! exits 1 with the BBS's message.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use diego_core::http::BbsClient;
use diego_core::log_sink::format_line;
use diego_core::prelude::*;
use diego_core::store::{ActualLrpFilter, DesiredLrpFilter, TaskFilter};
use diego_core::{
    CellId, DesireTaskRequest, DesiredLrp, DesiredLrpUpdate, EventItem, ProcessGuid, Routes,
    TaskGuid,
};
use futures::StreamExt;

#[derive(Debug, Parser)]
#[command(
    name = "diego",
    version,
    about = "Talk to a diego-rs BBS, or run a local cluster"
)]
struct Cli {
    /// The BBS's URL.
    #[arg(
        long,
        env = "DIEGO_BBS_URL",
        default_value = "http://127.0.0.1:8889",
        global = true
    )]
    bbs_url: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List DesiredLRPs.
    DesiredLrps {
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show one DesiredLRP.
    DesiredLrp {
        /// Its process guid.
        process_guid: String,
    },
    /// List ActualLRPs.
    ActualLrps {
        /// Only those on this cell.
        #[arg(long)]
        cell: Option<String>,
        /// Only this process.
        #[arg(long)]
        process_guid: Option<String>,
    },
    /// List Tasks.
    Tasks {
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show one Task.
    Task {
        /// Its guid.
        task_guid: String,
    },
    /// List live cells.
    Cells,
    /// Desire an LRP from a JSON file (`-` for stdin).
    DesireLrp {
        /// The file.
        file: String,
    },
    /// Desire a Task from a JSON file (`-` for stdin).
    DesireTask {
        /// The file.
        file: String,
    },
    /// Change an LRP's number of instances.
    Scale {
        /// Its process guid.
        process_guid: String,
        /// The new count.
        instances: i32,
    },
    /// Replace an LRP's routes with a JSON object (`-` for stdin, or inline JSON).
    UpdateRoutes {
        /// Its process guid.
        process_guid: String,
        /// The routes: inline JSON, a file, or `-`.
        routes: String,
    },
    /// Delete an LRP (its instances are stopped).
    DeleteLrp {
        /// Its process guid.
        process_guid: String,
    },
    /// Cancel a Task.
    CancelTask {
        /// Its guid.
        task_guid: String,
    },
    /// Follow the event streams (LRP and task) until interrupted.
    Events {
        /// Only actual-LRP events of this cell.
        #[arg(long)]
        cell: Option<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Show the recent log lines of a log guid (an app's or a task's), or follow them.
    Logs {
        /// The log guid.
        log_guid: String,
        /// Keep printing new lines as they come (until interrupted).
        #[arg(long)]
        follow: bool,
        /// With --follow: stop after this many lines.
        #[arg(long, requires = "follow")]
        count: Option<usize>,
    },
    /// List fresh domains.
    Domains,
    /// Run a BBS (with auctioneer and converger, active while it holds the lock).
    #[cfg(feature = "daemon")]
    Bbs {
        /// The TOML configuration file (else defaults and `DIEGO_BBS_*` variables).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Run a cell (rep + executor) that registers with the BBS.
    #[cfg(feature = "daemon")]
    Cell {
        /// The TOML configuration file (else defaults and `DIEGO_CELL_*` variables).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Re-encrypt every row of the BBS's SQL store under its active key (online).
    #[cfg(feature = "daemon")]
    RotateKeys {
        /// The BBS's TOML configuration file.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Mark a domain fresh.
    SetDomain {
        /// The domain.
        domain: String,
        /// Freshness in seconds (0: forever).
        #[arg(long, default_value_t = 0)]
        ttl: u64,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Bbs(#[from] diego_core::Error),
}

fn read_input(arg: &str) -> Result<String, CliError> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Input(format!("reading stdin: {e}")))?;
        return Ok(s);
    }
    if arg.trim_start().starts_with('{') {
        return Ok(arg.to_owned());
    }
    std::fs::read_to_string(arg).map_err(|e| CliError::Input(format!("reading {arg}: {e}")))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, CliError> {
    serde_json::from_str(text).map_err(|e| CliError::Input(format!("invalid {what}: {e}")))
}

fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("cannot print JSON: {e}"),
    }
}

/// Prints rows as aligned columns under `header`.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let bbs = BbsClient::with_urls(cli.bbs_url.split(',').map(str::trim))?;
    match cli.command {
        #[cfg(feature = "daemon")]
        Command::Bbs { .. } | Command::Cell { .. } | Command::RotateKeys { .. } => {
            return Err(CliError::Input("daemons run on their own runtime".into()));
        }
        Command::DesiredLrps { domain } => {
            let lrps = bbs
                .desired_lrps(&DesiredLrpFilter {
                    domain,
                    ..Default::default()
                })
                .await?;
            if cli.json {
                print_json(&lrps);
            } else {
                table(
                    &["PROCESS GUID", "DOMAIN", "INSTANCES", "MEMORY MB", "ROUTES"],
                    lrps.iter()
                        .map(|d| {
                            let s = &d.scheduling_info;
                            let hosts: Vec<String> = s
                                .routes
                                .http_routes()
                                .unwrap_or_default()
                                .into_iter()
                                .flat_map(|r| r.hostnames)
                                .collect();
                            vec![
                                s.process_guid.to_string(),
                                s.domain.clone(),
                                s.instances.to_string(),
                                s.memory_mb.to_string(),
                                hosts.join(","),
                            ]
                        })
                        .collect(),
                );
            }
        }
        Command::DesiredLrp { process_guid } => {
            print_json(
                &bbs.desired_lrp_by_process_guid(&ProcessGuid::new(process_guid))
                    .await?,
            );
        }
        Command::ActualLrps { cell, process_guid } => {
            let filter = ActualLrpFilter {
                cell_id: cell.map(CellId::from),
                process_guid: process_guid.map(ProcessGuid::from),
                ..Default::default()
            };
            let rows = bbs.actual_lrps(&filter).await?;
            if cli.json {
                print_json(&rows);
            } else {
                table(
                    &[
                        "PROCESS GUID",
                        "INDEX",
                        "STATE",
                        "PRESENCE",
                        "CELL",
                        "ADDRESS",
                        "CRASHES",
                        "REASON",
                    ],
                    rows.iter()
                        .map(|r| {
                            let addr = r
                                .net_info
                                .as_ref()
                                .and_then(|n| {
                                    n.ports
                                        .first()
                                        .map(|p| format!("{}:{}", n.address, p.host_port))
                                })
                                .unwrap_or_default();
                            let reason = if r.placement_error.is_empty() {
                                r.crash_reason.clone()
                            } else {
                                r.placement_error.clone()
                            };
                            vec![
                                r.key.process_guid.to_string(),
                                r.key.index.to_string(),
                                r.state.to_string(),
                                r.presence.to_string(),
                                r.cell_id().map(|c| c.to_string()).unwrap_or_default(),
                                addr,
                                r.crash_count.to_string(),
                                reason,
                            ]
                        })
                        .collect(),
                );
            }
        }
        Command::Tasks { domain } => {
            let tasks = bbs
                .tasks(&TaskFilter {
                    domain,
                    ..Default::default()
                })
                .await?;
            if cli.json {
                print_json(&tasks);
            } else {
                table(
                    &["TASK GUID", "DOMAIN", "STATE", "CELL", "FAILED", "REASON"],
                    tasks
                        .iter()
                        .map(|t| {
                            vec![
                                t.task_guid.to_string(),
                                t.domain.clone(),
                                t.state.to_string(),
                                t.cell_id
                                    .as_ref()
                                    .map(|c| c.to_string())
                                    .unwrap_or_default(),
                                t.failed.to_string(),
                                t.failure_reason.clone(),
                            ]
                        })
                        .collect(),
                );
            }
        }
        Command::Task { task_guid } => {
            print_json(&bbs.task_by_guid(&TaskGuid::new(task_guid)).await?)
        }
        Command::Cells => {
            let cells = bbs.cells().await?;
            if cli.json {
                print_json(&cells);
            } else {
                table(
                    &[
                        "CELL",
                        "ZONE",
                        "MEMORY MB",
                        "DISK MB",
                        "CONTAINERS",
                        "ADDRESS",
                    ],
                    cells
                        .iter()
                        .map(|c| {
                            vec![
                                c.cell_id.to_string(),
                                c.zone.clone(),
                                c.capacity.memory_mb.to_string(),
                                c.capacity.disk_mb.to_string(),
                                c.capacity.containers.to_string(),
                                c.rep_address.clone(),
                            ]
                        })
                        .collect(),
                );
            }
        }
        Command::DesireLrp { file } => {
            let lrp: DesiredLrp = parse("DesiredLRP", &read_input(&file)?)?;
            let guid = lrp.process_guid().clone();
            bbs.desire_lrp(lrp).await?;
            println!("desired LRP {guid}");
        }
        Command::DesireTask { file } => {
            let req: DesireTaskRequest = parse("task request", &read_input(&file)?)?;
            let guid = req.task_guid.clone();
            bbs.desire_task(req).await?;
            println!("desired task {guid}");
        }
        Command::Scale {
            process_guid,
            instances,
        } => {
            let update = DesiredLrpUpdate {
                instances: Some(instances),
                ..Default::default()
            };
            bbs.update_desired_lrp(&ProcessGuid::new(&process_guid), update)
                .await?;
            println!("scaled {process_guid} to {instances}");
        }
        Command::UpdateRoutes {
            process_guid,
            routes,
        } => {
            let routes: Routes = parse("routes", &read_input(&routes)?)?;
            let update = DesiredLrpUpdate {
                routes: Some(routes),
                ..Default::default()
            };
            bbs.update_desired_lrp(&ProcessGuid::new(&process_guid), update)
                .await?;
            println!("updated the routes of {process_guid}");
        }
        Command::DeleteLrp { process_guid } => {
            bbs.remove_desired_lrp(&ProcessGuid::new(&process_guid))
                .await?;
            println!("deleted {process_guid}");
        }
        Command::CancelTask { task_guid } => {
            bbs.cancel_task(&TaskGuid::new(&task_guid)).await?;
            println!("cancelled {task_guid}");
        }
        Command::Events { cell, count } => {
            let lrp = bbs.subscribe_lrp_events(cell.map(CellId::from)).await?;
            let tasks = bbs.subscribe_task_events().await?;
            let lrp = lrp.map(|i| match i {
                EventItem::Event(e) => (
                    e.event.name().to_owned(),
                    serde_json::to_value(&e.event).ok(),
                ),
                EventItem::Lagged { missed } => (
                    "lagged".to_owned(),
                    Some(serde_json::json!({ "missed": missed })),
                ),
            });
            let tasks = tasks.map(|i| match i {
                EventItem::Event(e) => (
                    e.event.name().to_owned(),
                    serde_json::to_value(&e.event).ok(),
                ),
                EventItem::Lagged { missed } => (
                    "lagged".to_owned(),
                    Some(serde_json::json!({ "missed": missed })),
                ),
            });
            let mut all = futures::stream::select(lrp, tasks);
            let mut seen = 0;
            while let Some((name, value)) = all.next().await {
                if cli.json {
                    println!("{}", value.map(|v| v.to_string()).unwrap_or_default());
                } else {
                    println!("{name}");
                }
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    break;
                }
            }
        }
        Command::Logs {
            log_guid,
            follow,
            count,
        } => {
            if log_guid.trim().is_empty() {
                return Err(CliError::Input("the log guid must not be empty".into()));
            }
            if !follow {
                let lines = bbs.recent_logs(&log_guid).await?;
                if cli.json {
                    print_json(&lines);
                } else {
                    for line in lines {
                        println!("{}", format_line(&line.into()));
                    }
                }
                return Ok(());
            }
            let mut lines = bbs.follow_logs(&log_guid).await?;
            let mut seen = 0;
            while let Some(line) = lines.next().await {
                let line = line?;
                if cli.json {
                    match serde_json::to_string(&line) {
                        Ok(s) => println!("{s}"),
                        Err(e) => eprintln!("cannot print JSON: {e}"),
                    }
                } else {
                    println!("{}", format_line(&line.into()));
                }
                seen += 1;
                if count.is_some_and(|c| seen >= c) {
                    break;
                }
            }
        }
        Command::Domains => {
            let domains = bbs.domains().await?;
            if cli.json {
                print_json(&domains);
            } else {
                for d in domains {
                    println!("{d}");
                }
            }
        }
        Command::SetDomain { domain, ttl } => {
            bbs.upsert_domain(&domain, Duration::from_secs(ttl)).await?;
            println!(
                "domain {domain} is fresh{}",
                if ttl == 0 {
                    " forever".to_owned()
                } else {
                    format!(" for {ttl}s")
                }
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "daemon")]
    if let Some(code) = daemon::main(&cli.command) {
        return code;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("diego: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Input(m)) => {
            eprintln!("diego: {m}");
            ExitCode::from(2)
        }
        Err(CliError::Bbs(e)) if e.kind() == "InvalidRequest" => {
            eprintln!("diego: {e}");
            ExitCode::from(2)
        }
        Err(CliError::Bbs(e)) => {
            eprintln!("diego: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "daemon")]
mod daemon {
    //! `diego bbs`, `diego cell` and `diego rotate-keys`: multi-threaded, logging to
    //! stderr (`RUST_LOG`, default `info`), stopping cleanly on SIGINT/SIGTERM.

    use std::path::PathBuf;
    use std::process::ExitCode;

    use diego_executor::daemon::{config, BbsServerConfig, CellServerConfig};
    use tokio_util::sync::CancellationToken;

    use super::Command;

    /// Runs a daemon command; `None` for the other commands.
    pub fn main(command: &Command) -> Option<ExitCode> {
        let (kind, file) = match command {
            Command::Bbs { config } => ("bbs", config.clone()),
            Command::Cell { config } => ("cell", config.clone()),
            Command::RotateKeys { config } => ("rotate-keys", config.clone()),
            _ => return None,
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("diego {kind}: no runtime: {e}");
                return Some(ExitCode::FAILURE);
            }
        };
        let result = rt.block_on(run(kind, file));
        Some(match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e @ diego_executor::Error::Config(_)) => {
                eprintln!("diego {kind}: {e}");
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("diego {kind}: {e}");
                ExitCode::FAILURE
            }
        })
    }

    async fn run(kind: &str, file: Option<PathBuf>) -> diego_executor::Result<()> {
        let cancel = CancellationToken::new();
        tokio::spawn(stop_on_signal(cancel.clone()));
        match kind {
            "bbs" => {
                let c: BbsServerConfig = config::load(file.as_deref(), "DIEGO_BBS_")?;
                diego_executor::daemon::run_bbs(c, cancel).await
            }
            "cell" => {
                let c: CellServerConfig = config::load(file.as_deref(), "DIEGO_CELL_")?;
                diego_executor::daemon::run_cell(c, cancel).await
            }
            _ => {
                let c: BbsServerConfig = config::load(file.as_deref(), "DIEGO_BBS_")?;
                let rewritten = diego_executor::daemon::rotate_keys(&c.store).await?;
                println!("re-encrypted {rewritten} rows");
                Ok(())
            }
        }
    }

    async fn stop_on_signal(cancel: CancellationToken) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                cancel.cancel();
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        cancel.cancel();
    }
}
