//! Entry points into the HTTP proxy's HTTP/1.1 client framing (feature `fuzzing`; not a
//! stable API): for the fuzz targets in `fuzz/` and for the test that replays their
//! corpus (`tests/router_framing.rs`, which also checks the differential cases).
//!
//! [`frame_response`] and [`decode_chunked`] run the proxy's own code (the response head
//! parser and the body readers) over bytes instead of a socket. The `check_*` functions
//! are the fuzz targets' bodies: they frame one input in several ways and panic when
//! what must hold whatever the bytes does not — the same result however the bytes are
//! split into reads, no body byte beyond a declared length or beyond the input, a
//! length-framed body exactly its length, a prefix of a good chunked body never an
//! error, every step of a reader making progress. [`read_with_hyper`] reads the same
//! bytes with hyper's client over an in-memory pipe, and [`compare`] says whether the two
//! readings agree, or ours is the stricter, or they differ (a framing bug, maybe a
//! request-smuggling one).
//!
//! This module knows the proxy's framing and hyper's client; nothing of routes.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
pub use hyper::Method;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::http1::over_bytes;

/// How the proxy framed a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framed {
    /// The bytes ended before a complete response head.
    Incomplete,
    /// The head was refused (the client gets a 502).
    Refused(String),
    /// A response head, and what became of its body.
    Response(Response),
}

/// A response head the proxy took, and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status (never an interim one: those are passed over).
    pub status: u16,
    /// The bytes of the head, interim heads before it included.
    pub head_len: usize,
    /// How the head says its body is framed.
    pub framing: Framing,
    /// Whether the head lets the connection carry another response.
    pub keep_alive: bool,
    /// The body's bytes, as the client gets them.
    pub body: Vec<u8>,
    /// How the body ended.
    pub end: BodyEnd,
}

impl Response {
    /// Whether the proxy would send another request on the connection after this
    /// response to `input`: the head allows it, the body ended by its framing, and no
    /// byte of `input` is left over.
    pub fn reusable(&self, input: &[u8]) -> bool {
        self.keep_alive && self.end == BodyEnd::At(input.len())
    }
}

/// How a response body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// This many bytes.
    Length(u64),
    /// Chunked.
    Chunked,
    /// Until the connection closes.
    UntilClose,
}

/// How a body ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// By its framing, this many bytes into the input: the next response starts there.
    At(usize),
    /// With the input (the connection's close), as a close-delimited body does.
    Close,
    /// The input ended first: the client gets an error.
    Cut,
    /// Its framing was refused: the client gets an error.
    Invalid(String),
}

/// What the chunked decoder made of a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The data.
    pub data: Vec<u8>,
    /// How it ended.
    pub end: BodyEnd,
}

/// Frames `input` as the proxy frames an endpoint's answer to a request of `method`,
/// handed over in reads of the sizes in `reads` (cycled; 0: all the rest), then the
/// connection's end.
pub fn frame_response(input: &[u8], method: &Method, reads: &[usize]) -> Framed {
    over_bytes::frame_response(input, method, reads)
}

/// Decodes `input` as a chunked body, in reads as [`frame_response`]; `settle`: look for
/// an already-read end after each piece of data, as the proxy does.
pub fn decode_chunked(input: &[u8], reads: &[usize], settle: bool) -> Decoded {
    over_bytes::decode_chunked(input, reads, settle)
}

/// Read sizes that split `input` in several ways: whole, a byte at a time (for inputs
/// of fuzzing size: every read parses the head again), and a few patterns chosen from
/// the input itself.
fn splits(input: &[u8]) -> Vec<Vec<usize>> {
    let seed = input
        .iter()
        .fold(7usize, |h, b| h.wrapping_mul(31) ^ usize::from(*b));
    let mut splits = vec![
        vec![0],
        vec![2, 7, 1, 13],
        vec![input.len() / 2 + 1],
        vec![seed % 17 + 1, seed % 5 + 1, seed % 61 + 1],
    ];
    if input.len() <= 8 * 1024 {
        splits.push(vec![1]);
    }
    splits
}

fn without_messages(framed: &Framed) -> Framed {
    match framed {
        Framed::Refused(_) => Framed::Refused(String::new()),
        Framed::Response(r) => Framed::Response(Response {
            end: end_without_message(&r.end),
            ..r.clone()
        }),
        Framed::Incomplete => Framed::Incomplete,
    }
}

fn end_without_message(end: &BodyEnd) -> BodyEnd {
    match end {
        BodyEnd::Invalid(_) => BodyEnd::Invalid(String::new()),
        other => other.clone(),
    }
}

/// The fuzz target `response`: frames `input` as the answer to a GET and to a HEAD, in
/// several splits into reads (whole, a byte at a time, patterns chosen from the input);
/// panics when an invariant fails.
pub fn check_response(input: &[u8]) {
    for method in [Method::GET, Method::HEAD] {
        let whole = frame_response(input, &method, &[0]);
        for reads in splits(input) {
            let split = frame_response(input, &method, &reads);
            assert_eq!(
                without_messages(&split),
                without_messages(&whole),
                "{method} read in pieces of {reads:?} framed otherwise than read whole"
            );
        }
        if let Framed::Response(r) = &whole {
            check_framed_response(input, &method, r);
        }
    }
}

fn check_framed_response(input: &[u8], method: &Method, r: &Response) {
    let len = input.len();
    assert!(
        r.head_len > 0 && r.head_len <= len,
        "head length {}",
        r.head_len
    );
    // Interim heads are passed over, a 101 refused.
    assert!(
        (200..=999).contains(&r.status),
        "status {} passed on",
        r.status
    );
    let rest = &input[r.head_len..];
    assert!(r.body.len() <= rest.len(), "more body than input");
    if *method == Method::HEAD || r.status == 204 || r.status == 304 {
        assert_eq!(r.framing, Framing::Length(0), "a response without a body");
    }
    // The head's framing does not depend on what follows it.
    match frame_response(&input[..r.head_len], method, &[0]) {
        Framed::Response(h) => assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (r.status, r.framing, r.keep_alive),
            "the head alone framed otherwise"
        ),
        other => panic!("the head alone: {other:?}"),
    }
    match (&r.framing, &r.end) {
        (Framing::Length(n), BodyEnd::At(end)) => {
            let n = usize::try_from(*n).unwrap_or(usize::MAX);
            assert_eq!(r.body.len(), n, "a length-framed body of another length");
            assert_eq!(*end, r.head_len + n, "read past the declared length");
            assert_eq!(r.body, rest[..n], "body bytes not the input's");
        }
        (Framing::Length(n), BodyEnd::Cut) => {
            assert!((rest.len() as u64) < *n, "cut short with the length there");
            assert_eq!(r.body, rest, "a cut body is what there was");
        }
        (Framing::UntilClose, BodyEnd::Close) => {
            assert_eq!(r.body, rest, "a close-delimited body is all the rest")
        }
        (Framing::Chunked, end) => {
            let decoded = decode_chunked(rest, &[0], true);
            assert_eq!(decoded.data, r.body, "the decoder alone decoded otherwise");
            let shifted = match &decoded.end {
                BodyEnd::At(n) => BodyEnd::At(r.head_len + n),
                other => end_without_message(other),
            };
            assert_eq!(
                shifted,
                end_without_message(end),
                "the decoder alone ended otherwise"
            );
        }
        (framing, end) => panic!("a {framing:?} body ended {end:?}"),
    }
}

/// The fuzz target `chunked`: decodes `input` as a chunked body in several splits into
/// reads, with and without the look for an already-read end; panics when an invariant
/// fails.
pub fn check_chunked(input: &[u8]) {
    let whole = decode_chunked(input, &[0], false);
    let plain = |d: &Decoded| Decoded {
        data: d.data.clone(),
        end: end_without_message(&d.end),
    };
    for reads in splits(input) {
        for settle in [false, true] {
            let split = decode_chunked(input, &reads, settle);
            assert_eq!(
                plain(&split),
                plain(&whole),
                "read in pieces of {reads:?} (settle {settle}) decoded otherwise than read whole"
            );
        }
    }
    assert!(whole.data.len() <= input.len(), "more data than input");
    match whole.end {
        BodyEnd::At(end) => {
            // "0\r\n\r\n" at least, besides the data.
            assert!(
                end <= input.len() && whole.data.len() + 5 <= end,
                "ended at {end} with {} bytes of data",
                whole.data.len()
            );
            // What follows the end is not read; what comes before it is incomplete, not
            // wrong.
            let body = &input[..end];
            assert_eq!(plain(&decode_chunked(body, &[0], true)), plain(&whole));
            for cut in [end - 1, end / 2, end.saturating_sub(3)] {
                let prefix = decode_chunked(&body[..cut], &[0], true);
                assert_eq!(
                    prefix.end,
                    BodyEnd::Cut,
                    "a prefix of {cut} bytes of a good body"
                );
                assert!(
                    whole.data.starts_with(&prefix.data),
                    "a prefix decoded otherwise"
                );
            }
        }
        BodyEnd::Cut => {}
        BodyEnd::Invalid(_) => {}
        BodyEnd::Close => panic!("a chunked body ended with the connection"),
    }
}

// ------------------------------------------------------------- against hyper's client

/// What a client made of an endpoint's bytes, in terms both clients can be asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// No response: the head was refused, or the bytes ended before it did.
    NoResponse,
    /// A response whose body was refused or cut short: the client gets its head, then
    /// an error.
    BrokenBody {
        /// The status of the head.
        status: u16,
    },
    /// A complete response.
    Complete {
        /// The status.
        status: u16,
        /// The body.
        body: Vec<u8>,
        /// What came of the connection after it.
        next: Next,
    },
}

/// What became of the connection after a complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// It carried the next request, and the next response was read as it was sent: the
    /// first response ended where its sender meant it to.
    Probe,
    /// It was closed (the response said so, was close-delimited, or left bytes over).
    Closed,
    /// Something else was read as the next response: where the first ended was not
    /// where its sender meant it to.
    Other(String),
}

/// The response an endpoint sends to the request after the one under test.
const PROBE: &[u8] = b"HTTP/1.1 200 OK\r\nx-probe: 1\r\ncontent-length: 5\r\n\r\nprobe";

/// How long a reader may make no progress before it is taken to wait for more bytes.
/// Under a paused clock (as the fuzz targets and tests run this) it costs no time.
const STALL: Duration = Duration::from_secs(5);

/// The proxy's reading of `input`.
pub fn read_with_proxy(input: &[u8], method: &Method) -> Reading {
    match frame_response(input, method, &[0]) {
        Framed::Incomplete | Framed::Refused(_) => Reading::NoResponse,
        Framed::Response(r) => match &r.end {
            BodyEnd::Cut | BodyEnd::Invalid(_) => Reading::BrokenBody { status: r.status },
            BodyEnd::At(_) | BodyEnd::Close => Reading::Complete {
                status: r.status,
                next: if r.reusable(input) {
                    Next::Probe
                } else {
                    Next::Closed
                },
                body: r.body,
            },
        },
    }
}

/// hyper's client's reading of `input`, the answer to a request of `method` over an
/// in-memory connection; then, when it keeps the connection, of the next exchange
/// (the endpoint sends its answer only after it has read the next request). A reader
/// that waits for more bytes gets the connection's end after a stall of 5 s: run this
/// on a current-thread runtime with a paused clock.
pub async fn read_with_hyper(input: &[u8], method: &Method) -> Reading {
    let (client, mut endpoint) = tokio::io::duplex(input.len() + PROBE.len() + 64 * 1024);
    let Ok((mut sender, conn)) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(client)).await
    else {
        return Reading::NoResponse;
    };
    let conn = tokio::spawn(conn);
    let reading = exchange(&mut sender, &mut endpoint, input, method).await;
    conn.abort();
    reading
}

async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    endpoint: &mut DuplexStream,
    input: &[u8],
    method: &Method,
) -> Reading {
    let mut received = Vec::new();
    let response = pin!(sender.send_request(request(method)));
    if !read_request(endpoint, &mut received).await || endpoint.write_all(input).await.is_err() {
        return Reading::NoResponse;
    }
    let mut closed = false;
    let Some(Ok(response)) = until_stalled(response, endpoint, &mut closed).await else {
        return Reading::NoResponse;
    };
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    loop {
        match until_stalled(body.frame(), endpoint, &mut closed).await {
            None | Some(Some(Err(_))) => return Reading::BrokenBody { status },
            Some(None) => break,
            Some(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
        }
    }
    let next = if closed {
        Next::Closed
    } else {
        next_exchange(sender, endpoint, &mut received).await
    };
    Reading::Complete {
        status,
        body: bytes,
        next,
    }
}

/// The exchange after the first: [`Next::Probe`] when hyper sends another request and
/// reads the endpoint's answer to it as sent.
async fn next_exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    endpoint: &mut DuplexStream,
    received: &mut Vec<u8>,
) -> Next {
    if !matches!(
        tokio::time::timeout(STALL, sender.ready()).await,
        Ok(Ok(()))
    ) {
        return Next::Closed;
    }
    let response = sender.send_request(request(&Method::GET));
    let mut response = pin!(response);
    // hyper may take bytes left over for the response before the endpoint has even read
    // the request; else the endpoint reads it and answers with the probe.
    let early = tokio::select! {
        got = read_request(endpoint, received) => {
            if !got || endpoint.write_all(PROBE).await.is_err() {
                return Next::Closed;
            }
            None
        }
        answer = response.as_mut() => Some(answer),
    };
    let answer = match early {
        Some(answer) => answer,
        None => match tokio::time::timeout(STALL, response).await {
            Ok(answer) => answer,
            Err(_) => return Next::Closed,
        },
    };
    let Ok(answer) = answer else {
        return Next::Closed;
    };
    let status = answer.status();
    let probe_header = answer.headers().contains_key("x-probe");
    let body = tokio::time::timeout(STALL, answer.into_body().collect())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| b.to_bytes());
    match body {
        Some(body) if probe_header && body == "probe" => Next::Probe,
        body => Next::Other(format!("{status} {body:?}")),
    }
}

fn request(method: &Method) -> Request<Empty<Bytes>> {
    let mut req = Request::new(Empty::new());
    *req.method_mut() = method.clone();
    req.headers_mut().insert(
        hyper::header::HOST,
        hyper::header::HeaderValue::from_static("fuzz.example"),
    );
    req
}

/// Reads one request head (the requests have no body) off `endpoint`; `false` when
/// none comes.
async fn read_request(endpoint: &mut DuplexStream, received: &mut Vec<u8>) -> bool {
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            received.drain(..end + 4);
            return true;
        }
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(STALL, endpoint.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&chunk[..n]),
            _ => return false,
        }
    }
}

/// Awaits `fut`; when it stalls, closes the endpoint's side (once: `closed`) and awaits
/// it again. `None` when it stalls even then.
async fn until_stalled<F: Future>(
    fut: F,
    endpoint: &mut DuplexStream,
    closed: &mut bool,
) -> Option<F::Output> {
    let mut fut = pin!(fut);
    loop {
        match tokio::time::timeout(STALL, fut.as_mut()).await {
            Ok(out) => return Some(out),
            Err(_) if !*closed => {
                *closed = true;
                let _ = endpoint.shutdown().await;
            }
            Err(_) => return None,
        }
    }
}

/// How the proxy's reading of some bytes compares with hyper's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Both read the same.
    Agree,
    /// The proxy refused (the response, its body, or another response on the
    /// connection) what hyper took.
    OursStricter(String),
    /// They differ otherwise: a framing bug in one of them.
    Disagree(String),
}

/// Compares the proxy's reading with hyper's.
pub fn compare(ours: &Reading, hyper: &Reading) -> Verdict {
    use Reading::*;
    if ours == hyper {
        return Verdict::Agree;
    }
    match (ours, hyper) {
        (NoResponse, _) => {
            Verdict::OursStricter(format!("refused a response hyper read as {hyper:?}"))
        }
        (BrokenBody { status }, Complete { status: s, .. }) if status == s => {
            Verdict::OursStricter("refused a body hyper took".into())
        }
        (
            Complete {
                status,
                body,
                next: Next::Closed,
            },
            Complete {
                status: s,
                body: b,
                next: Next::Probe | Next::Other(_),
            },
        ) if status == s && body == b => Verdict::OursStricter(format!(
            "closed a connection hyper went on with ({:?})",
            hyper
        )),
        _ => Verdict::Disagree(format!("ours {ours:?}, hyper's {hyper:?}")),
    }
}

/// The fuzz target `differential`: reads `input` as the answer to a GET and to a HEAD
/// with the proxy and with hyper's client (on `runtime`, which must be a current-thread
/// runtime with a paused clock); panics when they disagree other than by the proxy's
/// being the stricter.
pub fn check_against_hyper(input: &[u8], runtime: &tokio::runtime::Runtime) {
    for method in [Method::GET, Method::HEAD] {
        let ours = read_with_proxy(input, &method);
        let theirs = runtime.block_on(read_with_hyper(input, &method));
        if let Verdict::Disagree(why) = compare(&ours, &theirs) {
            panic!("{method}: {why}");
        }
    }
}
