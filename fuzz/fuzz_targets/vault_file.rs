//! libFuzzer target: see `crbot::fuzzing::vault_file` for what it covers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crbot::fuzzing::vault_file(data));
