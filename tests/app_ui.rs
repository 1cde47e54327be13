//! The desktop app driven as a user would, with egui_kittest: no window, no
//! audio device, the model on the CPU.

use std::time::{Duration, Instant};

use cadenza::app::{CadenzaApp, Command, StartMode};
use cadenza::generate::RuleKind;
use cadenza::live_midi::LiveMessage;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};

pub(crate) fn harness() -> Harness<'static, CadenzaApp> {
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(|cc| CadenzaApp::new(&cc.egui_ctx, StartMode::Headless));
    settle(&mut harness);
    harness
}

/// Runs frames until the generation worker has answered.
pub(crate) fn settle(harness: &mut Harness<'static, CadenzaApp>) {
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

/// Picks a shipped model from the Model menu, as a user does.
fn choose_shipped_model(harness: &mut Harness<'static, CadenzaApp>, label: &str) {
    harness.get_by_label("Model").click();
    harness.run();
    harness.get_by_label(label).click();
    settle(harness);
}

#[test]
fn the_default_model_needs_no_boost_and_the_article_model_is_one_choice_away() {
    let mut harness = harness();
    assert_eq!(harness.state().model_name(), "composer (shipped)");
    assert_eq!(harness.state().params().rule.kind, RuleKind::Sample);
    choose_shipped_model(&mut harness, "article");
    let app = harness.state();
    assert_eq!(app.model_name(), "article (shipped)");
    assert_eq!(app.params().rule.kind, RuleKind::Boost);
    assert!(app.status().starts_with("generated"), "{}", app.status());
    // The roll LSTM, the default before the composer, is one choice away.
    choose_shipped_model(&mut harness, "roll");
    assert_eq!(harness.state().model_name(), "roll (shipped)");
    assert_eq!(harness.state().params().rule.kind, RuleKind::Sample);
    choose_shipped_model(&mut harness, "composer (default)");
    assert_eq!(harness.state().model_name(), "composer (shipped)");
}

#[test]
fn variations_are_drawn_only_by_a_rule_that_draws_at_random() {
    let mut harness = harness();
    let mut params = *harness.state().params();
    params.variations = 3;
    let mut continuations_with = |rule| {
        params.rule.kind = rule;
        harness.state_mut().apply(Command::ParamsChanged(params));
        settle(&mut harness);
        let generated = harness.state().generation().result();
        generated.expect("a continuation").continuations.len()
    };
    assert_eq!(continuations_with(RuleKind::Sample), 3);
    // The boost decides every note the same way each time: one roll, and
    // the slider says why it is off.
    assert_eq!(continuations_with(RuleKind::Boost), 1);
    let slider = harness.get_by_role_and_label(eframe::egui::accesskit::Role::Slider, "variations");
    assert!(slider.accesskit_node().is_disabled());
    // The setting itself stays for when the rule draws again.
    assert_eq!(harness.state().params().variations, 3);
}

#[test]
fn moving_the_vanish_proof_slider_regenerates_the_roll() {
    let mut harness = harness();
    choose_shipped_model(&mut harness, "article");
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

/// Where step `step` lies on screen with the default layout: the controls
/// panel, the keyboard strip and 6 pixels per step.
fn x_of_step(step: f32) -> f32 {
    260.0 + 34.0 + step * 6.0
}

/// The bar ruler's height on screen.
const RULER_Y: f32 = 39.0;

#[test]
fn the_ruler_moves_the_seed_window_and_arrows_nudge_it() {
    let mut harness = harness();
    harness.state_mut().apply(Command::SetSeed(40));
    settle(&mut harness);
    assert_eq!(harness.state().seed_start(), 40);
    harness.key_press(eframe::egui::Key::ArrowRight);
    settle(&mut harness);
    assert_eq!(harness.state().seed_start(), 41);
    // A click on the ruler at step 100 centres the window there.
    let at = eframe::egui::pos2(x_of_step(100.0), RULER_Y);
    harness.drag_at(at);
    harness.drop_at(at);
    settle(&mut harness);
    let start = harness.state().seed_start();
    assert!((90..=100).contains(&start), "seed window at {start}");
}

#[test]
fn drawing_a_note_and_undoing_it() {
    let mut harness = harness();
    let notes = harness.state().source_note_count();
    let (from, to) = (
        eframe::egui::pos2(x_of_step(30.0), 150.0),
        eframe::egui::pos2(x_of_step(36.0), 150.0),
    );
    harness.drag_at(from);
    harness.step();
    harness.hover_at(to);
    harness.step();
    harness.drop_at(to);
    settle(&mut harness);
    assert_eq!(
        harness.state().source_note_count(),
        notes + 1,
        "{}",
        harness.state().status()
    );

    harness.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::Z);
    settle(&mut harness);
    assert_eq!(harness.state().source_note_count(), notes);
    harness.get_by_label("Redo").click();
    settle(&mut harness);
    assert_eq!(harness.state().source_note_count(), notes + 1);
}

#[test]
fn keeping_a_continuation_writes_it_into_the_roll_and_moves_on() {
    let mut harness = harness();
    harness.get_by_label("Keep (K)").click();
    settle(&mut harness);
    let app = harness.state();
    // The seed window now ends where the kept continuation ends.
    assert_eq!(app.seed_start() + 9, 9 + 106);
    assert!(app.status().starts_with("generated"), "{}", app.status());
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
    harness.hover_at(eframe::egui::pos2(x_of_step(50.0), 200.0));
    harness.step();
    let step = harness
        .state()
        .hovered_step()
        .expect("a step under the mouse");
    assert!((40..=60).contains(&step), "{step}");
}

pub(crate) fn harness_with_store(dir: &std::path::Path) -> Harness<'static, CadenzaApp> {
    let store = cadenza::app::SessionStore::at(dir.to_owned());
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| {
            CadenzaApp::with_store(&cc.egui_ctx, StartMode::Headless, Some(store))
        });
    settle(&mut harness);
    harness
}

#[test]
fn work_left_by_a_crash_is_offered_back_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness_with_store(dir.path());
    assert!(!harness.state().offers_restore());
    let fresh = harness.state().source_note_count();
    harness.state_mut().apply(Command::DrawNote {
        row: 50,
        start: 20,
        end: 30,
    });
    harness.state_mut().apply(Command::LockAt {
        row: 50,
        step: 25,
        lock: true,
    });
    harness.state_mut().apply(Command::SetSeed(12));
    harness.state_mut().autosave_now();
    let edited = harness.state().source_note_count();
    assert_eq!(edited, fresh + 1);
    // A crash: the app goes away without its clean-exit step.
    drop(harness);

    let mut harness = harness_with_store(dir.path());
    assert!(harness.state().offers_restore());
    assert_eq!(harness.state().source_note_count(), fresh);
    harness.get_by_label("Restore").click();
    settle(&mut harness);
    let app = harness.state();
    assert!(!app.offers_restore());
    assert_eq!(app.source_note_count(), edited);
    assert_eq!(app.seed_start(), 12);
    // The lock came back with its note.
    assert!(app.document().is_locked(20, 50) && app.document().is_locked(29, 50));

    // Discarding forgets it for good.
    harness.state_mut().autosave_now();
    drop(harness);
    let mut harness = harness_with_store(dir.path());
    harness.get_by_label("Discard").click();
    harness.step();
    drop(harness);
    assert!(!harness_with_store(dir.path()).state().offers_restore());
}

#[test]
fn settings_come_back_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness_with_store(dir.path());
    choose_shipped_model(&mut harness, "article");
    harness
        .get_by_role_and_label(eframe::egui::accesskit::Role::Slider, "vanish_inc")
        .set_value_accesskit(1.01);
    settle(&mut harness);
    harness.state_mut().autosave_now();
    drop(harness);
    let harness = harness_with_store(dir.path());
    assert!((harness.state().params().rule.vanish_inc - 1.01).abs() < 1e-9);
    // The model chosen comes back too, with the rule the user left.
    assert_eq!(harness.state().model_name(), "article (shipped)");
    assert_eq!(harness.state().params().rule.kind, RuleKind::Boost);
}

#[test]
fn training_in_the_app_makes_a_model_it_can_generate_with() {
    let data = tempfile::tempdir().unwrap();
    crate::helpers::copy_demo_chorales(data.path());
    let mut harness = harness();
    harness
        .state_mut()
        .apply(Command::TrainFormChanged(cadenza::app::TrainForm {
            data_dir: data.path().display().to_string(),
            epochs: 2,
            average_epochs: 2,
            ..Default::default()
        }));
    harness.state_mut().apply(Command::StartTraining);
    let started = Instant::now();
    while !harness
        .state()
        .training_progress()
        .is_some_and(|p| p.finished)
        && started.elapsed() < Duration::from_secs(120)
    {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let progress = harness.state().training_progress().unwrap().clone();
    assert!(progress.finished, "{progress:?}");
    assert_eq!(progress.epochs.len(), 2, "{}", progress.message);
    assert!(progress.epochs.iter().all(|r| r.validation_loss.is_some()));
    let saved = cadenza::checkpoint::Checkpoint::load(progress.model.as_ref().unwrap()).unwrap();
    let settings = &saved.header.training.as_ref().unwrap().settings;
    assert_eq!(settings.average_epochs, 2);
    harness.state_mut().apply(Command::UseTrainedModel);
    settle(&mut harness);
    let app = harness.state();
    assert_eq!(app.model_name(), "trained here (unsaved)");
    assert!(app.status().starts_with("generated"), "{}", app.status());
}

#[test]
fn models_and_soundfonts_open_from_files_and_bad_ones_say_why() {
    let mut harness = harness();
    let weights = crate::helpers::data_dir().join("parity/weights_trained_1ep.npz");
    harness.state_mut().apply(Command::Open(weights));
    settle(&mut harness);
    assert_eq!(harness.state().model_name(), "weights_trained_1ep.npz");
    assert!(
        harness.state().status().starts_with("generated"),
        "{}",
        harness.state().status()
    );

    let dir = tempfile::tempdir().unwrap();
    let junk_model = dir.path().join("junk.cadenza");
    std::fs::write(&junk_model, b"not a model").unwrap();
    harness.state_mut().apply(Command::Open(junk_model));
    settle(&mut harness);
    assert!(
        harness
            .state()
            .status()
            .contains("not a Cadenza model file"),
        "{}",
        harness.state().status()
    );
    assert_eq!(harness.state().model_name(), "weights_trained_1ep.npz");

    let junk_font = dir.path().join("bank.sf2");
    std::fs::write(&junk_font, b"MThd\0\0\0\x06\0\x01\0\x01\0\x60").unwrap();
    harness.state_mut().apply(Command::Open(junk_font));
    settle(&mut harness);
    assert!(
        harness.state().status().contains("a MIDI file"),
        "{}",
        harness.state().status()
    );
}

#[test]
fn a_selection_is_deleted_with_the_delete_key_and_comes_back_with_undo() {
    let mut harness = harness();
    let notes = harness.state().source_note_count();
    // The prelude's first bar, every pitch.
    harness
        .state_mut()
        .apply(Command::Select(Some(cadenza::app::Selection {
            rows: (0, 106),
            steps: (0, 16),
        })));
    harness.key_press(eframe::egui::Key::Delete);
    settle(&mut harness);
    let after = harness.state().source_note_count();
    assert!(after < notes && after > 0, "{notes} -> {after}");
    harness.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::Z);
    settle(&mut harness);
    assert_eq!(harness.state().source_note_count(), notes);
}

/// Play in the app through cpal into an ALSA file sink: ALSA reads the sink
/// from `$HOME/.asoundrc`, and a test cannot change its own environment
/// safely, so the test runs itself again in a child process with its own HOME.
#[cfg(target_os = "linux")]
#[test]
fn pressing_play_with_the_file_sink_advances_the_playhead() {
    const CHILD: &str = "CADENZA_TEST_FILE_SINK_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join(".asoundrc"),
            "pcm.!default { type file; slave.pcm \"null\"; file \"/dev/null\"; format \"raw\" }\n",
        )
        .unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "app_ui::pressing_play_with_the_file_sink_advances_the_playhead",
                "--exact",
            ])
            .env(CHILD, "1")
            .env("HOME", home.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(|cc| CadenzaApp::with_store(&cc.egui_ctx, StartMode::Desktop, None));
    settle(&mut harness);
    assert!(harness.state().playing_position().is_none());
    // The file sink has no clock and plays the song in milliseconds: loop it,
    // so it is still playing when the test looks.
    let mut transport = *harness.state().transport();
    transport.looping = true;
    harness
        .state_mut()
        .apply(Command::TransportChanged(transport));
    harness.get_by_label("Play").click();
    let started = Instant::now();
    let mut position = None;
    while started.elapsed() < Duration::from_secs(10) {
        harness.step();
        position = harness.state().playing_position().filter(|&p| p > 1.0);
        if position.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        position.is_some(),
        "the playhead did not move: {}",
        harness.state().status()
    );
    harness.key_press(eframe::egui::Key::Space);
    let started = Instant::now();
    while harness.state().playing_position().is_some() && started.elapsed() < Duration::from_secs(5)
    {
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(harness.state().playing_position().is_none(), "Space pauses");
}

#[test]
fn the_result_saves_as_midi_and_as_a_roll_png() {
    let mut harness = harness();
    let shown = harness.state().display().clone();
    let dir = tempfile::tempdir().unwrap();
    for name in ["take.mid", "take.png"] {
        let path = dir.path().join(name);
        harness.state_mut().apply(Command::SaveRoll(path.clone()));
        assert!(
            harness.state().status().starts_with("saved"),
            "{}",
            harness.state().status()
        );
        let back = cadenza::files::load_roll(&path, &Default::default())
            .unwrap()
            .roll;
        assert_eq!(back.sounding_masks(), shown.sounding_masks(), "{name}");
    }
}

#[test]
fn the_model_in_use_is_measured_with_the_controls_rule() {
    let data = tempfile::tempdir().unwrap();
    crate::helpers::copy_demo_chorales(data.path());
    let mut harness = harness();
    harness.state_mut().apply(Command::Measure);
    assert!(
        harness.state().measurement().is_none(),
        "no folder: nothing starts"
    );
    harness.state_mut().apply(Command::MeasureFolderChanged(
        data.path().display().to_string(),
    ));
    harness.state_mut().apply(Command::Measure);
    let started = Instant::now();
    while matches!(harness.state().measurement(), Some(None))
        && started.elapsed() < Duration::from_secs(60)
    {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.step();
    let app = harness.state();
    let measured = app.measurement().unwrap().unwrap().as_ref().unwrap();
    assert_eq!(measured.model, "composer (shipped)");
    assert!(measured.rule.starts_with("Sample"), "{}", measured.rule);
    assert_eq!(measured.held_out_files, 2, "another folder: every file");
    let free = &measured.evaluation.free_running;
    assert_eq!(free.vanish_curve.len(), app.params().steps);
    assert!(free.notes_per_step > 0.0 && measured.evaluation.teacher_forced.best.f1 > 0.0);
}

#[test]
fn a_worker_that_panics_is_reported_and_the_app_returns_to_idle() {
    let mut harness = harness();
    harness
        .state_mut()
        .run_in_background("the test task", || panic!("deliberately"));
    assert!(!harness.state().is_idle(), "the task is running");
    settle(&mut harness);
    let app = harness.state();
    assert!(app.is_idle());
    assert_eq!(
        app.status(),
        "the test task failed: it panicked: deliberately"
    );
    // The app goes on working.
    harness.get_by_label("Generate (G)").click();
    settle(&mut harness);
    assert!(
        harness.state().status().starts_with("generated"),
        "{}",
        harness.state().status()
    );
}

#[test]
fn absurd_settings_and_autosave_are_clamped_with_a_visible_note() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("settings.json"),
        r#"{"params": {"steps": 4000000000000, "variations": 100000000, "live": true},
            "transport": {"bpm": 1e12}, "zoom": 1e30, "pitch_zoom": -5}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("autosave.json"),
        r#"{"source_name": "x", "steps_per_quarter": 200, "seed_start": 999999999999,
            "params": {"steps": 99999999}, "transport": {"volume": 1e9}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("autosave.mid"),
        cadenza::assets::default_demo().midi,
    )
    .unwrap();
    let store = cadenza::app::SessionStore::at(dir.path().to_owned());
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| {
            CadenzaApp::with_store(&cc.egui_ctx, StartMode::Headless, Some(store))
        });
    harness.step();
    let app = harness.state();
    assert_eq!(app.params().steps, 16_384);
    assert_eq!(app.params().variations, 32);
    assert_eq!(app.transport().bpm, 1_000.0);
    let notes = app.notices().join("\n");
    for expected in [
        "settings: steps 4000000000000 is outside the allowed 1..=16384; using 16384",
        "settings: variations 100000000 is outside",
        "settings: zoom",
        "settings: pitch zoom -5 is outside",
        "autosave: 200 steps per quarter is not a grid",
        "autosave: steps 99999999 is outside",
        "autosave: volume",
        "autosave: seed window at step 999999999999 is past the roll's end",
    ] {
        assert!(
            notes.contains(expected),
            "missing {expected:?} in:\n{notes}"
        );
    }
    assert!(app.offers_restore());
    // The notes are on screen until dismissed.
    harness.get_by_label("Dismiss").click();
    harness.step();
    assert!(harness.state().notices().is_empty());
    // The restored work has its seed window inside the roll.
    harness.get_by_label("Restore").click();
    harness.step();
    let app = harness.state();
    assert!(app.seed_start() + 9 <= app.document().roll().steps());
}

#[test]
fn without_file_dialogs_the_open_button_asks_for_a_typed_path() {
    let mut harness = harness();
    let reason = harness.state().dialog_problem().unwrap().to_owned();
    assert!(reason.contains("drag files onto the window"), "{reason}");
    harness.get_by_label("Open...").click();
    harness.run();
    assert!(harness.state().prompt().is_some());
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("typed.mid");
    std::fs::write(&song, cadenza::assets::demo("chorale-bwv328").unwrap().midi).unwrap();
    harness
        .state_mut()
        .apply(Command::PromptChanged(song.display().to_string()));
    harness.run();
    harness.get_by_label("OK").click();
    settle(&mut harness);
    let app = harness.state();
    assert!(app.prompt().is_none());
    assert_eq!(app.document().name(), "typed.mid", "{}", app.status());
}

/// Opens a file as a user dropping it on the window does, and waits for it.
pub(crate) fn open(harness: &mut Harness<'static, CadenzaApp>, path: &std::path::Path) {
    harness.state_mut().apply(Command::Open(path.to_path_buf()));
    let started = Instant::now();
    while !harness.state().status().starts_with("opened")
        && started.elapsed() < Duration::from_secs(20)
    {
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    settle(harness);
}

pub(crate) fn studio_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/studio")
        .join(name)
}

/// The channels that sound in the song the player would get now.
fn sounding_channels(app: &CadenzaApp) -> Vec<u8> {
    let mut channels: Vec<u8> = app
        .current_song()
        .events()
        .iter()
        .map(|e| e.channel)
        .collect();
    channels.sort_unstable();
    channels.dedup();
    channels
}

#[test]
fn a_band_file_shows_its_parts_which_mute_solo_and_hide() {
    let mut harness = harness();
    open(
        &mut harness,
        &studio_file("redfarn_be_sharp_boogie_band.mid"),
    );
    let app = harness.state();
    let parts = app.performance().parts.clone();
    assert_eq!(parts.len(), 5, "{parts:?}");
    let drums = parts.iter().position(|p| p.is_drums()).unwrap() as u16;
    let bass = parts.iter().position(|p| p.channel == 1).unwrap() as u16;
    assert_eq!(sounding_channels(app), vec![0, 1, 3, 4, 9]);
    // The legend names every part and the instrument it plays.
    for (index, part) in parts.iter().enumerate() {
        let instrument = if part.is_drums() {
            "drums".to_owned()
        } else {
            let first = app
                .performance()
                .notes
                .iter()
                .find(|n| usize::from(n.part) == index);
            cadenza::gm::program_name(first.unwrap().program)
        };
        harness.get_by_label(&format!("{} · {instrument}", part.name));
    }

    // Mute the drums with their M button.
    harness
        .query_all_by_label("M")
        .nth(usize::from(drums))
        .unwrap()
        .click_accesskit();
    harness.run();
    assert!(!sounding_channels(harness.state()).contains(&9));
    // Solo the bass: only it plays.
    harness
        .query_all_by_label("S")
        .nth(usize::from(bass))
        .unwrap()
        .click_accesskit();
    harness.run();
    assert_eq!(sounding_channels(harness.state()), vec![1]);
    harness
        .query_all_by_label("H")
        .nth(usize::from(bass))
        .unwrap()
        .click_accesskit();
    harness.run();
    assert!(!harness.state().parts_view().visible(bass));
}

#[test]
fn new_notes_go_to_the_chosen_part_with_its_velocity_and_velocities_edit_undoably() {
    let mut harness = harness();
    open(
        &mut harness,
        &studio_file("redfarn_be_sharp_boogie_band.mid"),
    );
    let parts = harness.state().performance().parts.clone();
    let bass = parts.iter().position(|p| p.channel == 1).unwrap() as u16;
    harness
        .state_mut()
        .apply(Command::SetTargetPart(Some(bass)));
    // A high note no part plays, in an empty stretch of the roll.
    let row = 100;
    harness.state_mut().apply(Command::DrawNote {
        row,
        start: 40,
        end: 42,
    });
    settle(&mut harness);
    let drawn = |app: &CadenzaApp| {
        *app.performance()
            .notes
            .iter()
            .find(|n| n.start == 40 && usize::from(n.key) == row + 21)
            .unwrap()
    };
    let note = drawn(harness.state());
    assert_eq!(note.part, bass);
    let bass_before: Vec<u8> = harness
        .state()
        .performance()
        .notes
        .iter()
        .filter(|n| n.part == bass && n.start < 40)
        .map(|n| n.velocity)
        .collect();
    let context = &bass_before[bass_before.len().saturating_sub(8)..];
    let mean = context.iter().map(|&v| usize::from(v)).sum::<usize>() / context.len();
    assert_eq!(usize::from(note.velocity), mean);

    // V shows the velocity lane; a velocity set there is undone by Ctrl+Z.
    harness.key_press(eframe::egui::Key::V);
    settle(&mut harness);
    assert!(harness.state().parts_view().velocity_lane);
    harness.state_mut().apply(Command::SetVelocity {
        step: 40,
        rows: (row, row + 1),
        velocity: 17,
    });
    settle(&mut harness);
    assert_eq!(drawn(harness.state()).velocity, 17);
    harness.state_mut().apply(Command::Undo);
    settle(&mut harness);
    assert_eq!(drawn(harness.state()).velocity, note.velocity);
}

/// Steps per second of the demo at the transport's tempo (it has one tempo).
fn steps_per_second(app: &CadenzaApp) -> f64 {
    let spq = app.document().roll().meta().steps_per_quarter;
    app.transport().bpm / 60.0 * f64::from(spq)
}

fn key(on: bool, key: u8, velocity: u8) -> LiveMessage {
    if on {
        LiveMessage::NoteOn {
            channel: 0,
            key,
            velocity,
        }
    } else {
        LiveMessage::NoteOff { channel: 0, key }
    }
}

#[test]
fn a_keyboard_take_is_recorded_on_the_grid_and_undone() {
    let mut harness = harness();
    let notes = harness.state().source_note_count();
    let start = harness.state().seed_start() + 9;
    // R starts the take (no sound here: the clock runs from now).
    harness.key_press(eframe::egui::Key::R);
    harness.run();
    assert!(harness.state().keyboard().is_recording());
    // A note from step +1 for 3 steps, played a little late, at velocity
    // 77, on a high key no part plays.
    let per_second = steps_per_second(harness.state());
    let t0 = Instant::now();
    let at = |steps: f64| t0 + Duration::from_secs_f64(steps / per_second);
    let app = harness.state_mut();
    app.apply(Command::MidiIn(at(1.2), key(true, 120, 77)));
    app.apply(Command::MidiIn(at(4.1), key(false, 120, 0)));
    app.apply(Command::Record(false));
    settle(&mut harness);
    let app = harness.state();
    assert_eq!(app.source_note_count(), notes + 1, "{}", app.status());
    let recorded = app
        .performance()
        .notes
        .iter()
        .find(|n| n.key == 120)
        .copied()
        .unwrap();
    // Within a step of where it was played (the clock started a moment
    // before the take), on the grid, with its velocity.
    assert!(
        (start + 1..=start + 2).contains(&recorded.start),
        "{recorded:?} from {start}"
    );
    assert_eq!(recorded.len, 3);
    assert_eq!(recorded.velocity, 77);
    harness.state_mut().apply(Command::Undo);
    settle(&mut harness);
    assert_eq!(harness.state().source_note_count(), notes);
}

#[test]
fn answer_mode_continues_a_phrase_after_a_bars_pause() {
    let mut harness = harness();
    let steps = harness.state().document().roll().steps();
    harness.key_press(eframe::egui::Key::A);
    harness.run();
    assert!(harness.state().keyboard().is_answering());
    // A phrase of four notes that ended longer ago than any bar lasts.
    let ago = |seconds: f64| Instant::now() - Duration::from_secs_f64(seconds);
    let app = harness.state_mut();
    for (i, k) in [60u8, 64, 67, 72].into_iter().enumerate() {
        let at = 60.0 - 2.0 * i as f64;
        app.apply(Command::MidiIn(ago(at), key(true, k, 90)));
        app.apply(Command::MidiIn(ago(at - 1.5), key(false, k, 0)));
    }
    settle(&mut harness);
    let app = harness.state();
    assert!(
        app.status().starts_with("generated") || app.status().starts_with("the answer"),
        "{}",
        app.status()
    );
    // The phrase joined the end of the roll, and the continuation starts
    // where it ends.
    let roll = app.document().roll();
    assert!(roll.steps() > steps);
    let phrase: Vec<u8> = roll
        .notes()
        .iter()
        .filter(|n| n.start >= steps)
        .map(|n| n.pitch.midi())
        .collect();
    assert_eq!(phrase, vec![60, 64, 67, 72]);
    let generated = app.generation().result().unwrap();
    assert_eq!(generated.first_step(), roll.steps().max(9));
    assert!(!app.keyboard().awaits_answer());
}

/// Through a real MIDI router: the ALSA sequencer where the machine has one
/// (`/dev/snd/seq`; containers and CI machines without sound hardware
/// usually do not), or, built with the `jack` feature, a JACK server with its
/// dummy driver that the test starts (no sound card needed). Elsewhere the
/// test says it skipped.
#[cfg(target_os = "linux")]
#[test]
fn a_keyboard_and_a_daw_through_a_midi_router() {
    let _server = match midi_router() {
        Ok(server) => server,
        Err(why) => {
            eprintln!("SKIPPED a_keyboard_and_a_daw_through_a_midi_router: {why}");
            return;
        }
    };
    router_round_trip();
}

/// A JACK server on the dummy driver, killed when dropped.
#[cfg(target_os = "linux")]
struct JackServer(Option<std::process::Child>);

#[cfg(target_os = "linux")]
impl Drop for JackServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The router this build's MIDI talks to, started if it is JACK.
#[cfg(all(target_os = "linux", feature = "jack"))]
fn midi_router() -> Result<JackServer, String> {
    let child = std::process::Command::new("jackd")
        .args(["--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"])
        .env("JACK_NO_AUDIO_RESERVATION", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("jackd does not start ({e}); install jackd2"))?;
    let server = JackServer(Some(child));
    // Ready once a client can open.
    let started = Instant::now();
    while midir::MidiInput::new("Cadenza probe")
        .map(|m| m.port_count())
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("jackd did not come up in 10 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok(server)
}

#[cfg(all(target_os = "linux", not(feature = "jack")))]
fn midi_router() -> Result<JackServer, String> {
    if std::path::Path::new("/dev/snd/seq").exists() {
        Ok(JackServer(None))
    } else {
        Err(
            "no ALSA sequencer (/dev/snd/seq) here; build with --features jack to test \
             through jackd -d dummy"
                .to_owned(),
        )
    }
}

/// A virtual keyboard plays into the app, which records it; the app's
/// virtual port "Cadenza" sends its playback to a listening "DAW".
#[cfg(target_os = "linux")]
fn router_round_trip() {
    use midir::os::unix::VirtualOutput as _;
    let dir = tempfile::tempdir().unwrap();
    let store = cadenza::app::SessionStore::at(dir.path().to_owned());
    // Desktop mode: the transport opens (silently where there is no sound
    // card), so playback reaches the MIDI output.
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| {
            CadenzaApp::with_store(&cc.egui_ctx, StartMode::Desktop, Some(store))
        });
    settle(&mut harness);

    let keyboard = midir::MidiOutput::new("Cadenza test").unwrap();
    let mut keys = keyboard.create_virtual("Test keys").unwrap();
    harness.state_mut().apply(Command::RefreshMidiPorts);
    let port = harness
        .state()
        .keyboard()
        .inputs
        .iter()
        .find(|name| name.contains("Test keys"))
        .cloned()
        .expect("the virtual keyboard is listed");
    harness.state_mut().apply(Command::MidiInput(Some(port)));
    harness.state_mut().apply(Command::Record(true));
    let run_for = |harness: &mut Harness<'static, CadenzaApp>, millis: u64| {
        let until = Instant::now() + Duration::from_millis(millis);
        while Instant::now() < until {
            harness.step();
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    keys.send(&[0x90, 122, 99]).unwrap();
    run_for(&mut harness, 400);
    keys.send(&[0x80, 122, 0]).unwrap();
    run_for(&mut harness, 100);
    harness.state_mut().apply(Command::Record(false));
    settle(&mut harness);
    let recorded = harness
        .state()
        .performance()
        .notes
        .iter()
        .find(|n| n.key == 122)
        .copied();
    assert_eq!(
        recorded.map(|n| n.velocity),
        Some(99),
        "{}",
        harness.state().status()
    );

    // A DAW listening to the virtual port hears the playback.
    harness.state_mut().apply(Command::MidiOutput(Some(
        cadenza::app::OutputChoice::Virtual,
    )));
    let (heard_tx, heard) = std::sync::mpsc::channel::<Vec<u8>>();
    let daw = midir::MidiInput::new("Cadenza test DAW").unwrap();
    let cadenza_port = daw
        .ports()
        .into_iter()
        .find(|p| daw.port_name(p).is_ok_and(|n| n.starts_with("Cadenza:")))
        .unwrap_or_else(|| {
            let names: Vec<String> = daw
                .ports()
                .iter()
                .filter_map(|p| daw.port_name(p).ok())
                .collect();
            panic!(
                "the virtual port Cadenza is not among {names:?}: {}",
                harness.state().status()
            )
        });
    let _listening = daw
        .connect(
            &cadenza_port,
            "daw",
            move |_, bytes, ()| {
                let _ = heard_tx.send(bytes.to_vec());
            },
            (),
        )
        .unwrap();
    harness.state_mut().apply(Command::Seek(0.0));
    harness.state_mut().apply(Command::Play);
    run_for(&mut harness, 1_500);
    let notes_on = heard.try_iter().filter(|m| m[0] & 0xF0 == 0x90).count();
    assert!(notes_on > 0, "nothing came out of the Cadenza port");

    // A DAW's own input port, chosen by name, gets the playback too.
    use midir::os::unix::VirtualInput as _;
    let (daw_tx, daw_heard) = std::sync::mpsc::channel::<Vec<u8>>();
    let _daw_port = midir::MidiInput::new("Cadenza test DAW 2")
        .unwrap()
        .create_virtual(
            "Test DAW in",
            move |_, bytes, ()| {
                let _ = daw_tx.send(bytes.to_vec());
            },
            (),
        )
        .unwrap();
    harness.state_mut().apply(Command::RefreshMidiPorts);
    let daw_port = harness
        .state()
        .keyboard()
        .outputs
        .iter()
        .find(|name| name.contains("Test DAW in"))
        .cloned()
        .expect("the DAW's port is listed");
    harness
        .state_mut()
        .apply(Command::MidiOutput(Some(cadenza::app::OutputChoice::Port(
            daw_port,
        ))));
    harness.state_mut().apply(Command::Seek(0.0));
    run_for(&mut harness, 1_000);
    let notes_on = daw_heard.try_iter().filter(|m| m[0] & 0xF0 == 0x90).count();
    assert!(
        notes_on > 0,
        "nothing reached the DAW's port: {}",
        harness.state().status()
    );

    // The keyboard goes away: the app says so and lets go of it.
    drop(keys);
    run_for(&mut harness, 1_500);
    let app = harness.state();
    assert!(app.status().contains("went away"), "{}", app.status());
    assert!(app.keyboard_port().is_none());
}
