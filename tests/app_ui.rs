//! The desktop app driven as a user would, with egui_kittest: no window, no
//! audio device, the model on the CPU.

use std::time::{Duration, Instant};

use cadenza::app::{CadenzaApp, Command, StartMode};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

fn harness() -> Harness<'static, CadenzaApp> {
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(|cc| CadenzaApp::new(&cc.egui_ctx, StartMode::Headless));
    settle(&mut harness);
    harness
}

/// Runs frames until the generation worker has answered.
fn settle(harness: &mut Harness<'static, CadenzaApp>) {
    let started = Instant::now();
    loop {
        harness.step();
        if harness.state().is_idle() || started.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.step();
}

#[test]
fn the_app_opens_on_the_demo_and_generates_a_continuation() {
    let mut harness = harness();
    let app = harness.state();
    assert!(
        app.status().starts_with("generated 106 steps"),
        "{}",
        app.status()
    );
    assert_eq!(app.display().steps(), 9 + 106);
    harness.get_by_label("Generate (G)").click();
    settle(&mut harness);
    assert!(harness.state().status().starts_with("generated"));
}

#[test]
fn moving_the_vanish_proof_slider_regenerates_the_roll() {
    let mut harness = harness();
    let before = harness.state().display().clone();
    harness
        .get_by_role_and_label(eframe::egui::accesskit::Role::Slider, "vanish_proof")
        .set_value_accesskit(0.95);
    settle(&mut harness);
    let app = harness.state();
    assert!(
        (app.params().rule.vanish_proof - 0.95).abs() < 1e-9,
        "{:?}",
        app.params()
    );
    // A boost of 0.95 switches on nearly every pitch the model gives > 0.05.
    assert!(app.display().sounding_cells() > before.sounding_cells());
}

#[test]
fn clicking_the_roll_moves_the_seed_window_and_arrows_nudge_it() {
    let mut harness = harness();
    harness.state_mut().apply(Command::SetSeed(40));
    settle(&mut harness);
    assert_eq!(harness.state().seed_start(), 40);
    harness.key_press(eframe::egui::Key::ArrowRight);
    settle(&mut harness);
    assert_eq!(harness.state().seed_start(), 41);
    // The roll starts right of the 34-pixel keyboard strip, 6 pixels a step:
    // a click at step 100 centres the window there.
    let roll_top = 60.0;
    harness.hover_at(eframe::egui::pos2(0.0, 0.0));
    let x = 260.0 + 34.0 + 100.0 * 6.0;
    harness.drag_at(eframe::egui::pos2(x, roll_top + 100.0));
    harness.drop_at(eframe::egui::pos2(x, roll_top + 100.0));
    settle(&mut harness);
    let start = harness.state().seed_start();
    assert!((90..=100).contains(&start), "seed window at {start}");
}

#[test]
fn a_bad_midi_file_shows_an_error_and_keeps_the_roll() {
    let mut harness = harness();
    let before = harness.state().display().clone();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.mid");
    std::fs::write(&bad, b"MThd\0\0\0\x06\0\x01").unwrap();
    harness.state_mut().apply(Command::Open(bad));
    settle(&mut harness);
    let app = harness.state();
    assert!(app.status().contains("broken.mid"), "{}", app.status());
    assert_eq!(app.display(), &before);
}

#[test]
fn the_transport_controls_and_wav_export_work_without_a_sound_card() {
    let mut harness = harness();
    harness
        .get_by_role_and_label(eframe::egui::accesskit::Role::Slider, "BPM")
        .set_value_accesskit(90.0);
    harness.step();
    assert!((harness.state().transport().bpm - 90.0).abs() < 1e-9);

    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("take.wav");
    harness.state_mut().apply(Command::ExportWav(wav.clone()));
    let started = Instant::now();
    while !harness.state().status().starts_with("exported")
        && started.elapsed() < Duration::from_secs(30)
    {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        harness.state().status().starts_with("exported"),
        "{}",
        harness.state().status()
    );
    let reader = hound::WavReader::open(&wav).unwrap();
    // 115 steps of sixteenths at 90 BPM, plus the release tail.
    let seconds = f64::from(reader.duration()) / f64::from(reader.spec().sample_rate);
    assert!(
        (seconds - (115.0 / 4.0 * 60.0 / 90.0 + 1.5)).abs() < 0.05,
        "{seconds}"
    );
}

#[test]
fn hovering_a_generated_step_selects_it_for_the_probability_plot() {
    let mut harness = harness();
    let x = 260.0 + 34.0 + 50.0 * 6.0;
    harness.hover_at(eframe::egui::pos2(x, 200.0));
    harness.step();
    let step = harness
        .state()
        .hovered_step()
        .expect("a step under the mouse");
    assert!((40..=60).contains(&step), "{step}");
}
