//! The panels: notices and the restore offer, a top bar (files, transport,
//! zoom), the generation controls with the training and measuring panels,
//! the roll with its plot, and a status bar. Each draws from the app's
//! parts and returns [`Command`]s; none changes state.

mod controls;
mod measure;
mod midi;
mod parts;
mod plot;
mod top_bar;
mod training;

use eframe::egui;

use super::roll_view::{self, RollViewInput};
use super::{CadenzaApp, Command, FileQuestion};

/// Draws the whole window for one frame.
pub fn show(ui: &mut egui::Ui, app: &mut CadenzaApp) -> Vec<Command> {
    let mut commands = Vec::new();
    notices(ui, app, &mut commands);
    egui::Panel::top("top-bar").show(ui, |ui| top_bar::show(ui, app, &mut commands));
    egui::Panel::bottom("status-bar").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(&app.status);
            ui.separator();
            ui.label(
                egui::RichText::new(format!(
                    "{} · {} · {}",
                    app.document.name(),
                    app.generation.model_name(),
                    app.generation.device_label()
                ))
                .weak(),
            );
        });
    });
    egui::Panel::left("controls")
        .resizable(false)
        .exact_size(260.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                controls::show(ui, app, &mut commands);
                ui.separator();
                egui::CollapsingHeader::new(format!("Parts ({})", app.performance.parts.len()))
                    .default_open(true)
                    .show(ui, |ui| parts::show(ui, app, &mut commands));
                egui::CollapsingHeader::new("MIDI keyboard and DAW")
                    .default_open(false)
                    .show(ui, |ui| midi::show(ui, app, &mut commands));
                egui::CollapsingHeader::new("Train a model")
                    .default_open(false)
                    .show(ui, |ui| training::show(ui, app, &mut commands));
                egui::CollapsingHeader::new("Measure the model")
                    .default_open(false)
                    .show(ui, |ui| measure::show(ui, app, &mut commands));
            });
        });
    egui::CentralPanel::default().show(ui, |ui| {
        let plot_height = 150.0;
        let roll_height = (ui.available_height() - plot_height - 12.0).max(120.0);
        ui.allocate_ui(egui::Vec2::new(ui.available_width(), roll_height), |ui| {
            let generated = app
                .generation
                .result()
                .map(|g| (g.first_step(), g.shown().steps.as_slice()));
            let input = RollViewInput {
                source: app.document.roll(),
                generated,
                key: app.shown_key,
                seed_start: app.document.seed_start(),
                playhead: app.transport.playhead(),
                zoom: app.view.zoom,
                pitch_zoom: app.view.pitch_zoom,
                selection: app.document.selection(),
                performance: &app.performance,
                parts: &app.parts_view,
            };
            commands.extend(roll_view::show(ui, &mut app.view.textures, &input));
        });
        plot::show(ui, app);
    });
    path_prompt(ui, app, &mut commands);
    commands.extend(shortcuts(ui, app));
    commands
}

/// The restore offer after an unclean exit, and notes about settings or an
/// autosave that loading had to adjust.
fn notices(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    if let Some(offer) = app.session.restore_offer() {
        egui::Panel::top("restore").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(format!(
                    "Cadenza did not close cleanly last time. Restore that work ({}, {} notes)?",
                    offer.state.source_name,
                    offer.roll.note_count()
                ));
                if ui.button("Restore").clicked() {
                    commands.push(Command::RestoreAutosave);
                }
                if ui.button("Discard").clicked() {
                    commands.push(Command::DiscardAutosave);
                }
            });
        });
    }
    if !app.session.notices.is_empty() {
        egui::Panel::top("notices").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.vertical(|ui| {
                    for notice in &app.session.notices {
                        ui.label(egui::RichText::new(notice).color(ui.visuals().warn_fg_color));
                    }
                });
                if ui.button("Dismiss").clicked() {
                    commands.push(Command::DismissNotices);
                }
            });
        });
    }
}

/// Where no file dialog opens: a small window that takes a typed path and
/// says why, pointing to drag-and-drop.
fn path_prompt(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let Some(prompt) = &app.prompt else {
        return;
    };
    let mut text = prompt.text.clone();
    egui::Window::new(prompt.question.title())
        .collapsible(false)
        .resizable(false)
        .show(ui.ctx(), |ui| {
            if let Some(reason) = app.dialogs.problem() {
                ui.label(egui::RichText::new(reason).weak());
            }
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut text)
                        .hint_text("/path/to/file")
                        .desired_width(360.0),
                )
                .labelled_by(ui.label("Path").id);
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.horizontal(|ui| {
                if ui.button("OK").clicked() || entered {
                    commands.push(Command::AnswerPrompt(true));
                }
                if ui.button("Cancel").clicked() {
                    commands.push(Command::AnswerPrompt(false));
                }
            });
        });
    if text != prompt.text {
        commands.insert(0, Command::PromptChanged(text));
    }
}

/// Keyboard shortcuts.
fn shortcuts(ui: &mut egui::Ui, app: &CadenzaApp) -> Vec<Command> {
    let mut commands = Vec::new();
    // Ctrl+O opens, Ctrl+S saves MIDI, Ctrl+E exports audio, Ctrl+Z undoes,
    // Ctrl+Shift+Z redoes.
    let (open, save, export, redo, undo) = ui.input_mut(|i| {
        (
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::O),
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::S),
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::E),
            i.consume_key(
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                egui::Key::Z,
            ),
            i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z),
        )
    });
    for (pressed, command) in [
        (undo, Command::Undo),
        (redo, Command::Redo),
        (open, Command::Ask(FileQuestion::Open)),
        (save, Command::Ask(FileQuestion::SaveRoll)),
        (export, Command::Ask(FileQuestion::ExportWav)),
    ] {
        if pressed {
            commands.push(command);
        }
    }
    if ui.ctx().egui_wants_keyboard_input() {
        return commands;
    }
    // Space plays, G generates, arrows move the seed window, Delete deletes
    // the selection, Escape drops it, V shows the velocity lane, R records
    // the keyboard, A answers it.
    let (space, g, v, r, a, left, right, delete, escape) = ui.input(|i| {
        (
            i.key_pressed(egui::Key::Space),
            i.key_pressed(egui::Key::G),
            i.key_pressed(egui::Key::V),
            i.key_pressed(egui::Key::R),
            i.key_pressed(egui::Key::A),
            i.key_pressed(egui::Key::ArrowLeft),
            i.key_pressed(egui::Key::ArrowRight),
            i.key_pressed(egui::Key::Delete) || i.key_pressed(egui::Key::Backspace),
            i.key_pressed(egui::Key::Escape),
        )
    });
    let seed = app.document.seed_start();
    for (pressed, command) in [
        (
            space,
            if app.transport.playhead().is_some() {
                Command::Pause
            } else {
                Command::Play
            },
        ),
        (g, Command::Generate),
        (v, Command::ShowVelocityLane(!app.parts_view.velocity_lane)),
        (r, Command::Record(!app.keyboard.is_recording())),
        (a, Command::Answer(!app.keyboard.is_answering())),
        (left, Command::SetSeed(seed.saturating_sub(1))),
        (right, Command::SetSeed(seed + 1)),
        (
            delete && app.document.selection().is_some(),
            Command::DeleteSelection,
        ),
        (escape, Command::Select(None)),
    ] {
        if pressed {
            commands.push(command);
        }
    }
    commands
}
