//! [`HttpProxy`]: the HTTP reverse proxy of the default router: hyper 1 serves the
//! clients; requests go on to the endpoints over the proxy's own HTTP/1.1 client
//! connections (`http1`).
//!
//! A request is routed by its `Host` header (port stripped, case-insensitive) to the
//! endpoints of that host in the [`TableRouter`], round robin. A refused connection (or
//! any failure to connect: nothing was sent yet) moves on to the next endpoint. Answers:
//! 404 for an unknown host, 503 for a known host with no routable endpoint, 502 when no
//! endpoint could be reached or the chosen one failed, 504 when the chosen one sent no
//! response head within the response-header timeout (gorouter's `endpoint_timeout`;
//! the request is not sent to another endpoint, it may have been acted on). The backend sees
//! `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
//! `X-Cf-App-Instance: <process_guid>:<index>`. Connections to backends are kept alive
//! and pooled per endpoint. A client connection that sends no complete request head
//! within the header read timeout (counted from connecting, or from the end of its
//! previous response) is closed. This module knows endpoints, not LRPs.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::http1::BackendBody;
use super::pool::ConnectionPools;
use super::table::{Pool, TableRouter};
use crate::error::{Error, Result};

/// The body of the proxy's responses: the backend's, streamed, or one of its own.
type ProxyBody = Either<BackendBody, Full<Bytes>>;

/// The header read timeout when none is set.
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The response-header timeout when none is set: gorouter's default `endpoint_timeout`.
const DEFAULT_RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(60);

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_CF_APP_INSTANCE: HeaderName = HeaderName::from_static("x-cf-app-instance");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Builds an [`HttpProxy`].
#[derive(Debug)]
pub struct HttpProxyBuilder {
    table: TableRouter,
    connect_timeout: Duration,
    pool_idle_timeout: Duration,
    shutdown_grace: Duration,
    header_read_timeout: Duration,
    response_header_timeout: Duration,
}

impl HttpProxyBuilder {
    /// How long connecting to an endpoint may take before the next one is tried (5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an idle keep-alive connection to an endpoint is kept (90 s).
    #[must_use]
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How long [`HttpProxy::run`] waits for requests in flight after cancellation (30 s).
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long a client may take to send a complete request head, counted from
    /// connecting or from the end of its previous response (30 s); a connection that
    /// takes longer, such as a keep-alive connection left idle, is closed. A request
    /// whose response has not ended is never cut by it.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long an endpoint may take to send the response head once the request has been
    /// written to it, body and all (60 s, gorouter's default `endpoint_timeout`; like Go's
    /// `ResponseHeaderTimeout`, a slow upload by the client does not count, and interim
    /// `1xx` responses do not restart it). An endpoint that takes longer, having accepted
    /// the connection and maybe read the request, gets the client a `504 Gateway Timeout`;
    /// its connection is closed, and the request is not tried on another endpoint. Once
    /// the head has come, the body may take as long as it takes.
    #[must_use]
    pub fn response_header_timeout(mut self, timeout: Duration) -> Self {
        self.response_header_timeout = timeout;
        self
    }

    /// Listens on `addr` (port 0: any free port).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the address cannot be bound.
    pub async fn bind(self, addr: SocketAddr) -> Result<HttpProxy> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::unavailable_from(format!("cannot listen on {addr}"), e))?;
        self.listener(listener)
    }

    /// Serves on an already bound listener.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the listener's address cannot be read.
    pub fn listener(self, listener: TcpListener) -> Result<HttpProxy> {
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::unavailable_from("listener has no address", e))?;
        Ok(HttpProxy {
            listener,
            local_addr,
            shutdown_grace: self.shutdown_grace,
            state: Arc::new(State {
                table: self.table,
                pools: ConnectionPools::new(self.connect_timeout, self.pool_idle_timeout),
                header_read_timeout: self.header_read_timeout,
                response_header_timeout: self.response_header_timeout,
            }),
        })
    }
}

/// The HTTP reverse proxy over a [`TableRouter`].
///
/// ```no_run
/// # async fn demo() -> diego_core::Result<()> {
/// use diego_core::router::{HttpProxy, TableRouter};
/// use tokio_util::sync::CancellationToken;
///
/// let table = TableRouter::new();
/// let proxy = HttpProxy::builder(table.clone()).bind("127.0.0.1:8080".parse().unwrap()).await?;
/// proxy.run(CancellationToken::new()).await
/// # }
/// ```
#[derive(Debug)]
pub struct HttpProxy {
    listener: TcpListener,
    local_addr: SocketAddr,
    shutdown_grace: Duration,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    table: TableRouter,
    pools: ConnectionPools,
    header_read_timeout: Duration,
    response_header_timeout: Duration,
}

impl HttpProxy {
    /// A builder serving `table`.
    pub fn builder(table: TableRouter) -> HttpProxyBuilder {
        HttpProxyBuilder {
            table,
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(90),
            shutdown_grace: Duration::from_secs(30),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            response_header_timeout: DEFAULT_RESPONSE_HEADER_TIMEOUT,
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `cancel`; then stops accepting, lets requests in flight finish (up
    /// to the shutdown grace) and returns.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for fatal listener errors.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        let tracker = TaskTracker::new();
        let reaper = tokio::spawn(reap(self.state.clone(), cancel.clone()));
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "router: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Nagle only delays small proxied responses.
            let _ = stream.set_nodelay(true);
            let state = self.state.clone();
            // A token of its own: the connection looks at it on every wake-up, and a
            // shared token is one lock every connection of every worker takes.
            let cancel = cancel.child_token();
            tracker.spawn(serve_connection(state, stream, peer, cancel));
        }
        drop(self.listener);
        reaper.abort();
        tracker.close();
        if tokio::time::timeout(self.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = tracker.len(),
                "router: requests still in flight after the shutdown grace"
            );
        }
        Ok(())
    }
}

/// Drops expired idle backend connections now and then.
async fn reap(state: Arc<State>, cancel: CancellationToken) {
    let every = (state.pools.idle_timeout() / 2).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => state.pools.reap(),
        }
    }
}

/// Serves one client connection until it ends, `cancel` (then gracefully), or its
/// header read timeout.
///
/// The timeout is kept here, per connection, rather than by hyper: hyper's arms a timer
/// for every request head (a timer-wheel entry, and often a wake-up of the runtime's
/// driver: one more system call per request), where this one is a single timer that
/// fires once per timeout and looks at when the connection last went idle.
async fn serve_connection(
    state: Arc<State>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    cancel: CancellationToken,
) {
    let timeout = state.header_read_timeout;
    let shared = Arc::new(ClientConn {
        state,
        client: Client::new(peer.ip()),
        activity: Activity::new(),
    });
    let conn_shared = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        let in_flight = InFlight::start(conn_shared.clone());
        async move {
            let conn = &in_flight.0;
            let resp = handle(&conn.state, req, &conn.client).await;
            Ok::<_, Infallible>(resp.map(|body| ResponseBody {
                inner: body,
                _in_flight: in_flight,
            }))
        }
    });
    // Responses are written from one flat buffer (head and body copied together), not
    // with vectored writes: for the small responses most routes carry, the copy costs
    // less than the kernel's walk over several buffers. `headline router`, 7 runs
    // alternating with and without (then on both sides of the proxy; the endpoint side
    // now writes from one buffer of its own, see `http1`): the ratio to nginx rose from
    // about 0.93 to about 0.97. Large bodies pay one memory copy more.
    let conn = hyper::server::conn::http1::Builder::new()
        .writev(false)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let watchdog = tokio::time::sleep(timeout);
    let mut watchdog = std::pin::pin!(watchdog);
    let result = loop {
        tokio::select! {
            biased;
            r = conn.as_mut() => break r,
            () = cancel.cancelled() => {
                conn.as_mut().graceful_shutdown();
                break conn.as_mut().await;
            }
            () = watchdog.as_mut() => {
                let now = Instant::now();
                match shared.activity.idle_since() {
                    Some(since) if now.saturating_duration_since(since) >= timeout => {
                        tracing::debug!(%peer, "router: no request head within the header read timeout; closing");
                        break Ok(());
                    }
                    Some(since) => watchdog.as_mut().reset(since + timeout),
                    None => watchdog.as_mut().reset(now + timeout),
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "router: client connection ended with an error");
    }
}

/// What the requests of one client connection share.
#[derive(Debug)]
struct ClientConn {
    state: Arc<State>,
    client: Client,
    activity: Activity,
}

/// When a client connection last went idle: the header read timeout counts from there.
#[derive(Debug)]
struct Activity {
    /// The connection's start; the times below count from it.
    base: Instant,
    /// Requests whose response has not ended.
    in_flight: AtomicUsize,
    /// When the last response ended (or the connection started), in nanoseconds after
    /// `base`.
    idle_since: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
        }
    }

    /// Since when no request has been in flight; `None` while one is.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let nanos = self.idle_since.load(Ordering::Acquire);
        Some(self.base + Duration::from_nanos(nanos))
    }
}

/// A request of a connection, from its head until its response ends (the response
/// body carries it, so a streamed body keeps the request in flight).
#[derive(Debug)]
struct InFlight(Arc<ClientConn>);

impl InFlight {
    fn start(conn: Arc<ClientConn>) -> Self {
        conn.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0.activity;
        let nanos = u64::try_from(activity.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        activity.idle_since.store(nanos, Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until it ends.
#[derive(Debug)]
struct ResponseBody {
    inner: ProxyBody,
    _in_flight: InFlight,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = <ProxyBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client of a connection, as the forwarding headers name it.
#[derive(Clone, Debug)]
struct Client {
    ip: IpAddr,
    /// The address as a header value, made once per connection.
    header: Option<HeaderValue>,
}

impl Client {
    fn new(ip: IpAddr) -> Self {
        Client {
            ip,
            header: HeaderValue::try_from(ip.to_string()).ok(),
        }
    }
}

/// Routes one request.
async fn handle(state: &State, req: Request<Incoming>, client: &Client) -> Response<ProxyBody> {
    let Some(host) = request_host(&req) else {
        return plain(StatusCode::BAD_REQUEST, "missing Host header\n");
    };
    let pool = if host.bytes().any(|b| b.is_ascii_uppercase()) || host.ends_with('.') {
        state.table.http_pool(&super::normalize_host(host))
    } else {
        state.table.http_pool(host)
    };
    let Some(pool) = pool else {
        let body = format!("Requested route ('{host}') does not exist.\n");
        return plain(StatusCode::NOT_FOUND, body);
    };
    if pool.targets.is_empty() {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "no instance of this route is available\n",
        );
    }
    forward(state, &pool, req, client).await
}

/// Sends the request to the pool's endpoints in round-robin order until one accepts a
/// connection.
async fn forward(
    state: &State,
    pool: &Pool,
    req: Request<Incoming>,
    client: &Client,
) -> Response<ProxyBody> {
    let (mut parts, body) = req.into_parts();
    prepare_request_headers(&mut parts.headers, client);
    if !parts.headers.contains_key(header::HOST) {
        // An absolute-form request without Host: the backend still gets one.
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(header::HOST, v);
        }
    }
    // Backends get the origin form (`/path?query`), over HTTP/1.1.
    parts.uri = parts
        .uri
        .path_and_query()
        .cloned()
        .map_or_else(|| Uri::from_static("/"), Uri::from);
    let mut req = Request::from_parts(parts, body);
    for target in pool.round() {
        if let Some(v) = &target.instance_header {
            req.headers_mut()
                .insert(X_CF_APP_INSTANCE.clone(), v.clone());
        }
        let conns = state.pools.pool(target);
        // Idle connections first, then a new one.
        loop {
            let (backend, reused) = match conns.take(state.pools.idle_timeout()) {
                Some(s) => (s, true),
                None => match state.pools.connect(target).await {
                    Ok(s) => (s, false),
                    Err(e) => {
                        tracing::debug!(endpoint = %target.authority, error = %e,
                            "router: cannot connect to the endpoint; trying the next");
                        break;
                    }
                },
            };
            match backend
                .send(&mut req, conns.clone(), state.response_header_timeout)
                .await
            {
                Ok((head, body)) => {
                    let mut resp = Response::new(Either::Left(body));
                    *resp.status_mut() = head.status;
                    *resp.headers_mut() = head.headers;
                    strip_hop_by_hop(resp.headers_mut());
                    return resp;
                }
                // A kept-alive connection the endpoint had closed: again, on another.
                Err(e) if reused && e.retryable => continue,
                Err(e) if e.timed_out => {
                    tracing::debug!(endpoint = %target.authority, error = %e,
                        "router: endpoint sent no response head in time");
                    return plain(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the instance did not answer in time\n",
                    );
                }
                Err(e) => {
                    tracing::debug!(endpoint = %target.authority, error = %e,
                        "router: endpoint failed");
                    return plain(StatusCode::BAD_GATEWAY, "the instance failed to answer\n");
                }
            }
        }
    }
    plain(
        StatusCode::BAD_GATEWAY,
        "no instance of this route could be reached\n",
    )
}

/// The host of the request, without port: the `Host` header, else the URI's authority.
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    let raw = match req.headers().get(header::HOST) {
        Some(v) => v.to_str().ok()?,
        None => req.uri().authority()?.as_str(),
    };
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // [v6]:port
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        raw.split(':').next().unwrap_or(raw)
    };
    (!host.is_empty()).then_some(host)
}

fn prepare_request_headers(headers: &mut HeaderMap, client: &Client) {
    strip_hop_by_hop(headers);
    let prior = headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let xff = match prior {
        Some(prior) => HeaderValue::try_from(format!("{prior}, {}", client.ip)).ok(),
        None => client.header.clone(),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }
    if !headers.contains_key(&X_FORWARDED_HOST) {
        if let Some(host) = headers.get(header::HOST).cloned() {
            headers.insert(X_FORWARDED_HOST.clone(), host);
        }
    }
}

/// Removes the headers that concern one connection only (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(conn) = headers.remove(header::CONNECTION) {
        if let Ok(list) = conn.to_str() {
            for name in list.split(',') {
                let name = name.trim();
                if !name.is_empty() {
                    headers.remove(name);
                }
            }
        }
    }
    for name in [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut resp = Response::new(Either::Right(Full::new(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_without_port() {
        let req = |host: &str| Request::builder().header("host", host).body(()).unwrap();
        assert_eq!(
            request_host(&req("Demo.Localhost:8080")),
            Some("Demo.Localhost")
        );
        assert_eq!(request_host(&req("demo")), Some("demo"));
        assert_eq!(request_host(&req("[::1]:80")), Some("[::1]"));
        assert_eq!(request_host(&req(":80")), None);
        let absolute = Request::builder()
            .uri("http://abs.example:81/x")
            .body(())
            .unwrap();
        assert_eq!(request_host(&absolute), Some("abs.example"));
    }

    #[test]
    fn forwarding_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a.example:8080"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        prepare_request_headers(&mut h, &Client::new("10.0.0.9".parse().unwrap()));
        assert_eq!(h[&X_FORWARDED_FOR], "1.2.3.4, 10.0.0.9");
        let mut fresh = HeaderMap::new();
        prepare_request_headers(&mut fresh, &Client::new("10.0.0.9".parse().unwrap()));
        assert_eq!(fresh[&X_FORWARDED_FOR], "10.0.0.9");
        assert!(!fresh.contains_key(&X_FORWARDED_HOST));
        assert_eq!(h[&X_FORWARDED_FOR], "1.2.3.4, 10.0.0.9");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "a.example:8080");
        assert!(!h.contains_key("x-private"));
        assert!(!h.contains_key(header::CONNECTION));
    }
}
