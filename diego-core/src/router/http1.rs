//! The HTTP proxy's client side (private to it): one keep-alive HTTP/1.1 connection
//! to an endpoint, a request written onto it and its response read back.
//!
//! The proxy forwards messages as they are, so it needs no more of a client than the
//! message framing of RFC 9112: write the request head and stream the body (by its
//! length, or chunked when the length is not known), parse the response head
//! (httparse), and read the response body by its framing — none, a length, chunked, or
//! until the connection closes. Everything runs in the task of the request, on the
//! connection's own buffer: no task, channel or oneshot per request. (hyper's client
//! connection passes each request through a channel to the connection, the response
//! back through a oneshot and its body through another channel; in `headline router`,
//! 4 runs alternating, the proxy went from 0.978-0.998 of nginx's rate with it to
//! 0.999-1.028 without.)
//!
//! A response that starts while the request body is still being sent (an early `413`,
//! say) stops the upload; the connection is then not reused. `Expect` is not
//! forwarded: hyper's server side has answered the client's `100-continue` by the time
//! the body is read, so the endpoint is sent the body at once.
//!
//! Once the request is written, the response head must come within the response-header
//! timeout (interim responses do not restart it); past it the request fails as timed out
//! and the connection is closed. The timer is the connection's own, made once and moved
//! on only when it fires (see [`HeadTimer`]): no timer is registered per request.
//!
//! The framing is stricter than RFC 9112 requires wherever a laxer reading could let an
//! endpoint's bytes be taken for another response (the "next message" of a kept-alive
//! connection): conflicting or signed `Content-Length`, `Transfer-Encoding` in HTTP/1.0,
//! bare CR or LF and control bytes in chunk-size and trailer lines, chunk sizes of more
//! than 16 hex digits are refused; a response with both `Transfer-Encoding` and
//! `Content-Length` is read by its transfer coding and its connection is not reused; and
//! a connection with bytes left after a response is never reused. `tests/router_framing.rs`
//! checks each case against hyper's client, and the fuzz targets in `fuzz/` (through
//! `router::fuzzing`, feature `fuzzing`) drive this code over arbitrary bytes.

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Version};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::pool::EndpointPool;

/// The largest response head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// The most headers a response may have (and the most trailer fields a chunked body).
const MAX_HEADERS: usize = 100;
/// The largest `Content-Length` taken: no body is longer, and a length near `u64::MAX`
/// is more likely an attack on someone's arithmetic than a body.
const MAX_LENGTH: u64 = i64::MAX as u64;
/// The longest chunk-size line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
/// The largest trailer section of a chunked body (read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;
/// How much is read from the socket at a time, at least.
const READ_SIZE: usize = 8 * 1024;
/// Body data up to this size is copied out of the connection's buffer rather than split
/// off it: the buffer then stays the connection's alone and is read into again, where a
/// split would make the next read allocate a new one (most proxied bodies are small).
const COPY_BELOW: usize = 4 * 1024;
/// Request body bytes gathered before they are written.
const WRITE_BATCH: usize = 64 * 1024;

/// One keep-alive HTTP/1.1 connection to an endpoint.
#[derive(Debug)]
pub(crate) struct BackendConn {
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
    /// Bounds the wait for each response head.
    head_timer: HeadTimer,
}

/// Why a request got no response head.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub(crate) struct SendError {
    error: io::Error,
    /// Nothing of a response came, no request body was consumed, and either nothing
    /// was written or the method is idempotent: on a kept-alive connection the
    /// endpoint had closed, the request may be sent again on another one.
    pub(crate) retryable: bool,
    /// No complete response head came within the response-header timeout.
    pub(crate) timed_out: bool,
}

/// The timer of a connection's waits for a response head: one `Sleep`, made on the
/// first wait and reset only when it fires.
///
/// A timer armed for each request would register and deregister a timer-wheel entry per
/// request, which often wakes the runtime's driver (one system call more per request;
/// see the header read timeout in `proxy`). Here a wait only notes its deadline; when
/// the timer fires before that deadline (it was set for an earlier wait) it is moved on
/// to it. Deadlines of later waits are never earlier than those of earlier ones, so the
/// timer never fires late: a connection pays at most one timer reset and one wake-up
/// per timeout, however many requests it carries.
#[derive(Debug, Default)]
struct HeadTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl HeadTimer {
    /// Whether `deadline` has passed; when not, `cx` is woken by then (or earlier).
    fn poll_expired(&mut self, cx: &mut Context<'_>, deadline: Instant) -> bool {
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if sleep.deadline() >= deadline {
                return true;
            }
            sleep.as_mut().reset(deadline);
        }
    }
}

/// A response head from an endpoint, with the body still on the connection.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
}

/// How the request body is framed on the way to the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestFraming {
    None,
    Length,
    Chunked,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl BackendConn {
    /// A connection over `stream` (connected, nodelay set).
    pub(crate) fn new(stream: TcpStream) -> Self {
        BackendConn {
            stream,
            buf: BytesMut::new(),
            head_timer: HeadTimer::default(),
        }
    }

    /// Whether the connection can no longer carry a request: the endpoint closed it,
    /// reset it, or sent bytes nobody asked for. Costs no system call while the
    /// socket has not been reported readable.
    pub(crate) fn is_closed(&self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends `req` (its headers as they are, its body streamed) and reads the response
    /// head, which must come within `head_timeout` of the request's end. The body of the
    /// response stays on the connection: [`BackendBody`] reads it, and gives the
    /// connection back to `pool` once it has read it to the end (when the connection can
    /// carry another request).
    pub(crate) async fn send(
        mut self,
        req: &mut Request<Incoming>,
        pool: Arc<EndpointPool>,
        head_timeout: Duration,
    ) -> Result<(ResponseHead, BackendBody), SendError> {
        let framing = frame_request(req);
        let mut out = Vec::with_capacity(512);
        encode_head(req, &mut out);
        let idempotent = matches!(
            *req.method(),
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );
        let mut progress = Progress::default();
        let written = self
            .write_request(req, framing, &mut out, &mut progress)
            .await;
        let fail = |error: io::Error, progress: &Progress| {
            // An endpoint that did not answer in time may be working on the request.
            let timed_out = error.kind() == io::ErrorKind::TimedOut;
            SendError {
                timed_out,
                retryable: !timed_out
                    && !progress.response_started
                    && !progress.body_read
                    && (!progress.wrote || idempotent),
                error,
            }
        };
        let upload_complete = match written {
            Ok(complete) => complete,
            // A write that failed may still have a response waiting (an endpoint that
            // answered and closed): read it; without one, report the write's error.
            Err(e) => match self
                .read_head(req.method(), &mut progress, head_timeout)
                .await
            {
                Ok(head) => return Ok(self.respond(head, false, pool)),
                Err(_) => return Err(fail(e, &progress)),
            },
        };
        match self
            .read_head(req.method(), &mut progress, head_timeout)
            .await
        {
            Ok(head) => Ok(self.respond(head, upload_complete, pool)),
            Err(e) => Err(fail(e, &progress)),
        }
    }

    /// The response's body reader, which owns the connection from now on.
    fn respond(
        self,
        head: ParsedHead,
        upload_complete: bool,
        pool: Arc<EndpointPool>,
    ) -> (ResponseHead, BackendBody) {
        let reusable = upload_complete && head.keep_alive && head.body != BodyFraming::UntilClose;
        let body = BackendBody::new(self, head.body, reusable.then_some(pool));
        (head.head, body)
    }

    /// Writes the head in `out` and the body of `req`. `Ok(false)`: a response began
    /// before the body was all sent, so the upload stopped.
    async fn write_request(
        &mut self,
        req: &mut Request<Incoming>,
        framing: RequestFraming,
        out: &mut Vec<u8>,
        progress: &mut Progress,
    ) -> io::Result<bool> {
        if framing == RequestFraming::None {
            return self.flush(out, progress).await;
        }
        let body = req.body_mut();
        loop {
            // Gather what the client has already sent; write when it has nothing
            // more at hand (or a batch is full), then wait for more.
            let frame = match std::future::poll_fn(|cx| {
                Poll::Ready(Pin::new(&mut *body).poll_frame(cx))
            })
            .await
            {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    if !self.flush(out, progress).await? {
                        return Ok(false);
                    }
                    let next = tokio::select! {
                        frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)) => Some(frame),
                        ready = self.stream.ready(Interest::READABLE) => {
                            ready?;
                            None
                        }
                    };
                    match next {
                        Some(frame) => frame,
                        None if self.response_began(progress)? => return Ok(false),
                        None => continue,
                    }
                }
            };
            match frame {
                Some(Ok(frame)) => {
                    progress.body_read = true;
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            if framing == RequestFraming::Chunked {
                                // Writing to a Vec cannot fail.
                                let _ = write!(out, "{:x}\r\n", data.len());
                                out.extend_from_slice(&data);
                                out.extend_from_slice(b"\r\n");
                            } else {
                                out.extend_from_slice(&data);
                            }
                        }
                    }
                    // Trailers are dropped: they concern the client's connection.
                    if out.len() >= WRITE_BATCH && !self.flush(out, progress).await? {
                        return Ok(false);
                    }
                }
                Some(Err(e)) => {
                    progress.body_read = true;
                    return Err(io::Error::other(format!("reading the request body: {e}")));
                }
                None => {
                    if framing == RequestFraming::Chunked {
                        out.extend_from_slice(b"0\r\n\r\n");
                    }
                    return self.flush(out, progress).await;
                }
            }
        }
    }

    /// Writes all of `out`; `Ok(false)` when a response began first (the rest is left
    /// unwritten).
    async fn flush(&mut self, out: &mut Vec<u8>, progress: &mut Progress) -> io::Result<bool> {
        let mut at = 0;
        while at < out.len() {
            match self.stream.try_write(&out[at..]) {
                Ok(n) => {
                    progress.wrote = true;
                    at += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ready = self
                        .stream
                        .ready(Interest::WRITABLE | Interest::READABLE)
                        .await?;
                    if ready.is_readable() && self.response_began(progress)? {
                        out.clear();
                        return Ok(false);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        out.clear();
        Ok(true)
    }

    /// Reads what the endpoint sent while the request was being written: whether a
    /// response (or the end of the connection) has begun. Interim (1xx) responses are
    /// passed over.
    fn response_began(&mut self, progress: &mut Progress) -> io::Result<bool> {
        self.buf.reserve(READ_SIZE);
        match self.stream.try_read_buf(&mut self.buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
        while let Some(n) = interim_head_len(&self.buf)? {
            self.buf.advance(n);
        }
        let began = !self.buf.is_empty();
        progress.response_started |= began;
        Ok(began)
    }

    /// Reads the response head (after any interim ones); an error of kind `TimedOut`
    /// when it has not come within `timeout` (counted from the first wait for it).
    async fn read_head(
        &mut self,
        method: &Method,
        progress: &mut Progress,
        timeout: Duration,
    ) -> io::Result<ParsedHead> {
        // `None` until the first wait; then `Some(None)` when the timeout is too long to
        // have a deadline.
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            if !self.buf.is_empty() {
                progress.response_started = true;
                if let Some(head) = take_head(&mut self.buf, method)? {
                    return Ok(head);
                }
            }
            self.buf.reserve(READ_SIZE);
            let n = std::future::poll_fn(|cx| {
                let read =
                    tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buf);
                if read.is_pending() {
                    let deadline =
                        *deadline.get_or_insert_with(|| Instant::now().checked_add(timeout));
                    if deadline.is_some_and(|d| self.head_timer.poll_expired(cx, d)) {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no response head within the response-header timeout",
                        )));
                    }
                }
                read
            })
            .await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed before a complete response head",
                ));
            }
        }
    }
}

/// What became of a request so far (to tell whether it may be sent again).
#[derive(Debug, Default)]
struct Progress {
    wrote: bool,
    body_read: bool,
    response_started: bool,
}

/// Sets the request's framing headers for the endpoint: its length when known, else
/// chunked; no body, no framing header added (a client's `content-length: 0` stays).
fn frame_request(req: &mut Request<Incoming>) -> RequestFraming {
    let body = req.body();
    let framing = if body.is_end_stream() {
        RequestFraming::None
    } else if let Some(n) = body.size_hint().exact() {
        req.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        RequestFraming::Length
    } else {
        let headers = req.headers_mut();
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        RequestFraming::Chunked
    };
    req.headers_mut().remove(header::EXPECT);
    framing
}

/// The request line (origin form, HTTP/1.1) and the headers.
fn encode_head(req: &Request<Incoming>, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// How a response body is framed (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyFraming {
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug)]
struct ParsedHead {
    head: ResponseHead,
    body: BodyFraming,
    keep_alive: bool,
}

#[derive(Debug)]
enum Parsed {
    /// A 1xx response other than 101: passed over.
    Interim,
    Final(ParsedHead),
}

/// The length of the interim (1xx) response head at the start of `buf`, if one is
/// there complete.
fn interim_head_len(buf: &[u8]) -> io::Result<Option<usize>> {
    match parse_head(buf, &Method::GET)? {
        Some((Parsed::Interim, n)) => Ok(Some(n)),
        _ => Ok(None),
    }
}

/// Takes the response head off the front of `buf`, after any interim ones: `None`
/// until one is there complete.
fn take_head(buf: &mut BytesMut, method: &Method) -> io::Result<Option<ParsedHead>> {
    let too_large = || invalid("the response head is too large");
    while let Some((head, n)) = parse_head(buf, method)? {
        // However it was read, in pieces or at once.
        if n > MAX_HEAD {
            return Err(too_large());
        }
        buf.advance(n);
        if let Parsed::Final(head) = head {
            return Ok(Some(head));
        }
    }
    if buf.len() > MAX_HEAD {
        return Err(too_large());
    }
    Ok(None)
}

/// Parses a response head at the start of `buf`: `None` until it is complete.
fn parse_head(buf: &[u8], method: &Method) -> io::Result<Option<(Parsed, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(format!("invalid response head: {e}"))),
    };
    let code = parsed.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| invalid(format!("invalid status {code}")))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(invalid("the endpoint switched protocols unasked"));
    }
    if status.is_informational() {
        return Ok(Some((Parsed::Interim, len)));
    }
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut map = HeaderMap::with_capacity(parsed.headers.len());
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    // HTTP/1.0 closes unless asked not to; `close` anywhere closes.
    let mut keep_alive = version == Version::HTTP_11;
    let mut close = false;
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| invalid(format!("invalid header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| invalid(format!("invalid value of header {}", h.name)))?;
        if name == header::CONTENT_LENGTH {
            let list = value
                .to_str()
                .map_err(|_| invalid("invalid content-length"))?;
            for part in list.split(',') {
                let n = parse_length(part.trim_matches([' ', '\t']))?;
                if length.is_some_and(|l| l != n) {
                    return Err(invalid("conflicting content-length headers"));
                }
                length = Some(n);
            }
        } else if name == header::TRANSFER_ENCODING {
            transfer_encoding = true;
            // Only the last coding of the last field says whether the body is chunked.
            chunked = value
                .to_str()
                .ok()
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name == header::CONNECTION {
            for token in value.to_str().unwrap_or("").split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
        map.append(name, value);
    }
    if transfer_encoding && version == Version::HTTP_10 {
        // RFC 9112 §6.1: the framing of such a message is faulty.
        return Err(invalid("transfer-encoding in an HTTP/1.0 response"));
    }
    let body = if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        BodyFraming::Length(0)
    } else if transfer_encoding {
        // The transfer coding overrides any length (which must then not be passed on);
        // both at once may be an attempt at response splitting (RFC 9112 §6.3): the
        // connection is not trusted with another response.
        if map.remove(header::CONTENT_LENGTH).is_some() {
            close = true;
        }
        if chunked {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        }
    } else if let Some(n) = length {
        BodyFraming::Length(n)
    } else {
        BodyFraming::UntilClose
    };
    let head = ParsedHead {
        head: ResponseHead {
            status,
            headers: map,
        },
        body,
        keep_alive: keep_alive && !close,
    };
    Ok(Some((Parsed::Final(head), len)))
}

/// A `Content-Length` value: decimal digits only (no sign, no space), at most
/// [`MAX_LENGTH`].
fn parse_length(digits: &str) -> io::Result<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("invalid content-length"));
    }
    digits
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_LENGTH)
        .ok_or_else(|| invalid("content-length too large"))
}

/// A response body read from its connection; once read to the end, the connection
/// goes back to its endpoint's pool (when it can carry another request). A body
/// dropped before its end closes the connection.
#[derive(Debug)]
pub(crate) struct BackendBody {
    conn: Option<BackendConn>,
    /// Where the connection goes after the body: `None` when it cannot be reused.
    pool: Option<Arc<EndpointPool>>,
    state: BodyState,
}

#[derive(Debug)]
enum BodyState {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// What the body reader found in the connection's buffer.
#[derive(Debug)]
enum BodyStep {
    Data(Bytes),
    /// Nothing until more is read.
    NeedMore,
    End,
}

impl BodyState {
    fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::Length(0) => BodyState::Done,
            BodyFraming::Length(n) => BodyState::Length(n),
            BodyFraming::Chunked => BodyState::Chunked(ChunkedDecoder::default()),
            BodyFraming::UntilClose => BodyState::UntilClose,
        }
    }

    /// Takes the next piece of the body off `buf`.
    fn step(&mut self, buf: &mut BytesMut) -> io::Result<BodyStep> {
        match self {
            BodyState::Done => Ok(BodyStep::End),
            _ if buf.is_empty() => Ok(BodyStep::NeedMore),
            BodyState::Length(remaining) => {
                let data = take_counted(buf, remaining);
                if *remaining == 0 {
                    *self = BodyState::Done;
                }
                Ok(BodyStep::Data(data))
            }
            BodyState::UntilClose => Ok(BodyStep::Data(buf.split().freeze())),
            BodyState::Chunked(decoder) => match decoder.decode(buf)? {
                Chunk::Data(data) => Ok(BodyStep::Data(data)),
                Chunk::NeedMore => Ok(BodyStep::NeedMore),
                Chunk::End => {
                    *self = BodyState::Done;
                    Ok(BodyStep::End)
                }
            },
        }
    }

    /// A chunked body whose end is already in `buf` ends now.
    fn settle(&mut self, buf: &mut BytesMut) {
        if let BodyState::Chunked(d) = self {
            if d.at_end(buf) {
                *self = BodyState::Done;
            }
        }
    }
}

impl BackendBody {
    fn new(conn: BackendConn, framing: BodyFraming, pool: Option<Arc<EndpointPool>>) -> Self {
        let mut body = BackendBody {
            conn: Some(conn),
            pool,
            state: BodyState::new(framing),
        };
        body.settle();
        body
    }

    /// A chunked body whose end is already read ends now; an ended body gives its
    /// connection back.
    fn settle(&mut self) {
        if let Some(conn) = &mut self.conn {
            self.state.settle(&mut conn.buf);
        }
        if matches!(self.state, BodyState::Done) {
            if let (Some(conn), Some(pool)) = (self.conn.take(), self.pool.take()) {
                pool.put(conn);
            }
        }
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.conn = None;
        self.state = BodyState::Done;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for BackendBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.state.step(&mut conn.buf) {
                Ok(BodyStep::Data(data)) => {
                    this.settle();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(BodyStep::End) => {
                    this.settle();
                    return Poll::Ready(None);
                }
                Ok(BodyStep::NeedMore) => {}
                Err(e) => return this.fail(e),
            }
            // Nothing buffered: read more.
            conn.buf.reserve(READ_SIZE);
            match tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return this.fail(e),
                Poll::Ready(Ok(0)) => {
                    if matches!(this.state, BodyState::UntilClose) {
                        this.conn = None;
                        this.state = BodyState::Done;
                        return Poll::Ready(None);
                    }
                    return this.fail(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed before the end of the response body",
                    ));
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            BodyState::Done => SizeHint::with_exact(0),
            BodyState::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// What the chunked decoder found.
#[derive(Debug, PartialEq, Eq)]
enum Chunk {
    Data(Bytes),
    NeedMore,
    End,
}

/// Decodes a chunked body (RFC 9112 §7.1): chunk-size lines (extensions checked and
/// ignored), data, and the trailer section after the last chunk (checked and dropped).
#[derive(Debug, Default)]
struct ChunkedDecoder {
    state: ChunkState,
    /// Trailer bytes read so far.
    trailers: usize,
    /// Trailer fields read so far.
    trailer_fields: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    End,
}

impl ChunkedDecoder {
    /// Decodes from `buf`, consuming what it used.
    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Chunk> {
        loop {
            match self.state {
                ChunkState::End => return Ok(Chunk::End),
                ChunkState::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(Chunk::NeedMore);
                    }
                    let mut left = remaining;
                    let data = take_counted(buf, &mut left);
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Chunk::Data(data));
                }
                _ => match self.step(buf)? {
                    Some(n) => buf.advance(n),
                    None => return Ok(Chunk::NeedMore),
                },
            }
        }
    }

    /// Whether the body's end is already in `buf` with no data before it; if so the
    /// framing up to it is consumed, otherwise nothing is.
    fn at_end(&mut self, buf: &mut BytesMut) -> bool {
        let mut probe = ChunkedDecoder {
            state: self.state,
            trailers: self.trailers,
            trailer_fields: self.trailer_fields,
        };
        let mut at = 0;
        loop {
            match probe.state {
                ChunkState::End => {
                    *self = probe;
                    buf.advance(at);
                    return true;
                }
                ChunkState::Data(_) => return false,
                _ => match probe.step(&buf[at..]) {
                    Ok(Some(n)) => at += n,
                    _ => return false,
                },
            }
        }
    }

    /// One step through framing at the front of `buf` (a chunk-size line, the CRLF
    /// after data, a trailer line): how many bytes it took, `None` until `buf` holds it
    /// whole.
    fn step(&mut self, buf: &[u8]) -> io::Result<Option<usize>> {
        let taken = match self.state {
            ChunkState::Size => {
                let Some(len) = line_len(buf, MAX_CHUNK_LINE, "chunk-size line")? else {
                    return Ok(None);
                };
                let size = parse_chunk_size(&buf[..len])?;
                self.state = if size == 0 {
                    ChunkState::Trailers
                } else {
                    ChunkState::Data(size)
                };
                len + 2
            }
            ChunkState::DataEnd => {
                if buf.len() < 2 {
                    if buf.first().is_some_and(|b| *b != b'\r') {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    return Ok(None);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(invalid("chunk data not followed by CRLF"));
                }
                self.state = ChunkState::Size;
                2
            }
            ChunkState::Trailers => {
                let room = MAX_TRAILERS.saturating_sub(self.trailers);
                let Some(len) = line_len(buf, room, "trailer section")? else {
                    return Ok(None);
                };
                self.trailers += len + 2;
                if len == 0 {
                    self.state = ChunkState::End;
                } else {
                    self.trailer_fields += 1;
                    if self.trailer_fields > MAX_HEADERS {
                        return Err(invalid("too many trailer fields"));
                    }
                    check_field_line(&buf[..len])?;
                }
                len + 2
            }
            ChunkState::Data(_) | ChunkState::End => return Ok(None),
        };
        Ok(Some(taken))
    }
}

/// Up to `remaining` bytes off the front of `buf`, counted off `remaining`.
fn take_counted(buf: &mut BytesMut, remaining: &mut u64) -> Bytes {
    let take = buf
        .len()
        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
    *remaining -= take as u64;
    take_data(buf, take)
}

/// The first `n` bytes of `buf`, taken off it (copied when small, see [`COPY_BELOW`]).
fn take_data(buf: &mut BytesMut, n: usize) -> Bytes {
    if n < COPY_BELOW {
        let data = Bytes::copy_from_slice(&buf[..n]);
        buf.advance(n);
        data
    } else {
        buf.split_to(n).freeze()
    }
}

/// The length of the CRLF-terminated line at the front of `buf` (without its CRLF);
/// `None` until a whole line is there; an error when it is longer than `max`.
fn line_len(buf: &[u8], max: usize, what: &str) -> io::Result<Option<usize>> {
    match buf.iter().take(max + 2).position(|b| *b == b'\n') {
        Some(end) if end == 0 || buf[end - 1] != b'\r' => {
            Err(invalid(format!("{what}: a line not ended by CRLF")))
        }
        Some(end) => Ok(Some(end - 1)),
        None if buf.len() > max + 1 => Err(invalid(format!("{what} too long"))),
        None => Ok(None),
    }
}

/// The size of a chunk-size line (without its CRLF): 1 to 16 hex digits, then
/// optional extensions (`*( BWS ";" ... )`, whitespace SP or HTAB, no control bytes).
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let rest = &line[digits..];
    let bws = rest
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(rest.len());
    let extensions = &rest[bws..];
    let rest_ok = rest.is_empty()
        || (extensions.first() == Some(&b';') && extensions.iter().all(|b| is_field_byte(*b)));
    if digits == 0 || digits > 16 || !rest_ok {
        return Err(invalid("invalid chunk size"));
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| invalid("invalid chunk size"))?;
    u64::from_str_radix(hex, 16).map_err(|_| invalid("invalid chunk size"))
}

/// A byte that may appear in a field value or a chunk extension: visible ASCII, SP,
/// HTAB and obs-text; no other control byte (CR, LF and NUL least of all).
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

/// Checks a trailer line (without its CRLF) is a field line, `name ":" value`: a token
/// for the name, right before the colon, and field bytes for the value. A line starting
/// with whitespace (obs-fold) is refused.
fn check_field_line(line: &[u8]) -> io::Result<()> {
    let colon = line.iter().position(|b| *b == b':').unwrap_or(0);
    let name_ok = colon > 0 && line[..colon].iter().all(|b| is_token_byte(*b));
    if !name_ok || !line[colon + 1..].iter().all(|b| is_field_byte(*b)) {
        return Err(invalid("invalid trailer field"));
    }
    Ok(())
}

/// A `tchar` of RFC 9110 §5.6.2.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The proxy's response reading over bytes instead of a socket, for `router::fuzzing`:
/// the same head and body code as [`BackendConn::send`] and [`BackendBody`], the input
/// handed over in reads of the sizes in `reads` (cycled; 0: all the rest), then the
/// connection's end.
#[cfg(feature = "fuzzing")]
pub(super) mod over_bytes {
    use super::super::fuzzing::{BodyEnd, Decoded, Framed, Framing, Response};
    use super::*;

    /// The input, handed over a read at a time.
    struct Feed<'a> {
        input: &'a [u8],
        at: usize,
        reads: &'a [usize],
        count: usize,
    }

    impl<'a> Feed<'a> {
        fn new(input: &'a [u8], reads: &'a [usize]) -> Self {
            Feed {
                input,
                at: 0,
                reads,
                count: 0,
            }
        }

        /// Appends the next read to `buf`; `false` at the end of the input.
        fn read(&mut self, buf: &mut BytesMut) -> bool {
            let left = self.input.len() - self.at;
            if left == 0 {
                return false;
            }
            let size = match self.reads.get(self.count % self.reads.len().max(1)) {
                Some(&n) if n > 0 => n.min(left),
                _ => left,
            };
            buf.extend_from_slice(&self.input[self.at..self.at + size]);
            self.at += size;
            self.count += 1;
            true
        }

        /// How much of the input has been consumed, with `buf` left.
        fn consumed(&self, buf: &BytesMut) -> usize {
            self.at - buf.len()
        }
    }

    /// Frames `input` as the response to a request of `method`.
    pub(in super::super) fn frame_response(
        input: &[u8],
        method: &Method,
        reads: &[usize],
    ) -> Framed {
        let mut feed = Feed::new(input, reads);
        let mut buf = BytesMut::new();
        let head = loop {
            match take_head(&mut buf, method) {
                Err(e) => return Framed::Refused(e.to_string()),
                Ok(Some(head)) => break head,
                Ok(None) if feed.read(&mut buf) => {}
                Ok(None) => return Framed::Incomplete,
            }
        };
        let head_len = feed.consumed(&buf);
        let framing = match head.body {
            BodyFraming::Length(n) => Framing::Length(n),
            BodyFraming::Chunked => Framing::Chunked,
            BodyFraming::UntilClose => Framing::UntilClose,
        };
        let mut state = BodyState::new(head.body);
        let (body, end) = read_body(&mut state, &mut feed, &mut buf, true);
        Framed::Response(Response {
            status: head.head.status.as_u16(),
            head_len,
            framing,
            keep_alive: head.keep_alive,
            body,
            end,
        })
    }

    /// Decodes `input` as a chunked body; `settle`: look for an already-read end after
    /// each piece of data, as the proxy does.
    pub(in super::super) fn decode_chunked(input: &[u8], reads: &[usize], settle: bool) -> Decoded {
        let mut feed = Feed::new(input, reads);
        let mut buf = BytesMut::new();
        let mut state = BodyState::Chunked(ChunkedDecoder::default());
        let (data, end) = read_body(&mut state, &mut feed, &mut buf, settle);
        Decoded { data, end }
    }

    /// Reads a body as [`BackendBody::poll_frame`] does.
    fn read_body(
        state: &mut BodyState,
        feed: &mut Feed<'_>,
        buf: &mut BytesMut,
        settle: bool,
    ) -> (Vec<u8>, BodyEnd) {
        let mut body = Vec::new();
        if settle {
            state.settle(buf);
        }
        // Every step takes data, ends, fails, or is followed by a read: a body reader
        // that loops without any of those is a hang.
        let mut steps = 0;
        let end = loop {
            steps += 1;
            assert!(
                steps <= 2 * feed.input.len() + 4,
                "the body reader made no progress"
            );
            match state.step(buf) {
                Err(e) => break BodyEnd::Invalid(e.to_string()),
                Ok(BodyStep::End) => break BodyEnd::At(feed.consumed(buf)),
                Ok(BodyStep::Data(data)) => {
                    assert!(!data.is_empty(), "an empty piece of body data");
                    body.extend_from_slice(&data);
                    if settle {
                        state.settle(buf);
                    }
                    if matches!(state, BodyState::Done) {
                        break BodyEnd::At(feed.consumed(buf));
                    }
                }
                Ok(BodyStep::NeedMore) if feed.read(buf) => {}
                Ok(BodyStep::NeedMore) if matches!(state, BodyState::UntilClose) => {
                    break BodyEnd::Close
                }
                Ok(BodyStep::NeedMore) => break BodyEnd::Cut,
            }
        };
        (body, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    /// Feeds `input` to a decoder `split` bytes at a time: the data, whether the body
    /// ended, and how many bytes of `input` were left after its end.
    fn decode_all(input: &[u8], split: usize) -> io::Result<(Vec<u8>, bool, usize)> {
        let mut d = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        for piece in input.chunks(split.max(1)) {
            buf.put_slice(piece);
            fed += piece.len();
            loop {
                match d.decode(&mut buf)? {
                    Chunk::Data(b) => out.extend_from_slice(&b),
                    Chunk::NeedMore => break,
                    Chunk::End => return Ok((out, true, buf.len() + input.len() - fed)),
                }
            }
        }
        Ok((out, false, buf.len()))
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_reads() {
        let body =
            b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for split in [1, 2, 3, 7, 64, 1000] {
            let (data, ended, left) = decode_all(body, split).unwrap();
            assert_eq!(data, b"hello 0123456789", "split {split}");
            assert!(ended, "split {split}");
            // What follows the body stays for the next response.
            assert_eq!(left, 4, "split {split}");
        }
        let (data, ended, _) = decode_all(b"0\r\n\r\n", 1).unwrap();
        assert!(data.is_empty() && ended);
        let (_, ended, _) = decode_all(b"5\r\nhel", 100).unwrap();
        assert!(!ended);
    }

    #[test]
    fn malformed_chunked_bodies_are_errors() {
        for bad in [
            &b"x\r\nhello\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\nhello\r\n",
            b"10000000000000000\r\n",
            b"5 junk\r\nhello\r\n",
        ] {
            assert!(
                decode_all(bad, 1000).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b'1'; MAX_CHUNK_LINE + 10];
        assert!(decode_all(&long, 1000).is_err());
        let mut trailers = b"0\r\n".to_vec();
        trailers
            .extend(std::iter::repeat_n(b"x-t: 1\r\n".to_vec(), MAX_TRAILERS / 8 + 1).flatten());
        assert!(decode_all(&trailers, 4096).is_err());
    }

    #[test]
    fn the_end_of_a_chunked_body_is_seen_when_already_read() {
        let mut d = ChunkedDecoder::default();
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
        assert_eq!(
            d.decode(&mut buf).unwrap(),
            Chunk::Data(Bytes::from_static(b"abc"))
        );
        assert!(d.at_end(&mut buf));
        assert!(buf.is_empty());
        let mut d = ChunkedDecoder::default();
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n"[..]);
        d.decode(&mut buf).unwrap();
        assert!(!d.at_end(&mut buf), "the trailer section has not ended");
        assert_eq!(
            &buf[..],
            b"\r\n0\r\n",
            "nothing consumed when not at the end"
        );
    }

    fn head(raw: &str, method: &Method) -> io::Result<Option<(Parsed, usize)>> {
        parse_head(raw.as_bytes(), method)
    }

    fn framing(raw: &str, method: &Method) -> (BodyFraming, bool, HeaderMap) {
        match head(raw, method).unwrap() {
            Some((Parsed::Final(h), n)) => {
                assert_eq!(n, raw.len());
                (h.body, h.keep_alive, h.head.headers)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let get = &Method::GET;
        let (b, ka, _) = framing("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n", get);
        assert_eq!((b, ka), (BodyFraming::Length(12), true));
        let (b, _, h) = framing(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
            get,
        );
        assert_eq!(b, BodyFraming::Chunked);
        assert!(
            !h.contains_key(header::CONTENT_LENGTH),
            "the length goes with a coding"
        );
        let (b, _, _) = framing("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", get);
        assert_eq!(b, BodyFraming::UntilClose);
        let (b, _, _) = framing("HTTP/1.1 200 OK\r\n\r\n", get);
        assert_eq!(b, BodyFraming::UntilClose);
        let (b, _, h) = framing(
            "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n",
            &Method::HEAD,
        );
        assert_eq!(b, BodyFraming::Length(0));
        assert_eq!(
            h[header::CONTENT_LENGTH],
            "12",
            "a HEAD answer keeps its length"
        );
        for status in ["204 No Content", "304 Not Modified"] {
            let (b, _, _) = framing(
                &format!("HTTP/1.1 {status}\r\ncontent-length: 5\r\n\r\n"),
                get,
            );
            assert_eq!(b, BodyFraming::Length(0), "{status}");
        }
        let (b, _, _) = framing("HTTP/1.1 200 OK\r\ncontent-length: 4, 4\r\n\r\n", get);
        assert_eq!(b, BodyFraming::Length(4));
        // Keep-alive: HTTP/1.1 unless closed; HTTP/1.0 only when asked.
        assert!(
            !framing(
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                get
            )
            .1
        );
        assert!(!framing("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", get).1);
        assert!(
            framing(
                "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 0\r\n\r\n",
                get
            )
            .1
        );
    }

    #[test]
    fn interim_responses_are_passed_over_and_bad_heads_refused() {
        assert!(matches!(
            head("HTTP/1.1 100 Continue\r\n\r\n", &Method::POST).unwrap(),
            Some((Parsed::Interim, 25))
        ));
        assert_eq!(
            interim_head_len(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200")
                .unwrap(),
            Some(40)
        );
        assert_eq!(interim_head_len(b"HTTP/1.1 200 OK\r\n\r\n").unwrap(), None);
        assert!(head("HTTP/1.1 200 OK\r\ncontent-le", &Method::GET)
            .unwrap()
            .is_none());
        for bad in [
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "SMTP ready\r\n\r\n",
        ] {
            assert!(head(bad, &Method::GET).is_err(), "{bad:?}");
        }
    }
}
