//! MIDI import (parse + quantise) over the shared corpus; `cadenza bench import`
//! prints the same path's figures without criterion.

use std::hint::black_box;
use std::path::PathBuf;

use cadenza::midi::{ImportOptions, import};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn corpus() -> Vec<Vec<u8>> {
    let root = std::env::var_os("CADENZA_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"),
        PathBuf::from,
    );
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root.join("corpus"))
        .into_iter()
        .filter_map(Result::ok)
        .map(walkdir::DirEntry::into_path)
        .filter(|p| p.extension().is_some_and(|e| e == "mid"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|path| std::fs::read(path).ok())
        .collect()
}

fn import_corpus(c: &mut Criterion) {
    let files = corpus();
    assert!(
        !files.is_empty(),
        "no corpus: put shared/ beside the repository"
    );
    let options = ImportOptions::default();
    let mut group = c.benchmark_group("midi_import");
    group.throughput(Throughput::Elements(files.len() as u64));
    group.bench_function("corpus", |b| {
        b.iter(|| {
            for bytes in &files {
                black_box(import(black_box(bytes), &options).ok());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, import_corpus);
criterion_main!(benches);
