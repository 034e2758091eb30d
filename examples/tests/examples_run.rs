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
