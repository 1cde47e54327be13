//! Composing in the app, driven as a user does with egui_kittest: fill a
//! selection, lock notes, harmonise, key and range, ghost notes, the lens,
//! editing notes, and opening the app on a file.

use cadenza::app::{CadenzaApp, Command, Selection, Snap, StartMode, Tool};
use cadenza::music::{Mode, Scale};
use cadenza::roll::{PITCH_COUNT, Pitch, RollNote};
use eframe::egui::{Event, Key, Modifiers, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

use crate::app_ui::{harness, settle};

type App = Harness<'static, CadenzaApp>;

/// Where the last frame drew the middle of a cell.
fn cell(harness: &App, row: usize, step: usize) -> Pos2 {
    harness.state().view().cell_on_screen(row, step).unwrap()
}

/// A press at `from`, a move to `to` and a release there, frame by frame.
fn drag(harness: &mut App, from: Pos2, to: Pos2) {
    harness.hover_at(from);
    harness.step();
    harness.drag_at(from);
    harness.step();
    let middle = Pos2::new((from.x + to.x) / 2.0, (from.y + to.y) / 2.0);
    harness.hover_at(middle);
    harness.step();
    harness.hover_at(to);
    harness.step();
    harness.drop_at(to);
    harness.step();
    settle(harness);
}

/// [`drag`] with Shift held.
fn shift_drag(harness: &mut App, from: Pos2, to: Pos2) {
    harness.event(Event::ModifiersChanged(Modifiers::SHIFT));
    drag(harness, from, to);
    harness.event(Event::ModifiersChanged(Modifiers::NONE));
    harness.step();
}

fn press(harness: &mut App, key: Key) {
    harness.key_press(key);
    settle(harness);
}

fn with_variations(harness: &mut App, variations: usize) {
    let mut params = *harness.state().params();
    params.variations = variations;
    harness.state_mut().apply(Command::ParamsChanged(params));
    settle(harness);
}

fn row_of(midi: u8) -> usize {
    Pitch::from_midi(midi).unwrap().row()
}

#[test]
fn a_span_dragged_on_the_ruler_fills_in_variations_that_keep_and_undo() {
    let mut harness = harness();
    with_variations(&mut harness, 3);
    let before = harness.state().document().roll().clone();
    let (from, to) = (
        harness.state().view().ruler_on_screen(32).unwrap(),
        harness.state().view().ruler_on_screen(47).unwrap(),
    );
    drag(&mut harness, from, to);
    assert_eq!(
        harness.state().document().selection(),
        Some(Selection {
            rows: (0, PITCH_COUNT),
            steps: (32, 48)
        })
    );
    press(&mut harness, Key::F);
    let app = harness.state();
    let generated = app.generation().result().expect("a fill");
    assert!(generated.is_fill(), "{}", app.status());
    assert_eq!(generated.continuations.len(), 3);
    // The default model, the composer, fills itself.
    assert_eq!(generated.filled_by, None);
    // Auditioning loops the span.
    assert_eq!(app.loop_region(), Some((32.0, 48.0)));
    // The shown roll changes inside the span only.
    for step in (0..before.steps()).filter(|s| !(32..48).contains(s)) {
        assert_eq!(
            app.display().sounding_mask(step),
            before.sounding_mask(step)
        );
    }

    // The second tab, then Keep.
    harness.query_all_by_label("2").next().unwrap().click();
    settle(&mut harness);
    let chosen = harness.state().generation().result().unwrap();
    assert_eq!(chosen.chosen, 1);
    let steps = chosen.shown().steps.clone();
    press(&mut harness, Key::K);
    let roll = harness.state().document().roll();
    assert_eq!(&roll.sounding_masks()[32..48], &steps[..]);
    assert_eq!(&roll.sounding_masks()[..32], &before.sounding_masks()[..32]);
    assert_eq!(&roll.sounding_masks()[48..], &before.sounding_masks()[48..]);
    assert!(
        harness
            .state()
            .generation()
            .result()
            .is_none_or(|g| !g.is_fill())
    );

    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    settle(&mut harness);
    assert_eq!(
        harness.state().document().roll().sounding_masks(),
        before.sounding_masks()
    );

    // The roll LSTM only continues: the composer fills for it.
    harness
        .state_mut()
        .apply(Command::UseShippedModel("roll".to_owned()));
    settle(&mut harness);
    press(&mut harness, Key::F);
    let generated = harness.state().generation().result().unwrap();
    assert!(generated.is_fill());
    assert_eq!(generated.filled_by, Some("composer"));
    assert!(harness.state().status().contains("with the composer"));
}

#[test]
fn a_locked_note_survives_a_fill_and_keeps_its_lock() {
    let mut harness = harness();
    with_variations(&mut harness, 4);
    let note = harness
        .state()
        .document()
        .roll()
        .notes()
        .into_iter()
        .find(|n| (36..44).contains(&n.start))
        .unwrap();
    let row = note.pitch.row();
    // Click the note to select it, L locks it.
    let at = cell(&harness, row, note.start);
    harness.hover_at(at);
    harness.step();
    harness.drag_at(at);
    harness.step();
    harness.drop_at(at);
    settle(&mut harness);
    assert_eq!(
        harness.state().document().selection().map(|s| s.rows),
        Some((row, row + 1))
    );
    press(&mut harness, Key::L);
    assert!(harness.state().document().is_locked(note.start, row));

    harness.state_mut().apply(Command::Select(Some(Selection {
        rows: (0, PITCH_COUNT),
        steps: (32, 48),
    })));
    press(&mut harness, Key::F);
    let generated = harness.state().generation().result().unwrap();
    assert!(generated.is_fill());
    for continuation in &generated.continuations {
        for step in note.start..note.end().min(48) {
            assert_ne!(continuation.steps[step - 32] >> row & 1, 0, "step {step}");
        }
    }
    press(&mut harness, Key::K);
    let document = harness.state().document();
    assert!(document.roll().is_sounding(note.start, note.pitch));
    assert!(document.is_locked(note.start, row));
}

#[test]
fn harmonise_keeps_the_melody_and_fills_around_it() {
    let mut harness = harness();
    // Clear two bars, then draw a melody there.
    harness.state_mut().apply(Command::Select(Some(Selection {
        rows: (0, PITCH_COUNT),
        steps: (64, 96),
    })));
    press(&mut harness, Key::Delete);
    let melody = [(72u8, 64usize), (76, 72), (79, 80), (84, 88)];
    for (midi, start) in melody {
        harness.state_mut().apply(Command::DrawNote {
            row: row_of(midi),
            start,
            end: start + 8,
        });
    }
    settle(&mut harness);
    // Shift+drag around the melody selects it.
    let (from, to) = (
        cell(&harness, row_of(84), 64),
        cell(&harness, row_of(72), 95),
    );
    shift_drag(&mut harness, from, to);
    let selection = harness.state().document().selection().unwrap();
    assert_eq!(selection.steps, (64, 96));
    assert_eq!(selection.rows, (row_of(72), row_of(84) + 1));
    press(&mut harness, Key::H);
    let app = harness.state();
    let generated = app.generation().result().expect("a fill");
    let melody_cells: u32 = 4 * 8;
    let mut added = 0;
    for (k, &mask) in generated.shown().steps.iter().enumerate() {
        let step = 64 + k;
        let (midi, _) = melody[k / 8];
        assert_ne!(mask >> row_of(midi) & 1, 0, "the melody at step {step}");
        added += mask.count_ones();
    }
    assert!(
        added > melody_cells,
        "nothing around the melody: {}",
        app.status()
    );
    press(&mut harness, Key::K);
    let document = harness.state().document();
    for (midi, start) in melody {
        assert!(document.is_locked(start, row_of(midi)));
        assert!(
            document
                .roll()
                .is_onset(start, Pitch::from_midi(midi).unwrap())
        );
    }
}

#[test]
fn in_key_keeps_generated_notes_in_the_scale_a_fill_too() {
    let mut harness = harness();
    // The prelude is in C major: the estimate says so.
    let key = harness.state().composing().estimated_key().unwrap();
    assert_eq!(key.to_string(), "C major");
    // Choose E harmonic minor, a scale the music is not in, and "in key".
    let scale = Scale {
        tonic: 4,
        mode: Mode::HarmonicMinor,
    };
    let mut params = *harness.state().params();
    params.compose.scale = Some(scale);
    params.variations = 4;
    harness.state_mut().apply(Command::ParamsChanged(params));
    settle(&mut harness);
    harness.get_by_label("In key only").click();
    settle(&mut harness);
    let app = harness.state();
    assert!(app.params().compose.in_key);
    let allowed = scale.row_mask();
    let generated = app.generation().result().unwrap();
    for continuation in &generated.continuations {
        for mask in &continuation.steps {
            assert_eq!(mask & !allowed, 0, "a note outside {scale}");
        }
    }
    // And a fill obeys it too.
    harness.state_mut().apply(Command::Select(Some(Selection {
        rows: (0, PITCH_COUNT),
        steps: (20, 36),
    })));
    press(&mut harness, Key::F);
    for continuation in &harness.state().generation().result().unwrap().continuations {
        for mask in &continuation.steps {
            assert_eq!(mask & !allowed, 0);
        }
    }
}

#[test]
fn the_range_handles_bound_generated_notes() {
    let mut harness = harness();
    // Every pitch in view, the handles at the top and bottom.
    harness.state_mut().apply(Command::Zoom {
        steps: 6.0,
        pitches: 1.0,
    });
    harness.step();
    harness.step();
    let high = harness.state().params().compose.range.1;
    assert_eq!(high, PITCH_COUNT - 1);
    // Drag the high handle down to C5 and the low one up to C4.
    let (c4, c5) = (row_of(60), row_of(72));
    let view = harness.state().view();
    let (from, to) = (
        view.range_handle_on_screen((0, high), true).unwrap(),
        cell(&harness, c5, 0),
    );
    drag(
        &mut harness,
        Pos2::new(from.x, from.y + 1.0),
        Pos2::new(from.x, to.y),
    );
    let range = harness.state().params().compose.range;
    assert_eq!(range.1, c5, "{range:?}");
    // A drag anywhere on the strip moves the nearer end: from the lowest
    // octave up to C4.
    let strip_x = from.x;
    let (from, to) = (cell(&harness, 6, 0), cell(&harness, c4, 0));
    drag(
        &mut harness,
        Pos2::new(strip_x, from.y),
        Pos2::new(strip_x, to.y),
    );
    let range = harness.state().params().compose.range;
    assert_eq!(range, (c4, c5));
    let allowed = (c4..=c5).fold(0u128, |mask, row| mask | 1 << row);
    let generated = harness.state().generation().result().unwrap();
    assert!(generated.continuations[0].steps.iter().any(|m| *m != 0));
    for mask in &generated.continuations[0].steps {
        assert_eq!(mask & !allowed, 0);
    }
}

#[test]
fn ghost_notes_follow_an_edit_and_tab_accepts_them() {
    let mut harness = harness();
    // A quiet stretch to suggest into: the roll after step 64 is cleared.
    let steps = harness.state().document().roll().steps();
    harness.state_mut().apply(Command::Select(Some(Selection {
        rows: (0, PITCH_COUNT),
        steps: (64, steps),
    })));
    press(&mut harness, Key::Delete);
    press(&mut harness, Key::N);
    assert!(harness.state().composing().ghost_notes());
    harness.state_mut().apply(Command::DrawNote {
        row: row_of(67),
        start: 60,
        end: 64,
    });
    settle(&mut harness);
    let app = harness.state();
    let ghost = app.generation().ghost().expect("ghost notes");
    assert_eq!(ghost.first_step, 64);
    let suggested: u32 = ghost.cells.iter().map(|m| m.count_ones()).sum();
    assert!(suggested > 0, "{}", app.status());
    let cells = ghost.cells.clone();
    let notes = app.source_note_count();
    harness.key_press(Key::Tab);
    settle(&mut harness);
    let app = harness.state();
    for (k, mask) in cells.iter().enumerate() {
        assert_eq!(app.document().roll().sounding_mask(64 + k) & mask, *mask);
    }
    assert!(app.source_note_count() > notes);
    // The next suggestion follows on from the accepted ones.
    let next = app.generation().ghost().expect("the next ghost notes");
    assert_eq!(next.first_step, 64 + cells.len());
}

#[test]
fn the_surprise_lens_reads_every_note_and_a_wrong_note_stands_out() {
    let mut harness = harness();
    // C# in a C major prelude, where nothing else sounds.
    harness.state_mut().apply(Command::DrawNote {
        row: row_of(85),
        start: 40,
        end: 42,
    });
    press(&mut harness, Key::U);
    let app = harness.state();
    let heard = app.generation().heard().expect("the lens's reading");
    assert_eq!(heard.steps, app.document().roll().sounding_masks());
    let cells = app.document().roll().sounding_cells();
    assert_eq!(heard.sounding.len(), cells);
    let mut surprise: Vec<f32> = heard.surprise().collect();
    // The wrong note's first cell: its place among the sounding cells.
    let index = app.document().roll().sounding_masks()[..40]
        .iter()
        .map(|m| m.count_ones() as usize)
        .sum::<usize>()
        + (app.document().roll().sounding_mask(40) & ((1u128 << row_of(85)) - 1)).count_ones()
            as usize;
    let wrong = surprise[index];
    surprise.sort_by(f32::total_cmp);
    let median = surprise[surprise.len() / 2];
    assert!(
        wrong > median + 2.0,
        "wrong note {wrong} nats, median {median}"
    );
    // Another model reads the roll again.
    let before = harness
        .state()
        .generation()
        .heard()
        .unwrap()
        .sounding
        .clone();
    harness
        .state_mut()
        .apply(Command::UseShippedModel("roll".to_owned()));
    settle(&mut harness);
    let again = harness
        .state()
        .generation()
        .heard()
        .expect("the new model's reading");
    assert_eq!(again.sounding.len(), before.len());
    assert_ne!(again.sounding, before);
    press(&mut harness, Key::U);
    assert!(harness.state().generation().heard().is_none());
}

#[test]
fn notes_move_resize_copy_paste_duplicate_and_transpose() {
    let mut harness = harness();
    // Just above the music, where the view shows no note.
    let (_, highest) = harness.state().document().roll().pitch_range().unwrap();
    let row = highest.row() + 1;
    let midi = highest.midi() + 1;
    // Draw a note high above the music, then drag it two steps on and up a
    // tone.
    let (from, to) = (cell(&harness, row, 10), cell(&harness, row, 13));
    drag(&mut harness, from, to);
    let note = RollNote {
        start: 10,
        pitch: Pitch::from_midi(midi).unwrap(),
        len: 4,
    };
    assert_eq!(harness.state().document().note_at(row, 12), Some(note));
    let (from, to) = (cell(&harness, row, 11), cell(&harness, row + 2, 13));
    drag(&mut harness, from, to);
    let moved = RollNote {
        start: 12,
        pitch: Pitch::from_midi(midi + 2).unwrap(),
        ..note
    };
    let document = harness.state().document();
    assert_eq!(document.note_at(row + 2, 12), Some(moved));
    assert_eq!(document.note_at(row, 11), None);

    // Drag its end two steps out.
    let end = harness
        .state()
        .view()
        .cell_on_screen(row + 2, 15)
        .map(|p| Pos2::new(p.x + 2.0, p.y))
        .unwrap();
    let to = cell(&harness, row + 2, 17);
    drag(&mut harness, end, to);
    assert_eq!(
        harness
            .state()
            .document()
            .note_at(row + 2, 12)
            .map(|n| n.len),
        Some(6)
    );

    // Click selects it; copy, paste where the mouse is, duplicate.
    let at = cell(&harness, row + 2, 13);
    harness.drag_at(at);
    harness.step();
    harness.drop_at(at);
    settle(&mut harness);
    harness.key_press_modifiers(Modifiers::COMMAND, Key::C);
    settle(&mut harness);
    harness.hover_at(cell(&harness, row + 2, 40));
    harness.step();
    harness.key_press_modifiers(Modifiers::COMMAND, Key::V);
    settle(&mut harness);
    let document = harness.state().document();
    assert_eq!(
        document.note_at(row + 2, 41).map(|n| (n.start, n.len)),
        Some((40, 6))
    );
    assert_eq!(document.selection().map(|s| s.steps), Some((40, 46)));
    harness.key_press_modifiers(Modifiers::COMMAND, Key::D);
    settle(&mut harness);
    assert_eq!(
        harness
            .state()
            .document()
            .note_at(row + 2, 47)
            .map(|n| n.start),
        Some(46)
    );
    // Up arrow: a semitone; Shift+Down: an octave down.
    press(&mut harness, Key::ArrowUp);
    harness.key_press_modifiers(Modifiers::SHIFT, Key::ArrowDown);
    settle(&mut harness);
    let document = harness.state().document();
    assert_eq!(
        document.note_at(row + 3 - 12, 46).map(|n| n.start),
        Some(46)
    );
    assert_eq!(document.note_at(row + 2, 46), None);

    // Ctrl+A selects everything.
    harness.key_press_modifiers(Modifiers::COMMAND, Key::A);
    settle(&mut harness);
    let steps = harness.state().document().roll().steps();
    assert_eq!(
        harness.state().document().selection(),
        Some(Selection {
            rows: (0, PITCH_COUNT),
            steps: (0, steps)
        })
    );
}

#[test]
fn the_app_opens_on_a_file_named_in_its_title_and_fits_its_pitches() {
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/chorale-bwv1.6.mid");
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(|cc| CadenzaApp::open_on(&cc.egui_ctx, StartMode::Headless, &file));
    settle(&mut harness);
    let app = harness.state();
    assert_eq!(app.document().name(), "chorale-bwv1.6.mid");
    assert_eq!(app.window_title(), "chorale-bwv1.6.mid — Cadenza");
    // A chorale spans about three octaves: the view zooms to it.
    assert!(app.view().pitch_zoom > 2.0, "{}", app.view().pitch_zoom);
    let (low, high) = app.document().roll().pitch_range().unwrap();
    let top = app.view().cell_on_screen(high.row(), 0).unwrap();
    let bottom = app.view().cell_on_screen(low.row(), 0).unwrap();
    assert!(top.y > 40.0 && bottom.y < 700.0, "{top:?} {bottom:?}");
    harness.state_mut().apply(Command::DrawNote {
        row: row_of(90),
        start: 2,
        end: 3,
    });
    settle(&mut harness);
    assert_eq!(
        harness.state().window_title(),
        "chorale-bwv1.6.mid* — Cadenza"
    );

    // A file that cannot be read leaves the demo and says why.
    let missing = std::path::Path::new("/nonexistent/song.mid");
    let harness = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(|cc| CadenzaApp::open_on(&cc.egui_ctx, StartMode::Headless, missing));
    assert!(
        harness.state().notices()[0].contains("cannot open /nonexistent/song.mid"),
        "{:?}",
        harness.state().notices()
    );
}

#[test]
fn the_lock_brush_locks_what_it_passes_over_and_right_click_unlocks() {
    let mut harness = harness();
    press(&mut harness, Key::B);
    assert_eq!(harness.state().view().tool, Tool::Lock);
    // Two notes of the prelude's first bars, on one pitch.
    let roll = harness.state().document().roll().clone();
    let notes: Vec<RollNote> = roll.notes().into_iter().filter(|n| n.start < 40).collect();
    let row = notes[0].pitch.row();
    let on_row: Vec<&RollNote> = notes.iter().filter(|n| n.pitch.row() == row).collect();
    assert!(on_row.len() >= 2);
    let (first, last) = (on_row[0], on_row[on_row.len() - 1]);
    let (from, to) = (
        cell(&harness, row, first.start),
        cell(&harness, row, last.start),
    );
    drag(&mut harness, from, to);
    for note in &on_row {
        assert!(
            harness.state().document().is_locked(note.start, row),
            "{note:?}"
        );
    }
    let at = cell(&harness, row, first.start);
    harness.hover_at(at);
    harness.step();
    harness.event(Event::PointerButton {
        pos: at,
        button: eframe::egui::PointerButton::Secondary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    harness.step();
    harness.event(Event::PointerButton {
        pos: at,
        button: eframe::egui::PointerButton::Secondary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    settle(&mut harness);
    assert!(!harness.state().document().is_locked(first.start, row));
    assert!(harness.state().document().is_locked(last.start, row));
    // Back to drawing; the locks stay.
    press(&mut harness, Key::B);
    assert_eq!(harness.state().view().tool, Tool::Draw);
}

#[test]
fn with_live_on_a_control_refills_and_escape_goes_back_to_continuing() {
    let mut harness = harness();
    harness.state_mut().apply(Command::Select(Some(Selection {
        rows: (0, PITCH_COUNT),
        steps: (16, 48),
    })));
    press(&mut harness, Key::F);
    let first = harness
        .state()
        .generation()
        .result()
        .unwrap()
        .shown()
        .clone();
    let mut params = *harness.state().params();
    assert!(params.live);
    params.rule.temperature = 2.0;
    harness.state_mut().apply(Command::ParamsChanged(params));
    settle(&mut harness);
    let app = harness.state();
    let again = app.generation().result().unwrap();
    assert!(
        again.is_fill() && again.first_step() == 16,
        "{}",
        app.status()
    );
    assert_eq!(again.shown().steps.len(), 32);
    assert_ne!(again.shown().steps, first.steps);
    press(&mut harness, Key::Escape);
    let app = harness.state();
    assert!(app.composing().focus().is_none());
    let continued = app.generation().result().unwrap();
    assert!(!continued.is_fill());
    assert_eq!(continued.first_step(), app.seed_start() + 9);
}

#[test]
fn composing_settings_come_back_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = crate::app_ui::harness_with_store(dir.path());
    let mut params = *harness.state().params();
    params.compose.in_key = true;
    params.compose.range = (row_of(48), row_of(84));
    params.compose.density = Some(2.5);
    params.compose.scale = Some(Scale {
        tonic: 2,
        mode: Mode::Dorian,
    });
    harness.state_mut().apply(Command::ParamsChanged(params));
    harness.state_mut().apply(Command::SetSnap(Snap::Beat));
    harness.state_mut().apply(Command::ShowGhosts(true));
    harness.state_mut().apply(Command::ShowLens(true));
    settle(&mut harness);
    harness.state_mut().autosave_now();
    drop(harness);
    let harness = crate::app_ui::harness_with_store(dir.path());
    let app = harness.state();
    assert_eq!(app.params().compose, params.compose);
    assert_eq!(app.view().snap, Snap::Beat);
    assert!(app.composing().ghost_notes() && app.composing().lens());
}

#[test]
fn ghost_notes_appear_where_playback_stops() {
    // A desktop start: without a sound card the playhead runs on a silent
    // clock.
    let mut harness = Harness::builder()
        .with_size(eframe::egui::vec2(1280.0, 800.0))
        .build_eframe(|cc| CadenzaApp::with_store(&cc.egui_ctx, StartMode::Desktop, None));
    settle(&mut harness);
    press(&mut harness, Key::N);
    harness.state_mut().apply(Command::Seek(40.0));
    harness.state_mut().apply(Command::Play);
    harness.step();
    std::thread::sleep(std::time::Duration::from_millis(300));
    harness.step();
    let Some(playing) = harness.state().playing_position() else {
        eprintln!(
            "SKIPPED: no playhead without a sound output here ({})",
            harness.state().status()
        );
        return;
    };
    assert!(playing >= 40.0);
    harness.state_mut().apply(Command::Stop);
    // The audio thread takes the stop in its own time.
    let started = std::time::Instant::now();
    while harness.state().playing_position().is_some()
        && started.elapsed() < std::time::Duration::from_secs(5)
    {
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    harness.step();
    settle(&mut harness);
    let ghost = harness.state().generation().ghost().expect("ghost notes");
    assert!(
        (40..=60).contains(&ghost.first_step),
        "{} after playing from 40",
        ghost.first_step
    );
}

#[test]
fn a_locked_note_sounds_in_every_continuation_and_density_steers_them() {
    let mut harness = harness();
    with_variations(&mut harness, 4);
    // A note after the seed window, in the continuation's steps: locked, it
    // sounds in every variation.
    let row = row_of(77);
    harness.state_mut().apply(Command::DrawNote {
        row,
        start: 20,
        end: 24,
    });
    harness.state_mut().apply(Command::LockAt {
        row,
        step: 21,
        lock: true,
    });
    harness.state_mut().apply(Command::Generate);
    settle(&mut harness);
    let generated = harness.state().generation().result().unwrap();
    assert_eq!(generated.first_step(), 9);
    // The demo has an F5 from step 23, so the drawn note keeps steps 20..23
    // and the lock takes those; step 23 is the model's to decide.
    let document = harness.state().document();
    let locked: Vec<usize> = (9..9 + 106)
        .filter(|&step| document.is_locked(step, row))
        .collect();
    assert_eq!(locked, [20, 21, 22]);
    for continuation in &generated.continuations {
        for &step in &locked {
            assert_ne!(continuation.steps[step - 9] >> row & 1, 0, "step {step}");
        }
    }

    // Density: one note per step against six.
    let notes_per_step = |harness: &App| {
        let generated = harness.state().generation().result().unwrap();
        let cells: u32 = generated
            .continuations
            .iter()
            .flat_map(|c| &c.steps)
            .map(|m| m.count_ones())
            .sum();
        f64::from(cells) / (generated.continuations.len() * 106) as f64
    };
    let mut params = *harness.state().params();
    params.compose.density = Some(1.0);
    harness.state_mut().apply(Command::ParamsChanged(params));
    settle(&mut harness);
    let sparse = notes_per_step(&harness);
    params.compose.density = Some(6.0);
    harness.state_mut().apply(Command::ParamsChanged(params));
    settle(&mut harness);
    let dense = notes_per_step(&harness);
    assert!(
        sparse < 1.6 && dense > 4.5,
        "{sparse:.2} and {dense:.2} notes per step"
    );
}

#[test]
fn a_moved_note_keeps_its_part_and_velocity() {
    let mut harness = harness();
    crate::app_ui::open(
        &mut harness,
        &crate::app_ui::studio_file("redfarn_be_sharp_boogie_band.mid"),
    );
    let app = harness.state();
    // A bass note (channel 2) the file played, with its own velocity.
    let bass = app
        .performance()
        .parts
        .iter()
        .position(|p| p.channel == 1)
        .unwrap() as u16;
    let played = *app
        .performance()
        .notes
        .iter()
        .find(|n| n.part == bass && n.in_roll && n.start >= 16)
        .unwrap();
    let row = Pitch::from_midi(played.key).unwrap().row();
    let note = app.document().note_at(row, played.start).unwrap();
    // Up by octaves to where nothing sounds over the note's steps.
    let roll = app.document().roll();
    let up = (1..4)
        .map(|octaves| octaves * 12)
        .find(|&up| {
            (note.start..note.end() + 2).all(|step| roll.sounding_mask(step) >> (row + up) & 1 == 0)
        })
        .unwrap();
    harness.state_mut().apply(Command::MoveNotes {
        notes: vec![note],
        steps: 2,
        rows: up as isize,
    });
    settle(&mut harness);
    let key = played.key + up as u8;
    let moved = harness
        .state()
        .performance()
        .notes
        .iter()
        .find(|n| n.start == played.start + 2 && n.key == key && n.part == played.part)
        .copied()
        .expect("the moved note, in its part");
    assert_eq!(
        (moved.velocity, moved.program, moved.in_roll),
        (played.velocity, played.program, true)
    );
}
