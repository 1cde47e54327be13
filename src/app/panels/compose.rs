//! The composing controls: the key and scale, "in key", the pitch range,
//! the density; Fill, Harmonise, Lock, the lock brush, ghost notes and the
//! surprise lens.

use eframe::egui;

use super::super::{CadenzaApp, Command, ComposeSettings, Params, Tool};
use crate::limits;
use crate::music::{Key, Mode, Scale, pitch_class_name};
use crate::roll::{PITCH_COUNT, Pitch};

/// Key, scale, in key, range and density: they change `params`.
pub fn settings(ui: &mut egui::Ui, app: &CadenzaApp, params: &mut Params) {
    ui.separator();
    ui.heading("Compose");
    let estimated = app.composing.estimated_key();
    let compose = &mut params.compose;
    let heard = estimated.map_or_else(|| "no key heard".to_owned(), |key| key.to_string());
    ui.label(format!("Key of the music: {heard}"))
        .on_hover_text("Estimated from how long each pitch class sounds (Krumhansl–Schmuckler)");
    key_choice(ui, compose, estimated);
    ui.checkbox(&mut compose.in_key, "In key only")
        .on_hover_text("Generated notes use only the scale's pitches (locked notes stay)");
    ui.horizontal(|ui| {
        // Two fields the keyboard reaches (arrows step a semitone), besides
        // the handles on the keyboard strip.
        let (mut low, mut high) = compose.range;
        ui.label("Range").on_hover_text(
            "The pitches generated notes may use; drag the handles on the keyboard strip, \
             or these fields",
        );
        ui.add(pitch_field(&mut low, 0..=high))
            .on_hover_text("Lowest pitch");
        ui.add(pitch_field(&mut high, low..=PITCH_COUNT - 1))
            .on_hover_text("Highest pitch");
        compose.range = (low, high);
        if ui
            .add_enabled(
                compose.range != (0, PITCH_COUNT - 1),
                egui::Button::new("Full"),
            )
            .on_hover_text("Let generated notes use every pitch")
            .clicked()
        {
            compose.range = (0, PITCH_COUNT - 1);
        }
    });
    ui.horizontal(|ui| {
        let mut on = compose.density.is_some();
        ui.checkbox(&mut on, "Density")
            .on_hover_text("Steer generation towards this many sounding notes per step");
        let mut density = compose.density.unwrap_or(3.0);
        // Narrow enough for the panel: the checkbox names it.
        ui.spacing_mut().slider_width = 100.0;
        ui.add_enabled(
            on,
            egui::Slider::new(&mut density, 0.0..=limits::DENSITY.max.min(12.0))
                .step_by(0.25)
                .suffix(" /step"),
        )
        .on_hover_text("Sounding notes per step");
        compose.density = on.then_some(density);
    });
}

/// A roll row shown and typed as a pitch name (C4, F#5) or MIDI number.
fn pitch_field(row: &mut usize, range: std::ops::RangeInclusive<usize>) -> egui::DragValue<'_> {
    egui::DragValue::new(row)
        .range(range)
        .speed(0.2)
        .custom_formatter(|row, _| {
            Pitch::from_row(row.round().max(0.0) as usize).map_or_else(String::new, |p| p.name())
        })
        .custom_parser(|text| {
            crate::music::parse_pitch(text)
                .ok()
                .map(|pitch| pitch.row() as f64)
        })
}

/// The tonic and the mode: as heard, or chosen.
fn key_choice(ui: &mut egui::Ui, compose: &mut ComposeSettings, estimated: Option<Key>) {
    ui.horizontal(|ui| {
        let tonic_text = compose.scale.map_or_else(
            || "as heard".to_owned(),
            |s| pitch_class_name(s.tonic).to_owned(),
        );
        egui::ComboBox::from_id_salt("tonic")
            .selected_text(tonic_text)
            .width(70.0)
            .show_ui(ui, |ui| {
                if ui
                    .selectable_label(compose.scale.is_none(), "as heard")
                    .clicked()
                {
                    compose.scale = None;
                }
                for tonic in 0..12u8 {
                    let chosen = compose.scale.is_some_and(|s| s.tonic == tonic);
                    if ui
                        .selectable_label(chosen, pitch_class_name(tonic))
                        .clicked()
                    {
                        let mode = compose
                            .scale
                            .map(|s| s.mode)
                            .or(estimated.map(|k| k.scale().mode))
                            .unwrap_or(Mode::Major);
                        compose.scale = Some(Scale { tonic, mode });
                    }
                }
            })
            .response
            .on_hover_text("The key's tonic: as heard in the music, or one you choose");
        let mode = compose
            .scale
            .map(|s| s.mode)
            .or(estimated.map(|k| k.scale().mode));
        egui::ComboBox::from_id_salt("mode")
            .selected_text(mode.map_or("scale", Mode::name))
            .width(120.0)
            .show_ui(ui, |ui| {
                for choice in Mode::ALL {
                    if ui
                        .selectable_label(mode == Some(choice), choice.name())
                        .clicked()
                    {
                        let tonic = compose
                            .scale
                            .map(|s| s.tonic)
                            .or(estimated.map(|k| k.tonic))
                            .unwrap_or(0);
                        compose.scale = Some(Scale {
                            tonic,
                            mode: choice,
                        });
                    }
                }
            })
            .response
            .on_hover_text("The scale: its rows are shaded in the roll");
    });
}

/// Fill, Harmonise, Lock, the lock brush, ghost notes and the lens.
pub fn actions(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let selected = app.document.selection().is_some();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(selected, egui::Button::new("Fill (F)"))
            .on_hover_text(
                "Regenerate the selection from the music on both sides; variations appear \
                 as tabs and loop while you listen",
            )
            .on_disabled_hover_text("Select a span first: drag on the ruler, or Shift+drag")
            .clicked()
        {
            commands.push(Command::Fill);
        }
        if ui
            .add_enabled(selected, egui::Button::new("Harmonise (H)"))
            .on_hover_text("Lock the selected notes and fill the rest of the span around them")
            .on_disabled_hover_text("Select a melody first (Shift+drag over it)")
            .clicked()
        {
            commands.push(Command::Harmonise);
        }
        if ui
            .add_enabled(selected, egui::Button::new("Lock (L)"))
            .on_hover_text(
                "Lock the selected notes (unlock them when all are): they survive every \
                 fill and continuation",
            )
            .clicked()
        {
            commands.push(Command::ToggleLockSelection);
        }
    });
    if app.composing.focus().is_some()
        && ui
            .button("Discard fill (Esc)")
            .on_hover_text("Drop the fill being auditioned and go back to continuing")
            .clicked()
    {
        commands.push(Command::DiscardFill);
    }
    ui.horizontal(|ui| {
        let brush = app.view.tool == Tool::Lock;
        if ui
            .selectable_label(brush, "Lock brush (B)")
            .on_hover_text("Click or drag over notes to lock them; right-click unlocks one")
            .clicked()
        {
            commands.push(Command::SetTool(if brush {
                Tool::Draw
            } else {
                Tool::Lock
            }));
        }
        let mut ghosts = app.composing.ghost_notes();
        if ui
            .checkbox(&mut ghosts, "Ghost notes (N)")
            .on_hover_text(
                "After each edit, or when playback stops, the next steps appear as faint \
                 notes shaded by probability; Tab accepts them",
            )
            .changed()
        {
            commands.push(Command::ShowGhosts(ghosts));
        }
    });
    let mut lens = app.composing.lens();
    if ui
        .checkbox(&mut lens, "Surprise lens (U)")
        .on_hover_text(
            "Shade each note by how unlikely the model finds it: red notes surprise it \
             most, a quick way to spot a wrong note",
        )
        .changed()
    {
        commands.push(Command::ShowLens(lens));
    }
}
