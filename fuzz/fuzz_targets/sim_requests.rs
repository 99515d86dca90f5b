//! libFuzzer target: see `crbot::fuzzing::sim_requests` for what it covers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crbot::fuzzing::sim_requests(data));
