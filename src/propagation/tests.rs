//! Every parsing rule of every format, table by table, then properties.

use super::*;
use proptest::prelude::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const TRACE_ID: TraceId = TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736);
const SPAN_ID: SpanId = SpanId(0x00f067aa0ba902b7);

/// A getter over (name, value) pairs, matching names case-insensitively
/// as carrier adapters do.
fn getter<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Vec<&'a str> {
    move |name| {
        pairs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    }
}

fn extract(p: Propagator, pairs: &[(&str, &str)]) -> Option<Extracted> {
    p.extract(getter(pairs))
}

fn tp(value: &str) -> Option<Extracted> {
    extract(Propagator::TraceContext, &[("traceparent", value)])
}

fn ctx(trace: TraceId, span: SpanId, sampled: bool) -> Extracted {
    Extracted {
        trace_id: trace,
        span_id: span,
        sampled,
        random: false,
        tracestate: None,
    }
}

/// Is `s` exactly what this crate emits: `00-{32 hex}-{16 hex}-0[0-3]`,
/// lower case, non-zero ids?
fn is_canonical_traceparent(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 55
        && s.starts_with("00-")
        && b[35] == b'-'
        && b[52] == b'-'
        && ["-00", "-01", "-02", "-03"].iter().any(|f| s.ends_with(f))
        && s[3..35]
            .bytes()
            .chain(s[36..52].bytes())
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        && &s[3..35] != "00000000000000000000000000000000"
        && &s[36..52] != "0000000000000000"
}

fn injected(p: Propagator, c: Context<'_>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    p.inject(c, |name, value| out.push((name, value)));
    out
}

fn round_trip(p: Propagator, c: Context<'_>) -> Option<Extracted> {
    let headers = injected(p, c);
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    extract(p, &pairs)
}

// ---------------------------------------------------------------------------
// traceparent

#[test]
fn traceparent_accepted() {
    let t = TRACE;
    let s = SPAN;
    let cases: Vec<(String, bool)> = vec![
        (format!("00-{t}-{s}-01"), true),
        (format!("00-{t}-{s}-00"), false),
        // Flags: only the sampled and random bits mean anything.
        (format!("00-{t}-{s}-ff"), true),
        (format!("00-{t}-{s}-02"), false),
        (format!("00-{t}-{s}-03"), true),
        (format!("00-{t}-{s}-fe"), false),
        (format!("00-{t}-{s}-fd"), true),
        // Optional whitespace around the value.
        (format!(" 00-{t}-{s}-01"), true),
        (format!("\t00-{t}-{s}-01"), true),
        (format!("00-{t}-{s}-01 "), true),
        (format!("00-{t}-{s}-01\t"), true),
        (format!("\t 00-{t}-{s}-01 \t"), true),
        // Future versions: the ids are kept, extra fields ignored.
        (format!("01-{t}-{s}-01"), true),
        (format!("cc-{t}-{s}-01"), true),
        (format!("cc-{t}-{s}-00"), false),
        (format!("cc-{t}-{s}-01-what-the-future-will-be-like"), true),
        (format!("fe-{t}-{s}-01-"), true),
        (format!("cc-{t}-{s}-01-x "), true),
    ];
    for (value, sampled) in cases {
        let random = u8::from_str_radix(&value.trim()[53..55], 16).unwrap() & 0x02 != 0;
        assert_eq!(
            tp(&value),
            Some(Extracted {
                random,
                ..ctx(TRACE_ID, SPAN_ID, sampled)
            }),
            "{value:?} should be accepted"
        );
    }
}

#[test]
fn traceparent_random_flag_is_read_and_written_back() {
    for flags in ["00", "01", "02", "03"] {
        let bits = u8::from_str_radix(flags, 16).unwrap();
        let got = tp(&format!("00-{TRACE}-{SPAN}-{flags}")).unwrap();
        assert_eq!((got.sampled, got.random), (bits & 1 != 0, bits & 2 != 0));
        assert_eq!(
            injected(Propagator::TraceContext, got.as_context()),
            [("traceparent", format!("00-{TRACE}-{SPAN}-{flags}"))]
        );
    }
    // Unknown bits are not passed on (version 00 defines only these two).
    let got = tp(&format!("00-{TRACE}-{SPAN}-ff")).unwrap();
    assert_eq!(
        injected(Propagator::TraceContext, got.as_context()),
        [("traceparent", format!("00-{TRACE}-{SPAN}-03"))]
    );
}

#[test]
fn formats_without_a_random_flag_extract_it_unset() {
    let b3 = format!("{TRACE}-{SPAN}-1");
    assert!(
        !extract(Propagator::B3Single, &[("b3", &b3)])
            .unwrap()
            .random
    );
    let multi = [("X-B3-TraceId", TRACE), ("X-B3-SpanId", SPAN)];
    assert!(!extract(Propagator::B3Multi, &multi).unwrap().random);
    let x = [("X-Trace-ID", TRACE), ("X-Span-ID", SPAN)];
    assert!(!extract(Propagator::XTrace, &x).unwrap().random);
    // And B3 writes nothing for it.
    let c = Context {
        trace_id: TRACE_ID,
        span_id: SPAN_ID,
        sampled: true,
        random: true,
        tracestate: None,
    };
    assert_eq!(
        injected(Propagator::B3Single, c),
        [("b3", format!("{TRACE}-{SPAN}-1"))]
    );
}

#[test]
fn traceparent_rejected() {
    let t = TRACE;
    let s = SPAN;
    let upper_t = TRACE.to_uppercase();
    let cases: Vec<String> = vec![
        String::new(),
        " ".into(),
        "\t \t".into(),
        "00".into(),
        "00-".into(),
        format!("00-{t}"),
        format!("00-{t}-{s}"),
        format!("00-{t}-{s}-"),
        format!("00-{t}-{s}-0"),
        // Version ff is forbidden; version 00 is exactly 55 characters.
        format!("ff-{t}-{s}-01"),
        format!("00-{t}-{s}-01."),
        format!("00-{t}-{s}-01-"),
        format!("00-{t}-{s}-01-what-the-future-will-be-like"),
        // A future version's extra fields must start with a dash.
        format!("cc-{t}-{s}-01.what-the-future-will-be-like"),
        format!("cc-{t}-{s}-01x"),
        // Version field.
        format!(".0-{t}-{s}-01"),
        format!("0.-{t}-{s}-01"),
        format!("000-{t}-{s}-01"),
        format!("0000-{t}-{s}-01"),
        format!("0-{t}-{s}-01"),
        format!("0A-{t}-{s}-01"),
        format!("FF-{t}-{s}-01"),
        format!("g0-{t}-{s}-01"),
        // Trace id.
        format!("00-00000000000000000000000000000000-{s}-01"),
        format!("00-.{}-{s}-01", &t[1..]),
        format!("00-{}.-{s}-01", &t[..31]),
        format!("00-{t}3-{s}-01"),
        format!("00-{}-{s}-01", &t[..31]),
        format!("00-{upper_t}-{s}-01"),
        format!("00-4BF92f3577b34da6a3ce929d0e0e4736-{s}-01"),
        // Parent (span) id.
        format!("00-{t}-0000000000000000-01"),
        format!("00-{t}-.{}-01", &s[1..]),
        format!("00-{t}-{}.-01", &s[..15]),
        format!("00-{t}-{s}7-01"),
        format!("00-{t}-{}-01", &s[..15]),
        format!("00-{t}-00F067AA0BA902B7-01"),
        // Flags.
        format!("00-{t}-{s}-.0"),
        format!("00-{t}-{s}-0."),
        format!("00-{t}-{s}-001"),
        format!("00-{t}-{s}-1"),
        format!("00-{t}-{s}-0A"),
        format!("00-{t}-{s}-g1"),
        // Separators and whitespace that is not OWS or not at the ends.
        format!("00_{t}-{s}-01"),
        format!("00-{t}_{s}-01"),
        format!("00-{t}-{s}_01"),
        format!("00 -{t}-{s}-01"),
        format!("00-{t}-{s}-01\n"),
        format!("\n00-{t}-{s}-01"),
        format!("00-{t}-{s}-01\r"),
        format!("\u{a0}00-{t}-{s}-01"),
        format!("0\u{e9}-{}-{s}-01", &t[..31]),
        // Junk.
        "00-00-00-00".into(),
        "traceparent".into(),
        "\0".repeat(55),
        "-".repeat(55),
        format!("00-{t}-{s}-01{}", " ".repeat(MAX_TRACEPARENT_LEN)),
        format!("cc-{t}-{s}-01-{}", "x".repeat(1 << 20)),
    ];
    for value in cases {
        assert_eq!(tp(&value), None, "{value:?} should be rejected");
    }
}

#[test]
fn traceparent_more_than_once_is_invalid() {
    let a = format!("00-{TRACE}-{SPAN}-01");
    let b = format!("00-1234567890123456789012345678901{}-{SPAN}-01", 2);
    let pairs = [("traceparent", a.as_str()), ("traceparent", b.as_str())];
    assert_eq!(extract(Propagator::TraceContext, &pairs), None);
    // Even when both are the same.
    let pairs = [("traceparent", a.as_str()), ("TraceParent", a.as_str())];
    assert_eq!(extract(Propagator::TraceContext, &pairs), None);
}

#[test]
fn traceparent_version_and_flags_are_reported() {
    let parsed = parse_traceparent(&format!("cc-{TRACE}-{SPAN}-09-abc")).unwrap();
    assert_eq!(parsed.version, 0xcc);
    assert_eq!(parsed.flags, 0x09);
    assert!(parsed.sampled());
}

#[test]
fn traceparent_injects_version_00_with_the_sampled_and_random_flags_only() {
    for (flags, out) in [
        ("ff", "03"),
        ("02", "02"),
        ("01", "01"),
        ("00", "00"),
        ("fc", "00"),
    ] {
        let got = tp(&format!("cc-{TRACE}-{SPAN}-{flags}-future")).unwrap();
        let headers = injected(Propagator::TraceContext, got.as_context());
        assert_eq!(
            headers,
            [("traceparent", format!("00-{TRACE}-{SPAN}-{out}"))]
        );
    }
}

// ---------------------------------------------------------------------------
// tracestate

fn with_state(values: &[&str]) -> Option<Extracted> {
    let parent = format!("00-{TRACE}-{SPAN}-01");
    let mut pairs = vec![("traceparent", parent.as_str())];
    pairs.extend(values.iter().map(|v| ("tracestate", *v)));
    extract(Propagator::TraceContext, &pairs)
}

fn members(prefix: &str, range: std::ops::RangeInclusive<usize>) -> String {
    range
        .map(|i| format!("{prefix}{i:02}={i:02}"))
        .collect::<Vec<_>>()
        .join(",")
}

const KEY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";

fn all_value_chars() -> String {
    (0x20u8..=0x7e)
        .filter(|&b| b != b',' && b != b'=')
        .map(char::from)
        .collect()
}

#[test]
fn tracestate_accepted_and_normalised() {
    let long_key = "z".repeat(256);
    let vendor_key = format!("{}@{}", "t".repeat(241), "v".repeat(14));
    let value_256 = "v".repeat(256);
    let all_values = all_value_chars();
    let with_vendor = format!("{KEY_CHARS}@a-z0-9_-*/");
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec!["foo=1".into()], "foo=1".into()),
        (vec!["foo=1,bar=2".into()], "foo=1,bar=2".into()),
        // Optional whitespace around members.
        (
            vec!["foo=1 \t , \t bar=2, \t baz=3".into()],
            "foo=1,bar=2,baz=3".into(),
        ),
        (
            vec!["foo=1\t \t,\t \tbar=2,\t \tbaz=3".into()],
            "foo=1,bar=2,baz=3".into(),
        ),
        (vec![" foo=1".into()], "foo=1".into()),
        (vec!["\tfoo=1".into()], "foo=1".into()),
        (vec!["foo=1 ".into()], "foo=1".into()),
        (vec!["\t foo=1 \t".into()], "foo=1".into()),
        // Empty members and empty headers are skipped.
        (vec!["foo=1,,bar=2".into()], "foo=1,bar=2".into()),
        (vec![",foo=1, ,".into()], "foo=1".into()),
        (vec!["foo=1".into(), String::new()], "foo=1".into()),
        (vec![String::new(), "foo=1".into()], "foo=1".into()),
        // Repeated headers are one list, in order.
        (
            vec![
                "foo=1,bar=2".into(),
                "rojo=1,congo=2".into(),
                "baz=3".into(),
            ],
            "foo=1,bar=2,rojo=1,congo=2,baz=3".into(),
        ),
        // Keys.
        (vec!["a=1".into()], "a=1".into()),
        (vec![format!("{KEY_CHARS}=1")], format!("{KEY_CHARS}=1")),
        (vec![format!("{with_vendor}=1")], format!("{with_vendor}=1")),
        (vec![format!("{long_key}=1")], format!("{long_key}=1")),
        (vec![format!("{vendor_key}=1")], format!("{vendor_key}=1")),
        (vec!["1tenant@sys=1".into()], "1tenant@sys=1".into()),
        (vec!["t@v=1".into()], "t@v=1".into()),
        // The current grammar: a digit may lead, '@' anywhere after the first.
        (vec!["1foo=1".into()], "1foo=1".into()),
        (vec!["foo@=1,bar=2".into()], "foo@=1,bar=2".into()),
        (vec!["foo@@bar=1,bar=2".into()], "foo@@bar=1,bar=2".into()),
        (
            vec!["foo@bar@baz=1,bar=2".into()],
            "foo@bar@baz=1,bar=2".into(),
        ),
        (vec!["t@1v=1".into()], "t@1v=1".into()),
        (
            vec!["foo=1".into(), format!("{}@v=1", "t".repeat(242))],
            format!("foo=1,{}@v=1", "t".repeat(242)),
        ),
        (
            vec!["foo=1".into(), format!("t@{}=1", "v".repeat(15))],
            format!("foo=1,t@{}=1", "v".repeat(15)),
        ),
        // A repeated key keeps its first member, in one header or across headers.
        (vec!["foo=1,foo=1".into()], "foo=1".into()),
        (vec!["foo=1,foo=2".into()], "foo=1".into()),
        (vec!["foo=1".into(), "foo=2".into()], "foo=1".into()),
        (vec!["a@b=1,bar=3,a@b=2".into()], "a@b=1,bar=3".into()),
        // Values: printable ASCII but , and =, may start with a space.
        (
            vec![format!("{KEY_CHARS}={all_values}")],
            format!("{KEY_CHARS}={all_values}"),
        ),
        (vec!["foo= 1".into()], "foo= 1".into()),
        (vec!["foo=a b".into()], "foo=a b".into()),
        (vec![format!("foo={value_256}")], format!("foo={value_256}")),
        // 32 members, over several headers.
        (
            vec![
                members("bar", 1..=10),
                members("bar", 11..=20),
                members("bar", 21..=30),
                members("bar", 31..=32),
            ],
            members("bar", 1..=32),
        ),
    ];
    for (values, expected) in cases {
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let got = with_state(&refs).expect("traceparent is valid");
        assert_eq!(
            got.tracestate.as_deref(),
            Some(expected.as_str()),
            "{values:?}"
        );
    }
}

#[test]
fn tracestate_dropped_whole() {
    let cases: Vec<Vec<String>> = vec![
        // Nothing in it.
        vec![],
        vec![String::new()],
        vec!["  \t ".into()],
        vec![",, ,".into()],
        vec![String::new(), String::new()],
        // Keys.
        vec!["foo =1".into()],
        vec!["FOO=1".into()],
        vec!["Foo=1".into()],
        vec!["foo.bar=1".into()],
        vec!["_foo=1".into()],
        vec!["=1".into()],
        vec!["fo o=1".into()],
        vec![format!("{}=1", "z".repeat(257))],
        vec!["foo=1".into(), format!("{}=1", "z".repeat(257))],
        // Vendor keys.
        vec!["@foo=1,bar=2".into()],
        vec!["_t@v=1".into()],
        vec!["t@V=1".into()],
        vec!["T@v=1".into()],
        // Values.
        vec!["foo=bar=baz".into()],
        vec!["foo=,bar=3".into()],
        vec!["foo= ,bar=3".into()],
        vec!["foo".into()],
        vec!["foo=1,bar".into()],
        vec!["foo=a\tb".into()],
        vec!["foo=a\u{7f}".into()],
        vec!["foo=a\u{1}".into()],
        vec!["foo=caf\u{e9}".into()],
        vec![format!("foo={}", "v".repeat(257))],
        // 33 members.
        vec![
            members("bar", 1..=10),
            members("bar", 11..=20),
            members("bar", 21..=30),
            members("bar", 31..=33),
        ],
        // Junk of every size.
        vec!["\0".into()],
        vec![format!("foo=1,{}", " ".repeat(MAX_TRACESTATE_LEN))],
        vec!["a=1,".repeat(1 << 18)],
    ];
    for values in cases {
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let got = with_state(&refs).expect("traceparent is valid");
        assert_eq!(
            got.tracestate,
            None,
            "{:?}",
            &values.concat()[..values.concat().len().min(80)]
        );
        assert_eq!((got.trace_id, got.span_id), (TRACE_ID, SPAN_ID));
    }
}

#[test]
fn tracestate_is_dropped_with_an_invalid_traceparent() {
    let pairs = [
        (
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ),
        ("tracestate", "foo=1"),
    ];
    assert_eq!(extract(Propagator::TraceContext, &pairs), None);
    assert_eq!(
        extract(Propagator::TraceContext, &[("tracestate", "foo=1")]),
        None
    );
}

#[test]
fn tracestate_is_passed_through_on_inject() {
    let got = with_state(&["rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"]).unwrap();
    let headers = injected(Propagator::TraceContext, got.as_context());
    assert_eq!(
        headers,
        [
            ("traceparent", format!("00-{TRACE}-{SPAN}-01")),
            (
                "tracestate",
                "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".to_string()
            ),
        ]
    );
    // An empty tracestate is not written.
    let mut c = got.as_context();
    c.tracestate = Some("");
    assert_eq!(injected(Propagator::TraceContext, c).len(), 1);
}

// ---------------------------------------------------------------------------
// B3

#[test]
fn b3_single_accepted() {
    let t = TRACE;
    let s = SPAN;
    let short = TraceId(0xa3ce929d0e0e4736);
    let cases: Vec<(String, TraceId, bool)> = vec![
        (format!("{t}-{s}"), TRACE_ID, true),
        (format!("{t}-{s}-1"), TRACE_ID, true),
        (format!("{t}-{s}-d"), TRACE_ID, true),
        (format!("{t}-{s}-0"), TRACE_ID, false),
        (format!("{t}-{s}-1-05e3ac9a4f6e3b90"), TRACE_ID, true),
        (format!("{t}-{s}-0-05e3ac9a4f6e3b90"), TRACE_ID, false),
        (format!("a3ce929d0e0e4736-{s}-1"), short, true),
        (format!("a3ce929d0e0e4736-{s}"), short, true),
        (format!(" \t{t}-{s}-1 "), TRACE_ID, true),
    ];
    for (value, trace, sampled) in cases {
        assert_eq!(
            extract(Propagator::B3Single, &[("b3", &value)]),
            Some(ctx(trace, SPAN_ID, sampled)),
            "{value:?}"
        );
    }
}

#[test]
fn b3_single_rejected() {
    let t = TRACE;
    let s = SPAN;
    let cases: Vec<String> = vec![
        // Sampling-only forms carry no ids to continue.
        "0".into(),
        "1".into(),
        "d".into(),
        String::new(),
        "-".into(),
        t.into(),
        format!("{t}-"),
        format!("-{s}"),
        format!("{}-{s}", &t[..31]),
        format!("{t}0-{s}"),
        format!("{}-{s}", &t[..24]),
        format!("{}-{s}", t.to_uppercase()),
        format!("{t}-00F067AA0BA902B7"),
        format!("{t}-{}", &s[..15]),
        format!("{}-{s}", "0".repeat(32)),
        format!("{}-{s}", "0".repeat(16)),
        format!("{t}-0000000000000000"),
        format!("{t}-{s}-2"),
        format!("{t}-{s}-true"),
        format!("{t}-{s}-D"),
        format!("{t}-{s}-"),
        format!("{t}-{s}--05e3ac9a4f6e3b90"),
        // A parent id needs the sampling state before it.
        format!("{t}-{s}-05e3ac9a4f6e3b90"),
        format!("{t}-{s}-1-05e3ac9a4f6e3b9"),
        format!("{t}-{s}-1-0000000000000000"),
        format!("{t}-{s}-1-05E3AC9A4F6E3B90"),
        format!("{t}-{s}-1-05e3ac9a4f6e3b90-1"),
        format!("{t}-{s}-1\n"),
        format!("{t} -{s}"),
        format!("{t}-{s}-1{}", " ".repeat(MAX_ID_HEADER_LEN)),
        "x".repeat(1 << 20),
    ];
    for value in cases {
        assert_eq!(
            extract(Propagator::B3Single, &[("b3", &value)]),
            None,
            "{value:?}"
        );
    }
    let v = format!("{t}-{s}-1");
    assert_eq!(
        extract(Propagator::B3Single, &[("b3", &v), ("b3", &v)]),
        None
    );
}

#[test]
fn b3_multi_accepted() {
    let short = TraceId(0xa3ce929d0e0e4736);
    type Case<'a> = (Vec<(&'a str, &'a str)>, TraceId, bool);
    let base = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut v = vec![("X-B3-TraceId", TRACE), ("X-B3-SpanId", SPAN)];
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<Case<'_>> = vec![
        (base(&[]), TRACE_ID, true),
        (base(&[("X-B3-Sampled", "1")]), TRACE_ID, true),
        (base(&[("X-B3-Sampled", "0")]), TRACE_ID, false),
        (base(&[("X-B3-Sampled", "true")]), TRACE_ID, true),
        (base(&[("X-B3-Sampled", "false")]), TRACE_ID, false),
        (base(&[("X-B3-Sampled", " 0 ")]), TRACE_ID, false),
        // Debug implies sampled.
        (base(&[("X-B3-Flags", "1")]), TRACE_ID, true),
        (
            base(&[("X-B3-Flags", "1"), ("X-B3-Sampled", "0")]),
            TRACE_ID,
            true,
        ),
        (
            base(&[("X-B3-Flags", "0"), ("X-B3-Sampled", "0")]),
            TRACE_ID,
            false,
        ),
        // The parent span id is not needed and not checked.
        (base(&[("X-B3-ParentSpanId", "junk")]), TRACE_ID, true),
        (
            vec![("x-b3-traceid", "a3ce929d0e0e4736"), ("x-b3-spanid", SPAN)],
            short,
            true,
        ),
        (
            vec![
                ("X-B3-TRACEID", " 4bf92f3577b34da6a3ce929d0e0e4736\t"),
                ("x-b3-spanid", SPAN),
            ],
            TRACE_ID,
            true,
        ),
    ];
    for (pairs, trace, sampled) in cases {
        assert_eq!(
            extract(Propagator::B3Multi, &pairs),
            Some(ctx(trace, SPAN_ID, sampled)),
            "{pairs:?}"
        );
    }
}

#[test]
fn b3_multi_rejected() {
    let upper = TRACE.to_uppercase();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("X-B3-TraceId", TRACE)],
        vec![("X-B3-SpanId", SPAN)],
        vec![("X-B3-TraceId", &upper), ("X-B3-SpanId", SPAN)],
        vec![("X-B3-TraceId", TRACE), ("X-B3-SpanId", "00F067AA0BA902B7")],
        vec![
            ("X-B3-TraceId", "00000000000000000000000000000000"),
            ("X-B3-SpanId", SPAN),
        ],
        vec![("X-B3-TraceId", TRACE), ("X-B3-SpanId", "0000000000000000")],
        vec![("X-B3-TraceId", &TRACE[..20]), ("X-B3-SpanId", SPAN)],
        vec![("X-B3-TraceId", TRACE), ("X-B3-SpanId", &SPAN[..8])],
        vec![
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "yes"),
        ],
        vec![
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "2"),
        ],
        vec![
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "d"),
        ],
        // Repeated headers.
        vec![
            ("X-B3-TraceId", TRACE),
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
        ],
        vec![
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-SpanId", SPAN),
        ],
        vec![
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "1"),
            ("X-B3-Sampled", "1"),
        ],
        vec![
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Flags", "1"),
            ("X-B3-Flags", "1"),
        ],
    ];
    for pairs in cases {
        assert_eq!(extract(Propagator::B3Multi, &pairs), None, "{pairs:?}");
    }
}

// ---------------------------------------------------------------------------
// X-Trace-ID / X-Span-ID

#[test]
fn xtrace_accepted() {
    let uuid = TraceId(0x550e8400e29b41d4a716446655440000);
    let folded = SpanId(0x80b400c04fd430c8);
    let upper = TRACE.to_uppercase();
    let padded = format!(" {TRACE} ");
    type Case<'a> = (Vec<(&'a str, &'a str)>, TraceId, SpanId, bool);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![("X-Trace-ID", TRACE), ("X-Span-ID", SPAN)],
            TRACE_ID,
            SPAN_ID,
            true,
        ),
        (
            vec![("x-trace-id", &upper), ("x-span-id", "00F067AA0BA902B7")],
            TRACE_ID,
            SPAN_ID,
            true,
        ),
        (
            vec![
                ("X-Trace-ID", "550e8400-e29b-41d4-a716-446655440000"),
                ("X-Span-ID", SPAN),
            ],
            uuid,
            SPAN_ID,
            true,
        ),
        (
            vec![
                ("X-Trace-ID", "550E8400-E29B-41D4-A716-446655440000"),
                ("X-Span-ID", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
            ],
            uuid,
            folded,
            true,
        ),
        (
            vec![
                ("X-Trace-ID", TRACE),
                ("X-Span-ID", "6ba7b8109dad11d180b400c04fd430c8"),
            ],
            TRACE_ID,
            folded,
            true,
        ),
        (
            vec![("X-Trace-ID", "a3ce929d0e0e4736"), ("X-Span-ID", SPAN)],
            TraceId(0xa3ce929d0e0e4736),
            SPAN_ID,
            true,
        ),
        (
            vec![
                ("X-Trace-ID", TRACE),
                ("X-Span-ID", SPAN),
                ("X-Sampled", "0"),
            ],
            TRACE_ID,
            SPAN_ID,
            false,
        ),
        (
            vec![
                ("X-Trace-ID", TRACE),
                ("X-Span-ID", SPAN),
                ("X-Sampled", " False "),
            ],
            TRACE_ID,
            SPAN_ID,
            false,
        ),
        (
            vec![
                ("X-Trace-ID", TRACE),
                ("X-Span-ID", SPAN),
                ("X-Sampled", "1"),
            ],
            TRACE_ID,
            SPAN_ID,
            true,
        ),
        (
            vec![
                ("X-Trace-ID", TRACE),
                ("X-Span-ID", SPAN),
                ("X-Sampled", "maybe"),
            ],
            TRACE_ID,
            SPAN_ID,
            true,
        ),
        (
            vec![("X-Trace-ID", &padded), ("X-Span-ID", SPAN)],
            TRACE_ID,
            SPAN_ID,
            true,
        ),
    ];
    for (pairs, trace, span, sampled) in cases {
        assert_eq!(
            extract(Propagator::XTrace, &pairs),
            Some(ctx(trace, span, sampled)),
            "{pairs:?}"
        );
    }
}

#[test]
fn xtrace_rejected() {
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("X-Trace-ID", TRACE)],
        vec![("X-Span-ID", SPAN)],
        vec![
            ("X-Trace-ID", "00000000000000000000000000000000"),
            ("X-Span-ID", SPAN),
        ],
        vec![
            ("X-Trace-ID", "00000000-0000-0000-0000-000000000000"),
            ("X-Span-ID", SPAN),
        ],
        vec![("X-Trace-ID", TRACE), ("X-Span-ID", "0000000000000000")],
        // 128-bit span ids whose low half is zero fold to an invalid id.
        vec![
            ("X-Trace-ID", TRACE),
            ("X-Span-ID", "6ba7b810-9dad-11d1-0000-000000000000"),
        ],
        vec![("X-Trace-ID", &TRACE[..31]), ("X-Span-ID", SPAN)],
        vec![("X-Trace-ID", TRACE), ("X-Span-ID", &SPAN[..15])],
        vec![("X-Trace-ID", TRACE), ("X-Span-ID", "00f067aa0ba902b7a")],
        vec![
            ("X-Trace-ID", "550e8400e-29b-41d4-a716-446655440000"),
            ("X-Span-ID", SPAN),
        ],
        vec![
            ("X-Trace-ID", "550e8400-e29b-41d4-a716-4466-5544000"),
            ("X-Span-ID", SPAN),
        ],
        vec![
            ("X-Trace-ID", "{550e8400-e29b-41d4-a716-446655440000}"),
            ("X-Span-ID", SPAN),
        ],
        vec![
            (
                "X-Trace-ID",
                "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
            ),
            ("X-Span-ID", SPAN),
        ],
        vec![
            ("X-Trace-ID", "550e8400-e29b-41d4-a716-44665544000g"),
            ("X-Span-ID", SPAN),
        ],
        vec![("X-Trace-ID", "not-a-trace-id"), ("X-Span-ID", SPAN)],
        vec![
            ("X-Trace-ID", TRACE),
            ("X-Trace-ID", TRACE),
            ("X-Span-ID", SPAN),
        ],
        vec![
            ("X-Trace-ID", TRACE),
            ("X-Span-ID", SPAN),
            ("X-Span-ID", SPAN),
        ],
    ];
    for pairs in cases {
        assert_eq!(extract(Propagator::XTrace, &pairs), None, "{pairs:?}");
    }
}

#[test]
fn xtrace_injects_lower_case_and_the_sampled_flag() {
    let c = Context {
        trace_id: TRACE_ID,
        span_id: SPAN_ID,
        sampled: false,
        random: true,
        tracestate: Some("foo=1"),
    };
    assert_eq!(
        injected(Propagator::XTrace, c),
        [
            ("x-trace-id", TRACE.to_string()),
            ("x-span-id", SPAN.to_string()),
            ("x-sampled", "0".to_string()),
        ]
    );
    assert_eq!(
        injected(Propagator::B3Multi, c),
        [
            ("x-b3-traceid", TRACE.to_string()),
            ("x-b3-spanid", SPAN.to_string()),
            ("x-b3-sampled", "0".to_string()),
        ]
    );
    assert_eq!(
        injected(Propagator::B3Single, c),
        [("b3", format!("{TRACE}-{SPAN}-0"))]
    );
}

// ---------------------------------------------------------------------------
// Propagator names and lists

#[test]
fn propagator_names() {
    for p in ALL {
        assert_eq!(Propagator::parse(p.name()), Ok(p));
        assert_eq!(Propagator::parse(&p.name().to_uppercase()), Ok(p));
        assert_eq!(p.to_string(), p.name());
    }
    assert_eq!(Propagator::parse(" b3 "), Ok(Propagator::B3Single));
    for bad in ["", "w3c", "b3single", "jaeger", "baggage", "none"] {
        assert!(Propagator::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn propagator_lists() {
    use Propagator::*;
    let ok: Vec<(&str, Vec<Propagator>)> = vec![
        ("tracecontext", vec![TraceContext]),
        ("b3", vec![B3Single]),
        ("b3multi", vec![B3Multi]),
        ("xtrace", vec![XTrace]),
        (
            "tracecontext,b3,b3multi,xtrace",
            vec![TraceContext, B3Single, B3Multi, XTrace],
        ),
        (" xtrace , tracecontext ", vec![XTrace, TraceContext]),
        ("b3,b3,tracecontext,b3", vec![B3Single, TraceContext]),
        ("tracecontext,,", vec![TraceContext]),
        ("none", vec![]),
        ("", vec![]),
        ("none,b3", vec![B3Single]),
    ];
    for (text, expected) in ok {
        assert_eq!(parse_propagator_list(text), Ok(expected), "{text:?}");
    }
    let err = parse_propagator_list("tracecontext,jaeger,xray").unwrap_err();
    assert!(err.contains("\"jaeger\", \"xray\""), "{err}");
    assert!(parse_propagator_list("baggage").is_err());

    assert_eq!(
        parse_propagator_env("tracecontext,baggage"),
        (vec![TraceContext], vec![])
    );
    assert_eq!(
        parse_propagator_env("b3multi,jaeger"),
        (vec![B3Multi], vec!["jaeger".to_string()])
    );
}

#[test]
fn extraction_tries_each_format_in_order() {
    use Propagator::*;
    let b3 = "a3ce929d0e0e4736a3ce929d0e0e4736-05e3ac9a4f6e3b90-0";
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let both = [("b3", b3), ("traceparent", traceparent.as_str())];
    let first = |ps: &[Propagator]| extract_first(ps, getter(&both)).map(|c| c.trace_id);
    assert_eq!(first(&[TraceContext, B3Single]), Some(TRACE_ID));
    assert_eq!(
        first(&[B3Single, TraceContext]),
        Some(TraceId(0xa3ce929d0e0e4736a3ce929d0e0e4736))
    );
    assert_eq!(first(&[XTrace, B3Multi]), None);
    assert_eq!(first(&[]), None);
    // An invalid first format falls through to the next.
    let broken = [("b3", "junk"), ("traceparent", traceparent.as_str())];
    assert_eq!(
        extract_first(&[B3Single, TraceContext], getter(&broken)).map(|c| c.trace_id),
        Some(TRACE_ID)
    );
}

#[test]
fn inject_all_writes_every_format() {
    let c = Context {
        trace_id: TRACE_ID,
        span_id: SPAN_ID,
        sampled: true,
        random: false,
        tracestate: Some("foo=1"),
    };
    let mut names = Vec::new();
    inject_all(&ALL, c, |name, _| names.push(name));
    assert_eq!(
        names,
        [
            "traceparent",
            "tracestate",
            "b3",
            "x-b3-traceid",
            "x-b3-spanid",
            "x-b3-sampled",
            "x-trace-id",
            "x-span-id",
            "x-sampled",
        ]
    );
    for p in ALL {
        for field in p.fields() {
            assert_eq!(*field, field.to_ascii_lowercase());
        }
    }
}

#[test]
fn round_trips_for_every_format() {
    for p in ALL {
        for (sampled, random) in [(true, false), (false, false), (true, true), (false, true)] {
            let c = Context {
                trace_id: TRACE_ID,
                span_id: SPAN_ID,
                sampled,
                random,
                tracestate: Some("foo=1,bar=2"),
            };
            let got = round_trip(p, c).unwrap();
            assert_eq!(
                (got.trace_id, got.span_id, got.sampled),
                (TRACE_ID, SPAN_ID, sampled)
            );
            // Only W3C carries the random flag.
            assert_eq!(got.random, random && p == Propagator::TraceContext, "{p}");
            let state = (p == Propagator::TraceContext).then(|| "foo=1,bar=2".to_string());
            assert_eq!(got.tracestate, state, "{p}");
        }
    }
}

// ---------------------------------------------------------------------------
// Properties

fn nonzero_trace() -> impl Strategy<Value = TraceId> {
    (1..=u128::MAX).prop_map(TraceId)
}

fn nonzero_span() -> impl Strategy<Value = SpanId> {
    (1..=u64::MAX).prop_map(SpanId)
}

fn valid_tracestate() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        "[a-z][a-z0-9_*/-]{0,20}",
        "[a-z0-9][a-z0-9_*/-]{0,10}@[a-z][a-z0-9_*/-]{0,13}",
    ];
    let value = "[ -+--<>-~]{0,20}[!-+--<>-~]";
    proptest::collection::btree_map(key, value, 1..=32).prop_map(|members| {
        members
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Strings shaped like headers of every format, valid or nearly so.
fn header_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..120)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[ \t]{0,2}[0-9a-fA-F.]{1,3}-[0-9a-fA-F]{30,33}-[0-9a-fA-F]{15,17}-[0-9a-fA-F]{1,3}(-[ -~]{0,8})?[ \t]{0,2}",
        "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}.{0,4}",
        "[0-9a-fA-F]{15,33}-[0-9a-f]{15,17}(-[01dD]{1,2}(-[0-9a-f]{16})?)?",
        "[0-9a-fA-F-]{30,40}",
        "[a-zA-Z0-9@=_*/, \t-]{0,60}",
    ]
}

fn check_extracted(got: &Extracted) {
    assert!(got.trace_id.is_valid());
    assert!(got.span_id.is_valid());
    let headers = injected(Propagator::TraceContext, got.as_context());
    assert!(is_canonical_traceparent(&headers[0].1), "{:?}", headers[0]);
    if let Some(state) = &got.tracestate {
        assert_eq!(parse_tracestate(&[state]).as_deref(), Some(state.as_str()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn junk_in_any_header_never_panics_and_never_yields_a_bad_id(
        value in header_like(),
        other in header_like(),
        which in 0usize..4,
    ) {
        let p = ALL[which];
        for (i, name) in p.fields().iter().enumerate() {
            // The junk in one header, well-formed values in the others.
            let good: [(&str, &str); 9] = [
                ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                ("tracestate", "foo=1"),
                ("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"),
                ("x-b3-traceid", TRACE),
                ("x-b3-spanid", SPAN),
                ("x-b3-sampled", "1"),
                ("x-trace-id", TRACE),
                ("x-span-id", SPAN),
                ("x-sampled", "1"),
            ];
            let mut pairs: Vec<(&str, &str)> =
                good.iter().copied().filter(|(n, _)| n != name).collect();
            pairs.push((name, &value));
            if i % 2 == 0 {
                pairs.push((name, &other));
            }
            if let Some(got) = extract(p, &pairs) {
                check_extracted(&got);
            }
            if let Some(got) = extract(p, &[(name, &value)]) {
                check_extracted(&got);
            }
        }
    }

    #[test]
    fn accepted_traceparents_reinject_canonically(value in header_like()) {
        if let Some(got) = tp(&value) {
            check_extracted(&got);
            let parsed = parse_traceparent(&value).unwrap();
            prop_assert_eq!(got.sampled, parsed.flags & 1 == 1);
            let again = injected(Propagator::TraceContext, got.as_context());
            prop_assert_eq!(tp(&again[0].1), Some(got));
        }
    }

    #[test]
    fn mutated_traceparents_are_accepted_only_when_valid(
        trace in nonzero_trace(),
        span in nonzero_span(),
        flags in any::<u8>(),
        at in 0usize..55,
        byte in any::<u8>(),
    ) {
        let good = format!("00-{}-{}-{:02x}", trace.to_hex().as_str(), span.to_hex().as_str(), flags);
        let mut bytes = good.clone().into_bytes();
        bytes[at] = byte;
        let value = String::from_utf8_lossy(&bytes).into_owned();
        match tp(&value) {
            Some(got) => {
                check_extracted(&got);
                // Only a lower-case hex digit for a hex digit (or a new
                // version) keeps it valid.
                prop_assert!(
                    value == good || (byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase())
                );
            }
            None => prop_assert!(value != good, "the unmutated value must be accepted"),
        }
    }

    #[test]
    fn every_format_round_trips(
        trace in nonzero_trace(),
        span in nonzero_span(),
        sampled in any::<bool>(),
        random in any::<bool>(),
        state in proptest::option::of(valid_tracestate()),
        which in 0usize..4,
    ) {
        let p = ALL[which];
        let c = Context { trace_id: trace, span_id: span, sampled, random, tracestate: state.as_deref() };
        let got = round_trip(p, c).expect("what we inject we extract");
        prop_assert_eq!((got.trace_id, got.span_id, got.sampled), (trace, span, sampled));
        if p == Propagator::TraceContext {
            prop_assert_eq!(got.tracestate, state);
            prop_assert_eq!(got.random, random);
        }
    }

    #[test]
    fn tracestate_normal_form_is_stable(values in proptest::collection::vec(header_like(), 0..4)) {
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        if let Some(state) = parse_tracestate(&refs) {
            let again = parse_tracestate(&[&state]);
            prop_assert_eq!(again.as_deref(), Some(state.as_str()));
            prop_assert!(state.split(',').count() <= MAX_TRACESTATE_MEMBERS);
        }
    }
}
