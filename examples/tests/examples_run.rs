//! The examples the README names run to their end. `cargo test` builds them next to this
//! test (`target/<profile>/examples/`); each runs in a directory of its own, since some
//! write their results where they are started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

/// The built example `name`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Runs example `name` to its end; its standard output.
fn run(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("diego-example-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = assert_cmd::Command::new(example(name))
        .current_dir(&dir)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn embed_runs_a_cell_and_sees_crashed_instances_restarted() {
    let out = run("embed");
    assert!(
        out.contains("both instances crashed once and were restarted at once"),
        "{out}"
    );
}

#[test]
fn custom_backend_passes_the_conformance_suite() {
    let out = run("custom_backend");
    assert!(
        out.contains("AuditedBackend passed the conformance suite"),
        "{out}"
    );
}

#[test]
fn custom_strategy_compares_with_diego_and_writes_charts() {
    let out = run("custom_strategy");
    assert!(out.contains("wrote custom-strategy-results/"), "{out}");
    assert!(out.contains(".svg"), "{out}");
}

#[test]
fn quickstart_shows_valid_and_invalid_requests() {
    let out = run("quickstart");
    assert!(out.contains("A valid Task request"), "{out}");
    assert!(out.contains("Invalid field: instances"), "{out}");
}

/// A port of 127.0.0.1 nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /` on `addr` with `host` over HTTP/1.0: the whole answer, or `None` when nothing
/// answers.
fn get(addr: &str, host: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The main job as the README runs it: the demo answers through the router in under
/// 30 s, the app's logs stream with `[APP/PROC/WEB/i]` prefixes, and Ctrl-C (SIGINT)
/// stops everything, instances included.
#[test]
fn local_cluster_serves_the_demo_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let (api, router) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("diego-example-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let started = std::time::Instant::now();
    let mut child = std::process::Command::new(example("local_cluster"))
        .current_dir(&dir)
        .env("DIEGO_API_ADDR", format!("127.0.0.1:{api}"))
        .env("DIEGO_ROUTER_ADDR", format!("127.0.0.1:{router}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Whatever happens, the example does not outlive the test by long.
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(240));
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("Ctrl-C stops everything");
        printed.push(line);
        if done {
            break;
        }
    }
    let ready = started.elapsed();
    let text = printed.join("\n");
    assert!(text.contains("the demo app is RUNNING"), "{text}");
    assert!(text.contains("curl -H 'Host: demo.localhost'"), "{text}");
    assert!(ready < Duration::from_secs(30), "ready after {ready:?}");
    let answer = get(&format!("127.0.0.1:{router}"), "demo.localhost").unwrap_or_default();
    assert!(answer.contains("hello from instance"), "{answer}");
    let instances: Vec<String> = printed
        .iter()
        .filter_map(|l| l.trim().strip_prefix("instance "))
        .filter_map(|l| l.split_once("http://").map(|(_, a)| a.to_owned()))
        .collect();
    assert_eq!(instances.len(), 3, "{text}");

    let sigint = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sigint.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {rest:?}");
    assert!(rest.iter().any(|l| l == "stopped."), "{rest:?}");
    // The app's logs were streamed with their source and index.
    assert!(
        printed
            .iter()
            .chain(&rest)
            .any(|l| l.contains("[APP/PROC/WEB/")),
        "{text}\n{rest:?}"
    );
    for addr in &instances {
        assert!(get(addr, "x").is_none(), "instance {addr} still answers");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
