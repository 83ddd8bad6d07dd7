//! First line: a JsonPath. The rest: the JSON document to evaluate it on.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, doc) = text.split_once('\n').unwrap_or((text, "null"));
    let doc = serde_json::from_str(doc).unwrap_or(serde_json::Value::Null);
    treza_asl::fuzzing::json_path(path, &doc);
});
