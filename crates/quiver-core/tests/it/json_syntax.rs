//! `json_syntax::is_valid` against serde_json's ignore path: the same answer for every text.

use proptest::prelude::*;
use quiver_core::json_syntax::is_valid;
use quiver_core::{CoreError, Record};

fn serde_accepts(s: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

#[track_caller]
fn assert_agrees(s: &str) {
    assert_eq!(
        is_valid(s),
        serde_accepts(s),
        "json_syntax and serde_json disagree on {s:?}"
    );
}

/// Each rule, with the answer serde_json 1.0.154 gives (checked here too, so an upgrade
/// that changes a rule fails this table rather than slipping by).
#[test]
fn edge_cases_match_serde_json() {
    let cases: &[(&str, bool)] = &[
        // Empty input and whitespace.
        ("", false),
        (" ", false),
        (" 1 ", true),
        ("\t\n\r 1\t\n\r ", true),
        ("\u{c}1", false),
        ("1\u{c}", false),
        ("\u{a0}1", false),
        ("1\u{b}", false),
        ("1 2", false),
        ("1,", false),
        ("[] []", false),
        ("{}x", false),
        // Literals.
        ("true", true),
        ("false", true),
        ("null", true),
        ("tru", false),
        ("nul", false),
        ("fals", false),
        ("truee", false),
        ("True", false),
        ("NULL", false),
        ("nan", false),
        ("NaN", false),
        ("Infinity", false),
        ("-Infinity", false),
        ("t", false),
        // Numbers.
        ("0", true),
        ("-0", true),
        ("-0.0", true),
        ("0e0", true),
        ("0E-0", true),
        ("1E+2", true),
        ("1e-2", true),
        ("1.5e10", true),
        ("123456789012345678901234567890", true),
        ("1e400", true),
        ("-1e-400", true),
        ("1e99999999999999999999", true),
        ("01", false),
        ("-01", false),
        ("00", false),
        ("-", false),
        ("+1", false),
        ("1.", false),
        (".5", false),
        ("1.e5", false),
        ("1e", false),
        ("1e+", false),
        ("1E-", false),
        ("1.5.3", false),
        ("1ee5", false),
        ("0x10", false),
        ("1_000", false),
        ("- 1", false),
        ("--1", false),
        ("[01]", false),
        ("[-]", false),
        ("[1.]", false),
        ("[1e]", false),
        ("[1-2]", false),
        ("[0.5e+3,-0,1E400]", true),
        // Strings.
        ("\"\"", true),
        ("\"abc\"", true),
        ("\"", false),
        ("\"abc", false),
        ("\"\\", false),
        ("'a'", false),
        ("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", true),
        ("\"\\a\"", false),
        ("\"\\x41\"", false),
        ("\"\\'\"", false),
        ("\"\\0\"", false),
        ("\"\\U00e9\"", false),
        ("\"\\u00e9\"", true),
        ("\"\\u00E9\\uABCD\\uabcd\"", true),
        ("\"\\ud800\"", true),
        ("\"\\udc00\"", true),
        ("\"\\ud800\\ud800\"", true),
        ("\"\\udbff\\udfff\"", true),
        ("\"\\uZZZZ\"", false),
        ("\"\\u12\"", false),
        ("\"\\u123\"", false),
        ("\"\\u123", false),
        ("\"\\u", false),
        ("\"\\u12G4\"", false),
        ("\"a\u{0}\"", false),
        ("\"a\u{1f}\"", false),
        ("\"a\tb\"", false),
        ("\"a\nb\"", false),
        ("\"a\rb\"", false),
        ("\"a\u{7f}b\"", true),
        ("\"é漢字🎉\"", true),
        ("\"\u{80}\u{ffff}\u{10ffff}\"", true),
        // A control byte after 16 bytes, and in the overlapping tail of a 16-byte scan.
        ("\"0123456789abcdef\u{1}\"", false),
        ("\"0123456789abcdef\u{1f}\"", false),
        ("\"0123456789abcdef\u{7f}\u{80}\u{ff}\"", true),
        ("\"0123456789abcdefghijk\u{1}\"", false),
        ("\"0123456789abcdefghijk\\q\"", false),
        ("\"0123456789abcdefghijklmnopqrstuvwxyz\"", true),
        ("\"0123456789abcdefghijklmnopqrstuvwxyz", false),
        ("\"0123456789abcdefghijklmnopqrstuvwxyz\"\u{1}", false),
        // Arrays.
        ("[]", true),
        ("[ ]", true),
        ("[1]", true),
        ("[1,2]", true),
        ("[1 2]", false),
        ("[1,]", false),
        ("[,1]", false),
        ("[,]", false),
        ("[1,,2]", false),
        ("[", false),
        ("[1", false),
        ("[1,", false),
        ("]", false),
        ("[}", false),
        ("[1}", false),
        ("[[]]", true),
        ("[[],[[]],{}]", true),
        // Objects.
        ("{}", true),
        ("{ }", true),
        ("{\"a\":1}", true),
        ("{\"a\" : 1 , \"b\" : [true] }", true),
        ("{\"a\":1,}", false),
        ("{,}", false),
        ("{\"a\"}", false),
        ("{\"a\":}", false),
        ("{\"a\" 1}", false),
        ("{\"a\":1 \"b\":2}", false),
        ("{\"a\"::1}", false),
        ("{a:1}", false),
        ("{1:1}", false),
        ("{null:1}", false),
        ("{[]:1}", false),
        ("{\"a\":1", false),
        ("{\"a\":1,", false),
        ("{\"a\":1,\"b\"", false),
        ("{\"a\"", false),
        ("{\"a", false),
        ("{", false),
        ("}", false),
        ("{]", false),
        ("{\"a\":1]", false),
        ("{\"a\":{\"b\":{}}}", true),
        ("{\"a\":1,\"a\":2}", true),
        ("{\"\\ud800\":1}", true),
        ("{\"a\u{1}\":1}", false),
        // Anything else.
        ("/", false),
        ("// c\n1", false),
        ("/* c */ 1", false),
        ("\u{feff}1", false),
        (":", false),
        (",", false),
        ("\u{0}", false),
        ("1\u{0}", false),
    ];
    for &(text, want) in cases {
        assert_eq!(
            serde_accepts(text),
            want,
            "serde_json's answer changed on {text:?}"
        );
        assert_eq!(is_valid(text), want, "json_syntax on {text:?}");
    }
}

#[test]
fn any_depth_is_checked_without_recursion() {
    let n = 100_000;
    let open = "[".repeat(n);
    let close = "]".repeat(n);
    let nested_objects = "{\"a\":".repeat(n) + "1" + &"}".repeat(n);
    let mixed: String = (0..n)
        .map(|k| if k % 2 == 0 { "[" } else { "{\"k\":" })
        .collect::<String>()
        + "null"
        + &(0..n)
            .rev()
            .map(|k| if k % 2 == 0 { "]" } else { "}" })
            .collect::<String>();
    let cases = [
        (format!("{open}{close}"), true),
        (format!("{open}1{close}"), true),
        (format!(" {open} {close} "), true),
        (nested_objects, true),
        (mixed.clone(), true),
        (open.clone(), false),
        (format!("{open}{}", &close[1..]), false),
        (format!("{open}{close}]"), false),
        (format!("{open}1,{close}"), false),
        (format!("{}}}{}", &open[1..], &close[1..]), false),
        (mixed[..mixed.len() - 1].to_string(), false),
        (mixed.replacen("null", "nul", 1), false),
    ];
    for (text, want) in &cases {
        assert_eq!(serde_accepts(text), *want, "serde_json's answer changed");
        assert_eq!(
            is_valid(text),
            *want,
            "json_syntax on a deep text of {} bytes",
            text.len()
        );
    }
}

#[test]
fn validate_keeps_serde_json_messages() {
    let cases = [
        (
            "{\"a\":1,}",
            "payload is not valid JSON: key must be a string at line 1 column 8",
        ),
        (
            "[1 2]",
            "payload is not valid JSON: expected `,` or `]` at line 1 column 4",
        ),
        (
            "",
            "payload is not valid JSON: EOF while parsing a value at line 1 column 0",
        ),
        (
            "tru",
            "payload is not valid JSON: EOF while parsing a value at line 1 column 3",
        ),
        (
            "\"\\uZZZZ\"",
            "payload is not valid JSON: invalid escape at line 1 column 7",
        ),
        (
            "{\"a\":\"b\u{1}\"}",
            "payload is not valid JSON: control character (\\u0000-\\u001F) found while parsing a string at line 1 column 7",
        ),
        (
            "1 2",
            "payload is not valid JSON: trailing characters at line 1 column 3",
        ),
    ];
    for (payload, want) in cases {
        let mut r = Record::new("r1");
        r.payload = Some(payload.to_string());
        let err = r.validate(None, 1 << 20).expect_err(payload);
        let serde_reason = serde_json::from_str::<serde::de::IgnoredAny>(payload)
            .expect_err(payload)
            .to_string();
        assert!(
            matches!(&err, CoreError::InvalidJson { reason } if *reason == serde_reason),
            "{payload:?}: {err:?}, serde_json says {serde_reason:?}"
        );
        assert_eq!(err.to_string(), want, "{payload:?}");
    }
    for payload in ["{\"d\":\"abc\"}", " [1e400, \"\\ud800\"] ", "null"] {
        let mut r = Record::new("r1");
        r.payload = Some(payload.to_string());
        r.validate(None, 1 << 20).expect(payload);
    }
}

// ---------------------------------------------------------------------------------------
// Differential property tests.

/// Cases per property: `PROPTEST_CASES`, else a count that keeps CI to a few seconds.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// JSON whitespace, mostly none.
fn ws() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        1 => "[ \t\n\r]{1,3}",
    ]
}

fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?(0|[1-9][0-9]{0,3})",
        "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,6})?([eE][+-]?[0-9]{1,4})?",
    ]
}

fn string_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "\"[a-zA-Z0-9 ]{0,40}\"",
        1 => "\"[a-z]{20,100}\"",
        2 => "\"(\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4}|\\\\u[dD][89abAB][0-9a-fA-F]{2}|[^\"\\\\\\x00-\\x1f]){0,24}\"",
    ]
}

/// JSON text written token by token with random whitespace: numbers of every shape,
/// escapes including lone surrogates, nested arrays and objects.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        number_text(),
        string_text(),
    ];
    leaf.prop_recursive(8, 96, 8, |inner| {
        let item = (ws(), inner.clone(), ws()).prop_map(|(a, v, b)| format!("{a}{v}{b}"));
        let member = (ws(), string_text(), ws(), ws(), inner, ws())
            .prop_map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}"));
        prop_oneof![
            (prop::collection::vec(item, 0..6), ws())
                .prop_map(|(items, w)| format!("[{w}{}]", items.join(","))),
            (prop::collection::vec(member, 0..6), ws())
                .prop_map(|(members, w)| format!("{{{w}{}}}", members.join(","))),
        ]
    })
}

/// A `serde_json::Value` tree, to be written by serde_json itself (compact and pretty).
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x20\"\\\\/a\u{e9}\u{1F389}]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Characters that matter to the grammar, and a few that must be refused.
const SIGNIFICANT: &[char] = &[
    '"', '{', '}', '[', ']', ',', ':', '\\', '-', '+', '.', 'e', 'E', '0', '1', ' ', '\t', '\n',
    '\r', 'u', 'a', 'n', 't', 'f', 'l', '/', '\u{0}', '\u{1f}', '\u{7f}', '\u{c}', '\u{e9}',
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let c = prop::sample::select(SIGNIFICANT);
    prop::collection::vec(
        prop_oneof![
            any::<usize>().prop_map(Mutation::Delete),
            (any::<usize>(), c.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
            (any::<usize>(), c).prop_map(|(i, c)| Mutation::Replace(i, c)),
        ],
        1..4,
    )
}

/// Applies the mutations one by one, checking each intermediate text.
fn check_mutated(text: &str, muts: &[Mutation]) {
    let mut chars: Vec<char> = text.chars().collect();
    for m in muts {
        match *m {
            Mutation::Delete(i) if !chars.is_empty() => {
                chars.remove(i % chars.len());
            }
            Mutation::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Mutation::Replace(i, c) if !chars.is_empty() => {
                let n = chars.len();
                chars[i % n] = c;
            }
            _ => {}
        }
        assert_agrees(&chars.iter().collect::<String>());
    }
}

/// Every prefix of a small text (each cut lands on a char boundary).
fn check_prefixes(text: &str) {
    if text.len() <= 80 {
        for (i, _) in text.char_indices() {
            assert_agrees(&text[..i]);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn token_written_json_agrees(text in json_text(), muts in mutations()) {
        assert_agrees(&text);
        prop_assert!(is_valid(&text), "generated JSON refused: {text:?}");
        check_prefixes(&text);
        check_mutated(&text, &muts);
    }

    #[test]
    fn serde_written_json_agrees(v in json_value(), muts in mutations()) {
        for text in [v.to_string(), serde_json::to_string_pretty(&v).unwrap()] {
            prop_assert!(is_valid(&text), "serde_json's own output refused: {text:?}");
            check_prefixes(&text);
            check_mutated(&text, &muts);
        }
    }

    #[test]
    fn short_texts_of_significant_chars_agree(
        chars in prop::collection::vec(prop::sample::select(SIGNIFICANT), 0..24)
    ) {
        assert_agrees(&chars.iter().collect::<String>());
    }

    #[test]
    fn strings_around_the_scan_width_agree(
        body in "[a-z\"\\\\\\x00-\\x1f\u{e9}]{0,70}",
        pad in 0usize..40,
        tail in "[ \"\\]}\\x01]{0,3}",
    ) {
        // Specials at every offset from the 16-byte blocks, and texts ending inside a string.
        let text = format!("[{}\"{body}\"{tail}", " ".repeat(pad));
        assert_agrees(&text);
        assert_agrees(&format!("{{\"k\":\"{body}\"}}"));
        check_prefixes(&text);
    }
}
