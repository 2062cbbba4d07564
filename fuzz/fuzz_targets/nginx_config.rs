//! The nginx config parser on arbitrary bytes: never panics, and an error
//! names a line and column that exist in the input.
//! Then `route` explains a few URLs taken from the input on it (see
//! route_common.rs): no panic there either, and every route says why.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

mod route_common;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = triage502::discovery::nginx::parse_str(&text, Path::new("fuzz.conf")) {
        let lines = text.split('\n').count() as u32;
        assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
    }
    // Then the route resolution on the same input.
    route_common::route(data, triage502::discovery::offline::ServerKind::Nginx, "fuzz.conf");
});
