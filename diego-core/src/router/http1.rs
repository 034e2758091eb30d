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

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Version};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::pool::EndpointPool;

/// The largest response head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// The most headers a response may have.
const MAX_HEADERS: usize = 100;
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
    /// head. The body of the response stays on the connection: [`BackendBody`] reads
    /// it, and gives the connection back to `pool` once it has read it to the end (when
    /// the connection can carry another request).
    pub(crate) async fn send(
        mut self,
        req: &mut Request<Incoming>,
        pool: Arc<EndpointPool>,
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
        let fail = |error: io::Error, progress: &Progress| SendError {
            error,
            retryable: !progress.response_started
                && !progress.body_read
                && (!progress.wrote || idempotent),
        };
        let upload_complete = match written {
            Ok(complete) => complete,
            // A write that failed may still have a response waiting (an endpoint that
            // answered and closed): read it; without one, report the write's error.
            Err(e) => match self.read_head(req.method(), &mut progress).await {
                Ok(head) => return Ok(self.respond(head, false, pool)),
                Err(_) => return Err(fail(e, &progress)),
            },
        };
        match self.read_head(req.method(), &mut progress).await {
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

    /// Reads the response head (after any interim ones).
    async fn read_head(
        &mut self,
        method: &Method,
        progress: &mut Progress,
    ) -> io::Result<ParsedHead> {
        loop {
            if !self.buf.is_empty() {
                progress.response_started = true;
                if let Some((head, n)) = parse_head(&self.buf, method)? {
                    self.buf.advance(n);
                    match head {
                        Parsed::Interim => continue,
                        Parsed::Final(head) => return Ok(head),
                    }
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(invalid("the response head is too large"));
                }
            }
            self.buf.reserve(READ_SIZE);
            let n = std::future::poll_fn(|cx| {
                tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buf)
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
    let mut close = version == Version::HTTP_10;
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| invalid(format!("invalid header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| invalid(format!("invalid value of header {}", h.name)))?;
        if name == header::CONTENT_LENGTH {
            for part in value.to_str().unwrap_or("").split(',') {
                let n: u64 = part
                    .trim()
                    .parse()
                    .map_err(|_| invalid("invalid content-length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(invalid("conflicting content-length headers"));
                }
                length = Some(n);
            }
        } else if name == header::TRANSFER_ENCODING {
            transfer_encoding = true;
            // Only the last coding says whether the body is chunked.
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
                    close = false;
                }
            }
        }
        map.append(name, value);
    }
    let body = if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        BodyFraming::Length(0)
    } else if transfer_encoding {
        // The transfer coding overrides any length (which must then not be passed on).
        map.remove(header::CONTENT_LENGTH);
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
        keep_alive: !close,
    };
    Ok(Some((Parsed::Final(head), len)))
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

impl BackendBody {
    fn new(conn: BackendConn, framing: BodyFraming, pool: Option<Arc<EndpointPool>>) -> Self {
        let state = match framing {
            BodyFraming::Length(0) => BodyState::Done,
            BodyFraming::Length(n) => BodyState::Length(n),
            BodyFraming::Chunked => BodyState::Chunked(ChunkedDecoder::default()),
            BodyFraming::UntilClose => BodyState::UntilClose,
        };
        let mut body = BackendBody {
            conn: Some(conn),
            pool,
            state,
        };
        body.settle();
        body
    }

    /// A chunked body whose end is already read ends now; an ended body gives its
    /// connection back.
    fn settle(&mut self) {
        if let (BodyState::Chunked(d), Some(conn)) = (&mut self.state, &mut self.conn) {
            if d.at_end(&mut conn.buf) {
                self.state = BodyState::Done;
            }
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
            let data = match &mut this.state {
                BodyState::Done => return Poll::Ready(None),
                BodyState::Length(remaining) => {
                    if conn.buf.is_empty() {
                        None
                    } else {
                        let data = take_counted(&mut conn.buf, remaining);
                        if *remaining == 0 {
                            this.state = BodyState::Done;
                        }
                        Some(data)
                    }
                }
                BodyState::UntilClose => (!conn.buf.is_empty()).then(|| conn.buf.split().freeze()),
                BodyState::Chunked(decoder) => match decoder.decode(&mut conn.buf) {
                    Ok(Chunk::Data(data)) => Some(data),
                    Ok(Chunk::NeedMore) => None,
                    Ok(Chunk::End) => {
                        this.state = BodyState::Done;
                        this.settle();
                        return Poll::Ready(None);
                    }
                    Err(e) => return this.fail(e),
                },
            };
            if let Some(data) = data {
                this.settle();
                return Poll::Ready(Some(Ok(Frame::data(data))));
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

/// Decodes a chunked body (RFC 9112 §7.1): chunk-size lines (extensions ignored), data,
/// and the trailer section after the last chunk (dropped).
#[derive(Debug, Default)]
struct ChunkedDecoder {
    state: ChunkState,
    /// Trailer bytes read so far.
    trailers: usize,
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

/// The size of a chunk-size line (hex digits, then optional `;extensions`).
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let rest = &line[digits..];
    let rest_ok = rest.is_empty() || matches!(rest.trim_ascii_start().first(), Some(b';'));
    if digits == 0 || digits > 16 || !rest_ok {
        return Err(invalid("invalid chunk size"));
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| invalid("invalid chunk size"))?;
    u64::from_str_radix(hex, 16).map_err(|_| invalid("invalid chunk size"))
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
