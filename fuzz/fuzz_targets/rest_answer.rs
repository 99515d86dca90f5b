//! libFuzzer target: see `crbot::fuzzing::rest_answer` for what it covers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crbot::fuzzing::rest_answer(data));
