//! What several of the backend tests share.

pub mod container_paths;

/// Whether this run must have every precondition: the README's test command
/// (`scripts/test.sh`, which installs and starts what the tests need) sets
/// `DIEGO_TESTS_REQUIRE_ALL=1`, and CI sets `CI`.
pub fn every_precondition_required() -> bool {
    std::env::var_os("DIEGO_TESTS_REQUIRE_ALL").is_some() || std::env::var_os("CI").is_some()
}

/// A test whose precondition (root, the busybox rootfs, nft, ...) is missing: a failure
/// naming `why` where every precondition is required, otherwise a line saying the test
/// did not run. The caller then returns.
pub fn precondition_missing(test: &str, why: &str) {
    assert!(
        !every_precondition_required(),
        "{test} cannot run: {why} (the test command provides every precondition; a missing one is a failure)"
    );
    eprintln!("SKIPPED {test}: {why}");
}
