//! Detection: the rule set (data in `rules.toml`), compiled once, and the
//! scan that finds secrets in bytes line by line.
//!
//! Speed comes from a keyword prefilter: one Aho-Corasick automaton over
//! every rule's keywords finds the places worth a look, and a rule's regex
//! only runs on the window of its line around its own keywords' hits (from
//! `lead` bytes before a hit to `reach` bytes after it; overlapping windows
//! of a rule merge). Transcript lines can be megabytes long, so this keeps
//! the regexes off almost all bytes.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use std::sync::OnceLock;

/// The rules shipped with baton.
pub const BUILTIN_RULES: &str = include_str!("../rules.toml");

/// A rule file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// Not valid TOML or missing fields.
    #[error("secret rules are not valid: {0}")]
    Parse(#[from] toml::de::Error),
    /// A pattern does not compile.
    #[error("secret rule `{id}` has a bad pattern: {source}")]
    Pattern {
        /// The rule.
        id: String,
        /// The regex error.
        source: Box<regex::Error>,
    },
    /// The keyword automaton cannot be built.
    #[error("secret rule keywords cannot be compiled: {0}")]
    Keywords(#[from] aho_corasick::BuildError),
    /// A rule has no keyword, so the prefilter would never show it a line.
    #[error("secret rule `{0}` needs at least one keyword")]
    NoKeyword(String),
}

/// One rule as written in the rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable rule name, used in placeholders and allow-list entries.
    pub id: String,
    /// What the rule finds.
    pub description: String,
    /// Literals one of which every match contains (ASCII case-insensitive).
    pub keywords: Vec<String>,
    /// The pattern; the `secret` group, when present, is the secret.
    pub regex: String,
    /// Least Shannon entropy (bits per byte) of the secret.
    #[serde(default)]
    pub min_entropy: Option<f64>,
    /// The secret must contain a letter and a digit.
    #[serde(default)]
    pub mixed: bool,
    /// Values (any case) that are never secrets.
    #[serde(default)]
    pub stopwords: Vec<String>,
    /// Most bytes a match starts before its keyword.
    #[serde(default = "default_lead")]
    pub lead: usize,
    /// Most bytes a match ends after the end of its keyword.
    #[serde(default = "default_reach")]
    pub reach: usize,
    /// Texts the rule must find something in.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Texts no rule may find anything in.
    #[serde(default)]
    pub counterexamples: Vec<String>,
}

fn default_lead() -> usize {
    64
}

fn default_reach() -> usize {
    512
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    version: u32,
    rule: Vec<RuleSpec>,
}

/// A compiled rule set.
#[derive(Debug)]
pub struct RuleSet {
    version: u32,
    specs: Vec<RuleSpec>,
    regexes: Vec<Regex>,
    keywords: AhoCorasick,
    /// The rules of each keyword of `keywords`.
    keyword_rules: Vec<Vec<usize>>,
}

/// One secret found in scanned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Index of the rule in its [`RuleSet`].
    pub rule: usize,
    /// Byte range of the secret in the scanned bytes.
    pub range: std::ops::Range<usize>,
}

fn compile(pattern: &str) -> RegexBuilder {
    let mut b = RegexBuilder::new(pattern);
    b.unicode(false).size_limit(1 << 24);
    b
}

impl RuleSet {
    /// The rules shipped with baton ([`BUILTIN_RULES`]), compiled once.
    pub fn builtin() -> &'static RuleSet {
        static RULES: OnceLock<RuleSet> = OnceLock::new();
        RULES.get_or_init(|| RuleSet::parse(BUILTIN_RULES).expect("the built-in rules compile"))
    }

    /// Compile a rule file (the format of `rules.toml`).
    pub fn parse(text: &str) -> Result<RuleSet, RuleError> {
        let file: RuleFile = toml::from_str(text)?;
        let mut regexes = Vec::new();
        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        for (rule, spec) in file.rule.iter().enumerate() {
            if spec.keywords.is_empty() {
                return Err(RuleError::NoKeyword(spec.id.clone()));
            }
            for k in &spec.keywords {
                let k = k.to_ascii_lowercase();
                match keywords.iter().position(|have| *have == k) {
                    Some(i) => keyword_rules[i].push(rule),
                    None => {
                        keywords.push(k);
                        keyword_rules.push(vec![rule]);
                    }
                }
            }
            let re = compile(&spec.regex)
                .build()
                .map_err(|source| RuleError::Pattern {
                    id: spec.id.clone(),
                    source: Box::new(source),
                })?;
            regexes.push(re);
        }
        // Keywords occur often in transcripts ("token" in every usage
        // record): a DFA without a prefilter beats prefilter restarts.
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(false)
            .build(&keywords)?;
        Ok(RuleSet {
            version: file.version,
            specs: file.rule,
            regexes,
            keywords,
            keyword_rules,
        })
    }

    /// The rule file's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The rules, in priority order.
    pub fn rules(&self) -> &[RuleSpec] {
        &self.specs
    }

    /// Every secret in `bytes`, in order, without overlaps (on overlap the
    /// earlier-starting finding wins, then the earlier rule). Matches never
    /// span lines. `skip(rule, value)` drops a candidate (allow-list).
    pub fn find(&self, bytes: &[u8], skip: &dyn Fn(&str, &[u8]) -> bool) -> Vec<Finding> {
        let mut found = Vec::new();
        // Per rule, the window waiting to be searched (it may still grow).
        let mut open: Vec<Option<(usize, usize)>> = vec![None; self.specs.len()];
        let mut line = 0..0;
        for hit in self.keywords.find_iter(bytes) {
            if hit.start() >= line.end {
                line.start = memchr::memrchr(b'\n', &bytes[..hit.start()]).map_or(0, |i| i + 1);
                line.end = memchr::memchr(b'\n', &bytes[hit.start()..])
                    .map_or(bytes.len(), |i| hit.start() + i);
            }
            for &rule in &self.keyword_rules[hit.pattern().as_usize()] {
                let spec = &self.specs[rule];
                let from = hit.start().saturating_sub(spec.lead).max(line.start);
                let to = (hit.end() + spec.reach).min(line.end);
                match &mut open[rule] {
                    Some(w) if from <= w.1 => w.1 = w.1.max(to),
                    w => {
                        if let Some(done) = w.replace((from, to)) {
                            self.search(rule, bytes, done, skip, &mut found);
                        }
                    }
                }
            }
        }
        for (rule, w) in open.into_iter().enumerate() {
            if let Some(w) = w {
                self.search(rule, bytes, w, skip, &mut found);
            }
        }
        found.sort_by_key(|f| (f.range.start, f.rule));
        let mut out: Vec<Finding> = Vec::with_capacity(found.len());
        for f in found {
            if out
                .last()
                .is_none_or(|last| f.range.start >= last.range.end)
            {
                out.push(f);
            }
        }
        out
    }

    /// Run `rule` over the window `from..to` of `bytes` (bytes before it
    /// count as context for `\b`).
    fn search(
        &self,
        rule: usize,
        bytes: &[u8],
        (from, to): (usize, usize),
        skip: &dyn Fn(&str, &[u8]) -> bool,
        found: &mut Vec<Finding>,
    ) {
        let spec = &self.specs[rule];
        let haystack = &bytes[..to];
        let mut at = from;
        while at < to {
            let Some(caps) = self.regexes[rule].captures_at(haystack, at) else {
                return;
            };
            let whole = caps.get(0).expect("group 0 is the match");
            at = whole.end().max(whole.start() + 1);
            let m = caps.name("secret").unwrap_or(whole);
            let value = m.as_bytes();
            if !accepts(spec, value) || crate::redact::contains_placeholder(value) {
                continue;
            }
            if skip(&spec.id, value) {
                continue;
            }
            found.push(Finding {
                rule,
                range: m.range(),
            });
        }
    }
}

/// Whether `value` passes the rule's filters.
fn accepts(spec: &RuleSpec, value: &[u8]) -> bool {
    if spec
        .stopwords
        .iter()
        .any(|w| w.as_bytes().eq_ignore_ascii_case(value))
    {
        return false;
    }
    if spec.mixed
        && !(value.iter().any(u8::is_ascii_alphabetic) && value.iter().any(u8::is_ascii_digit))
    {
        return false;
    }
    spec.min_entropy.is_none_or(|min| entropy(value) >= min)
}

/// Shannon entropy of `bytes` in bits per byte.
pub fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(rules: &RuleSet, text: &str) -> Vec<String> {
        rules
            .find(text.as_bytes(), &|_, _| false)
            .into_iter()
            .map(|f| rules.rules()[f.rule].id.clone())
            .collect()
    }

    #[test]
    fn every_example_is_found_by_its_rule_and_no_counterexample_by_any() {
        let rules = RuleSet::builtin();
        for spec in rules.rules() {
            assert!(!spec.examples.is_empty(), "rule {} has no example", spec.id);
            for ex in &spec.examples {
                assert!(
                    ids(rules, ex).contains(&spec.id),
                    "rule {} misses its example {ex:?}: found {:?}",
                    spec.id,
                    ids(rules, ex)
                );
            }
            for ex in &spec.counterexamples {
                assert_eq!(
                    ids(rules, ex),
                    Vec::<String>::new(),
                    "counterexample of {}: {ex:?}",
                    spec.id
                );
            }
        }
    }

    #[test]
    fn findings_do_not_overlap_and_the_earlier_rule_wins() {
        let rules = RuleSet::builtin();
        let key = rules.rules()[1].examples[0].as_str();
        assert_eq!(ids(rules, key), vec!["openai-api-key".to_owned()]);
    }

    #[test]
    fn a_rule_without_keywords_or_with_a_bad_pattern_is_refused() {
        let no_kw = "version = 1\n[[rule]]\nid='x'\ndescription='x'\nkeywords=[]\nregex='x'\n";
        assert!(matches!(
            RuleSet::parse(no_kw),
            Err(RuleError::NoKeyword(id)) if id == "x"
        ));
        let bad = "version = 1\n[[rule]]\nid='y'\ndescription='y'\nkeywords=['y']\nregex='('\n";
        assert!(matches!(RuleSet::parse(bad), Err(RuleError::Pattern { id, .. }) if id == "y"));
    }
}
