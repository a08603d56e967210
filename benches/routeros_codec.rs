//! The RouterOS API codec: MB/s encoding and decoding `!re` sentences, the
//! bulk of every print (a `/ppp/active` row of a busy concentrator).
//!
//! `cargo bench --bench routeros_codec` (criterion; HTML-free, figures on
//! stdout). docs/BENCHMARKS.md records the results.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

use ispd::mikrotik::routeros::codec::{Decoder, Reply, ReplyKind, Row};

/// Rows per batch: one print of a medium router.
const ROWS: usize = 1_000;

fn active_row(n: usize) -> Row {
    let mut row = Row::new();
    for (key, value) in [
        (".id", format!("*{:X}", n + 1)),
        ("name", format!("subscriber-{n:05}@isp.example")),
        ("service", "pppoe".into()),
        (
            "caller-id",
            format!("02:00:00:00:{:02X}:{:02X}", n >> 8 & 0xff, n & 0xff),
        ),
        ("address", format!("100.64.{}.{}", n / 250, n % 250 + 2)),
        ("uptime", "3d4h12m9s".into()),
        ("encoding", String::new()),
        ("session-id", format!("0x{:08X}", 0x8120_0000 + n)),
        ("limit-bytes-in", "0".into()),
        ("limit-bytes-out", "0".into()),
        ("radius", "true".into()),
    ] {
        row.insert(key.into(), value);
    }
    row
}

fn replies() -> Vec<Reply> {
    (0..ROWS)
        .map(|n| Reply::new(ReplyKind::Re(active_row(n))).with_tag(Some("7".into())))
        .collect()
}

fn encode(replies: &[Reply]) -> Vec<u8> {
    replies.iter().flat_map(Reply::encode).collect()
}

fn codec(c: &mut Criterion) {
    let replies = replies();
    let bytes = encode(&replies);
    let mut group = c.benchmark_group("routeros_codec");
    group.throughput(Throughput::Bytes(bytes.len() as u64));

    group.bench_function("encode_re_sentences", |b| {
        b.iter(|| black_box(encode(black_box(&replies))))
    });

    group.bench_function("decode_re_sentences", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new();
            decoder.feed(black_box(&bytes));
            let mut rows = 0;
            while let Some(words) = decoder.next_sentence().expect("valid bytes") {
                let reply = Reply::parse(&words).expect("a reply");
                rows += usize::from(matches!(reply.kind, ReplyKind::Re(_)));
            }
            assert_eq!(rows, ROWS);
            rows
        })
    });

    // As the client reads a socket: 16 KiB at a time.
    group.bench_function("decode_re_sentences_in_16k_reads", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new();
            let mut rows = 0;
            for chunk in black_box(&bytes).chunks(16 * 1024) {
                decoder.feed(chunk);
                while let Some(words) = decoder.next_sentence().expect("valid bytes") {
                    let reply = Reply::parse(&words).expect("a reply");
                    rows += usize::from(matches!(reply.kind, ReplyKind::Re(_)));
                }
            }
            assert_eq!(rows, ROWS);
            rows
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
