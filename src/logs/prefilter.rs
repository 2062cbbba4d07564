//! The first level of the literal prefilter: find, fast, the places in a
//! chunk of log where some catalogue literal *may* start.
//!
//! A catalogue has more literals (130+) than the SIMD "Teddy" searcher takes
//! (64), and an Aho-Corasick automaton over all of them walks every byte. So
//! the literals are first *reduced*: a literal that contains another one is
//! dropped (every place it occurs, the shorter one occurs too: `upstream`
//! covers `upstream timed out`). The rest are split into groups of at most
//! [`GROUP_MAX`], one Teddy searcher each; a search runs every group and
//! takes the leftmost hit, remembering each group's next hit so no byte is
//! searched twice by the same group. Where Teddy is unavailable (no SSSE3,
//! another architecture) it falls back to one Aho-Corasick DFA.
//!
//! Invariant: every occurrence of every literal contains an occurrence of a
//! reduced literal at or after its start, so [`Scan::next`] never skips a
//! place where a literal occurs (tested). Hits are only *places*: the caller
//! confirms the entry with the full literal automaton.

use aho_corasick::{AhoCorasick, AhoCorasickKind, packed};

/// Patterns per Teddy searcher (its limit is 64; fewer patterns per group
/// means fewer false candidates per group).
pub const GROUP_MAX: usize = 64;

/// The compiled first level.
#[derive(Debug, Clone)]
pub enum Prefilter {
    /// Teddy searchers over groups of reduced literals.
    Packed(Vec<packed::Searcher>),
    /// One automaton over all literals.
    Automaton(AhoCorasick),
}

/// Literals that contain no other literal (order kept, duplicates dropped).
pub fn reduce(literals: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, l) in literals.iter().enumerate() {
        let covered = literals.iter().enumerate().any(|(j, o)| {
            // A strictly shorter literal inside it, or an equal one earlier.
            (o.len() < l.len() && l.contains(o.as_str())) || (j < i && o == l)
        });
        if !covered {
            out.push(l.clone());
        }
    }
    out
}

/// Longest first, in groups of equal size: the short literals (which force
/// short Teddy fingerprints and match more often) end up together in the
/// last group. (Measured: a separate searcher for the literals shorter than
/// 4 bytes costs more, as one more pass, than it saves.)
fn grouped(reduced: &[String]) -> Vec<Vec<String>> {
    let mut sorted = reduced.to_vec();
    sorted.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    let n = sorted.len().div_ceil(GROUP_MAX).max(1);
    let per = sorted.len().div_ceil(n).max(1);
    sorted.chunks(per).map(<[String]>::to_vec).collect()
}

impl Prefilter {
    /// Build over `literals` (none empty).
    pub fn new(literals: &[String]) -> Result<Prefilter, aho_corasick::BuildError> {
        let reduced = reduce(literals);
        let groups = grouped(&reduced);
        let mut searchers = Vec::with_capacity(groups.len());
        for chunk in &groups {
            let built = packed::Config::new()
                .only_teddy(true)
                .builder()
                .extend(chunk)
                .build();
            if let Some(s) = built {
                searchers.push(s);
            } else {
                searchers.clear();
                break;
            }
        }
        if !searchers.is_empty() {
            return Ok(Prefilter::Packed(searchers));
        }
        AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .build(literals)
            .map(Prefilter::Automaton)
    }

    /// A search over one haystack.
    pub fn scan<'p, 'h>(&'p self, haystack: &'h [u8]) -> Scan<'p, 'h> {
        let groups = match self {
            Prefilter::Packed(s) => s.len(),
            Prefilter::Automaton(_) => 1,
        };
        Scan {
            pre: self,
            haystack,
            next: vec![Next::Unknown; groups],
        }
    }

    /// Is this the SIMD searcher (for reports and benchmarks)?
    pub fn is_packed(&self) -> bool {
        matches!(self, Prefilter::Packed(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Not searched yet (or the remembered hit is behind the position).
    Unknown,
    /// The group's leftmost hit starts here.
    At(usize),
    /// No hit at or after the position searched from.
    None,
}

/// Leftmost hits in one haystack, in increasing positions.
#[derive(Debug)]
pub struct Scan<'p, 'h> {
    pre: &'p Prefilter,
    haystack: &'h [u8],
    next: Vec<Next>,
}

impl Scan<'_, '_> {
    /// The start of the leftmost hit at or after `from`. Calls must not
    /// decrease `from` (each group remembers its next hit).
    pub fn next(&mut self, from: usize) -> Option<usize> {
        let hay = self.haystack;
        if from >= hay.len() {
            return None;
        }
        let mut best: Option<usize> = None;
        for (i, slot) in self.next.iter_mut().enumerate() {
            let at = match *slot {
                Next::At(p) if p >= from => Some(p),
                Next::None => None,
                _ => {
                    let found = match self.pre {
                        Prefilter::Packed(s) => s[i]
                            .find_in(hay, aho_corasick::Span::from(from..hay.len()))
                            .map(|m| m.start()),
                        Prefilter::Automaton(ac) => ac
                            .find(aho_corasick::Input::new(hay).span(from..hay.len()))
                            .map(|m| m.start()),
                    };
                    *slot = found.map_or(Next::None, Next::At);
                    found
                }
            };
            if let Some(p) = at {
                best = Some(best.map_or(p, |b| b.min(p)));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_keeps_the_shortest_covering_literals() {
        let l: Vec<String> = ["upstream timed out", "upstream", "AH01102", "upstream", "x"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(reduce(&l), vec!["upstream", "AH01102", "x"]);
    }

    #[test]
    fn every_literal_occurrence_is_found_in_order() {
        let cat = crate::logs::Catalogue::builtin();
        let lits = &cat.all_literals;
        let pre = Prefilter::new(lits).unwrap();
        // A haystack with every literal, separated by filler text.
        let mut hay = Vec::new();
        let mut starts = Vec::new();
        for (i, l) in lits.iter().enumerate() {
            hay.extend_from_slice(format!("filler line {i} with nothing; ").as_bytes());
            starts.push(hay.len());
            hay.extend_from_slice(l.as_bytes());
            hay.push(b'\n');
        }
        let mut scan = pre.scan(&hay);
        for (s, l) in starts.iter().zip(lits) {
            // From just before each literal, the first hit is inside it.
            let hit = scan.next(s - 3).expect("a hit");
            assert!(
                (*s..s + l.len()).contains(&hit),
                "literal {l:?} at {s}: first hit at {hit}"
            );
        }
        let mut n = 0;
        let mut pos = 0;
        let mut scan = pre.scan(&hay);
        while let Some(h) = scan.next(pos) {
            n += 1;
            pos = h + 1;
        }
        assert!(n >= lits.len() / 2, "{n} hits");
    }
}
