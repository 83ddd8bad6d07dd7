//! First line: an intrinsic function call. The rest: the JSON input (`$`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (call, doc) = text.split_once('\n').unwrap_or((text, "null"));
    let doc = serde_json::from_str(doc).unwrap_or(serde_json::Value::Null);
    treza_asl::fuzzing::intrinsic(call, &doc);
});
