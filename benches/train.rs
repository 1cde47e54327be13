//! One training step (forward, backward, Adam) at batch 32 on random rolls,
//! for the networks whose batches are inputs and targets alone: on the
//! plain-Rust CPU trainer, and on burn (`_burn`) for comparison. `cadenza
//! bench model` prints every network's figures per second, the composer's
//! too, beside the peer's.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use cadenza::dataset::{Dataset, Preset};
use cadenza::model::Architecture;
use cadenza::train::{Trainer, default_settings};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng as _, SeedableRng as _};

const PITCHES: usize = 106;
const BATCH: usize = 32;

/// `len` 0/1 values, about 4% of them 1 (a roll's density).
fn roll_values(len: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<f32> {
    (0..len)
        .map(|_| f32::from(u8::from(rng.random::<f32>() < 0.04)))
        .collect()
}

fn training_step(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    // The trainer only reads its data through the batches given here.
    let data = Dataset::from_rolls(vec![vec![0; 20]], Preset::Forward, 0.0, 0).unwrap();
    let mut group = c.benchmark_group("train_step_cpu");
    for (architecture, name) in [
        (Architecture::Article, "article"),
        (Architecture::RollLstm, "roll"),
    ] {
        let mut settings = default_settings(architecture);
        settings.feedback = 0.0;
        let (inputs, targets, predicted) = match architecture {
            Architecture::Article => (BATCH * 9 * PITCHES, BATCH * PITCHES, BATCH),
            _ => {
                let steps = settings.sequence_steps;
                let cells = BATCH * steps * PITCHES;
                (cells, cells, BATCH * steps)
            }
        };
        let (x, y) = (
            roll_values(inputs, &mut rng),
            roll_values(targets, &mut rng),
        );
        let device = cadenza::device::cpu();
        for on_burn in [false, true] {
            let mut trainer = Trainer::new(
                architecture.default_config(),
                settings.clone(),
                &data,
                "bench",
                &device,
            )
            .unwrap();
            let id = if on_burn {
                trainer = trainer.on_burn().unwrap();
                format!("{name}_burn")
            } else {
                name.to_owned()
            };
            group.throughput(Throughput::Elements(predicted as u64));
            group.bench_function(id, |b| {
                b.iter(|| black_box(trainer.step(black_box(&x), black_box(&y)).unwrap()));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, training_step);
criterion_main!(benches);
