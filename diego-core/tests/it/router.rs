//! The default router against real sockets (HTTP and TCP proxies with small local
//! backends), and the route emitter against a real in-process BBS.
#![cfg(all(feature = "router", feature = "http"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use diego_core::models::routes::TcpRoute;
use diego_core::router::{HttpProxy, HttpProxyBuilder, TableRouter, TcpProxy};
use diego_core::routing::{Endpoint, RouteChange, RouteEmitter, RouteKey, Router, RoutingTable};
use diego_core::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// Generous bound for anything that should take milliseconds (a loaded 2-core machine).
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- backends

#[derive(Clone)]
struct BackendState {
    name: String,
    slow_started: mpsc::UnboundedSender<()>,
    slow_release: Arc<Notify>,
}

struct Backend {
    addr: SocketAddr,
    slow_started: mpsc::UnboundedReceiver<()>,
    slow_release: Arc<Notify>,
}

/// A small HTTP app: `/` answers its name, `/headers` the forwarding headers it got,
/// `/echo` its name and the request body, `/slow` its name once released.
async fn backend(name: &str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let state = BackendState {
        name: name.to_owned(),
        slow_started: tx,
        slow_release: release.clone(),
    };
    let app = axum::Router::new()
        .route(
            "/",
            get(|State(s): State<BackendState>| async move { s.name }),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let mut out = String::new();
                for name in [
                    "x-forwarded-for",
                    "x-forwarded-proto",
                    "x-forwarded-host",
                    "x-cf-app-instance",
                    "host",
                ] {
                    let v = headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    out.push_str(&format!("{name}={v}\n"));
                }
                out
            }),
        )
        .route(
            "/echo",
            post(|State(s): State<BackendState>, body: String| async move {
                format!("{}:{body}", s.name)
            }),
        )
        .route(
            "/slow",
            get(|State(s): State<BackendState>| async move {
                let released = s.slow_release.notified();
                let _ = s.slow_started.send(());
                released.await;
                s.name
            }),
        )
        .with_state(state);
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Backend {
        addr,
        slow_started: rx,
        slow_release: release,
    }
}

/// A port nothing listens on (bound, then released): connecting is refused.
async fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

fn endpoint(port: u16, index: i32) -> Endpoint {
    Endpoint::new("127.0.0.1", port, "web", format!("instance-{index}"), index)
}

fn set_http(host: &str, endpoints: Vec<Endpoint>) -> RouteChange {
    RouteChange::Set {
        route: RouteKey::http(host),
        endpoints,
    }
}

struct Proxy {
    table: TableRouter,
    addr: SocketAddr,
    cancel: CancellationToken,
    client: reqwest::Client,
}

async fn proxy() -> Proxy {
    proxy_with(|b| b).await
}

/// A running proxy, built with `configure`'s settings.
async fn proxy_with(configure: impl FnOnce(HttpProxyBuilder) -> HttpProxyBuilder) -> Proxy {
    let table = TableRouter::new();
    let proxy = configure(HttpProxy::builder(table.clone()))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = proxy.local_addr();
    let cancel = CancellationToken::new();
    tokio::spawn(proxy.run(cancel.clone()));
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    Proxy {
        table,
        addr,
        cancel,
        client,
    }
}

/// A running proxy routing `host` to the one endpoint at `addr`.
async fn proxy_to(host: &str, addr: SocketAddr) -> Proxy {
    let p = proxy().await;
    p.table
        .apply(&[set_http(host, vec![endpoint(addr.port(), 0)])])
        .await
        .unwrap();
    p
}

impl Proxy {
    fn get(&self, host: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("http://{}{path}", self.addr))
            .header("host", host)
    }

    async fn text(&self, host: &str, path: &str) -> (u16, String) {
        let resp = self.get(host, path).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

// ---------------------------------------------------------------- HTTP proxy

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_across_three_backends() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let p = proxy().await;
    p.table
        .apply(&[set_http(
            "rr.example",
            vec![
                endpoint(a.addr.port(), 0),
                endpoint(b.addr.port(), 1),
                endpoint(c.addr.port(), 2),
            ],
        )])
        .await
        .unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..30 {
        // Host matching ignores case and port.
        let host = if i % 2 == 0 {
            "RR.Example:8080"
        } else {
            "rr.example"
        };
        let (status, body) = p.text(host, "/").await;
        assert_eq!(status, 200);
        *seen.entry(body).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> =
        [("a".into(), 10), ("b".into(), 10), ("c".into(), 10)].into();
    assert_eq!(seen, expected);
}

/// A backend counting the connections it accepted (hyper, keep-alive).
async fn counting_backend() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"pooled")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connections_are_kept_alive_and_reused() {
    let (addr, accepted) = counting_backend().await;
    let p = proxy_to("pool.example", addr).await;
    for _ in 0..20 {
        assert_eq!(
            p.text("pool.example", "/").await,
            (200, "pooled".to_owned())
        );
    }
    // One request at a time: one connection, reused for every request.
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_reach_the_backend() {
    let a = backend("a").await;
    let p = proxy().await;
    p.table
        .apply(&[set_http("hdr.example", vec![endpoint(a.addr.port(), 4)])])
        .await
        .unwrap();
    let (status, body) = p.text("Hdr.Example:9999", "/headers").await;
    assert_eq!(status, 200);
    assert!(body.contains("x-forwarded-for=127.0.0.1\n"), "{body}");
    assert!(body.contains("x-forwarded-proto=http\n"), "{body}");
    assert!(
        body.contains("x-forwarded-host=Hdr.Example:9999\n"),
        "{body}"
    );
    assert!(body.contains("x-cf-app-instance=web:4\n"), "{body}");
    assert!(body.contains("host=Hdr.Example:9999\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_over_to_another_endpoint() {
    let (a, b) = (backend("a").await, backend("b").await);
    let dead = dead_port().await;
    let p = proxy().await;
    p.table
        .apply(&[set_http(
            "fo.example",
            vec![
                endpoint(dead, 0),
                endpoint(a.addr.port(), 1),
                endpoint(b.addr.port(), 2),
            ],
        )])
        .await
        .unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..12 {
        // Bodies too: a request whose connection was refused is sent again whole.
        let resp = p
            .client
            .post(format!("http://{}/echo", p.addr))
            .header("host", "fo.example")
            .body(format!("payload-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.text().await.unwrap();
        let (name, echoed) = body.split_once(':').unwrap();
        assert_eq!(echoed, format!("payload-{i}"));
        *seen.entry(name.to_owned()).or_default() += 1;
    }
    // Every request succeeded, and both live backends took a share.
    assert_eq!(seen.values().sum::<usize>(), 12);
    assert!(seen["a"] >= 4 && seen["b"] >= 4, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_is_404_and_unhealthy_routes_are_502_or_503() {
    let dead = dead_port().await;
    let p = proxy().await;
    p.table
        .apply(&[
            set_http("empty.example", vec![]),
            set_http("dead.example", vec![endpoint(dead, 0)]),
        ])
        .await
        .unwrap();
    let (status, body) = p.text("nowhere.example", "/").await;
    assert_eq!(status, 404);
    assert!(body.contains("nowhere.example"), "{body}");
    assert_eq!(p.text("empty.example", "/").await.0, 503);
    assert_eq!(p.text("dead.example", "/").await.0, 502);
    // No Host header at all (HTTP/1.0 allows it): a clear 400.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(PATIENCE, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("HTTP/1.") && out.contains(" 400 "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_survives_the_removal_of_its_endpoint() {
    let mut a = backend("a").await;
    let b = backend("b").await;
    let p = proxy().await;
    p.table
        .apply(&[set_http("slow.example", vec![endpoint(a.addr.port(), 0)])])
        .await
        .unwrap();
    let request = p.get("slow.example", "/slow").send();
    let in_flight = tokio::spawn(async move {
        let resp = request.await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    tokio::time::timeout(PATIENCE, a.slow_started.recv())
        .await
        .expect("the slow request reached its backend")
        .unwrap();
    // The endpoint leaves the table while its request is being served.
    p.table
        .apply(&[set_http("slow.example", vec![endpoint(b.addr.port(), 1)])])
        .await
        .unwrap();
    assert_eq!(p.text("slow.example", "/").await, (200, "b".to_owned()));
    p.table
        .apply(&[RouteChange::Remove {
            route: RouteKey::http("slow.example"),
        }])
        .await
        .unwrap();
    assert_eq!(p.text("slow.example", "/").await.0, 404);
    a.slow_release.notify_one();
    let answered = tokio::time::timeout(PATIENCE, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answered, (200, "a".to_owned()));
}

/// Reads one response from `c` until its body ends with `body`.
async fn read_response(c: &mut TcpStream, body: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(format!("\r\n\r\n{body}").as_bytes()) {
        let n = tokio::time::timeout(Duration::from_secs(60), c.read(&mut buf))
            .await
            .expect("a response within a minute")
            .unwrap();
        assert!(n > 0, "closed before the response ended: {out:?}");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).unwrap()
}

/// Waits until the proxy closes `c`; returns how long that took.
async fn closed_after(c: &mut TcpStream) -> Duration {
    let start = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(60), c.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => start.elapsed(),
        Ok(Ok(n)) => panic!("unexpected bytes: {:?}", &buf[..n]),
        Err(_) => panic!("the connection stayed open for a minute"),
    }
}

#[tokio::test(start_paused = true)]
async fn client_connections_get_the_header_read_timeout_between_requests_only() {
    let mut a = backend("a").await;
    let timeout = Duration::from_secs(10);
    let p = proxy_with(|b| b.header_read_timeout(timeout)).await;
    p.table
        .apply(&[set_http("idle.example", vec![endpoint(a.addr.port(), 0)])])
        .await
        .unwrap();
    let addr = p.addr;

    // A response taking longer than the timeout is not cut.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: idle.example\r\n\r\n")
        .await
        .unwrap();
    a.slow_started.recv().await.unwrap();
    tokio::time::sleep(timeout * 3).await;
    a.slow_release.notify_one();
    let resp = read_response(&mut c, "a").await;
    assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
    // The timeout counts from the end of the previous response: a request sent just
    // before it is served, on the same connection.
    tokio::time::sleep(timeout - Duration::from_secs(1)).await;
    c.write_all(b"GET / HTTP/1.1\r\nHost: idle.example\r\n\r\n")
        .await
        .unwrap();
    let resp = read_response(&mut c, "a").await;
    assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
    // Then, idle, the connection is closed once the timeout has passed.
    let waited = closed_after(&mut c).await;
    assert!(
        waited >= timeout && waited < timeout + Duration::from_secs(2),
        "{waited:?}"
    );

    // A request head that never completes is cut at the timeout too.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: idle.exa")
        .await
        .unwrap();
    let waited = closed_after(&mut c).await;
    assert!(
        waited >= timeout - Duration::from_millis(100) && waited < timeout + Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_stops_on_cancel() {
    let table = TableRouter::new();
    let proxy = HttpProxy::builder(table)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = proxy.local_addr();
    let cancel = CancellationToken::new();
    let running = tokio::spawn(proxy.run(cancel.clone()));
    cancel.cancel();
    tokio::time::timeout(PATIENCE, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

// ------------------------------------------------- HTTP proxy: the endpoint connection

/// What a [`raw_backend`] received: each request (head and body as sent), the
/// connections it accepted, and those of them the proxy closed while held.
#[derive(Clone, Default)]
struct RawLog {
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    closed_while_held: Arc<std::sync::atomic::AtomicUsize>,
}

impl RawLog {
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn closed_while_held(&self) -> usize {
        self.closed_while_held
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// What a [`raw_backend`] does with a request.
enum Answer {
    /// Writes these bytes and waits for the next request.
    Send(Vec<u8>),
    /// Writes these bytes and closes the connection.
    SendAndClose(Vec<u8>),
    /// Writes these bytes without reading the request body, then holds the connection.
    SendEarlyAndHold(Vec<u8>),
    /// Writes these bytes (maybe none, maybe part of a head) and holds the connection
    /// until the proxy closes it.
    SendAndHold(Vec<u8>),
    /// Writes these bytes after this (tokio) time, and waits for the next request.
    SendAfter(Duration, Vec<u8>),
}

/// Reads from `s` into `buf` until `found` says how many of its first bytes make the
/// wanted piece; takes that piece off `buf` (which keeps what follows). `None` when the
/// connection ends first.
async fn read_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    found: impl Fn(&[u8]) -> Option<usize>,
) -> Option<String> {
    loop {
        if let Some(n) = found(buf) {
            let piece: Vec<u8> = buf.drain(..n).collect();
            return Some(String::from_utf8(piece).unwrap());
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads one request head off `s`.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    read_until(s, buf, |b| {
        b.windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|end| end + 4)
    })
    .await
}

/// Reads the rest of a request body as framed by `head` (length, or chunked up to the
/// last chunk), raw.
async fn read_body(s: &mut TcpStream, buf: &mut Vec<u8>, head: &str) -> Option<String> {
    let lower = head.to_ascii_lowercase();
    let chunked = lower.contains("transfer-encoding: chunked");
    let len = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    read_until(s, buf, |b| {
        if chunked {
            b.windows(5).position(|w| w == b"0\r\n\r\n").map(|p| p + 5)
        } else {
            (b.len() >= len).then_some(len)
        }
    })
    .await
}

/// An endpoint speaking raw HTTP/1.1 bytes: `answer` picks the reply to each request
/// from its head.
async fn raw_backend(answer: fn(&str) -> Answer) -> (SocketAddr, RawLog) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = RawLog::default();
    let shared = log.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            shared
                .connections
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let log = shared.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(head) = read_head(&mut s, &mut buf).await {
                    let reply = answer(&head);
                    if let Answer::SendEarlyAndHold(bytes) = reply {
                        log.requests.lock().unwrap().push(head);
                        s.write_all(&bytes).await.unwrap();
                        tokio::time::sleep(PATIENCE * 3).await;
                        return;
                    }
                    let Some(body) = read_body(&mut s, &mut buf, &head).await else {
                        return;
                    };
                    log.requests.lock().unwrap().push(format!("{head}{body}"));
                    match reply {
                        Answer::Send(bytes) => s.write_all(&bytes).await.unwrap(),
                        Answer::SendAndClose(bytes) => {
                            s.write_all(&bytes).await.unwrap();
                            return;
                        }
                        Answer::SendAndHold(bytes) => {
                            s.write_all(&bytes).await.unwrap();
                            let mut chunk = [0u8; 1024];
                            while matches!(s.read(&mut chunk).await, Ok(n) if n > 0) {}
                            log.closed_while_held
                                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            return;
                        }
                        Answer::SendAfter(delay, bytes) => {
                            tokio::time::sleep(delay).await;
                            s.write_all(&bytes).await.unwrap();
                        }
                        Answer::SendEarlyAndHold(_) => unreachable!(),
                    }
                }
            });
        }
    });
    (addr, log)
}

/// Sends raw `request` bytes to the proxy on a new connection; returns everything it
/// answered until it closed (the request asks it to close).
async fn raw_exchange(proxy: SocketAddr, request: &[u8]) -> String {
    raw_exchange_within(proxy, request, PATIENCE).await
}

/// [`raw_exchange`], waiting up to `limit` for the answer.
async fn raw_exchange_within(proxy: SocketAddr, request: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(limit, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_reach_the_endpoint_by_length_or_chunked() {
    let (addr, log) = raw_backend(|_| Answer::Send(ok("got it"))).await;
    let p = proxy_to("up.example", addr).await;
    // A body of known length goes with its length.
    let resp = p
        .client
        .post(format!("http://{}/len", p.addr))
        .header("host", "up.example")
        .body("0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "got it");
    // A chunked one goes chunked (the client's chunks re-framed), and the client's
    // `Expect: 100-continue` is answered by the proxy, not passed on.
    let out = raw_exchange(
        p.addr,
        b"POST /chunked HTTP/1.1\r\nhost: up.example\r\nconnection: close\r\nexpect: 100-continue\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    assert!(out.ends_with("got it"), "{out}");
    // A GET without a body gets no framing header at all.
    assert_eq!(
        p.text("up.example", "/plain").await,
        (200, "got it".to_owned())
    );
    let requests = log.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let (len, chunked, plain) = (&requests[0], &requests[1], &requests[2]);
    assert!(len.starts_with("POST /len HTTP/1.1\r\n"), "{len}");
    assert!(len.contains("content-length: 10\r\n"), "{len}");
    assert!(len.ends_with("\r\n\r\n0123456789"), "{len}");
    assert!(
        chunked.contains("transfer-encoding: chunked\r\n"),
        "{chunked}"
    );
    assert!(
        !chunked.to_ascii_lowercase().contains("expect"),
        "{chunked}"
    );
    assert!(!chunked.contains("content-length"), "{chunked}");
    assert!(
        chunked.ends_with("\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        "{chunked}"
    );
    assert!(plain.starts_with("GET /plain HTTP/1.1\r\n"), "{plain}");
    assert!(
        !plain.contains("content-length") && !plain.contains("transfer-encoding"),
        "{plain}"
    );
    // One connection carried all three.
    assert_eq!(log.connections(), 1);
}

fn framings(head: &str) -> Answer {
    let path = head.split(' ').nth(1).unwrap_or("");
    match path {
        "/chunked" => Answer::Send(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nx-trailer: t\r\n\r\n".to_vec(),
        ),
        "/head" => Answer::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n".to_vec()),
        "/nocontent" => Answer::Send(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
        "/interim" => Answer::Send(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\ninterim".to_vec(),
        ),
        "/close" => Answer::SendAndClose(b"HTTP/1.0 200 OK\r\n\r\nuntil the end".to_vec()),
        "/short" => Answer::SendAndClose(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\ncut short".to_vec(),
        ),
        "/garbage" => Answer::SendAndClose(b"SMTP ready\r\n\r\n".to_vec()),
        _ => Answer::Send(ok("plain")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_framing_reaches_the_client() {
    let (addr, log) = raw_backend(framings).await;
    let p = proxy_to("fr.example", addr).await;
    assert_eq!(
        p.text("fr.example", "/chunked").await,
        (200, "hello world".to_owned())
    );
    let head = p
        .client
        .head(format!("http://{}/head", p.addr))
        .header("host", "fr.example")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "11");
    assert_eq!(
        p.text("fr.example", "/nocontent").await,
        (204, String::new())
    );
    assert_eq!(
        p.text("fr.example", "/interim").await,
        (200, "interim".to_owned())
    );
    // All of these kept the endpoint's connection alive: one so far.
    assert_eq!(log.connections(), 1);
    // A body that ends with the connection.
    assert_eq!(
        p.text("fr.example", "/close").await,
        (200, "until the end".to_owned())
    );
    assert_eq!(p.text("fr.example", "/").await, (200, "plain".to_owned()));
    assert_eq!(log.connections(), 2, "the closed connection was not reused");
    // A body cut short reaches the client as an error, not as a complete answer.
    let short = match p.get("fr.example", "/short").send().await {
        Ok(resp) => resp.text().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(short.is_err(), "a body cut short read as complete");
    // An endpoint that does not speak HTTP: 502.
    assert_eq!(p.text("fr.example", "/garbage").await.0, 502);
    assert_eq!(p.text("fr.example", "/").await, (200, "plain".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_the_endpoint_closed_is_replaced_unseen() {
    // The endpoint closes every connection after one answer, without saying so.
    let (addr, log) = raw_backend(|_| Answer::SendAndClose(ok("once"))).await;
    let p = proxy_to("once.example", addr).await;
    for _ in 0..10 {
        assert_eq!(p.text("once.example", "/").await, (200, "once".to_owned()));
    }
    assert_eq!(log.connections(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_stops_the_upload() {
    // The endpoint answers 413 as soon as it has the head, and reads nothing more.
    let (addr, _log) = raw_backend(|_| {
        Answer::SendEarlyAndHold(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\n\r\ntoo big!".to_vec(),
        )
    })
    .await;
    let p = proxy_to("big.example", addr).await;
    let size = 64 << 20;
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(
        format!("POST /up HTTP/1.1\r\nhost: big.example\r\ncontent-length: {size}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let (mut rd, mut wr) = s.into_split();
    // The client keeps sending (until the proxy stops reading).
    tokio::spawn(async move {
        let block = vec![b'x'; 1 << 16];
        for _ in 0..(size >> 16) {
            if wr.write_all(&block).await.is_err() {
                return;
            }
        }
    });
    let mut out = Vec::new();
    let mut chunk = [0u8; 1024];
    while !out.ends_with(b"too big!") {
        let n = tokio::time::timeout(PATIENCE, rd.read(&mut chunk))
            .await
            .expect("the early answer within the patience")
            .unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&chunk[..n]);
    }
    assert!(
        out.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

/// Answers of an endpoint that is slow to answer, by path.
fn slow_answers(head: &str) -> Answer {
    match head.split(' ').nth(1).unwrap_or("") {
        "/never" => Answer::SendAndHold(Vec::new()),
        "/half" => Answer::SendAndHold(b"HTTP/1.1 200 OK\r\ncontent-le".to_vec()),
        "/interim" => Answer::SendAndHold(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
        "/late" => Answer::SendAfter(Duration::from_secs(9), ok("late")),
        _ => Answer::Send(ok("fine")),
    }
}

/// A GET of `path` at `host`, closing.
fn get_request(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").into_bytes()
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_that_sends_no_response_head_in_time_gets_the_client_a_504() {
    let (addr, log) = raw_backend(slow_answers).await;
    let timeout = Duration::from_secs(10);
    let p = proxy_with(|b| b.response_header_timeout(timeout)).await;
    p.table
        .apply(&[set_http("slow.example", vec![endpoint(addr.port(), 0)])])
        .await
        .unwrap();
    // A first answer leaves a kept-alive connection, which the next request takes: a
    // timeout there is not tried again on another connection.
    let out = raw_exchange(p.addr, &get_request("slow.example", "/")).await;
    assert!(out.ends_with("fine"), "{out}");
    // No answer at all, half a head, an interim answer and then nothing: each is a 504
    // at the timeout, and its connection is closed rather than kept.
    for (i, path) in ["/never", "/half", "/interim"].into_iter().enumerate() {
        let start = tokio::time::Instant::now();
        let out = raw_exchange(p.addr, &get_request("slow.example", path)).await;
        let waited = start.elapsed();
        assert!(out.starts_with("HTTP/1.1 504 "), "{path}: {out}");
        assert!(
            out.ends_with("the instance did not answer in time\n"),
            "{out}"
        );
        assert!(
            waited >= timeout && waited < timeout + Duration::from_secs(1),
            "{path}: {waited:?}"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while log.closed_while_held() < i + 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: the connection was kept"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(log.connections(), i + 1, "{path}: a new connection each");
    }
    // An answer that comes before the timeout is not cut.
    let start = tokio::time::Instant::now();
    let out = raw_exchange(p.addr, &get_request("slow.example", "/late")).await;
    assert!(
        out.starts_with("HTTP/1.1 200 ") && out.ends_with("late"),
        "{out}"
    );
    assert!(start.elapsed() >= Duration::from_secs(9));
    // Nor does a client's slow upload count: the timeout starts once the request is
    // written. The connection of the late answer carries it.
    let mut c = TcpStream::connect(p.addr).await.unwrap();
    c.write_all(b"POST /upload HTTP/1.1\r\nhost: slow.example\r\ncontent-length: 4\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(timeout * 2).await;
    c.write_all(b"body").await.unwrap();
    let resp = read_response(&mut c, "fine").await;
    assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
    assert_eq!(log.connections(), 4);
    assert!(log.requests().last().unwrap().ends_with("\r\n\r\nbody"));
}

#[tokio::test(start_paused = true)]
async fn the_response_header_timeout_is_a_minute_by_default() {
    let (addr, _log) = raw_backend(slow_answers).await;
    let p = proxy_to("slow.example", addr).await;
    let start = tokio::time::Instant::now();
    let out = raw_exchange_within(
        p.addr,
        &get_request("slow.example", "/never"),
        Duration::from_secs(120),
    )
    .await;
    let waited = start.elapsed();
    assert!(out.starts_with("HTTP/1.1 504 "), "{out}");
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
        "{waited:?}"
    );
}

// ---------------------------------------------------------------- TCP proxy

/// A TCP app answering `<name>:<what it read>` and closing.
async fn tcp_backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let mut out = format!("{name}:").into_bytes();
                out.extend_from_slice(&buf[..n]);
                let _ = s.write_all(&out).await;
            });
        }
    });
    addr
}

async fn tcp_exchange(port: u16, msg: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(msg.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(PATIENCE, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

async fn wait_listening(
    rx: &mut tokio::sync::watch::Receiver<std::collections::BTreeSet<u16>>,
    port: u16,
    open: bool,
) {
    tokio::time::timeout(PATIENCE, rx.wait_for(|ports| ports.contains(&port) == open))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_routes_forward_round_robin_and_close_with_the_table() {
    let (a, b) = (tcp_backend("a").await, tcp_backend("b").await);
    let dead = dead_port().await;
    let external = dead_port().await;
    let table = TableRouter::new();
    let tcp = TcpProxy::builder(table.clone())
        .bind_ip("127.0.0.1".parse().unwrap())
        .build();
    let mut listening = tcp.listening();
    let cancel = CancellationToken::new();
    let running = tokio::spawn(tcp.run(cancel.clone()));

    table
        .apply(&[RouteChange::Set {
            route: RouteKey::tcp(external),
            endpoints: vec![
                endpoint(a.port(), 0),
                endpoint(dead, 1),
                endpoint(b.port(), 2),
            ],
        }])
        .await
        .unwrap();
    wait_listening(&mut listening, external, true).await;
    let mut seen = Vec::new();
    for i in 0..6 {
        let out = tcp_exchange(external, &format!("m{i}")).await;
        let (name, echoed) = out.split_once(':').unwrap();
        assert_eq!(echoed, format!("m{i}"));
        seen.push(name.to_owned());
    }
    // Round robin over [a, dead, b]: the dead one's turns go to the next (b).
    assert_eq!(seen, ["a", "b", "b", "a", "b", "b"]);

    table
        .apply(&[RouteChange::Remove {
            route: RouteKey::tcp(external),
        }])
        .await
        .unwrap();
    wait_listening(&mut listening, external, false).await;
    assert!(TcpStream::connect(("127.0.0.1", external)).await.is_err());

    cancel.cancel();
    tokio::time::timeout(PATIENCE, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

// ---------------------------------------------------------------- route emitter

fn http_len(t: &RoutingTable, host: &str) -> Option<usize> {
    t.http_endpoints(host).map(<[_]>::len)
}

/// Waits until `check` holds for the router's table.
async fn wait_table(router: &TableRouter, what: &str, check: impl Fn(&RoutingTable) -> bool) {
    let mut changes = router.subscribe();
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            if check(&router.table()) {
                return;
            }
            changes.changed().await.unwrap();
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "timed out waiting for {what}: {:#?}",
        router.table()
    );
}

fn lrp(guid: &str, instances: i32, host: &str) -> DesiredLrp {
    let mut d = DesiredLrp::new(
        guid,
        "apps",
        "preloaded:cflinuxfs4",
        instances,
        RunAction::new("/app/server", "vcap"),
    );
    d.scheduling_info.routes = Routes::http(&[host], 8080);
    d.run_info.ports = vec![8080];
    d
}

fn net(host_port: u32) -> ActualLrpNetInfo {
    ActualLrpNetInfo {
        address: "10.0.0.7".into(),
        ports: vec![
            PortMapping {
                container_port: 8080,
                host_port,
                ..Default::default()
            },
            PortMapping {
                container_port: 9000,
                host_port: host_port + 1,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

async fn run_instance(bbs: &Bbs, guid: &str, index: i32, attempt: &str, routable: bool) {
    let key = ActualLrpKey::new(guid, index, "apps");
    let ik = ActualLrpInstanceKey::new(attempt, "cell-1");
    bbs.claim_actual_lrp(&key, &ik).await.unwrap();
    bbs.start_actual_lrp(&key, &ik, &net(61000 + 10 * index as u32), routable)
        .await
        .unwrap();
}

fn start_emitter(
    bbs: &Bbs,
    router: &TableRouter,
) -> (CancellationToken, Arc<diego_core::routing::EmitterStats>) {
    let emitter = RouteEmitter::builder(Arc::new(bbs.clone()), Arc::new(router.clone()))
        .sync_interval(None)
        .build();
    let stats = emitter.stats();
    let cancel = CancellationToken::new();
    tokio::spawn(emitter.run(cancel.clone()));
    (cancel, stats)
}

/// A routable instance that starts reaches the routing table, which the proxy reads on
/// every request, within a second (virtual time: the emitter follows events as they
/// come; it does not wait for a sync or a batch timer).
#[tokio::test(start_paused = true)]
async fn a_started_instance_reaches_the_table_within_a_second() {
    let bbs = Bbs::builder().build();
    let router = TableRouter::new();
    let (cancel, _stats) = start_emitter(&bbs, &router);
    bbs.desire_lrp(lrp("fast", 1, "fast.example"))
        .await
        .unwrap();
    wait_table(&router, "the route", |t| {
        http_len(t, "fast.example") == Some(0)
    })
    .await;
    let start = tokio::time::Instant::now();
    run_instance(&bbs, "fast", 0, "attempt-0", true).await;
    wait_table(&router, "the instance", |t| {
        http_len(t, "fast.example") == Some(1)
    })
    .await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    cancel.cancel();
}

#[tokio::test]
async fn the_emitter_follows_desire_claim_start_crash_scale_and_removal() {
    let bbs = Bbs::builder().build();
    let router = TableRouter::new();
    let (cancel, _stats) = start_emitter(&bbs, &router);

    let mut web = lrp("web", 2, "App.Example");
    web.scheduling_info.routes.set_tcp_routes(&[TcpRoute {
        router_group_guid: String::new(),
        external_port: 61999,
        container_port: 9000,
    }]);
    web.run_info.ports = vec![8080, 9000];
    bbs.desire_lrp(web).await.unwrap();
    wait_table(&router, "a known route without endpoints", |t| {
        http_len(t, "app.example") == Some(0) && t.tcp.get(&61999).is_some_and(Vec::is_empty)
    })
    .await;

    // Claimed is not enough; running and routable is.
    let key0 = ActualLrpKey::new("web", 0, "apps");
    let ik0 = ActualLrpInstanceKey::new("attempt-0", "cell-1");
    bbs.claim_actual_lrp(&key0, &ik0).await.unwrap();
    bbs.start_actual_lrp(&key0, &ik0, &net(61000), true)
        .await
        .unwrap();
    wait_table(&router, "instance 0", |t| {
        http_len(t, "app.example") == Some(1)
    })
    .await;
    let t = router.table();
    let e = &t.http_endpoints("app.example").unwrap()[0];
    assert_eq!((e.authority(), e.index), ("10.0.0.7:61000".to_owned(), 0));
    assert_eq!(e.instance_guid.as_str(), "attempt-0");
    assert_eq!(t.tcp[&61999][0].authority(), "10.0.0.7:61001");

    // Running but not routable: not in the table (a later route is the barrier).
    run_instance(&bbs, "web", 1, "attempt-1", false).await;
    bbs.desire_lrp(lrp("barrier", 0, "barrier.example"))
        .await
        .unwrap();
    wait_table(&router, "the barrier", |t| {
        http_len(t, "barrier.example") == Some(0)
    })
    .await;
    assert_eq!(http_len(&router.table(), "app.example"), Some(1));
    // Once routable, it is.
    let key1 = ActualLrpKey::new("web", 1, "apps");
    let ik1 = ActualLrpInstanceKey::new("attempt-1", "cell-1");
    bbs.start_actual_lrp(&key1, &ik1, &net(61010), true)
        .await
        .unwrap();
    wait_table(&router, "instance 1", |t| {
        http_len(t, "app.example") == Some(2)
    })
    .await;

    // A crash takes the instance out.
    bbs.crash_actual_lrp(&key0, &ik0, "boom").await.unwrap();
    wait_table(&router, "instance 0 gone", |t| {
        t.http_endpoints("app.example")
            .is_some_and(|e| e.len() == 1 && e[0].index == 1)
    })
    .await;

    // Scaling down leaves out indices at or above the new count, even while running.
    bbs.update_desired_lrp(
        &ProcessGuid::new("web"),
        DesiredLrpUpdate {
            instances: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    wait_table(&router, "scaled to 1", |t| {
        http_len(t, "app.example") == Some(0)
    })
    .await;
    run_instance(&bbs, "web", 0, "attempt-0b", true).await;
    wait_table(&router, "instance 0 back", |t| {
        http_len(t, "app.example") == Some(1)
    })
    .await;

    // New routes replace the old ones.
    bbs.update_desired_lrp(
        &ProcessGuid::new("web"),
        DesiredLrpUpdate {
            routes: Some(Routes::http(&["new.example"], 8080)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    wait_table(&router, "the new route", |t| {
        http_len(t, "new.example") == Some(1)
            && http_len(t, "app.example").is_none()
            && t.tcp.is_empty()
    })
    .await;

    bbs.remove_desired_lrp(&ProcessGuid::new("web"))
        .await
        .unwrap();
    wait_table(&router, "web gone", |t| {
        http_len(t, "new.example").is_none()
    })
    .await;
    cancel.cancel();
}

#[tokio::test]
async fn the_emitter_starts_from_a_listing_and_resyncs_after_lagging() {
    let config = BbsConfig::default().with_event_buffer(4);
    let bbs = Bbs::builder().config(config).build();
    // Present before the emitter starts: learnt from the first listing.
    bbs.desire_lrp(lrp("early", 1, "early.example"))
        .await
        .unwrap();
    run_instance(&bbs, "early", 0, "early-0", true).await;

    let router = TableRouter::new();
    let (cancel, stats) = start_emitter(&bbs, &router);
    wait_table(&router, "the listed route", |t| {
        http_len(t, "early.example") == Some(1)
    })
    .await;
    let resyncs = stats.resyncs();
    assert_eq!(resyncs, 1);

    // 60 events with a buffer of 4, written without yielding: the emitter must lag.
    tokio::task::unconstrained(async {
        for i in 0..20 {
            let guid = format!("burst-{i}");
            bbs.desire_lrp(lrp(&guid, 1, &format!("burst-{i}.example")))
                .await
                .unwrap();
            run_instance(&bbs, &guid, 0, &format!("{guid}-0"), true).await;
        }
    })
    .await;
    wait_table(&router, "every burst route with its instance", |t| {
        (0..20).all(|i| http_len(t, &format!("burst-{i}.example")) == Some(1))
    })
    .await;
    assert!(stats.resyncs() > resyncs, "no resync after lagging");
    assert_eq!(http_len(&router.table(), "early.example"), Some(1));

    // Events after the resync still flow.
    bbs.remove_desired_lrp(&ProcessGuid::new("early"))
        .await
        .unwrap();
    wait_table(&router, "early gone", |t| {
        http_len(t, "early.example").is_none()
    })
    .await;
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_and_proxy_together_serve_a_running_instance() {
    let a = backend("app-0").await;
    let bbs = Bbs::builder().build();
    let p = proxy().await;
    let (cancel, _) = start_emitter(&bbs, &p.table);
    bbs.desire_lrp(lrp("demo", 1, "demo.localhost"))
        .await
        .unwrap();
    let key = ActualLrpKey::new("demo", 0, "apps");
    let ik = ActualLrpInstanceKey::new("demo-0", "cell-1");
    bbs.claim_actual_lrp(&key, &ik).await.unwrap();
    let net = ActualLrpNetInfo {
        address: "127.0.0.1".into(),
        ports: vec![PortMapping {
            container_port: 8080,
            host_port: u32::from(a.addr.port()),
            ..Default::default()
        }],
        ..Default::default()
    };
    bbs.start_actual_lrp(&key, &ik, &net, true).await.unwrap();
    wait_table(&p.table, "demo routed", |t| {
        http_len(t, "demo.localhost") == Some(1)
    })
    .await;
    assert_eq!(
        p.text("demo.localhost", "/").await,
        (200, "app-0".to_owned())
    );
    let (_, headers) = p.text("demo.localhost", "/headers").await;
    assert!(headers.contains("x-cf-app-instance=demo:0\n"), "{headers}");
    cancel.cancel();
}
