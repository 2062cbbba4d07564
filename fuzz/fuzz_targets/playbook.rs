//! The playbook loader and validator on arbitrary bytes: never panics, every
//! diagnostic names a real position in the input, and a playbook that loads
//! renders its graph and starts a walk.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use triage502::playbook::load::load;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let loaded = load(text, &HashSet::new());
    for d in &loaded.diagnostics {
        if let Some(span) = &d.span {
            assert!(span.start <= text.len(), "span {span:?} beyond the input");
        }
    }
    if let Some(pb) = loaded.playbook {
        let _ = triage502::playbook::graph::render(&pb, triage502::playbook::graph::Format::Text);
        assert!(pb.node(&pb.start).is_some(), "a valid playbook's start exists");
    }
});
