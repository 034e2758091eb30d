//! The router's reading of arbitrary endpoint bytes against hyper's client's:
//! `diego_core::router::fuzzing::check_against_hyper` (they agree, or the router is the
//! stricter).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokio::runtime::{Builder, Runtime};

thread_local! {
    /// A current-thread runtime with a paused clock: a read that waits for more bytes
    /// costs no time.
    static RUNTIME: Runtime = Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
}

fuzz_target!(|data: &[u8]| {
    RUNTIME.with(|runtime| diego_core::router::fuzzing::check_against_hyper(data, runtime));
});
