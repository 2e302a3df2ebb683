//! A fast path for per-operation statistics: the four fields `stats` needs
//! (service, name, duration, status) read straight out of a span line,
//! without building a [`SpanRow`](super::SpanRow) and its attribute maps.
//!
//! It is a check, not a second parser with its own opinions: it accepts a
//! line only when it is certain [`SpanRow::parse_bytes`](super::SpanRow::parse_bytes)
//! would accept it with the same values, and answers "not sure" (`None`) for
//! anything unusual (escapes in the fields it returns, `\u` escapes anywhere,
//! optional keys, repeated keys, non-empty... anything), leaving the verdict
//! and the error message to the full parser. Lines as the writer produces
//! them take the fast path; a malformed line always ends up in the full
//! parser, so skipped-line counts and messages are the same either way.
//!
//! The whole line is still validated as JSON (strings, numbers, nesting,
//! trailing bytes), as serde would, so a torn or corrupt line is never
//! counted as a span.

/// The fields of a span line that per-operation statistics need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StatsFields<'a> {
    pub service: &'a str,
    pub name: &'a str,
    pub duration_ms: f64,
    /// `status` is "error".
    pub is_error: bool,
}

/// Nesting deeper than this is left to serde (whose limit is 128).
const MAX_DEPTH: u32 = 64;

const TRACE_ID: u16 = 1 << 0;
const SPAN_ID: u16 = 1 << 1;
const PARENT_ID: u16 = 1 << 2;
const NAME: u16 = 1 << 3;
const SERVICE: u16 = 1 << 4;
const KIND: u16 = 1 << 5;
const START_NS: u16 = 1 << 6;
const END_NS: u16 = 1 << 7;
const DURATION_MS: u16 = 1 << 8;
const STATUS: u16 = 1 << 9;
const ATTRIBUTES: u16 = 1 << 10;
const EVENTS: u16 = 1 << 11;
const ERROR: u16 = 1 << 12;
const REQUIRED: u16 = (1 << 13) - 1;

/// The stats fields of `line` if it is certainly a valid span record (see
/// the module docs); `None` if the full parser must decide.
pub(crate) fn scan_stats_fields(line: &[u8]) -> Option<StatsFields<'_>> {
    let text = std::str::from_utf8(line).ok()?;
    let mut c = Cursor {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let mut seen = 0u16;
    let (mut service, mut name, mut status) = ("", "", "");
    let (mut start_ns, mut end_ns, mut duration_ms) = (0u64, 0u64, 0.0f64);
    c.ws();
    c.eat(b'{')?;
    loop {
        c.ws();
        let key = c.plain_string()?;
        c.ws();
        c.eat(b':')?;
        c.ws();
        let bit = match key {
            "trace_id" => TRACE_ID,
            "span_id" => SPAN_ID,
            "parent_id" => PARENT_ID,
            "name" => NAME,
            "service" => SERVICE,
            "kind" => KIND,
            "start_ns" => START_NS,
            "end_ns" => END_NS,
            "duration_ms" => DURATION_MS,
            "status" => STATUS,
            "attributes" => ATTRIBUTES,
            "events" => EVENTS,
            "error" => ERROR,
            // Optional keys the full parser type-checks: rare, its call.
            "remote_parent"
            | "dropped_attributes_count"
            | "dropped_events_count"
            | "dropped_links_count" => return None,
            _ => 0,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        match bit {
            TRACE_ID => {
                hex_id(c.plain_string()?, 32)?;
            }
            SPAN_ID => {
                hex_id(c.plain_string()?, 16)?;
            }
            PARENT_ID => {
                if !c.null() {
                    hex_id(c.plain_string()?, 16)?;
                }
            }
            NAME => name = c.plain_string()?,
            SERVICE => service = c.plain_string()?,
            KIND => {
                c.plain_string()?;
            }
            STATUS => status = c.plain_string()?,
            START_NS => start_ns = c.unsigned()?,
            END_NS => end_ns = c.unsigned()?,
            DURATION_MS => duration_ms = c.float()?,
            ATTRIBUTES => {
                if c.peek()? != b'{' {
                    return None;
                }
                c.value(1)?;
            }
            EVENTS => c.events()?,
            ERROR => {
                if !c.null() {
                    c.error_object()?;
                }
            }
            _ => c.value(1)?,
        }
        c.ws();
        match c.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    c.ws();
    // `duration_ms < 0.0` is false for -0.0, as in the full parser.
    if c.pos != c.bytes.len() || seen != REQUIRED || end_ns < start_ns || duration_ms < 0.0 {
        return None;
    }
    Some(StatsFields {
        service,
        name,
        duration_ms,
        is_error: status == "error",
    })
}

/// A mask with the high bit set in the bytes of `word` that are `"`, `\\`
/// or below 0x20, and maybe in bytes after the first such byte, never
/// before it (the classic SWAR zero-byte tests: a borrow only runs upward
/// from a byte that matched). So its lowest set bit is exactly the first
/// byte that needs attention.
#[inline]
fn attention_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    quote | backslash | control
}

/// Exactly `digits` lowercase hex digits, not all zeros: what
/// [`TraceId::from_hex`] and [`SpanId::from_hex`] accept, without
/// computing the value.
#[inline]
fn hex_id(text: &str, digits: usize) -> Option<()> {
    let bytes = text.as_bytes();
    let valid = bytes.len() == digits
        && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && bytes.iter().any(|&b| b != b'0');
    valid.then_some(())
}

/// The value of a string of ASCII digits that fits a u64. Up to 19 digits
/// always fit, so the common case needs no overflow checks.
#[inline]
fn decimal(digits: &str) -> Option<u64> {
    if digits.len() > 19 {
        return digits.parse().ok();
    }
    Some(digits.bytes().fold(0u64, |value, d| {
        value.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
    }))
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    #[inline]
    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// `null`, consumed, or nothing consumed.
    fn null(&mut self) -> bool {
        self.bytes[self.pos..].starts_with(b"null") && {
            self.pos += 4;
            true
        }
    }

    /// Moves past the bytes of a string that need no attention: all but
    /// `"`, `\\` and control characters, eight at a time while it can
    /// (the last few one by one, by the caller).
    #[inline]
    fn skip_string_bytes(&mut self) {
        while let Some(word) = self
            .bytes
            .get(self.pos..self.pos + 8)
            .and_then(|chunk| <[u8; 8]>::try_from(chunk).ok())
        {
            let mask = attention_mask(u64::from_le_bytes(word));
            if mask != 0 {
                self.pos += mask.trailing_zeros() as usize / 8;
                return;
            }
            self.pos += 8;
        }
    }

    /// A string without escapes, as a slice of the line.
    #[inline]
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        loop {
            self.skip_string_bytes();
            match self.next()? {
                b'"' => return Some(&self.text[start..self.pos - 1]),
                b'\\' => return None,
                b if b < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// Any string whose escapes are the simple ones (`\u` is left to serde,
    /// which checks surrogate pairs).
    fn string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            self.skip_string_bytes();
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    _ => return None,
                },
                b if b < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// A JSON number; returns (text, is an integer: no fraction or exponent).
    fn number(&mut self) -> Option<(&'a str, bool)> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digit()?;
            self.digits();
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.digit()?;
            self.digits();
            integer = false;
        }
        Some((&self.text[start..self.pos], integer))
    }

    fn digit(&mut self) -> Option<()> {
        self.next()?.is_ascii_digit().then_some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// A non-negative integer that fits a u64.
    fn unsigned(&mut self) -> Option<u64> {
        let (text, integer) = self.number()?;
        if !integer || text.starts_with('-') {
            return None;
        }
        decimal(text)
    }

    /// A number as serde_json reads it into an f64 (both are correctly
    /// rounded; integers go through u64 there, so only short ones here).
    fn float(&mut self) -> Option<f64> {
        let (text, integer) = self.number()?;
        if integer {
            if text.starts_with('-') {
                return None;
            }
            return decimal(text).map(|v| v as f64);
        }
        text.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    /// Any JSON value at nesting `depth`.
    fn value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.string(),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => continue,
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => continue,
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => {
                let (text, integer) = self.number()?;
                // Serde reads long or fractional numbers as f64 and rejects
                // those out of range.
                if !integer || text.len() > 18 {
                    text.parse::<f64>().ok().filter(|v| v.is_finite())?;
                }
                Some(())
            }
        }
    }

    /// `events`: a list of objects with `name` (str), `ts_ns` (u64) and
    /// optionally `level` (str) and `attributes` (object).
    fn events(&mut self) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.ws();
            self.object(|c, key| match key {
                "name" => c.string().map(|_| 1),
                "ts_ns" => c.unsigned().map(|_| 2),
                "level" => c.string().map(|_| 4),
                "attributes" => {
                    if c.peek()? != b'{' {
                        return None;
                    }
                    c.value(3).map(|_| 8)
                }
                _ => c.value(3).map(|_| 0),
            })
            .filter(|seen| seen & 3 == 3)?;
            self.ws();
            match self.next()? {
                b',' => continue,
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// `error`: an object with `type` and `message` (str) and optionally
    /// `stack` (str or null).
    fn error_object(&mut self) -> Option<()> {
        self.object(|c, key| match key {
            "type" => c.string().map(|_| 1),
            "message" => c.string().map(|_| 2),
            "stack" => {
                if c.null() {
                    Some(4)
                } else {
                    c.string().map(|_| 4)
                }
            }
            _ => c.value(2).map(|_| 0),
        })
        .filter(|seen| seen & 3 == 3)
        .map(|_| ())
    }

    /// An object whose keys `field` checks, returning each known key's bit
    /// (0 for unknown keys); a known key seen twice is left to serde.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &str) -> Option<u8>) -> Option<u8> {
        self.eat(b'{')?;
        let mut seen = 0u8;
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(seen);
        }
        loop {
            self.ws();
            let key = self.plain_string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let bit = field(self, key)?;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            self.ws();
            match self.next()? {
                b',' => continue,
                b'}' => return Some(seen),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::record::SpanRow;
    use proptest::prelude::*;

    const LINE: &str = concat!(
        r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","#,
        r#""parent_id":"00000000000000aa","name":"GET /users/{id}","service":"api","#,
        r#""kind":"server","start_ns":1700000000000000000,"end_ns":1700000000012500000,"#,
        r#""duration_ms":12.5,"status":"error","attributes":{"http.status_code":500,"#,
        r#""tags":["a",1,true,null,{"x":-1.5e3}],"f":1.5,"s":"a\"b\\n"},"#,
        r#""events":[{"name":"cache miss","ts_ns":1700000000001000000,"level":"warning","#,
        r#""attributes":{"key":"u:1"}}],"#,
        r#""error":{"type":"KeyError","message":"'u:1'","stack":"Traceback..."}}"#
    );

    /// The fast path agrees with the full parser whenever it answers.
    fn agrees(line: &str) -> bool {
        let fast = scan_stats_fields(line.as_bytes());
        let full = SpanRow::parse_bytes(line.as_bytes());
        match (fast, full) {
            (None, _) => true,
            (Some(f), Ok(row)) => {
                f.service == row.service
                    && f.name == row.name
                    && f.duration_ms.to_bits() == row.duration_ms.to_bits()
                    && f.is_error == row.is_error()
            }
            (Some(_), Err(_)) => false,
        }
    }

    #[test]
    fn reads_the_writers_lines() {
        let f = scan_stats_fields(LINE.as_bytes()).unwrap();
        assert_eq!(f.service, "api");
        assert_eq!(f.name, "GET /users/{id}");
        assert_eq!(f.duration_ms, 12.5);
        assert!(f.is_error);
        assert!(agrees(LINE));
        let row = SpanRow::parse(LINE).unwrap();
        let rewritten = serde_json::to_string(&row).unwrap() + "\n";
        assert!(scan_stats_fields(rewritten.as_bytes()).is_some());
        let spaced = serde_json::to_string_pretty(&row).unwrap();
        assert!(scan_stats_fields(spaced.as_bytes()).is_some());
        let ok = LINE
            .replace(r#""status":"error""#, r#""status":"ok""#)
            .replace(r#""parent_id":"00000000000000aa""#, r#""parent_id":null"#);
        assert!(!scan_stats_fields(ok.as_bytes()).unwrap().is_error);
    }

    #[test]
    fn leaves_anything_unusual_to_the_full_parser() {
        let unsure = [
            LINE.replace(r#""name":"GET /users/{id}""#, r#""name":"GET \/users""#),
            LINE.replace(r#""key":"u:1""#, r#""key":"\u00e9""#),
            LINE.replace(
                r#""kind":"server","#,
                r#""kind":"server","remote_parent":true,"#,
            ),
            LINE.replace(r#""kind":"server","#, r#""kind":"server","name":"again","#),
            LINE.replace(r#""duration_ms":12.5"#, r#""duration_ms":-0"#),
            LINE.replace(
                r#""duration_ms":12.5"#,
                r#""duration_ms":123456789012345678901"#,
            ),
        ];
        for line in &unsure {
            assert!(scan_stats_fields(line.as_bytes()).is_none(), "{line}");
            assert!(agrees(line));
        }
    }

    #[test]
    fn never_accepts_a_malformed_line() {
        let malformed = [
            LINE[..LINE.len() - 1].to_string(),
            LINE[..100].to_string(),
            format!("{LINE}x"),
            format!("{LINE}{LINE}"),
            LINE.replace(r#""span_id":"00f067aa0ba902b7","#, ""),
            LINE.replace("00f067aa0ba902b7", "00F067AA0BA902B7"),
            LINE.replace("00f067aa0ba902b7", "0000000000000000"),
            LINE.replace(r#""duration_ms":12.5"#, r#""duration_ms":-12.5"#),
            LINE.replace(r#""duration_ms":12.5"#, r#""duration_ms":1e999"#),
            LINE.replace(r#""duration_ms":12.5"#, r#""duration_ms":"12.5""#),
            LINE.replace(r#""duration_ms":12.5"#, r#""duration_ms":12."#),
            LINE.replace(r#""start_ns":1700000000000000000"#, r#""start_ns":1.7e18"#),
            LINE.replace(
                r#""start_ns":1700000000000000000"#,
                r#""start_ns":1800000000000000000"#,
            ),
            LINE.replace(r#""start_ns":1700000000000000000"#, r#""start_ns":01"#),
            LINE.replace(r#""f":1.5"#, r#""f":1e400"#),
            LINE.replace(r#""f":1.5"#, r#""f":1.5,"#),
            LINE.replace(r#""f":1.5"#, r#""f":[1,]"#),
            LINE.replace(r#""f":1.5"#, r#""f":tru"#),
            LINE.replace(r#""f":1.5"#, "\"f\":\"a\tb\""),
            LINE.replace(r#""f":1.5"#, r#""f":"\x""#),
            LINE.replace(r#""attributes":{"#, r#""attributes":[{"#)
                .replace(r#""s":"a\"b\\n"}"#, r#""s":"a\"b\\n"}]"#),
            LINE.replace(r#""ts_ns":1700000000001000000,"#, ""),
            LINE.replace(r#""level":"warning""#, r#""level":null"#),
            LINE.replace(r#""type":"KeyError","#, ""),
            LINE.replace(r#""stack":"Traceback...""#, r#""stack":1"#),
            LINE.replace(r#""error":{"#, r#""error":{"type":"X","#),
            LINE.replace(r#""events":["#, r#""events":[1,"#),
            "{}".to_string(),
            "[]".to_string(),
            String::new(),
        ];
        for line in &malformed {
            assert!(scan_stats_fields(line.as_bytes()).is_none(), "{line}");
        }
        assert!(scan_stats_fields(&[b'{', 0xff, b'}']).is_none());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let line = LINE.replace(r#""f":1.5"#, &format!(r#""f":{deep}"#));
        assert!(scan_stats_fields(line.as_bytes()).is_none());
    }

    fn mutated(line: &str, edits: &[(usize, u8, u8)]) -> Vec<u8> {
        const ALPHABET: &[u8] = b"{}[]\",:0123456789.eE+-\\ntfalsu \t\x01";
        let mut bytes = line.as_bytes().to_vec();
        for &(at, op, b) in edits {
            let at = at % (bytes.len() + 1);
            let b = ALPHABET[b as usize % ALPHABET.len()];
            match op % 3 {
                0 if at < bytes.len() => bytes[at] = b,
                1 => bytes.insert(at, b),
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        bytes
    }

    proptest! {
        #[test]
        fn agrees_with_the_full_parser_on_mutated_lines(
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let bytes = mutated(LINE, &edits);
            if let Some(f) = scan_stats_fields(&bytes) {
                let row = SpanRow::parse_bytes(&bytes);
                prop_assert!(row.is_ok(), "{} {:?}", String::from_utf8_lossy(&bytes), row);
                let row = row.unwrap();
                prop_assert_eq!(f.service, row.service.as_str());
                prop_assert_eq!(f.name, row.name.as_str());
                prop_assert_eq!(f.duration_ms.to_bits(), row.duration_ms.to_bits());
                prop_assert_eq!(f.is_error, row.is_error());
            }
        }

        #[test]
        fn reads_durations_to_the_same_bits(
            mantissa in any::<u64>(), exponent in -330i32..310, integer in any::<u64>(),
        ) {
            for text in [format!("{mantissa}e{exponent}"), format!("0.{mantissa}"),
                         integer.to_string(), format!("{}", f64::from_bits(mantissa))] {
                let line = LINE.replace("\"duration_ms\":12.5", &format!("\"duration_ms\":{text}"));
                prop_assert!(agrees(&line), "{}", text);
            }
        }
    }
}
