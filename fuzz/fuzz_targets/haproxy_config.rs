//! The HAProxy config parser on arbitrary bytes: never panics, and an error
//! names a line that exists in the input.
//! Then `route` explains a few URLs taken from the input on it (see
//! route_common.rs): no panic there either, and every route says why.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

mod route_common;

fuzz_target!(|data: &[u8]| {
    let file: Arc<Path> = Arc::from(Path::new("fuzz.cfg"));
    let mut sections = Vec::new();
    if let Err(e) = triage502::discovery::haproxy::parse::parse_text(data, &file, &mut sections) {
        let lines = data.split(|b| *b == b'\n').count() as u32;
        assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
    }
    // Then the route resolution on the same input.
    route_common::route(data, triage502::discovery::offline::ServerKind::Haproxy, "fuzz.cfg");
});
