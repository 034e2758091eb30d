//! The HTTP proxy's own HTTP/1.1 client framing (`router/http1.rs`), proved two ways:
//! the same bytes framed by it and by hyper's client, case by case (the smuggling
//! cases: CL+TE, duplicate and conflicting lengths, obs-fold, bare LF, chunk extensions,
//! oversized chunk sizes, trailers, interim answers, HEAD/204/304), and every file of
//! the fuzz targets' corpus (`fuzz/corpus/`) replayed through the targets' own entry
//! points.
#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use diego_core::router::fuzzing::{
    check_against_hyper, check_chunked, check_response, compare, frame_response, read_with_hyper,
    read_with_proxy, Framed, Framing, Method, Next, Reading, Verdict,
};

/// How the proxy's reading must compare with hyper's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Both read the same.
    Agree,
    /// Ours refuses what hyper takes (deliberately).
    Stricter,
}

/// What the proxy itself must read.
#[derive(Clone, Copy, Debug)]
enum Ours {
    /// No response (502).
    Refused,
    /// A response whose body ends in an error.
    Broken,
    /// This body, and the connection reused after it.
    Reused(&'static str),
    /// This body, and the connection closed after it.
    Closed(&'static str),
}

struct Case {
    name: &'static str,
    method: Method,
    bytes: Vec<u8>,
    expect: Expect,
    ours: Ours,
}

fn case(name: &'static str, bytes: &str, expect: Expect, ours: Ours) -> Case {
    Case {
        name,
        method: Method::GET,
        bytes: bytes.as_bytes().to_vec(),
        expect,
        ours,
    }
}

fn head_case(name: &'static str, bytes: &str, expect: Expect, ours: Ours) -> Case {
    Case {
        method: Method::HEAD,
        ..case(name, bytes, expect, ours)
    }
}

const OK: &str = "HTTP/1.1 200 OK\r\n";
const CHUNKED: &str = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";

fn chunked(body: &str) -> String {
    format!("{CHUNKED}{body}")
}

/// The cases, each with what both clients must make of it.
fn cases() -> Vec<Case> {
    use Expect::*;
    use Ours::*;
    let mut trailers_100 = String::from("0\r\n");
    let mut trailers_101 = String::from("0\r\n");
    for i in 0..100 {
        trailers_100.push_str(&format!("t{i}: v\r\n"));
        trailers_101.push_str(&format!("t{i}: v\r\n"));
    }
    trailers_101.push_str("t100: v\r\n");
    trailers_100.push_str("\r\n");
    trailers_101.push_str("\r\n");
    vec![
        // Lengths.
        case("length", &format!("{OK}content-length: 5\r\n\r\nhello"), Agree, Reused("hello")),
        case("length zero", &format!("{OK}content-length: 0\r\n\r\n"), Agree, Reused("")),
        case("length leading zeros", &format!("{OK}content-length: 005\r\n\r\nhello"), Agree, Reused("hello")),
        case("duplicate identical lengths", &format!("{OK}content-length: 5\r\ncontent-length: 5\r\n\r\nhello"), Agree, Reused("hello")),
        case("identical lengths in a list", &format!("{OK}content-length: 5, 5\r\n\r\nhello"), Agree, Reused("hello")),
        case("conflicting lengths", &format!("{OK}content-length: 5\r\ncontent-length: 6\r\n\r\nhello!"), Agree, Refused),
        case("conflicting lengths in a list", &format!("{OK}content-length: 5, 6\r\n\r\nhello!"), Agree, Refused),
        case("signed length", &format!("{OK}content-length: +5\r\n\r\nhello"), Agree, Refused),
        case("negative length", &format!("{OK}content-length: -1\r\n\r\n"), Agree, Refused),
        case("length with an empty list element", &format!("{OK}content-length: 5,\r\n\r\nhello"), Agree, Refused),
        case("length of two numbers", &format!("{OK}content-length: 5 5\r\n\r\nhello"), Agree, Refused),
        case("hex length", &format!("{OK}content-length: 0x5\r\n\r\nhello"), Agree, Refused),
        case("length of u64::MAX", &format!("{OK}content-length: 18446744073709551615\r\n\r\nhello"), Agree, Refused),
        case("length over u64", &format!("{OK}content-length: 18446744073709551616\r\n\r\nhello"), Agree, Refused),
        case("length shorter than the body sent", &format!("{OK}content-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), Agree, Closed("ok")),
        case("length longer than the body sent", &format!("{OK}content-length: 10\r\n\r\nhello"), Agree, Broken),
        // Transfer codings, with and without a length.
        case("chunked", &chunked("5\r\nhello\r\n0\r\n\r\n"), Agree, Reused("hello")),
        case("chunked in two chunks", &chunked("3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"), Agree, Reused("hello")),
        case("length and chunked", &format!("{OK}content-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), Stricter, Closed("hello")),
        case("chunked and length", &format!("{OK}transfer-encoding: chunked\r\ncontent-length: 100\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), Stricter, Closed("hello")),
        case("chunked and an invalid length", &format!("{OK}transfer-encoding: chunked\r\ncontent-length: x\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), Stricter, Refused),
        case("gzip then chunked", &format!("{OK}transfer-encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), Agree, Reused("hello")),
        case("chunked then gzip: until close", &format!("{OK}transfer-encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), Agree, Closed("5\r\nhello\r\n0\r\n\r\n")),
        case("chunked, then a field of identity: until close", &format!("{OK}transfer-encoding: chunked\r\ntransfer-encoding: identity\r\n\r\nabc"), Agree, Closed("abc")),
        case("identity, then a field of chunked", &format!("{OK}transfer-encoding: identity\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), Agree, Reused("abc")),
        case("chunked in capitals", &format!("{OK}Transfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), Agree, Reused("abc")),
        case("HTTP/1.0 and chunked", "HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", Agree, Refused),
        case("HTTP/1.0 keep-alive and chunked", "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", Agree, Refused),
        case("HTTP/1.0 until close", "HTTP/1.0 200 OK\r\n\r\nuntil the end", Agree, Closed("until the end")),
        case("HTTP/1.0 keep-alive with a length", "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok", Agree, Reused("ok")),
        case("HTTP/1.1 until close", &format!("{OK}\r\nuntil the end"), Agree, Closed("until the end")),
        case("close, then keep-alive", &format!("{OK}connection: close, keep-alive\r\ncontent-length: 2\r\n\r\nok"), Agree, Closed("ok")),
        case("keep-alive, then close", &format!("{OK}connection: keep-alive\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"), Agree, Closed("ok")),
        // Line endings, folding, bytes a head may not hold.
        case("bare LF head", "HTTP/1.1 200 OK\ncontent-length: 5\n\nhello", Agree, Reused("hello")),
        case("obs-fold", &format!("{OK}x-a: 1\r\n folded\r\ncontent-length: 5\r\n\r\nhello"), Agree, Refused),
        case("obs-fold of the length", &format!("{OK}content-length:\r\n 5\r\n\r\nhello"), Agree, Refused),
        case("space before the colon", &format!("{OK}content-length : 5\r\n\r\nhello"), Agree, Refused),
        case("NUL in a value", &format!("{OK}x-a: a\0b\r\ncontent-length: 0\r\n\r\n"), Agree, Refused),
        case("space in a name", &format!("{OK}x a: b\r\ncontent-length: 0\r\n\r\n"), Agree, Refused),
        case("bare CR in a head", &format!("{OK}x-a: a\rcontent-length: 5\r\n\r\nhello"), Agree, Refused),
        case("not HTTP", "SMTP ready\r\n\r\n", Agree, Refused),
        case("HTTP/2 status line", "HTTP/2 200 OK\r\ncontent-length: 0\r\n\r\n", Agree, Refused),
        case("status of four digits", "HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n", Agree, Refused),
        case("status under 100", "HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n", Agree, Refused),
        // Chunk-size lines.
        case("chunk extensions", &chunked("5;name=value\r\nhello\r\n0;last\r\n\r\n"), Agree, Reused("hello")),
        case("quoted chunk extension", &chunked("5;a=\"b c\"\r\nhello\r\n0\r\n\r\n"), Agree, Reused("hello")),
        case("whitespace before an extension", &chunked("5 \t;a\r\nhello\r\n0\r\n\r\n"), Agree, Reused("hello")),
        case("whitespace after a size", &chunked("5 \r\nhello\r\n0\r\n\r\n"), Stricter, Broken),
        case("bare CR in an extension", &chunked("5;a\rb\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("bare CR before an extension", &chunked("5\r;a\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("form feed before an extension", &chunked("5\x0c;a\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("bare LF in an extension", &chunked("5;a\nb\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("bare LF after a size", &chunked("5\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("bare LF after data", &chunked("5\r\nhello\n0\r\n\r\n"), Agree, Broken),
        case("no CRLF after data", &chunked("5\r\nhelloX0\r\n\r\n"), Agree, Broken),
        case("data shorter than its size", &chunked("5\r\nhel\r\n0\r\n\r\n"), Agree, Broken),
        case("data longer than its size", &chunked("3\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("uppercase hex size", &chunked("A\r\n0123456789\r\n0\r\n\r\n"), Agree, Reused("0123456789")),
        case("leading zeros, 16 digits", &chunked("0000000000000005\r\nhello\r\n0\r\n\r\n"), Agree, Reused("hello")),
        case("leading zeros, 17 digits", &chunked("00000000000000005\r\nhello\r\n0\r\n\r\n"), Stricter, Broken),
        case("size of 2^64", &chunked("10000000000000000\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("size of u64::MAX", &chunked("ffffffffffffffff\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("size far over u64", &chunked("fffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("hex prefix", &chunked("0x5\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("negative size", &chunked("-5\r\nhello\r\n0\r\n\r\n"), Agree, Broken),
        case("empty size line", &chunked("\r\n\r\n"), Agree, Broken),
        case("no last chunk", &chunked("5\r\nhello\r\n"), Agree, Broken),
        // Trailers.
        case("trailers", &chunked("5\r\nhello\r\n0\r\nx-t: 1\r\ny: 2\r\n\r\n"), Agree, Reused("hello")),
        case("100 trailer fields", &chunked(&trailers_100), Agree, Reused("")),
        case("101 trailer fields", &chunked(&trailers_101), Agree, Broken),
        case("trailer without a colon", &chunked("0\r\nnot a field\r\n\r\n"), Agree, Broken),
        case("bare CR in a trailer", &chunked("0\r\nx: a\rb\r\n\r\n"), Agree, Broken),
        case("obs-fold in a trailer", &chunked("0\r\nx: a\r\n b\r\n\r\n"), Agree, Broken),
        case("bare LF in a trailer", &chunked("0\r\nx: a\ny: b\r\n\r\n"), Agree, Broken),
        case("bare LF ending the trailers", &chunked("0\r\n\n"), Agree, Broken),
        case("unended trailers", &chunked("0\r\nx: 1\r\n"), Agree, Broken),
        // Interim answers, and answers without a body.
        case("interim answers", &format!("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n{OK}content-length: 2\r\n\r\nok"), Agree, Reused("ok")),
        case("interim answer with a length", &format!("HTTP/1.1 100 Continue\r\ncontent-length: 5\r\n\r\n{OK}content-length: 2\r\n\r\nok"), Agree, Reused("ok")),
        case("switching protocols unasked", "HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n", Stricter, Refused),
        head_case("HEAD with a length", &format!("{OK}content-length: 5\r\n\r\n"), Agree, Reused("")),
        head_case("HEAD chunked", CHUNKED, Agree, Reused("")),
        head_case("HEAD answered with a body", &format!("{OK}content-length: 5\r\n\r\nhello"), Agree, Closed("")),
        case("204 with a length", "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n", Agree, Reused("")),
        case("204 with a body", "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\nhello", Agree, Closed("")),
        case("304 chunked", "HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n", Agree, Reused("")),
        case("304 with a body", "HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", Agree, Closed("")),
    ]
}

fn matches_ours(reading: &Reading, ours: Ours) -> bool {
    match (reading, ours) {
        (Reading::NoResponse, Ours::Refused) => true,
        (Reading::BrokenBody { .. }, Ours::Broken) => true,
        (Reading::Complete { body, next, .. }, Ours::Reused(b)) => {
            body == b.as_bytes() && *next == Next::Probe
        }
        (Reading::Complete { body, next, .. }, Ours::Closed(b)) => {
            body == b.as_bytes() && *next == Next::Closed
        }
        _ => false,
    }
}

#[tokio::test(start_paused = true)]
async fn the_proxy_frames_responses_as_hyper_does_or_more_strictly() {
    let mut failures = Vec::new();
    for case in cases() {
        let ours = read_with_proxy(&case.bytes, &case.method);
        let hyper = read_with_hyper(&case.bytes, &case.method).await;
        let verdict = compare(&ours, &hyper);
        let verdict_ok = match case.expect {
            Expect::Agree => verdict == Verdict::Agree,
            Expect::Stricter => matches!(verdict, Verdict::OursStricter(_)),
        };
        if !verdict_ok || !matches_ours(&ours, case.ours) {
            failures.push(format!(
                "{}: expected {:?} and ours {:?}; got {verdict:?}\n    ours:  {ours:?}\n    hyper: {hyper:?}",
                case.name, case.expect, case.ours
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------- the fuzz corpus

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every file of a target's corpus, read.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let files: Vec<_> = files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    assert!(
        files.len() >= 20,
        "{}: a corpus of {} files",
        dir.display(),
        files.len()
    );
    files
}

/// Runs `check` on every file of `target`'s corpus, naming the file that fails.
fn replay(target: &str, check: impl Fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        if let Err(panic) = run {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{}: {why}", path.display());
        }
    }
}

#[test]
fn the_response_corpus_keeps_the_invariants() {
    replay("response", check_response);
}

#[test]
fn the_chunked_corpus_keeps_the_invariants() {
    replay("chunked", check_chunked);
}

#[test]
fn the_differential_corpus_agrees_with_hyper() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    replay("differential", |bytes| check_against_hyper(bytes, &runtime));
}

/// The file name of a case in the corpus.
fn file_name(case: &Case) -> String {
    let name: String = case
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("case-{}-{name}", case.method.as_str().to_ascii_lowercase())
}

/// The corpus holds every case above: as a response (for `response` and `differential`)
/// and, chunked, its body (for `chunked`). With `DIEGO_WRITE_CORPUS=1` the missing files
/// are written instead.
#[test]
fn the_corpus_holds_every_case() {
    let write = std::env::var_os("DIEGO_WRITE_CORPUS").is_some();
    let mut missing = Vec::new();
    for case in cases() {
        let mut files = vec![
            ("response", case.bytes.clone()),
            ("differential", case.bytes.clone()),
        ];
        if let Framed::Response(r) = frame_response(&case.bytes, &Method::GET, &[0]) {
            if r.framing == Framing::Chunked {
                files.push(("chunked", case.bytes[r.head_len..].to_vec()));
            }
        }
        for (target, bytes) in files {
            let path = corpus_dir(target).join(file_name(&case));
            match std::fs::read(&path) {
                Ok(on_disk) if on_disk == bytes => {}
                _ if write => std::fs::write(&path, &bytes).unwrap(),
                _ => missing.push(path.display().to_string()),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing or different (DIEGO_WRITE_CORPUS=1 writes them):\n{}",
        missing.join("\n")
    );
}
