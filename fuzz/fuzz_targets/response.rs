//! The router's response head parser and body framing over arbitrary endpoint bytes:
//! the invariants of `diego_core::router::fuzzing::check_response`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    diego_core::router::fuzzing::check_response(data);
});
