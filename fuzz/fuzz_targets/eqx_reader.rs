//! The `.eqx` reader on arbitrary bytes: loading into a fixed `like` and
//! reading records with no `like` at all must return, never panic, abort
//! or allocate more than the input justifies.
#![no_main]

#[path = "common.rs"]
mod common;

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use solstice::serial::{npy, tree_deserialise_leaves_from};

thread_local! {
    static LIKE: common::Like = common::like();
}

fuzz_target!(|data: &[u8]| {
    LIKE.with(|like| {
        let _ = tree_deserialise_leaves_from(data, like);
    });
    // Every record's header, then its data, as a reader without `like`
    // would: sizes come from the file and must be checked.
    let mut r: &[u8] = data;
    while let Ok(Some(header)) = npy::read_header(&mut r as &mut dyn Read) {
        let Ok(len) = header.data_len() else { break };
        if npy::read_data(&mut r, len).is_err() {
            break;
        }
    }
});
