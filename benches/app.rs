//! The desktop app's own costs, without a window (egui_kittest, no GPU
//! renderer): CPU time of one frame with a 10-minute roll, idle, with ghost
//! notes and the surprise lens on, and while a training run works in the
//! background; from a slider change to the updated roll on screen; from
//! asking for a 32-step fill in 4 variations to the roll showing it; and
//! from start to the first frame.
#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use cadenza::app::{CadenzaApp, Command, Selection, StartMode, TrainForm};
use cadenza::midi::{ExportOptions, ImportOptions, export, import};
use cadenza::roll::PianoRoll;
use criterion::{Criterion, criterion_group, criterion_main};
use egui_kittest::Harness;

fn new_harness() -> Harness<'static, CadenzaApp> {
    Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(|cc| CadenzaApp::new(&cc.egui_ctx, StartMode::Headless))
}

fn settle(harness: &mut Harness<'static, CadenzaApp>) {
    let started = Instant::now();
    while !harness.state().is_idle() && started.elapsed() < Duration::from_secs(20) {
        harness.step();
    }
    harness.step();
}

/// The demo prelude tiled to ten minutes (2,880 sixteenths at 72 BPM).
fn ten_minute_file(dir: &std::path::Path) -> std::path::PathBuf {
    let demo = cadenza::assets::default_demo();
    let (roll, _) = import(demo.midi, &ImportOptions::default()).expect("the demo imports");
    let seconds = roll.meta().seconds_per_step();
    let steps = (600.0 / seconds).ceil() as usize;
    let masks: Vec<u128> = roll
        .sounding_masks()
        .iter()
        .copied()
        .cycle()
        .take(steps)
        .collect();
    let long = PianoRoll::from_sounding(masks, *roll.meta()).expect("a valid roll");
    let path = dir.join("ten-minutes.mid");
    std::fs::write(&path, export(&long, &ExportOptions::default())).expect("writable temp dir");
    path
}

fn app_frames(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let long = ten_minute_file(dir.path());
    let mut harness = new_harness();
    harness.state_mut().apply(Command::Open(long));
    settle(&mut harness);
    let mut group = c.benchmark_group("app");
    group
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    group.bench_function("frame, 10-minute roll", |b| b.iter(|| harness.step()));

    // Ghost notes after an edit, and the lens over all ten minutes.
    harness.state_mut().apply(Command::ShowGhosts(true));
    harness.state_mut().apply(Command::ShowLens(true));
    harness.state_mut().apply(Command::DrawNote {
        row: 80,
        start: 200,
        end: 204,
    });
    settle(&mut harness);
    assert!(harness.state().generation().ghost().is_some());
    assert!(harness.state().generation().heard().is_some());
    group.bench_function("frame, 10-minute roll, ghost notes and lens", |b| {
        b.iter(|| harness.step());
    });
    harness.state_mut().apply(Command::ShowGhosts(false));
    harness.state_mut().apply(Command::ShowLens(false));
    settle(&mut harness);

    let mut params = *harness.state().params();
    group.bench_function("slider change to updated roll", |b| {
        b.iter(|| {
            params.rule.vanish_proof = if params.rule.vanish_proof > 0.6 {
                0.55
            } else {
                0.65
            };
            harness.state_mut().apply(Command::ParamsChanged(params));
            settle(&mut harness);
        });
    });

    // A training run on the demo chorales in the background.
    let data = tempfile::tempdir().expect("a temp dir");
    for name in ["chorale-bwv1.6.mid", "chorale-bwv328.mid"] {
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/demo")
            .join(name);
        std::fs::copy(source, data.path().join(name)).expect("copy a demo");
    }
    harness
        .state_mut()
        .apply(Command::TrainFormChanged(TrainForm {
            data_dir: data.path().display().to_string(),
            epochs: 1000,
            ..TrainForm::default()
        }));
    harness.state_mut().apply(Command::StartTraining);
    group.bench_function("frame, 10-minute roll, training", |b| {
        b.iter(|| harness.step());
    });
    harness.state_mut().apply(Command::CancelTraining);

    // Playing needs a sound output: run with HOME pointing at a folder whose
    // .asoundrc makes ALSA's default a file sink (see tests/audio.rs) to
    // measure it without a sound card.
    let mut playing = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(|cc| CadenzaApp::with_store(&cc.egui_ctx, StartMode::Desktop, None));
    settle(&mut playing);
    playing
        .state_mut()
        .apply(Command::Open(ten_minute_file(dir.path())));
    settle(&mut playing);
    // A file sink plays far faster than real time: loop so it keeps playing.
    let mut transport = *playing.state().transport();
    transport.looping = true;
    playing
        .state_mut()
        .apply(Command::TransportChanged(transport));
    playing.state_mut().apply(Command::Play);
    playing.step();
    std::thread::sleep(Duration::from_millis(200));
    if playing.state().playing_position().is_some() {
        group.bench_function("frame, 10-minute roll, playing", |b| {
            b.iter(|| playing.step());
        });
    } else {
        eprintln!(
            "no sound output ({}): the frame time while playing is not measured",
            playing.state().status()
        );
    }
    drop(playing);

    group.bench_function("start to first frame", |b| {
        b.iter(|| {
            let harness = new_harness();
            drop(harness);
        });
    });
    group.finish();
}

fn fill_to_roll(c: &mut Criterion) {
    let mut group = c.benchmark_group("app");
    group
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    // A 32-step fill in 4 variations on the demo: each round asks again
    // with a new random seed (Live refills the passage in focus).
    let mut composing = new_harness();
    settle(&mut composing);
    let mut params = *composing.state().params();
    params.variations = 4;
    composing.state_mut().apply(Command::ParamsChanged(params));
    composing.state_mut().apply(Command::Select(Some(Selection {
        rows: (0, 106),
        steps: (32, 64),
    })));
    composing.state_mut().apply(Command::Fill);
    settle(&mut composing);
    assert!(
        composing
            .state()
            .generation()
            .result()
            .is_some_and(|g| g.is_fill() && g.continuations.len() == 4)
    );
    group.bench_function("fill 32 steps x 4 variations, to the roll", |b| {
        b.iter(|| {
            params.rule.rng_seed += 1;
            composing.state_mut().apply(Command::ParamsChanged(params));
            settle(&mut composing);
        });
    });
    group.finish();
}

criterion_group!(benches, app_frames, fill_to_roll);
criterion_main!(benches);
