#![no_main]
//! See `_core::fuzzing::jsonl` for what this target checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| _core::fuzzing::jsonl(data));
