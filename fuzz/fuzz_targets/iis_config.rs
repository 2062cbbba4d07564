//! The IIS configuration reader (applicationHost.config) on arbitrary
//! bytes: never panics, and an error names a line that exists in the input.
//! Then `route` explains a few URLs taken from the input on it (see
//! route_common.rs): no panic there either, and every route says why.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod route_common;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(e) = triage502::discovery::iis::config::parse_xml(
            std::path::Path::new("applicationHost.config"),
            text,
        )
    {
        let lines = data.split(|b| *b == b'\n').count() as u32;
        assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
    }
    // Then the whole reader and the route resolution on the same input.
    route_common::route(
        data,
        triage502::discovery::offline::ServerKind::Iis,
        "applicationHost.config",
    );
});
