//! A state machine definition: parse, validate and (when valid) run it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        treza_asl::fuzzing::definition(text);
    }
});
