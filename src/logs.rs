//! Log analysis: the incident window of error and access logs, found by
//! seeking, every upstream failure classified by the data-driven catalogue
//! (`assets/signatures.toml`), and the access log summarised.
//!
//! Invariants: files are read in bounded chunks (never whole, never mapped),
//! so memory stays flat whatever the file size; bad bytes are tolerated
//! everywhere (lossy only for display); nothing here writes anywhere.
//!
//! Entry points: [`scan`] (error logs → [`ScanReport`]), [`access::summarise`]
//! (access logs → [`access::AccessSummary`]), [`classify_line`] (one entry),
//! and the `triage502 logs …` commands in [`cli`].

pub mod access;
pub mod catalogue;
pub mod classify;
pub mod cli;
pub mod correlate;
pub mod discovered;
pub mod format;
pub mod generate;
pub mod input;
pub mod prefilter;
pub mod reader;
pub mod rotation;
pub mod scan;
pub mod split;
pub mod template;
pub mod time;
pub mod w3c;
pub mod window;
pub mod wrapper;

pub use catalogue::{Catalogue, CatalogueError};
pub use classify::{Classification, Role};
pub use scan::{ScanOptions, ScanReport, Window, scan};

/// Classify one entry (a line, or a line plus its continuation lines) with
/// the built-in catalogue. `None` when it has nothing to do with upstream
/// failures or is not a log entry at all.
pub fn classify_line(entry: &str) -> Option<Classification> {
    classify_with(
        Catalogue::builtin(),
        &mut time::Zone::system(),
        entry.as_bytes(),
    )
}

/// Classify one entry with a given catalogue and zone.
pub fn classify_with(
    cat: &Catalogue,
    zone: &mut time::Zone,
    entry: &[u8],
) -> Option<Classification> {
    let head = format::head(entry, zone).unwrap_or_else(format::Head::unknown);
    cat.classify(&head, entry)
}
