//! Criterion benchmarks: the payload JSON check, serde_json's `IgnoredAny` parse against
//! `json_syntax::is_valid`, on three payload shapes.
//!
//! `cargo bench -p quiver-core --bench json_syntax -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quiver_core::json_syntax;
use serde_json::{json, Value};

/// `quiver bench ingest`'s payload: `{"d":"<alphanumerics>"}`, 200 bytes in all.
fn ingest_payload() -> String {
    let body: String = (0..192u32)
        .map(|i| {
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    [(i * 37 % 62) as usize],
            )
        })
        .collect();
    format!("{{\"d\":\"{body}\"}}")
}

/// A small event with eleven keys of mixed types.
fn event_payload() -> String {
    json!({
        "user_id": 48213,
        "event": "page_view",
        "path": "/products/widget-42",
        "referrer": "https://example.com/search?q=widgets&page=2",
        "duration_ms": 1534.25,
        "logged_in": true,
        "tags": ["promo", "mobile"],
        "geo": {"country": "DE", "city": "Berlin"},
        "session": "c0ffee-1234-5678",
        "score": -0.00075,
        "ab_test": null
    })
    .to_string()
}

/// A pretty-printed document of about 10 KB: orders with nested items, escapes, numbers.
fn document_payload() -> String {
    let orders: Vec<Value> = (0..16)
        .map(|i| {
            json!({
                "order": i,
                "customer": {"name": format!("Customer \"{i}\" \u{e9}"), "vip": i % 3 == 0},
                "items": (0..3).map(|k| json!({
                    "sku": format!("SKU-{i:04}-{k}"),
                    "qty": k + 1,
                    "price": 9.99 * f64::from(k + 1),
                    "notes": "line one\nline two\ttabbed",
                })).collect::<Vec<_>>(),
                "shipped": null,
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "orders": orders })).expect("serialize")
}

fn payload_check(c: &mut Criterion) {
    let mut g = c.benchmark_group("json_syntax");
    for (name, text) in [
        ("ingest_200B", ingest_payload()),
        ("event_11_keys", event_payload()),
        ("document_10KB", document_payload()),
    ] {
        assert!(json_syntax::is_valid(&text), "{name}");
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::new("serde_json", name), &text, |b, t| {
            b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(t)).is_ok())
        });
        g.bench_with_input(BenchmarkId::new("is_valid", name), &text, |b, t| {
            b.iter(|| json_syntax::is_valid(black_box(t)))
        });
    }
    g.finish();
}

criterion_group!(benches, payload_check);
criterion_main!(benches);
