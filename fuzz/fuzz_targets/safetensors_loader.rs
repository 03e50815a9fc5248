//! The safetensors loader on arbitrary bytes: opening, loading into a
//! fixed `like` and reading every tensor must return, never panic or
//! abort.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use solstice::serial::SafetensorsFile;

thread_local! {
    static LIKE: common::Like = common::like();
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = SafetensorsFile::from_bytes(data.to_vec()) else {
        return;
    };
    LIKE.with(|like| {
        let _ = file.load(like);
    });
    let names: Vec<String> = file.names().iter().map(|n| n.to_string()).collect();
    for name in names {
        let _ = file.array(&name);
    }
    let _ = file.ties();
});
