//! Properties of the pure engine, on the shipped playbooks and on random
//! valid playbooks, under random input sequences:
//! - no input sequence panics, and a rejected input leaves the state untouched;
//! - every reachable state offers a way forward or an end;
//! - `back` then the same input returns to the same state;
//! - replaying the recorded inputs rebuilds the same state (resume).

#![allow(
    clippy::unwrap_used,
    clippy::many_single_char_names,
    clippy::format_push_string
)] // test code

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use triage502::check::{CheckReport, Outcome};
use triage502::engine::{ActionResult, AnswerSource, Effect, Engine, Input};
use triage502::playbook::library::{Library, Origin, Source, discover};

/// Everything observable about a state, for equality.
fn fingerprint(e: &Engine) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        e.effect(),
        e.trail(),
        e.findings(),
        e.values(),
        e.inputs()
    )
}

#[derive(Debug, Clone)]
enum Op {
    Checks(Vec<u8>, u8),
    Answer(u8),
    Garbage,
    Continue,
    Action(bool),
    Decline,
    Back,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop::collection::vec(0u8..3, 0..4), 0u8..4).prop_map(|(o, f)| Op::Checks(o, f)),
        3 => (0u8..4).prop_map(Op::Answer),
        1 => Just(Op::Garbage),
        2 => Just(Op::Continue),
        1 => any::<bool>().prop_map(Op::Action),
        1 => Just(Op::Decline),
        2 => Just(Op::Back),
    ]
}

/// Turn a random op into an input that usually fits the current effect.
fn input_for(e: &Engine, op: &Op) -> Option<Input> {
    Some(match op {
        Op::Checks(outcomes, fact) => {
            let n = match e.effect() {
                Effect::RunChecks { checks, .. } => checks.len(),
                _ => outcomes.len(),
            };
            let facts = ["tcp.result", "http.status", "upstream", "nothing"];
            let values = ["refused", "timeout", "dns", "connected"];
            Input::ChecksDone(
                (0..n)
                    .map(|i| {
                        let o = match outcomes.get(i).copied().unwrap_or(0) {
                            0 => Outcome::Ok,
                            1 => Outcome::Problem,
                            _ => Outcome::Inconclusive,
                        };
                        CheckReport::new("tcp", "x", o, "prop")
                            .with_fact(facts[*fact as usize % 4], values[i % 4])
                    })
                    .collect(),
            )
        }
        Op::Answer(i) => match e.effect() {
            Effect::Ask { choices, .. } if !choices.is_empty() => Input::Answer {
                choice: choices[*i as usize % choices.len()].0.clone(),
                by: AnswerSource::Operator,
            },
            _ => Input::Answer {
                choice: "x".into(),
                by: AnswerSource::Operator,
            },
        },
        Op::Garbage => Input::Answer {
            choice: "\u{0}; rm -rf /".into(),
            by: AnswerSource::Flag,
        },
        Op::Continue => Input::Continue,
        Op::Action(ok) => Input::ActionDone(ActionResult {
            argv: vec!["true".into()],
            ok: *ok,
            exit_code: Some(i32::from(!*ok)),
            output: String::new(),
            summary: String::new(),
            duration_ms: 1,
        }),
        Op::Decline => Input::ActionDeclined {
            reason: "prop".into(),
        },
        Op::Back => return None,
    })
}

fn way_forward(e: &Engine) -> bool {
    match e.effect() {
        Effect::Done(_) | Effect::Inform { .. } | Effect::Offer(_) => true,
        Effect::RunChecks { checks, .. } => !checks.is_empty(),
        Effect::Ask {
            choices, default, ..
        } => choices.iter().any(|c| &c.0 == default),
    }
}

fn exercise(
    lib: &Arc<Library>,
    root: &str,
    vars: &BTreeMap<String, String>,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut e = Engine::start(lib.clone(), root, vars.clone()).unwrap();
    prop_assert!(way_forward(&e));
    for op in ops {
        let before = fingerprint(&e);
        match input_for(&e, op) {
            None => {
                e.back().unwrap();
            }
            Some(input) => {
                if e.step(input.clone()).is_err() {
                    prop_assert_eq!(
                        fingerprint(&e),
                        before,
                        "a rejected input changed the state"
                    );
                } else {
                    let after = fingerprint(&e);
                    let mut again = e.clone();
                    again.back().unwrap();
                    prop_assert_eq!(
                        fingerprint(&again),
                        before.clone(),
                        "back did not return to the previous state"
                    );
                    again.step(input).unwrap();
                    prop_assert_eq!(
                        fingerprint(&again),
                        after,
                        "back then the same input gave another state"
                    );
                }
            }
        }
        prop_assert!(way_forward(&e), "stuck at {:?}", e.effect());
        let replayed = Engine::replay(lib.clone(), root, vars.clone(), e.inputs()).unwrap();
        prop_assert_eq!(fingerprint(&replayed), fingerprint(&e), "replay differs");
    }
    Ok(())
}

fn shipped() -> Arc<Library> {
    let (lib, failures) = Library::from_sources(discover(&[]));
    assert!(failures.is_empty());
    Arc::new(lib)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn shipped_playbooks_hold_the_properties(which in 0usize..4, ops in prop::collection::vec(op(), 0..40)) {
        let lib = shipped();
        let root = ["502", "cdn", "wordpress", "php-fpm"][which];
        let vars: BTreeMap<String, String> = [
            ("url".to_owned(), "http://shop.example/x?token=1".to_owned()),
            ("upstream".to_owned(), "127.0.0.1:9".to_owned()),
        ]
        .into();
        exercise(&lib, root, &vars, &ops)?;
    }

    #[test]
    fn random_valid_playbooks_hold_the_properties(spec in prop::collection::vec((0u8..5, 0usize..8, 0usize..8, 0usize..8), 2..9), ops in prop::collection::vec(op(), 0..40)) {
        let text = random_playbook(&spec);
        let (lib, failures) = Library::from_sources(vec![Source { origin: Origin::File("random.toml".into()), text }]);
        // Only valid playbooks are in scope; the validator decides.
        prop_assume!(failures.is_empty() && lib.get("random").is_some());
        let vars: BTreeMap<String, String> = [("url".to_owned(), "http://a.example/".to_owned())].into();
        exercise(&Arc::new(lib), "random", &vars, &ops)?;
    }
}

/// A playbook from random kinds and branch targets; the last node is always an end.
fn random_playbook(spec: &[(u8, usize, usize, usize)]) -> String {
    let n = spec.len();
    let mut s = String::from(
        "id = \"random\"\ntitle = \"R\"\nversion = \"1\"\nstart = \"n0\"\n[[var]]\nname = \"url\"\nprompt = \"u\"\ntype = \"url\"\n",
    );
    for (i, (kind, a, b, c)) in spec.iter().enumerate() {
        let (a, b, c) = (a % n, b % n, c % n);
        s.push_str(&format!("[[node]]\nid = \"n{i}\"\ntitle = \"N{i}\"\n"));
        let kind = if i == n - 1 { 4 } else { *kind };
        match kind {
            0 => s.push_str(&format!(
                "checks = [{{ tcp = {{ address = \"{{{{ url.hostport }}}}\" }} }}, {{ http = {{ url = \"{{{{ url }}}}\" }} }}]\non = {{ ok = \"n{a}\", problem = \"n{b}\", inconclusive = \"n{c}\" }}\nwhen = [{{ fact = \"tcp.result\", equals = \"refused\", next = \"n{c}\" }}]\n[[node.finding]]\non = \"problem\"\ncause = \"upstream_refused\"\nsummary = \"x {{{{ url }}}}\"\n"
            )),
            1 => s.push_str(&format!(
                "question = \"q?\"\ndefault = \"a\"\nchoices = [{{ id = \"a\", label = \"A\", next = \"n{a}\" }}, {{ id = \"b\", label = \"B\", next = \"n{b}\", set = {{ upstream = \"x\" }} }}]\nwhen = [{{ found = \"upstream_refused\", next = \"n{c}\" }}]\n"
            )),
            2 => s.push_str(&format!("next = \"n{a}\"\n")),
            3 => s.push_str(&format!(
                "action = {{ tier = \"reversible\", do = {{ command = {{ argv = [\"echo\", \"{{{{ url }}}}\"] }} }} }}\non = {{ done = \"n{a}\", failed = \"n{b}\", declined = \"n{c}\" }}\n"
            )),
            _ => s.push_str(if a % 2 == 0 { "end = \"resolved\"\n" } else { "end = \"escalate\"\n" }),
        }
    }
    s
}
