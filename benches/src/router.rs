//! The `router` headline group: requests per second through the default router's HTTP
//! proxy to 3 running instances of the demo app, and the same load through nginx when it
//! is installed.
//!
//! Everything runs on this machine: 3 instances of the demo app (the fixture app,
//! `diego-fixture-app` next to `headline`, one process each, as ProcessBackend runs
//! them), the proxy under test, and an in-process load generator holding 32 keep-alive
//! connections to each proxy (hyper clients, one runtime thread), opened once and kept
//! for the whole run.
//!
//! Both proxies get the same shape on the same number of cores: nginx runs two worker
//! processes (one event loop each, keep-alive upstream connections), ours runs two
//! single-threaded tokio runtimes, each serving one [`HttpProxy`] on its own listening
//! socket of the same port (`SO_REUSEPORT`: the kernel spreads the connections over the
//! two) and each keeping its own backend connections; both share one [`TableRouter`].
//! Both thus use both workers: nginx's workers, sharing one socket, take one connection
//! per wake-up and so share the 32; two tokio accept loops on one shared socket did not
//! (the first awake took every pending connection, all 32 in some runs, leaving the
//! other worker idle).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use diego_core::router::{HttpProxy, TableRouter};
use diego_core::routing::{Endpoint, RouteChange, RouteKey, Router};
use http_body_util::{BodyExt, Empty};
use hyper::header::HOST;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// Concurrent keep-alive connections of the load generator.
const CONNECTIONS: usize = 32;
/// How long each proxy is loaded before measuring.
const WARMUP: Duration = Duration::from_millis(500);
/// One measured turn of a proxy. Short turns, many of them: a burst of other work on
/// the machine (a compiler) then weighs on both proxies alike instead of on one turn.
const SLICE: Duration = Duration::from_millis(250);
/// Turns per proxy (5 s of load each in all).
const SLICES: u32 = 20;
/// Proxy workers: single-threaded runtimes of ours, worker processes of nginx.
const PROXY_THREADS: usize = 2;
/// The host name routed to the backends.
const HOST_NAME: &str = "bench.localhost";

/// Prints `router_rps` and, with nginx on PATH, `router_nginx_ratio`.
///
/// With nginx, the two proxies take turns (quarter-second slices, twenty each, after a
/// warm-up of each), so a change in the machine's load during the run weighs on both
/// alike; each rate is its requests over the time its slices took, and the ratio is of
/// the two rates.
pub fn run() -> anyhow::Result<()> {
    let Some(app) = crate::e2e::fixture_app() else {
        crate::print_skipped("router_rps", crate::e2e::NO_FIXTURE_APP);
        crate::print_skipped("router_nginx_ratio", crate::e2e::NO_FIXTURE_APP);
        return Ok(());
    };
    let load_rt = runtime("router-load", 1)?;
    let demo = DemoInstances::start(&app, 3)?;
    load_rt.block_on(demo.wait_ready())?;
    let backends = &demo.addrs;
    let cancel = CancellationToken::new();
    let (ours, workers) = start_proxy(backends, &cancel)?;

    let nginx = if on_path("nginx") {
        let nginx = Nginx::start(backends)?;
        if let Err(e) = load_rt.block_on(nginx.wait_ready()) {
            nginx.stop();
            return Err(e);
        }
        Some(nginx)
    } else {
        None
    };
    let measured = load_rt.block_on(async {
        let mut ours_clients = open(ours).await?;
        let mut nginx_clients = match &nginx {
            Some(n) => Some(open(n.addr).await?),
            None => None,
        };
        let mut ours_total = Turns::default();
        let mut nginx_total = Turns::default();
        load(&mut ours_clients, WARMUP).await?;
        if let Some(clients) = nginx_clients.as_mut() {
            load(clients, WARMUP).await?;
        }
        for _ in 0..SLICES {
            ours_total.add(load(&mut ours_clients, SLICE).await?);
            if let Some(clients) = nginx_clients.as_mut() {
                nginx_total.add(load(clients, SLICE).await?);
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
    let ours_rps = ours_total.rate();
    crate::print_figure("router_rps", ours_rps, "req/s");
    if nginx_total.requests == 0 {
        crate::print_skipped(
            "router_nginx_ratio",
            "nginx is not on PATH (apt-get install -y nginx-light)",
        );
        return Ok(());
    }
    let nginx_rps = nginx_total.rate();
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

/// Instances of the demo app, one process each, killed when dropped.
struct DemoInstances {
    children: Vec<Child>,
    addrs: Vec<SocketAddr>,
}

impl DemoInstances {
    /// Starts `n` instances of `app`, each on a free port of 127.0.0.1 (`$PORT`), with
    /// `$INSTANCE_INDEX` set as the rep sets it.
    fn start(app: &std::path::Path, n: usize) -> anyhow::Result<Self> {
        let mut demo = DemoInstances {
            children: Vec::with_capacity(n),
            addrs: Vec::with_capacity(n),
        };
        for i in 0..n {
            let port = free_port()?;
            let child = Command::new(app)
                .env("PORT", port.to_string())
                .env("INSTANCE_INDEX", i.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", app.display()))?;
            demo.children.push(child);
            demo.addrs.push(([127, 0, 0, 1], port).into());
        }
        Ok(demo)
    }

    /// Waits until every instance accepts connections.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        for &addr in &self.addrs {
            if !listening(addr).await {
                bail!("the demo app did not listen on {addr}");
            }
        }
        Ok(())
    }
}

impl Drop for DemoInstances {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Our proxy, routing `HOST_NAME` to the backends: `PROXY_THREADS` workers, each a
/// thread with a single-threaded runtime serving its own listening socket of one port.
/// Returns the address and the workers, which end once `cancel` is cancelled.
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
    // The first socket picks the port, the others join it.
    let mut addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut workers = Vec::with_capacity(PROXY_THREADS);
    for i in 0..PROXY_THREADS {
        let table = table.clone();
        let cancel = cancel.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _in_runtime = rt.enter();
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseport(true)?;
            socket.bind(addr)?;
            let listener = socket.listen(1024)?;
            addr = listener.local_addr()?;
            listener
        };
        let worker = std::thread::Builder::new()
            .name(format!("router-proxy-{i}"))
            .spawn(move || {
                rt.block_on(async move {
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

/// Requests answered by one proxy over its turns, and the time the turns took.
#[derive(Default)]
struct Turns {
    requests: u64,
    time: Duration,
}

impl Turns {
    fn add(&mut self, (requests, time): (u64, Duration)) {
        self.requests += requests;
        self.time += time;
    }

    fn rate(&self) -> f64 {
        self.requests as f64 / self.time.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// A keep-alive connection of the load generator.
type Client = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// Opens `CONNECTIONS` keep-alive connections to `addr`.
async fn open(addr: SocketAddr) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        clients.push(sender);
    }
    Ok(clients)
}

/// Sends requests on every connection of `clients` for `duration`; returns the
/// successful requests and how long the turn took (until the last answer).
async fn load(clients: &mut Vec<Client>, duration: Duration) -> anyhow::Result<(u64, Duration)> {
    let start = Instant::now();
    let end = start + duration;
    let workers: Vec<_> = clients
        .drain(..)
        .map(|sender| tokio::spawn(connection(sender, end)))
        .collect();
    let mut total = 0u64;
    for w in workers {
        let (sender, counted) = w.await??;
        clients.push(sender);
        total += counted;
    }
    Ok((total, start.elapsed()))
}

/// Sends requests on one keep-alive connection, one after another, until `end`;
/// counts the answers and gives the connection back.
async fn connection(mut sender: Client, end: Instant) -> anyhow::Result<(Client, u64)> {
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
    Ok((sender, counted))
}

/// A port of 127.0.0.1 nothing listens on now (bound, then released).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Whether `addr` accepts connections within 10 s.
async fn listening(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
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
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
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

    /// Waits until nginx accepts connections.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        if !listening(self.addr).await {
            bail!(
                "nginx did not listen on {} (see {})",
                self.addr,
                self.log().display()
            );
        }
        Ok(())
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
