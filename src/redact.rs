//! Redaction of secrets before they are stored anywhere: which attribute
//! keys hold secrets (the `redact_keys` option), and the credentials and
//! sensitive query values inside URL attributes.
//!
//! A [`Redactor`] is built once per tracer from its rule list and applied
//! where every attribute is set (`Attributes::set`), so spans, events,
//! links, files, exporters and the in-process stores all see the same
//! redacted value. Keys that do not match must cost next to nothing: the
//! same keys are set on span after span, so each thread remembers recent
//! keys' verdicts (a few ns to look up); a new key is matched in one pass
//! over its bytes, without copying it (`cargo bench --bench redact` and
//! `benches/bench_redact.py` measure both).
//!
//! Rules (README, "Security and privacy"): keys are read lower-cased (ASCII)
//! with `-` as `_`. A rule without `.` or `_` is a *word*: it matches a key
//! one of whose segments (split at `.` and `_`) is that word. A rule with
//! `.` or `_` is a *fragment*: it matches a key that contains it.

use compact_str::CompactString;

use crate::attributes::AttrValue;

/// What a redacted attribute's value becomes, whatever its type.
pub const REDACTED: &str = "[REDACTED]";

/// What a redacted part of a URL becomes: a valid URL character sequence,
/// as the OpenTelemetry HTTP conventions write it.
pub const URL_REDACTED: &str = "REDACTED";

/// The built-in rules: ten words and eight fragments.
pub const DEFAULT_RULES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "session",
    "credentials",
    "api_key",
    "access_token",
    "refresh_token",
    "private_key",
    "client_secret",
    "credit_card",
    "card_number",
    "set_cookie",
];

/// Query parameters the OpenTelemetry HTTP conventions ask to redact in
/// `url.full` by default (signed URLs), normalised; redacted while any
/// rule is on, besides the parameters the rules match.
const URL_SIGNATURE_PARAMS: &[&str] = &["awsaccesskeyid", "signature", "sig", "x_goog_signature"];

/// Fragments indexed by the after-separator table; any more are tried at
/// every separator of a key.
const INDEXED_FRAGMENTS: usize = 64;

/// Keys up to this many bytes have their verdict remembered per thread.
const CACHED_KEY_LEN: usize = 46;
/// Sets of two verdicts (128 in all, 7 KiB per thread).
const CACHE_SETS: usize = 64;

/// One remembered verdict: a key (its bytes inline, no allocation) as a
/// redactor judged it. Ids start at 1, so a zeroed slot is empty.
#[derive(Clone, Copy)]
struct Verdict {
    redactor: u64,
    len: u8,
    matches: bool,
    key: [u8; CACHED_KEY_LEN],
}

thread_local! {
    /// The same few keys are set on span after span, so each thread keeps
    /// the two latest verdicts per set (chosen by a hash of the key, and
    /// checked against the key's bytes, so a verdict is never another
    /// key's). Per thread: no atomics, no lock; no destructor to run; a
    /// forked child inherits valid verdicts.
    static VERDICTS: std::cell::RefCell<[[Verdict; 2]; CACHE_SETS]> = const {
        std::cell::RefCell::new(
            [[Verdict { redactor: 0, len: 0, matches: false, key: [0; CACHED_KEY_LEN] }; 2];
                CACHE_SETS],
        )
    };
}

/// Gives every compiled rule set its own id (clones share it: same rules).
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The cache set of a key: a multiplicative hash of its length and its
/// first and last eight bytes (two loads; a collision only costs a scan).
#[inline]
fn set_of(key: &[u8]) -> usize {
    let word = |bytes: &[u8]| {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(w)
    };
    let n = key.len();
    let (head, tail) = if n >= 8 {
        (word(&key[..8]), word(&key[n - 8..]))
    } else {
        (word(key), 0)
    };
    let h = (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 58) as usize % CACHE_SETS
}

/// A rule with `.` or `_`, matched anywhere in a key.
#[derive(Clone)]
struct Fragment {
    bytes: Box<[u8]>,
    /// Where its first separator is: every occurrence in a key puts one of
    /// the key's separators there, so only separators need trying.
    separator: usize,
}

/// The compiled rules of one tracer. Matching is one pass over the key's
/// bytes with no copy: at each separator (`.`, `_`, `-`) the segment that
/// ends there is looked up among the words (behind a 64-bit filter on its
/// first byte, last byte and length), and the fragments whose first
/// separator is followed by the key's next byte are compared in place.
#[derive(Clone)]
pub struct Redactor {
    /// Names this rule set in the per-thread verdict cache.
    id: u64,
    /// The normalised rules, as given (what `tracer.config` shows).
    rules: Vec<String>,
    words: Vec<Box<[u8]>>,
    /// Bit [`word_bit`] of every word: a segment whose bit is clear is none.
    word_filter: u64,
    fragments: Vec<Fragment>,
    /// For each byte, the fragments (bit = index, below
    /// [`INDEXED_FRAGMENTS`]) whose first separator is followed by it.
    after_separator: Box<[u64; 256]>,
    /// Fragments that end with their first separator (nothing follows it).
    ending_at_separator: u64,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(DEFAULT_RULES.iter().copied())
    }
}

impl PartialEq for Redactor {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Redactor").field(&self.rules).finish()
    }
}

/// A rule or key as the matcher reads it: ASCII lower case, `-` as `_`.
#[inline]
fn fold(b: u8) -> u8 {
    if b == b'-' {
        b'_'
    } else {
        b.to_ascii_lowercase()
    }
}

#[inline]
fn is_separator(b: u8) -> bool {
    matches!(b, b'.' | b'_' | b'-')
}

/// Whether `key` bytes read as `rule` (already folded).
#[inline]
fn eq_folded(key: &[u8], rule: &[u8]) -> bool {
    key.len() == rule.len() && key.iter().zip(rule).all(|(&k, &r)| fold(k) == r)
}

/// The filter bit of a segment (or word): its first and last bytes (ASCII
/// lower case) and its length.
#[inline]
fn word_bit(segment: &[u8]) -> u64 {
    let first = u32::from(segment[0].to_ascii_lowercase());
    let last = u32::from(segment[segment.len() - 1].to_ascii_lowercase());
    1 << ((first * 31 + last * 7 + segment.len() as u32) & 63)
}

/// A rule as given, normalised; None for a blank one.
pub fn normalise_rule(rule: &str) -> Option<String> {
    let rule = rule.trim();
    (!rule.is_empty()).then(|| rule.bytes().map(|b| fold(b) as char).collect())
}

impl Redactor {
    /// Compiles `rules` (normalised here; blanks and repeats dropped). No
    /// rule at all turns redaction off.
    pub fn new<'a>(rules: impl IntoIterator<Item = &'a str>) -> Self {
        let mut redactor = Redactor {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            rules: Vec::new(),
            words: Vec::new(),
            word_filter: 0,
            fragments: Vec::new(),
            after_separator: Box::new([0; 256]),
            ending_at_separator: 0,
        };
        for rule in rules {
            let Some(rule) = normalise_rule(rule) else {
                continue;
            };
            if redactor.rules.contains(&rule) {
                continue;
            }
            let bytes: Box<[u8]> = rule.as_bytes().into();
            match bytes.iter().position(|&b| b == b'.' || b == b'_') {
                Some(separator) => {
                    let index = redactor.fragments.len();
                    if index < INDEXED_FRAGMENTS {
                        match bytes.get(separator + 1) {
                            Some(&next) => redactor.after_separator[next as usize] |= 1 << index,
                            None => redactor.ending_at_separator |= 1 << index,
                        }
                    }
                    redactor.fragments.push(Fragment { bytes, separator });
                }
                None => {
                    redactor.word_filter |= word_bit(&bytes);
                    redactor.words.push(bytes);
                }
            }
            redactor.rules.push(rule);
        }
        redactor
    }

    /// The normalised rules (empty: redaction is off).
    pub fn rules(&self) -> &[String] {
        &self.rules
    }

    pub fn is_off(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether an attribute named `key` holds a secret.
    #[inline]
    pub fn matches(&self, key: &str) -> bool {
        if self.is_off() {
            return false;
        }
        let key = key.as_bytes();
        if key.len() > CACHED_KEY_LEN {
            return self.scan(key);
        }
        let set = set_of(key);
        let remembered = VERDICTS.try_with(|cache| {
            // Nothing in `scan` reaches this cache again, so the borrow
            // cannot fail; if it ever did, the key is scanned instead.
            let mut cache = cache.try_borrow_mut().ok()?;
            let [first, second] = &mut cache[set];
            for v in [&*first, &*second] {
                if v.redactor == self.id && &v.key[..v.len as usize] == key {
                    return Some(v.matches);
                }
            }
            // Miss: the newer verdict moves to second place.
            let matches = self.scan(key);
            *second = *first;
            first.redactor = self.id;
            first.len = key.len() as u8;
            first.key[..key.len()].copy_from_slice(key);
            first.matches = matches;
            Some(matches)
        });
        match remembered {
            Ok(Some(matches)) => matches,
            // The thread is exiting (its cache is gone) or the cache is busy.
            _ => self.scan(key),
        }
    }

    /// The matcher itself, without the cache.
    fn scan(&self, key: &[u8]) -> bool {
        let mut segment_start = 0;
        for (i, &b) in key.iter().enumerate() {
            if is_separator(b) {
                if self.is_word(&key[segment_start..i]) || self.fragment_at(key, i) {
                    return true;
                }
                segment_start = i + 1;
            }
        }
        self.is_word(&key[segment_start..])
    }

    #[inline]
    fn is_word(&self, segment: &[u8]) -> bool {
        !segment.is_empty()
            && self.word_filter & word_bit(segment) != 0
            && self
                .words
                .iter()
                .any(|w| w.len() == segment.len() && segment.eq_ignore_ascii_case(w))
    }

    /// Whether a fragment occurs in `key` with its first separator at the
    /// key's separator `at`.
    #[inline]
    fn fragment_at(&self, key: &[u8], at: usize) -> bool {
        if self.fragments.is_empty() {
            return false;
        }
        let next = key
            .get(at + 1)
            .map_or(0, |&b| self.after_separator[fold(b) as usize]);
        let mut candidates = next | self.ending_at_separator;
        let occurs = |f: &Fragment| {
            at.checked_sub(f.separator)
                .and_then(|start| key.get(start..start + f.bytes.len()))
                .is_some_and(|window| eq_folded(window, &f.bytes))
        };
        while candidates != 0 {
            let index = candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            if occurs(&self.fragments[index]) {
                return true;
            }
        }
        self.fragments.iter().skip(INDEXED_FRAGMENTS).any(occurs)
    }

    /// Applies the rules to one attribute about to be stored: a matching
    /// key's value becomes [`REDACTED`] (returns true); a URL attribute
    /// loses its credentials and sensitive query values. The key is kept.
    #[inline]
    pub fn apply(&self, key: &str, value: &mut AttrValue) -> bool {
        if self.is_off() {
            return false;
        }
        if self.matches(key) {
            *value = AttrValue::Str(REDACTED.into());
            return true;
        }
        let part = match key {
            "url.full" | "http.url" => UrlPart::Full,
            "http.target" => UrlPart::Target,
            "url.query" => UrlPart::Query,
            _ => return false,
        };
        if let AttrValue::Str(url) = value {
            if let Some(clean) = self.clean_url(url, part) {
                *url = clean;
            }
        }
        false
    }

    /// `url` without credentials and sensitive query values, or None when
    /// nothing needed to change (the common case allocates nothing).
    pub fn clean_url(&self, url: &str, part: UrlPart) -> Option<CompactString> {
        if self.is_off() {
            return None;
        }
        // head ? query # fragment; `url.query` is all query.
        let (head, query, fragment) = match part {
            UrlPart::Query => ("", Some(url), ""),
            UrlPart::Full | UrlPart::Target => {
                let end = url.find(['?', '#']).unwrap_or(url.len());
                let (head, tail) = url.split_at(end);
                match tail.strip_prefix('?') {
                    Some(rest) => {
                        let hash = rest.find('#').unwrap_or(rest.len());
                        (head, Some(&rest[..hash]), &rest[hash..])
                    }
                    None => (head, None, tail),
                }
            }
        };
        let clean_head = match part {
            UrlPart::Full => strip_userinfo(head),
            _ => None,
        };
        let clean_query = query.and_then(|q| self.clean_query(q));
        // A fragment can carry parameters too (OAuth's implicit flow puts
        // `#access_token=...` there).
        let clean_fragment = fragment.strip_prefix('#').and_then(|f| self.clean_query(f));
        if clean_head.is_none() && clean_query.is_none() && clean_fragment.is_none() {
            return None;
        }
        let mut out = CompactString::with_capacity(url.len() + 2 * URL_REDACTED.len());
        out.push_str(clean_head.as_deref().unwrap_or(head));
        if let Some(query) = query {
            if part != UrlPart::Query {
                out.push('?');
            }
            out.push_str(clean_query.as_deref().unwrap_or(query));
        }
        match clean_fragment {
            Some(f) => {
                out.push('#');
                out.push_str(&f);
            }
            None => out.push_str(fragment),
        }
        Some(out)
    }

    /// A query string with the values of sensitive parameters replaced, or
    /// None when no parameter is sensitive.
    fn clean_query(&self, query: &str) -> Option<String> {
        if query.is_empty() {
            return None;
        }
        let sensitive = |pair: &str| match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && value != URL_REDACTED => {
                let name = decode_param(name);
                self.matches(&name)
                    || URL_SIGNATURE_PARAMS
                        .iter()
                        .any(|p| eq_folded(name.as_bytes(), p.as_bytes()))
            }
            _ => false,
        };
        if !query.split('&').any(sensitive) {
            return None;
        }
        let mut out = String::with_capacity(query.len());
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            if sensitive(pair) {
                let name = pair.split_once('=').map_or(pair, |(n, _)| n);
                out.push_str(name);
                out.push('=');
                out.push_str(URL_REDACTED);
            } else {
                out.push_str(pair);
            }
        }
        Some(out)
    }
}

/// Which part of a URL an attribute holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlPart {
    /// `scheme://user:pass@host/path?query#fragment` (`url.full`, `http.url`).
    Full,
    /// `path?query` (`http.target`).
    Target,
    /// `query` alone, without `?` (`url.query`).
    Query,
}

/// `scheme://REDACTED:REDACTED@host/...` when the authority carries
/// credentials (`user:password@`); None when it carries none.
fn strip_userinfo(head: &str) -> Option<String> {
    let start = head.find("://")? + 3;
    let authority_end = head[start..].find('/').map_or(head.len(), |i| start + i);
    let at = head[start..authority_end].rfind('@')? + start;
    Some(format!(
        "{}{URL_REDACTED}:{URL_REDACTED}{}",
        &head[..start],
        &head[at..]
    ))
}

/// A query parameter's name as its reader sees it: percent-decoded, `+` as
/// a space; bytes that do not decode are kept as written.
fn decode_param(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.contains(['%', '+']) {
        return name.into();
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(url: &str, part: UrlPart) -> String {
        Redactor::default()
            .clean_url(url, part)
            .map_or_else(|| url.to_string(), |c| c.to_string())
    }

    #[test]
    fn default_rules_redact_the_issue_examples() {
        let r = Redactor::default();
        for key in [
            "db.password",
            "x-api-key",
            "http.request.header.authorization",
            "session_id",
            "user_token",
            "X-API-Key",
            "DB.PASSWORD",
            "http.response.header.set-cookie",
            "oauth.refresh_token",
            "client_secret",
            "payment.credit-card",
            "pwd",
            "aws.credentials",
        ] {
            assert!(r.matches(key), "{key} should be redacted");
        }
        for key in [
            "gen_ai.usage.input_tokens",
            "tokens_in",
            "auth.method",
            "http.request.method",
            "url.full",
            "passwords_changed_count",
            "",
            ".",
        ] {
            assert!(!r.matches(key), "{key} should be kept");
        }
        // Empty segments around a word do not hide it.
        assert!(r.matches("_token_"));
    }

    #[test]
    fn words_match_segments_fragments_match_anywhere() {
        let r = Redactor::new(["Card", "my-key"]);
        assert_eq!(r.rules(), ["card", "my_key"]);
        assert!(r.matches("payment.card"));
        assert!(r.matches("CARD_holder"));
        assert!(!r.matches("cards"));
        assert!(
            r.matches("x.my_keys"),
            "a fragment matches inside a segment"
        );
        assert!(r.matches("MY-KEY"));
        // The defaults are replaced, not extended.
        assert!(!r.matches("db.password"));
    }

    #[test]
    fn an_empty_list_turns_redaction_off() {
        let r = Redactor::new([]);
        assert!(r.is_off());
        assert!(!r.matches("password"));
        let mut v = AttrValue::Str("https://u:p@h/?token=1".into());
        r.apply("url.full", &mut v);
        assert_eq!(v, AttrValue::Str("https://u:p@h/?token=1".into()));
        assert_eq!(Redactor::new(["", "  "]).rules(), [] as [String; 0]);
    }

    #[test]
    fn values_of_any_type_become_the_marker() {
        let r = Redactor::default();
        for mut v in [
            AttrValue::Int(42),
            AttrValue::Bool(true),
            AttrValue::Float(1.5),
            AttrValue::List(vec![AttrValue::Str("a".into())]),
            AttrValue::Str("hunter2".into()),
        ] {
            r.apply("db.password", &mut v);
            assert_eq!(v, AttrValue::Str(REDACTED.into()));
        }
        let mut kept = AttrValue::Int(7);
        r.apply("gen_ai.usage.input_tokens", &mut kept);
        assert_eq!(kept, AttrValue::Int(7));
    }

    #[test]
    fn long_keys_and_many_fragments() {
        let long = format!("{}.password", "x".repeat(300));
        assert!(Redactor::default().matches(&long));
        assert!(!Redactor::default().matches(&"y".repeat(300)));
        let rules: Vec<String> = (0..70).map(|i| format!("f{i}_x")).collect();
        let r = Redactor::new(rules.iter().map(String::as_str));
        assert!(r.matches("a.f3_x"));
        assert!(r.matches("a.f69_x.b"), "a fragment past the indexed ones");
        assert!(!r.matches("a.f70_x"));
    }

    #[test]
    fn query_values_are_redacted_by_parameter_name() {
        assert_eq!(
            cleaned("token=abc&page=2", UrlPart::Query),
            "token=REDACTED&page=2"
        );
        assert_eq!(
            cleaned(
                "q=shoes&api-key=k1&Session_ID=s&max_tokens=5",
                UrlPart::Query
            ),
            "q=shoes&api-key=REDACTED&Session_ID=REDACTED&max_tokens=5"
        );
        // Percent-encoded names are read decoded; the OpenTelemetry
        // signature parameters are redacted too.
        assert_eq!(
            cleaned("api%5Fkey=1&X-Amz=2&Signature=3&sig=4", UrlPart::Query),
            "api%5Fkey=REDACTED&X-Amz=2&Signature=REDACTED&sig=REDACTED"
        );
        // Nothing sensitive: the value is left alone (no allocation).
        assert!(Redactor::default()
            .clean_url("page=2&token", UrlPart::Query)
            .is_none());
        assert_eq!(cleaned("token=&a=%zz", UrlPart::Query), "token=&a=%zz");
    }

    #[test]
    fn full_urls_lose_credentials_and_sensitive_query_values() {
        assert_eq!(
            cleaned(
                "https://alice:s3cret@api.example.com:8443/v1/items?access_token=t&page=2#frag",
                UrlPart::Full
            ),
            "https://REDACTED:REDACTED@api.example.com:8443/v1/items?access_token=REDACTED&page=2#frag"
        );
        assert_eq!(
            cleaned("http://bob@h/p", UrlPart::Full),
            "http://REDACTED:REDACTED@h/p"
        );
        assert_eq!(
            cleaned("http://h/p?x=1#access_token=2&state=s", UrlPart::Full),
            "http://h/p?x=1#access_token=REDACTED&state=s"
        );
        assert_eq!(cleaned("http://h/p#top", UrlPart::Full), "http://h/p#top");
        assert_eq!(
            cleaned("http://h/a@b?ok=1", UrlPart::Full),
            "http://h/a@b?ok=1"
        );
        assert_eq!(cleaned("not a url", UrlPart::Full), "not a url");
        assert_eq!(
            cleaned("/login?password=pw&next=/", UrlPart::Target),
            "/login?password=REDACTED&next=/"
        );
    }

    #[test]
    fn apply_rewrites_url_attributes_only() {
        let r = Redactor::default();
        let url = "https://u:p@h/?token=1";
        for key in ["url.full", "http.url"] {
            let mut v = AttrValue::Str(url.into());
            r.apply(key, &mut v);
            assert_eq!(
                v,
                AttrValue::Str("https://REDACTED:REDACTED@h/?token=REDACTED".into())
            );
        }
        let mut other = AttrValue::Str(url.into());
        r.apply("note", &mut other);
        assert_eq!(other, AttrValue::Str(url.into()));
    }
}
