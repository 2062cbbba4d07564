//! The first level of the literal prefilter: find, fast, the lines of a
//! chunk of log that contain some catalogue literal.
//!
//! A catalogue has more literals (200+) than the SIMD "Teddy" searcher takes
//! (64, and its fastest form 32), and an Aho-Corasick automaton over all of
//! them walks every byte. So the literals are first *reduced*: a literal
//! that contains another one is dropped (every place it occurs, the shorter
//! one occurs too: `upstream` covers `upstream timed out`). Then they are
//! *covered*: a few short grams (4 bytes, or a whole literal shorter than
//! that) are chosen so that every reduced literal contains one of them
//! (`AH0`-codes share `AH01`, the Windows error codes `0x80`), preferring
//! grams shared by many literals and, by a byte-rarity estimate and a
//! list of the common text of log lines ([`SKELETON`]), rare ones. One
//! Teddy searcher over the grams (groups of at most [`GROUP_MAX`] when
//! there are more) finds the places where a literal may be; each place is
//! then confirmed by comparing the literals that contain the grams found
//! there, so a gram alone (`AH01` in a request) never makes a candidate.
//! Where Teddy is unavailable (no SSSE3, another architecture), or a
//! literal spans lines, one Aho-Corasick DFA over all literals does the
//! search.
//!
//! Invariant: every occurrence of every literal contains a gram (tested),
//! and every place where a gram occurs is confirmed or passed over in
//! order, so [`Scan::next`] finds the first literal occurrence (by where
//! its gram lies) at or after the position: the first line that holds a
//! literal, never one more, never one less than an automaton over all
//! literals would. The caller classifies that line's entry.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickKind, packed};
use rustc_hash::FxHashMap;

/// Patterns per Teddy searcher (its limit is 64; up to 32 it uses its
/// narrower form, twice as fast per byte, with 8 buckets).
pub const GROUP_MAX: usize = 32;
/// Buckets of the narrow Teddy form.
const BUCKETS: usize = 8;

/// Length of a cover gram (Teddy's fingerprint is at most 4 bytes long).
const GRAM: usize = 4;

/// Text every kind of log line is made of: the prefixes and tails of the
/// servers' error lines, and the words common in their messages. A gram
/// seen here is a poor place to look for a literal (it is on most lines):
/// the cover avoids it where the literal has another.
const SKELETON: &[&str] = &[
    "2024/03/14 09:22:07 [error] [warn] [notice] [info] [crit] [alert] [emerg] [debug] 12345#12345: *67890 ",
    ", client: 203.0.113.45, server: www.example.com, request: \"GET /index.html?id=1 HTTP/1.1\", ",
    "subrequest: \"/auth\", upstream: \"http://127.0.0.1:8080/api/v1/items\", host: \"example.com:443\", ",
    "referrer: \"https://example.com/\" POST HEAD PUT PATCH DELETE OPTIONS HTTP/2.0 HTTP/1.0 ",
    "[Thu Mar 14 09:22:07.123456 2024] [proxy:error] [pid 1234:tid 5678] [client 10.0.0.1:5678] ",
    "[14-Mar-2024 09:22:07] WARNING: NOTICE: pool www child 123 ",
    "Mar 14 09:22:07 hostname haproxy[123]: 10.0.0.1:5678 [14/Mar/2024:09:22:07.123] frontend backend/server ",
    "time=\"2024-03-14T09:22:07Z\" level=error msg= {\"level\":\"error\",\"ts\":1710408127.123,\"logger\":\"http\",",
    "the and for with from while when which this that there their then than into onto over under ",
    "connection connections connecting connected reading writing sending response request header headers ",
    "body file files directory open opened close closed closing status error errors warning limit limits ",
    "excess zone user users process processes worker workers server servers client clients service ",
    "handler module config configuration version started starting stopped stopping success successful ",
    "upstream upstreams proxy backend frontend timeout timed out failed failure because cannot could not ",
    "/var/www/html/ /usr/share/nginx/html/ /etc/nginx/ /static/ /images/ /assets/ .php .html .css .js .jpg .png ",
    "open() \"/var/www/html/favicon.ico\" failed (2: No such file or directory) ",
    "limiting requests, excess: 1.500 by zone \"perip\" limiting connections by zone access forbidden by rule ",
    "while connecting to upstream, while reading response header from upstream, while sending request to upstream ",
    "directory index of \"/var/www/\" is forbidden, is not found, SSL handshake, peer closed, signal 15, exited with code 0 ",
];

/// How common a byte is in log text (higher: more common). A rough class
/// ranking: lower-case letters, digits, spaces and the separators of log
/// lines are everywhere; capitals and other punctuation much less so.
fn rank(b: u8) -> u32 {
    match b {
        b' ' | b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' | b'0'..=b'9' => 10,
        b'a'..=b'z' | b'.' | b',' | b':' | b'/' | b'"' | b'-' => 7,
        b'A'..=b'Z' => 3,
        _ => 1,
    }
}

/// The compiled first level.
#[derive(Debug, Clone)]
pub enum Prefilter {
    /// Teddy searchers over cover grams; each place is confirmed by the
    /// literals that contain the grams found there.
    Packed {
        searchers: Vec<packed::Searcher>,
        confirm: Confirm,
    },
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

/// For each cover gram, the reduced literals that contain it and where.
#[derive(Debug, Clone, Default)]
pub struct Confirm {
    /// Gram → (offset of the gram in the literal, literal index).
    owners: FxHashMap<Box<[u8]>, Vec<(usize, usize)>>,
    literals: Vec<Box<[u8]>>,
    /// The distinct gram lengths, longest first.
    lengths: Vec<usize>,
}

impl Confirm {
    fn new(reduced: &[String], grams: &[Vec<u8>]) -> Confirm {
        let mut c = Confirm {
            literals: reduced.iter().map(|l| l.as_bytes().into()).collect(),
            ..Confirm::default()
        };
        for g in grams {
            c.owners.insert(g.as_slice().into(), Vec::new());
            if !c.lengths.contains(&g.len()) {
                c.lengths.push(g.len());
            }
        }
        c.lengths.sort_unstable_by(|a, b| b.cmp(a));
        // Every window of every literal that is a gram (a hash look-up per
        // window: this runs at every start).
        for (i, l) in reduced.iter().enumerate() {
            for &n in &c.lengths {
                for (off, w) in l.as_bytes().windows(n).enumerate() {
                    if let Some(v) = c.owners.get_mut(w) {
                        v.push((off, i));
                    }
                }
            }
        }
        c
    }

    /// The start of a literal whose gram lies at `at` and that starts at or
    /// after `from`, if one does.
    fn at(&self, hay: &[u8], at: usize, from: usize) -> Option<usize> {
        for &n in &self.lengths {
            let Some(g) = hay.get(at..at + n) else {
                continue;
            };
            let Some(owners) = self.owners.get(g) else {
                continue;
            };
            for &(off, i) in owners {
                let Some(start) = at.checked_sub(off) else {
                    continue;
                };
                if start >= from && hay[start..].starts_with(&self.literals[i]) {
                    return Some(start);
                }
            }
        }
        None
    }
}

/// A set of literal indices.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn count_and_not(&self, done: &Bits) -> u32 {
        self.0
            .iter()
            .zip(&done.0)
            .map(|(a, d)| (a & !d).count_ones())
            .sum()
    }
    fn or(&mut self, o: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }
}

/// Grams such that every literal contains one (a greedy weighted set
/// cover): each gram is a 4-byte window of a literal, or a whole literal
/// shorter than that; the next gram chosen is the one that covers the most
/// literals not yet covered per unit of cost, the cost being a constant per
/// pattern plus the rarity estimate of its bytes, much more when it is part
/// of the [`SKELETON`]. Deterministic (ties go to the smaller gram).
pub fn cover(literals: &[String]) -> Vec<Vec<u8>> {
    let n = literals.len();
    let mut owners: FxHashMap<&[u8], Bits> = FxHashMap::default();
    for (i, l) in literals.iter().enumerate() {
        let l = l.as_bytes();
        if l.is_empty() {
            continue;
        }
        for w in l.windows(GRAM.min(l.len())) {
            owners.entry(w).or_insert_with(|| Bits::new(n)).set(i);
        }
    }
    let skeleton: HashSet<&[u8]> = SKELETON
        .iter()
        .flat_map(|s| s.as_bytes().windows(GRAM))
        .collect();
    let mut grams: Vec<(&[u8], Bits, u32)> = owners
        .into_iter()
        .map(|(g, b)| {
            // On most lines: only where nothing else covers the literal.
            let common = if skeleton.contains(g) { 10_000 } else { 0 };
            // Words and numbers (lower case, digits, spaces) are common text.
            let wordy = g
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b' ');
            let cost =
                16 + g.iter().map(|c| rank(*c)).sum::<u32>() + common + 100 * u32::from(wordy);
            (g, b, cost)
        })
        .collect();
    grams.sort_by(|a, b| a.0.cmp(b.0));
    let mut done = Bits::new(n);
    for (i, l) in literals.iter().enumerate() {
        if l.is_empty() {
            done.set(i);
        }
    }
    let mut out = Vec::new();
    loop {
        let mut best: Option<(usize, u32, u32)> = None; // (index, gain, cost)
        for (k, (_, b, cost)) in grams.iter().enumerate() {
            let gain = b.count_and_not(&done);
            if gain == 0 {
                continue;
            }
            // gain / cost > best_gain / best_cost, in integers
            let better = best.is_none_or(|(_, bg, bc)| gain * bc > bg * cost);
            if better {
                best = Some((k, gain, *cost));
            }
        }
        let Some((k, _, _)) = best else { break };
        let (g, b, _) = &grams[k];
        out.push(g.to_vec());
        let b = b.clone();
        done.or(&b);
        // Grams left with nothing to cover are out for good (this runs at every start).
        grams.retain(|(_, b, _)| b.count_and_not(&done) > 0);
    }
    out
}

/// Teddy groups: the full-length grams and the shorter ones apart (a
/// group's fingerprint is as long as its shortest pattern), each in groups
/// of at most [`GROUP_MAX`] of about equal size. Teddy puts pattern `i` of a
/// group in bucket `i % 8` (reversed), and a bucket matches any mix of its
/// patterns' nibbles: so each group is sorted and laid out so that runs of
/// similar grams (`AH00`, `AH01`, `AH02`) share a bucket, which keeps false
/// fingerprint matches rare (measured: a third less search time).
fn grouped(grams: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
    let (full, short): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
        grams.iter().cloned().partition(|g| g.len() >= GRAM);
    let mut out = Vec::new();
    for mut set in [full, short] {
        if set.is_empty() {
            continue;
        }
        set.sort();
        let n = set.len().div_ceil(GROUP_MAX);
        let per = set.len().div_ceil(n);
        for chunk in set.chunks(per) {
            // Bucket `r` gets the ids `r, r + 8, …`: a run of the sorted grams.
            let n = chunk.len();
            let mut slots = vec![Vec::new(); n];
            let mut sorted = chunk.iter();
            for r in 0..BUCKETS.min(n) {
                for id in (r..n).step_by(BUCKETS) {
                    if let Some(g) = sorted.next() {
                        slots[id].clone_from(g);
                    }
                }
            }
            out.push(slots);
        }
    }
    out
}

impl Prefilter {
    /// Build over `literals` (none empty).
    pub fn new(literals: &[String]) -> Result<Prefilter, aho_corasick::BuildError> {
        let all = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .build(literals)?;
        Ok(Prefilter::with_automaton(literals, all))
    }

    /// Build over `literals` with `all`, an automaton over the same literals
    /// (the catalogue's, shared).
    pub fn with_automaton(literals: &[String], all: AhoCorasick) -> Prefilter {
        if literals.iter().any(|l| l.contains('\n')) {
            // A literal across lines: only the automaton finds it in a chunk.
            return Prefilter::Automaton(all);
        }
        let reduced = reduce(literals);
        let grams = cover(&reduced);
        let mut searchers = Vec::new();
        for chunk in grouped(&grams) {
            let built = packed::Config::new()
                .only_teddy(true)
                .builder()
                .extend(&chunk)
                .build();
            if let Some(s) = built {
                searchers.push(s);
            } else {
                searchers.clear();
                break;
            }
        }
        if searchers.is_empty() {
            Prefilter::Automaton(all)
        } else {
            Prefilter::Packed {
                confirm: Confirm::new(&reduced, &grams),
                searchers,
            }
        }
    }

    /// A search over one haystack.
    pub fn scan<'p, 'h>(&'p self, haystack: &'h [u8]) -> Scan<'p, 'h> {
        let groups = match self {
            Prefilter::Packed { searchers, .. } => searchers.len(),
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
        matches!(self, Prefilter::Packed { .. })
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
    /// The start of the first literal occurrence at or after `from` (by
    /// where its gram lies: in the first line that holds a literal). Calls
    /// must not decrease `from` (each group remembers its next hit).
    pub fn next(&mut self, mut from: usize) -> Option<usize> {
        let hay = self.haystack;
        let lower = from;
        loop {
            if from >= hay.len() {
                return None;
            }
            let hit = self.place(from)?;
            let Prefilter::Packed { confirm, .. } = self.pre else {
                return Some(hit);
            };
            if let Some(start) = confirm.at(hay, hit, lower) {
                return Some(start);
            }
            from = hit + 1;
        }
    }

    /// The leftmost place at or after `from` where some group matches.
    fn place(&mut self, from: usize) -> Option<usize> {
        let hay = self.haystack;
        let mut best: Option<usize> = None;
        for (i, slot) in self.next.iter_mut().enumerate() {
            let at = match *slot {
                Next::At(p) if p >= from => Some(p),
                Next::None => None,
                _ => {
                    let found = match self.pre {
                        Prefilter::Packed { searchers, .. } => searchers[i]
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
    fn every_literal_contains_a_cover_gram() {
        let cat = crate::logs::Catalogue::builtin();
        let lits = &cat.all_literals;
        let reduced = reduce(lits);
        let grams = cover(&reduced);
        for l in lits {
            assert!(
                grams
                    .iter()
                    .any(|g| memchr::memmem::find(l.as_bytes(), g).is_some()),
                "{l:?} contains no gram of {grams:?}"
            );
        }
        // Shared grams: far fewer patterns than literals, one Teddy searcher.
        assert!(grams.len() <= 4 * GROUP_MAX, "{} grams", grams.len());
        assert!(grams.len() * 3 < reduced.len() * 2, "{grams:?}");
        // Nothing of the common text of log lines where a literal has better.
        let common: Vec<String> = grams
            .iter()
            .map(|g| String::from_utf8_lossy(g).into_owned())
            .collect();
        assert!(
            !common.iter().any(|g| g == "clie" || g == "rver"),
            "{common:?}"
        );
    }

    #[test]
    fn a_gram_without_its_literal_is_no_candidate() {
        let lits: Vec<String> = ["AH01102", "upstream timed out", "AH00959"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let pre = Prefilter::new(&lits).unwrap();
        let hay = b"GET /AH01999 and upstream timed\nnothing here\nx AH01102 y\n";
        let mut scan = pre.scan(hay);
        let hit = scan.next(0);
        if pre.is_packed() {
            let want = memchr::memmem::find(hay, b"AH01102").unwrap();
            assert_eq!(hit, Some(want));
            assert_eq!(scan.next(want + 8), None);
        }
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
