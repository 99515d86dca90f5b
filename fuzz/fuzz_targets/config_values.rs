//! libFuzzer target: see `crbot::fuzzing::config_values` for what it covers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crbot::fuzzing::config_values(data));
