//! The router's chunked body decoder over arbitrary bytes: the invariants of
//! `diego_core::router::fuzzing::check_chunked`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    diego_core::router::fuzzing::check_chunked(data);
});
