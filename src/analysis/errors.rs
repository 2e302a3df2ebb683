//! Error groups: failed spans that are "the same problem" counted together.
//!
//! A group's fingerprint is the exception type, the message with its
//! variable parts replaced by placeholders, and the operation (service and
//! span name) it happened in, so "user 42 not found" and "user 7 not found"
//! in `GET /users/{id}` are one group. Placeholders: `<str>` for a quoted
//! value ('...' or "..."), `<id>` for a UUID, a 0x-prefixed or 8+-digit hex
//! id, `<num>` for a number (digits inside a word too: "shard3" -> "shard<num>").

use std::collections::HashMap;

use compact_str::CompactString;
use serde::Serialize;

use super::record::SpanRow;
use crate::ids::TraceId;

/// Failed spans sharing a fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorGroup {
    /// 16 hex digits, stable across runs and versions (FNV-1a of the key).
    pub fingerprint: String,
    /// The exception type ("Error" when the span failed without one).
    #[serde(rename = "type")]
    pub error_type: String,
    /// The normalised message.
    pub message: String,
    /// The latest occurrence's message as recorded.
    pub example_message: String,
    pub service: CompactString,
    pub operation: CompactString,
    pub count: u64,
    /// Earliest and latest end of a failed span (when the error surfaced).
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// The trace of the latest occurrence.
    #[serde(serialize_with = "super::record::hex_trace_id")]
    pub example_trace_id: TraceId,
}

/// The HTTP-like status code a span recorded, if any.
fn status_code(span: &SpanRow) -> Option<i64> {
    ["http.response.status_code", "status_code"]
        .iter()
        .find_map(|key| span.attributes.get(*key).and_then(|v| v.as_i64()))
}

/// Groups every failed span (status "error" or carrying an error) by
/// fingerprint: most frequent first, then most recently seen.
pub(crate) fn error_groups<'a>(spans: impl IntoIterator<Item = &'a SpanRow>) -> Vec<ErrorGroup> {
    let mut groups: HashMap<String, ErrorGroup> = HashMap::new();
    for span in spans {
        if !span.is_error() && span.error.is_none() {
            continue;
        }
        let status_type;
        let (error_type, message) = match &span.error {
            Some(e) => (e.error_type.as_str(), e.message.as_str()),
            // Failed without an exception (e.g. a 5xx response): name it by
            // its status code when it has one, so such failures group usefully.
            None => match status_code(span) {
                Some(code) => {
                    status_type = format!("HTTP {code}");
                    (status_type.as_str(), "error status code")
                }
                None => ("Error", ""),
            },
        };
        let normalised = normalize_message(message);
        let fingerprint = fingerprint(error_type, &normalised, &span.service, &span.name);
        let seen = span.end_ns;
        let group = groups
            .entry(fingerprint.clone())
            .or_insert_with(|| ErrorGroup {
                fingerprint,
                error_type: error_type.to_string(),
                message: normalised,
                example_message: message.to_string(),
                service: span.service.clone(),
                operation: span.name.clone(),
                count: 0,
                first_seen_ns: seen,
                last_seen_ns: seen,
                example_trace_id: span.trace_id,
            });
        group.count += 1;
        group.first_seen_ns = group.first_seen_ns.min(seen);
        if seen > group.last_seen_ns {
            group.last_seen_ns = seen;
            group.example_message = message.to_string();
            group.example_trace_id = span.trace_id;
        }
    }
    let mut groups: Vec<ErrorGroup> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.last_seen_ns.cmp(&a.last_seen_ns))
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    groups
}

/// The group key as 16 hex digits.
pub(crate) fn fingerprint(
    error_type: &str,
    normalised: &str,
    service: &str,
    operation: &str,
) -> String {
    // FNV-1a: std's hasher is not stable across Rust versions, and the
    // fingerprint may be stored or compared across runs.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [error_type, normalised, service, operation] {
        for &b in part.as_bytes().iter().chain(&[0xff]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Replaces the variable parts of an error message with placeholders.
pub(crate) fn normalize_message(message: &str) -> String {
    let chars: Vec<char> = message.trim().chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_word = i > 0 && is_word(chars[i - 1]);
        if (c == '\'' || c == '"') && !after_word {
            if let Some(close) = closing_quote(&chars, i) {
                out.push_str("<str>");
                i = close + 1;
                continue;
            }
        }
        if !is_word(c) || after_word {
            out.push(c);
            i += 1;
            continue;
        }
        if is_uuid_at(&chars, i) {
            out.push_str("<id>");
            i += 36;
            continue;
        }
        let end = chars[i..]
            .iter()
            .position(|&c| !is_word(c))
            .map_or(chars.len(), |n| i + n);
        let word = &chars[i..end];
        if word.iter().all(char::is_ascii_digit) {
            // A number, with any decimal parts ("2.5", "1.2.3").
            let mut end = end;
            while end + 1 < chars.len() && chars[end] == '.' && chars[end + 1].is_ascii_digit() {
                end += 1;
                while end < chars.len() && chars[end].is_ascii_digit() {
                    end += 1;
                }
            }
            out.push_str("<num>");
            i = end;
        } else if is_hex_id(word) {
            out.push_str("<id>");
            i = end;
        } else {
            push_with_numbers_replaced(&mut out, word);
            i = end;
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The index of the quote closing the one at `open`: the next same quote
/// character not followed by a word character (so "it's" inside a quoted
/// value does not close it early).
fn closing_quote(chars: &[char], open: usize) -> Option<usize> {
    let quote = chars[open];
    (open + 1..chars.len()).find(|&j| chars[j] == quote && at_word_boundary(chars, j + 1))
}

/// Whether no word character is at `index` (the end of the text counts).
fn at_word_boundary(chars: &[char], index: usize) -> bool {
    chars.get(index).is_none_or(|&c| !is_word(c))
}

/// 8-4-4-4-12 hex digits with dashes, ending at a word boundary.
fn is_uuid_at(chars: &[char], start: usize) -> bool {
    const DASHES: [usize; 4] = [8, 13, 18, 23];
    let Some(candidate) = chars.get(start..start + 36) else {
        return false;
    };
    let shaped = candidate.iter().enumerate().all(|(k, c)| {
        if DASHES.contains(&k) {
            *c == '-'
        } else {
            c.is_ascii_hexdigit()
        }
    });
    shaped && at_word_boundary(chars, start + 36)
}

/// `0x` followed by hex digits, or 8+ hex digits with at least one decimal
/// digit (so words like "deadbeef" and "facade" stay words).
fn is_hex_id(word: &[char]) -> bool {
    if word.len() > 2 && word[0] == '0' && (word[1] == 'x' || word[1] == 'X') {
        return word[2..].iter().all(char::is_ascii_hexdigit);
    }
    word.len() >= 8
        && word.iter().all(char::is_ascii_hexdigit)
        && word.iter().any(char::is_ascii_digit)
}

fn push_with_numbers_replaced(out: &mut String, word: &[char]) {
    let mut in_number = false;
    for &c in word {
        if c.is_ascii_digit() {
            if !in_number {
                out.push_str("<num>");
                in_number = true;
            }
        } else {
            out.push(c);
            in_number = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::traces::tests::{failed, row};

    #[test]
    fn normalises_numbers_ids_and_quoted_values() {
        let cases = [
            ("user 42 not found", "user <num> not found"),
            ("user 7 not found", "user <num> not found"),
            (
                "timeout after 2.5s (attempt 3/5)",
                "timeout after <num>s (attempt <num>/<num>)",
            ),
            ("KeyError: 'user_42'", "KeyError: <str>"),
            ("no table \"orders_2024\" in db", "no table <str> in db"),
            ("can't find user's cart", "can't find user's cart"),
            ("value 'it's' rejected", "value <str> rejected"),
            ("unclosed 'quote here", "unclosed 'quote here"),
            (
                "trace 4bf92f3577b34da6a3ce929d0e0e4736 lost",
                "trace <id> lost",
            ),
            ("span 00f067aa0ba902b7", "span <id>"),
            ("at 0x7f3a2c", "at <id>"),
            ("id 123e4567-e89b-12d3-a456-426614174000.", "id <id>."),
            ("shard3 and v2", "shard<num> and v<num>"),
            ("deadbeef facade", "deadbeef facade"),
            ("  padded 1  ", "padded <num>"),
            ("", ""),
            ("ünïcödé 12 ✗", "ünïcödé <num> ✗"),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_message(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn groups_by_type_message_and_operation() {
        let rows = vec![
            failed(
                row(1, 1, None, "GET /users/{id}", "api", 0, 10),
                "NotFound",
                "user 42 not found",
            ),
            failed(
                row(2, 1, None, "GET /users/{id}", "api", 50, 60),
                "NotFound",
                "user 7 not found",
            ),
            failed(
                row(3, 1, None, "GET /users/{id}", "api", 20, 30),
                "NotFound",
                "user 9 not found",
            ),
            // Same message, other operation: another group.
            failed(
                row(4, 1, None, "GET /admin", "api", 0, 5),
                "NotFound",
                "user 1 not found",
            ),
            // Same operation, other type: another group.
            failed(
                row(5, 1, None, "GET /users/{id}", "api", 0, 5),
                "KeyError",
                "user 1 not found",
            ),
            // Failed without an exception.
            {
                let mut r = row(6, 1, None, "GET /users/{id}", "api", 0, 5);
                r.status = "error".into();
                r
            },
            // Not failed: ignored.
            row(7, 1, None, "GET /users/{id}", "api", 0, 5),
        ];
        let groups = error_groups(&rows);
        assert_eq!(groups.len(), 4);
        let top = &groups[0];
        assert_eq!(top.count, 3);
        assert_eq!(top.error_type, "NotFound");
        assert_eq!(top.message, "user <num> not found");
        assert_eq!(top.operation, "GET /users/{id}");
        assert_eq!(top.service, "api");
        assert_eq!(top.example_message, "user 7 not found");
        assert_eq!(top.example_trace_id, TraceId(2));
        const MS: u64 = 1_000_000;
        assert_eq!(top.last_seen_ns - top.first_seen_ns, 50 * MS);
        assert_eq!(top.fingerprint.len(), 16);
        assert!(groups
            .iter()
            .any(|g| g.error_type == "Error" && g.message.is_empty()));
        let fingerprints: std::collections::HashSet<&str> =
            groups.iter().map(|g| g.fingerprint.as_str()).collect();
        assert_eq!(fingerprints.len(), 4);
    }

    #[test]
    fn fingerprints_are_stable_and_separate_their_parts() {
        assert_eq!(
            fingerprint("E", "m", "svc", "op"),
            fingerprint("E", "m", "svc", "op")
        );
        assert_ne!(
            fingerprint("Ea", "b", "s", "o"),
            fingerprint("E", "ab", "s", "o")
        );
        // Pinned: stored fingerprints must keep meaning the same group.
        assert_eq!(fingerprint("", "", "", ""), "994f76653e2a3951");
    }

    #[test]
    fn serialises_type_under_its_python_name() {
        let rows = vec![failed(
            row(1, 1, None, "op", "s", 0, 1),
            "ValueError",
            "bad 1",
        )];
        let v = serde_json::to_value(&error_groups(&rows)[0]).unwrap();
        assert_eq!(v["type"], "ValueError");
        assert_eq!(v["message"], "bad <num>");
        assert_eq!(v["example_trace_id"], TraceId(1).to_hex().as_str());
    }
}

#[cfg(test)]
mod status_code_tests {
    use super::*;
    use crate::analysis::traces::tests::row;

    #[test]
    fn failures_without_an_exception_are_named_by_status_code() {
        let mut bad_gateway = row(1, 1, None, "GET /page", "frontend", 0, 10);
        bad_gateway.status = "error".into();
        bad_gateway
            .attributes
            .insert("http.response.status_code".into(), 502.into());
        let mut unavailable = bad_gateway.clone();
        unavailable.trace_id = TraceId(2);
        unavailable
            .attributes
            .insert("http.response.status_code".into(), 503.into());
        let mut bare = row(3, 1, None, "GET /page", "frontend", 0, 10);
        bare.status = "error".into();
        let groups = error_groups(&[bad_gateway, unavailable, bare]);
        let mut types: Vec<&str> = groups.iter().map(|g| g.error_type.as_str()).collect();
        types.sort_unstable();
        assert_eq!(types, ["Error", "HTTP 502", "HTTP 503"]);
    }

    #[test]
    fn normalize_message_examples() {
        assert_eq!(
            normalize_message("user 42 not found"),
            "user <num> not found"
        );
        assert_eq!(normalize_message("KeyError: 'u:17'"), "KeyError: <str>");
        assert_eq!(
            normalize_message("order 3f2b1c9a-0d4e-4a5b-9c8d-7e6f5a4b3c2d timed out after 2.5s"),
            "order <id> timed out after <num>s"
        );
    }
}
