//! libFuzzer target: see `crbot::fuzzing::client_frames` for what it covers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crbot::fuzzing::client_frames(data));
