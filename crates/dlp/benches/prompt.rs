//! Latency of scanning one 64 KiB prompt (chat-API JSON) with the built-in
//! packs, through the batch path the ASC uses.

use criterion::{criterion_main, Criterion, Throughput};
use dlp::{corpus, rules, Engine};

fn prompt_64k(c: &mut Criterion) {
    let engine = match rules::builtin().map(|r| Engine::new(&r)) {
        Ok(Ok(e)) => e,
        _ => return,
    };
    // A chat-API body: generated chat lines, cut to 64 KiB.
    let (files, _) = corpus::generate(7, 256 << 10, 256 << 10, 32 << 10);
    let chat = files
        .iter()
        .find(|f| f.name.ends_with("chat.jsonl"))
        .or(files.first())
        .map(|f| f.bytes[..(64 << 10).min(f.bytes.len())].to_vec())
        .unwrap_or_default();
    let mut g = c.benchmark_group("dlp");
    g.throughput(Throughput::Bytes(chat.len() as u64));
    g.bench_function("scan_batch 64 KiB prompt", |b| {
        b.iter(|| engine.scan_batch(&[&chat]))
    });
    g.bench_function("scan 64 KiB prompt", |b| b.iter(|| engine.scan(&chat)));
    g.finish();
}

#[allow(missing_docs)] // the macro generates an undocumented fn
mod group {
    criterion::criterion_group!(benches, super::prompt_64k);
}
criterion_main!(group::benches);
