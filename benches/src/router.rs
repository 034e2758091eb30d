//! The `router` headline group: requests per second through the default router's HTTP
//! proxy to 3 local backends, and the same load through nginx when it is installed.
//!
//! Everything runs on this machine: 3 small hyper backends answering a 13-byte body
//! (one runtime thread), the proxy under test, and an in-process load generator holding
//! 32 keep-alive connections (hyper clients, one runtime thread).
//!
//! Both proxies get the same shape on the same number of cores: nginx runs two worker
//! processes (one event loop each, keep-alive upstream connections), ours runs two
//! single-threaded tokio runtimes, each serving one [`HttpProxy`] on a clone of the same
//! listening socket (like nginx's workers sharing theirs) and each keeping its own
//! backend connections; both share one [`TableRouter`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use diego_core::router::{Endpoint, HttpProxy, RouteChange, RouteKey, Router, TableRouter};
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::HOST;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// Concurrent keep-alive connections of the load generator.
const CONNECTIONS: usize = 32;
/// How long each proxy is loaded before measuring.
const WARMUP: Duration = Duration::from_millis(500);
/// One measured turn of a proxy.
const SLICE: Duration = Duration::from_secs(1);
/// Turns per proxy (5 s of load each in all).
const SLICES: u32 = 5;
/// Proxy workers: single-threaded runtimes of ours, worker processes of nginx.
const PROXY_THREADS: usize = 2;
/// The host name routed to the backends.
const HOST_NAME: &str = "bench.localhost";

/// Prints `router_rps` and, with nginx on PATH, `router_nginx_ratio`.
///
/// With nginx, the two proxies take turns (one-second slices, five each, after a
/// warm-up of each), so a change in the machine's load during the run weighs on both
/// alike; the ratio is of their totals.
pub fn run() -> anyhow::Result<()> {
    let backends_rt = runtime("router-backend", 1)?;
    let load_rt = runtime("router-load", 1)?;

    let backends: Vec<SocketAddr> = (0..3)
        .map(|_| backends_rt.block_on(start_backend()))
        .collect::<anyhow::Result<_>>()?;
    let cancel = CancellationToken::new();
    let (ours, workers) = start_proxy(&backends, &cancel)?;

    let nginx = if on_path("nginx") {
        let nginx = Nginx::start(&backends)?;
        if let Err(e) = load_rt.block_on(nginx.wait_ready()) {
            nginx.stop();
            return Err(e);
        }
        Some(nginx)
    } else {
        None
    };
    let measured = load_rt.block_on(async {
        let mut ours_total = 0u64;
        let mut nginx_total = 0u64;
        load(ours, WARMUP).await?;
        if let Some(n) = &nginx {
            load(n.addr, WARMUP).await?;
        }
        for _ in 0..SLICES {
            ours_total += load(ours, SLICE).await?;
            if let Some(n) = &nginx {
                nginx_total += load(n.addr, SLICE).await?;
            }
        }
        Ok::<_, anyhow::Error>((ours_total, nginx_total))
    });
    cancel.cancel();
    for w in workers {
        match w.join() {
            Ok(result) => result?,
            Err(_) => bail!("a proxy worker panicked"),
        }
    }
    if let Some(n) = nginx {
        n.stop();
    }
    let (ours_total, nginx_total) = measured?;
    let seconds = SLICE.as_secs_f64() * f64::from(SLICES);
    let ours_rps = ours_total as f64 / seconds;
    crate::print_figure("router_rps", ours_rps, "req/s");
    if nginx_total == 0 {
        crate::print_skipped(
            "router_nginx_ratio",
            "nginx is not on PATH (apt-get install -y nginx-light)",
        );
        return Ok(());
    }
    let nginx_rps = nginx_total as f64 / seconds;
    crate::print_figure("router_nginx_rps", nginx_rps, "req/s");
    crate::print_figure("router_nginx_ratio", ours_rps / nginx_rps, "x");
    Ok(())
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()?)
}

/// A backend answering every request with a small body, keep-alive.
async fn start_backend() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"Hello, world!",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Our proxy, routing `HOST_NAME` to the backends: `PROXY_THREADS` workers, each a
/// thread with a single-threaded runtime serving the same listening socket. Returns the
/// address and the workers, which end once `cancel` is cancelled.
fn start_proxy(
    backends: &[SocketAddr],
    cancel: &CancellationToken,
) -> anyhow::Result<(SocketAddr, Vec<JoinHandle<anyhow::Result<()>>>)> {
    let table = TableRouter::new();
    let endpoints = backends
        .iter()
        .enumerate()
        .map(|(i, a)| {
            Endpoint::new(
                a.ip().to_string(),
                a.port(),
                "bench",
                format!("bench-{i}"),
                i32::try_from(i).unwrap_or(0),
            )
        })
        .collect();
    let changes = [RouteChange::Set {
        route: RouteKey::http(HOST_NAME),
        endpoints,
    }];
    tokio::runtime::Builder::new_current_thread()
        .build()?
        .block_on(table.apply(&changes))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let mut workers = Vec::with_capacity(PROXY_THREADS);
    for i in 0..PROXY_THREADS {
        let listener = listener.try_clone()?;
        let table = table.clone();
        let cancel = cancel.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let worker = std::thread::Builder::new()
            .name(format!("router-proxy-{i}"))
            .spawn(move || {
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    HttpProxy::builder(table)
                        .listener(listener)?
                        .run(cancel)
                        .await?;
                    Ok(())
                })
            })?;
        workers.push(worker);
    }
    Ok((addr, workers))
}

/// Runs `CONNECTIONS` keep-alive connections against `addr` for `duration`; returns
/// the successful requests.
async fn load(addr: SocketAddr, duration: Duration) -> anyhow::Result<u64> {
    let end = Instant::now() + duration;
    let mut workers = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        workers.push(tokio::spawn(connection(addr, end)));
    }
    let mut total = 0u64;
    for w in workers {
        total += w.await??;
    }
    Ok(total)
}

/// One keep-alive connection sending requests one after another until `end`; counts
/// the answers.
async fn connection(addr: SocketAddr, end: Instant) -> anyhow::Result<u64> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut counted = 0u64;
    while Instant::now() < end {
        sender.ready().await?;
        let req = Request::get("/")
            .header(HOST, HOST_NAME)
            .body(Empty::<Bytes>::new())?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        if !status.is_success() {
            bail!("the proxy answered {status}");
        }
        counted += 1;
    }
    Ok(counted)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// nginx as a reverse proxy to the same backends, in a private prefix directory.
struct Nginx {
    child: Child,
    prefix: PathBuf,
    conf: PathBuf,
    addr: SocketAddr,
}

impl Nginx {
    fn start(backends: &[SocketAddr]) -> anyhow::Result<Self> {
        let prefix = std::env::temp_dir().join(format!("diego-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(prefix.join("logs"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let upstreams: String = backends
            .iter()
            .map(|a| format!("        server {a};\n"))
            .collect();
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "worker_processes {workers};\n\
                 daemon off;\n\
                 pid {pid};\n\
                 error_log {err} warn;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n\
                 \x20   access_log off;\n\
                 \x20   keepalive_requests 10000000;\n\
                 \x20   client_body_temp_path {tmp}/body;\n\
                 \x20   proxy_temp_path {tmp}/proxy;\n\
                 \x20   upstream backends {{\n{upstreams}        keepalive 64;\n        keepalive_requests 10000000;\n    }}\n\
                 \x20   server {{\n\
                 \x20       listen {addr};\n\
                 \x20       location / {{\n\
                 \x20           proxy_pass http://backends;\n\
                 \x20           proxy_http_version 1.1;\n\
                 \x20           proxy_set_header Connection \"\";\n\
                 \x20           proxy_set_header Host $host;\n\
                 \x20           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 \x20           proxy_set_header X-Forwarded-Proto $scheme;\n\
                 \x20       }}\n\
                 \x20   }}\n\
                 }}\n",
                pid = prefix.join("nginx.pid").display(),
                err = prefix.join("logs/error.log").display(),
                tmp = prefix.display(),
                workers = PROXY_THREADS,
            ),
        )?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        Ok(Nginx {
            child,
            prefix,
            conf,
            addr,
        })
    }

    /// Waits until nginx accepts connections (10 s at most).
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "nginx did not listen on {} (see {})",
                    self.addr,
                    self.log().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> PathBuf {
        self.prefix.join("logs/error.log")
    }

    /// Stops nginx (master and workers) and removes its directory.
    fn stop(mut self) {
        let _ = Command::new("nginx")
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&self.conf)
            .arg("-s")
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        wait_or_kill(&mut self.child, Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

fn wait_or_kill(child: &mut Child, patience: Duration) {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
