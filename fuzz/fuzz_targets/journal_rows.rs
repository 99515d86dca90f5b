//! libFuzzer target: see `crbot::fuzzing::journal_rows` for what it covers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crbot::fuzzing::journal_rows(data));
