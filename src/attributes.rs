//! Attribute values and the per-span attribute list, with the configured
//! limits on count and value length, and redaction, applied as values are
//! set.

use compact_str::CompactString;

use crate::redact::Redactor;

/// A value JSONL can carry: the OpenTelemetry primitive types and
/// homogeneous-or-not lists of them. Anything else is stored as its `str()`
/// by the binding layer before it gets here.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Str(CompactString),
    Bool(bool),
    Int(i64),
    /// Always finite: non-finite floats become the strings "NaN",
    /// "Infinity" and "-Infinity" (JSON has no literal for them).
    Float(f64),
    List(Vec<AttrValue>),
}

impl AttrValue {
    /// A float that is safe to serialise as a JSON number.
    pub fn float(value: f64) -> Self {
        if value.is_finite() {
            AttrValue::Float(value)
        } else if value.is_nan() {
            AttrValue::Str("NaN".into())
        } else if value > 0.0 {
            AttrValue::Str("Infinity".into())
        } else {
            AttrValue::Str("-Infinity".into())
        }
    }

    /// Cuts strings (also inside lists) to at most `max_len` characters.
    /// Returns whether anything was cut.
    pub fn truncate(&mut self, max_len: usize) -> bool {
        match self {
            AttrValue::Str(s) => truncate_chars(s, max_len),
            AttrValue::List(items) => {
                let mut cut = false;
                for item in items {
                    cut |= item.truncate(max_len);
                }
                cut
            }
            _ => false,
        }
    }
}

/// Truncates to `max_chars` Unicode scalar values, never splitting one.
pub fn truncate_chars(s: &mut CompactString, max_chars: usize) -> bool {
    if s.len() <= max_chars {
        return false; // byte length bounds char count
    }
    match s.char_indices().nth(max_chars) {
        Some((byte_index, _)) => {
            s.truncate(byte_index);
            true
        }
        None => false,
    }
}

/// What every span of a tracer applies to values as they are set: limits
/// on count and length, and redaction of secrets. Built once per tracer;
/// spans borrow it.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub max_attributes: usize,
    pub max_attribute_length: usize,
    pub max_events: usize,
    /// The `redact_keys` rules (see `redact.rs`).
    pub redact: Redactor,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attributes: 128,
            max_attribute_length: 4096,
            max_events: 128,
            redact: Redactor::default(),
        }
    }
}

/// An ordered attribute map. Spans have a handful of attributes, so a linear
/// scan beats hashing; setting an existing key replaces its value in place.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes {
    entries: Vec<(CompactString, AttrValue)>,
    /// Attributes refused because the span already had `max_attributes`.
    pub dropped: u32,
    /// Values cut to `max_attribute_length`.
    pub truncated: u32,
}

impl Attributes {
    pub fn with_capacity(capacity: usize) -> Self {
        Attributes {
            entries: Vec::with_capacity(capacity),
            dropped: 0,
            truncated: 0,
        }
    }

    /// Sets `key` to `value`, applying `limits` (redaction first, so a
    /// secret is never stored, not even in part). Returns false when the
    /// attribute was dropped because the span is at its attribute limit.
    /// Every attribute of a span, event or link is set through here.
    pub fn set(&mut self, key: CompactString, mut value: AttrValue, limits: &Limits) -> bool {
        // The marker itself is never cut: a reader must see why the value
        // is missing.
        let redacted = limits.redact.apply(&key, &mut value);
        if !redacted && value.truncate(limits.max_attribute_length) {
            self.truncated += 1;
        }
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
            return true;
        }
        if self.entries.len() >= limits.max_attributes {
            self.dropped += 1;
            return false;
        }
        self.entries.push((key, value));
        true
    }

    /// Empties the map, keeping its allocation for reuse.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.dropped = 0;
        self.truncated = 0;
    }

    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_floats_become_strings() {
        assert_eq!(AttrValue::float(f64::NAN), AttrValue::Str("NaN".into()));
        assert_eq!(
            AttrValue::float(f64::INFINITY),
            AttrValue::Str("Infinity".into())
        );
        assert_eq!(
            AttrValue::float(f64::NEG_INFINITY),
            AttrValue::Str("-Infinity".into())
        );
        assert_eq!(AttrValue::float(1.5), AttrValue::Float(1.5));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = CompactString::from("héllo wörld");
        assert!(truncate_chars(&mut s, 4));
        assert_eq!(s, "héll");
        let mut short = CompactString::from("ab");
        assert!(!truncate_chars(&mut short, 4));
    }

    #[test]
    fn limits_cap_count_and_length() {
        let limits = Limits {
            max_attributes: 2,
            max_attribute_length: 3,
            max_events: 1,
            ..Limits::default()
        };
        let mut attrs = Attributes::default();
        assert!(attrs.set("a".into(), AttrValue::Str("abcdef".into()), &limits));
        assert!(attrs.set("b".into(), AttrValue::Int(1), &limits));
        assert!(!attrs.set("c".into(), AttrValue::Int(2), &limits));
        // Replacing an existing key is always allowed.
        assert!(attrs.set("b".into(), AttrValue::Int(3), &limits));
        assert_eq!(attrs.get("a"), Some(&AttrValue::Str("abc".into())));
        assert_eq!(attrs.get("b"), Some(&AttrValue::Int(3)));
        assert_eq!(attrs.dropped, 1);
        assert_eq!(attrs.truncated, 1);
        assert_eq!(attrs.len(), 2);
    }
}
