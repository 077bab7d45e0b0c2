//! `fork_history` semantics: every edge case of drop-last-N, then properties.

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_record::{InitialHistory, ResponseItem, fork_history};
use proptest::prelude::*;

fn user(t: &str) -> ResponseItem {
    ResponseItem::user_text(t)
}
fn asst(t: &str) -> ResponseItem {
    ResponseItem::assistant_text(t)
}
fn env() -> ResponseItem {
    ResponseItem::user_text("<environment_context>\n  <cwd>/p</cwd>\n</environment_context>")
}
fn call(id: &str) -> ResponseItem {
    ResponseItem::FunctionCall {
        id: None,
        name: "exec_command".into(),
        arguments: "{}".into(),
        call_id: id.into(),
    }
}

fn sample() -> Vec<ResponseItem> {
    vec![
        env(),
        user("u1"),
        asst("a1"),
        user("u2"),
        call("c1"),
        asst("a2"),
        user("u3"),
        asst("a3"),
    ]
}

#[test]
fn zero_keeps_everything() {
    assert_eq!(fork_history(sample(), 0), InitialHistory::Forked(sample()));
}

#[test]
fn drops_the_last_prompts_and_what_follows() {
    let items = sample();
    assert_eq!(
        fork_history(items.clone(), 1),
        InitialHistory::Forked(items[..6].to_vec())
    );
    assert_eq!(
        fork_history(items.clone(), 2),
        InitialHistory::Forked(items[..3].to_vec())
    );
}

#[test]
fn dropping_every_prompt_or_more_yields_new() {
    // Only the injected context would remain: nothing the user asked survives.
    assert_eq!(fork_history(sample(), 3), InitialHistory::New);
    assert_eq!(fork_history(sample(), 4), InitialHistory::New);
    assert_eq!(fork_history(sample(), usize::MAX), InitialHistory::New);
}

#[test]
fn prompt_at_index_zero_being_cut_yields_new() {
    let items = vec![user("u1"), asst("a1")];
    assert_eq!(fork_history(items.clone(), 1), InitialHistory::New);
    assert_eq!(
        fork_history(items.clone(), 0),
        InitialHistory::Forked(items)
    );
}

#[test]
fn injected_context_is_not_counted_as_a_prompt() {
    let items = vec![env(), user("u1"), asst("a1"), env(), user("u2"), asst("a2")];
    // The second env block belongs to turn 1's tail; dropping 1 prompt cuts at u2.
    assert_eq!(
        fork_history(items.clone(), 1),
        InitialHistory::Forked(items[..4].to_vec())
    );
}

#[test]
fn empty_history_is_new() {
    assert_eq!(fork_history(Vec::new(), 0), InitialHistory::New);
    assert_eq!(fork_history(Vec::new(), 2), InitialHistory::New);
}

fn item() -> impl Strategy<Value = ResponseItem> {
    prop_oneof![
        "[a-z]{1,6}".prop_map(|t| user(&t)),
        Just(env()),
        "[a-z]{1,6}".prop_map(|t| asst(&t)),
        "[a-z]{1,4}".prop_map(|t| call(&t)),
    ]
}

proptest! {
    #[test]
    fn fork_cuts_exactly_at_the_nth_prompt_from_the_end(
        items in prop::collection::vec(item(), 0..24),
        n in 0usize..10,
    ) {
        let prompts = items.iter().filter(|i| i.is_typed_user_prompt()).count();
        let result = fork_history(items.clone(), n);
        match &result {
            InitialHistory::Forked(prefix) => {
                prop_assert!(items.starts_with(prefix));
                let kept = prefix.iter().filter(|i| i.is_typed_user_prompt()).count();
                prop_assert!(kept > 0);
                if n == 0 {
                    prop_assert_eq!(prefix, &items);
                } else {
                    prop_assert_eq!(kept, prompts - n);
                    // The cut lands on a typed prompt.
                    prop_assert!(items[prefix.len()].is_typed_user_prompt());
                }
            }
            InitialHistory::New => prop_assert!(n >= prompts),
            InitialHistory::Resumed { .. } => prop_assert!(false, "fork never resumes"),
        }
        if n > prompts {
            prop_assert_eq!(result, InitialHistory::New);
        }
    }
}
