//! The panels: notices and the restore offer, a top bar (files, transport,
//! zoom), the generation controls with the training and measuring panels,
//! the roll with its plot, and a status bar. Each draws from the app's
//! parts and returns [`Command`]s; none changes state.

mod compose;
mod controls;
mod measure;
mod midi;
mod parts;
mod plot;
mod top_bar;
mod training;

use eframe::egui;

use super::generation::range_rows;
use super::roll_view::{self, GeneratedView, RollViewInput};
use super::{CadenzaApp, Command, FileQuestion, Generation, Heard, Passage, Tool};

/// Draws the whole window for one frame.
pub fn show(ui: &mut egui::Ui, app: &mut CadenzaApp) -> Vec<Command> {
    let mut commands: Vec<Command> = accept_ghost_key(ui, app).into_iter().collect();
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
            let generated = generated_view(&app.generation);
            let compose = &app.generation.params.compose;
            let scale_rows = compose
                .scale_or(app.composing.estimated_key())
                .map_or(0, |scale| scale.row_mask());
            let heard = if app.composing.lens() {
                app.generation.heard()
            } else {
                None
            };
            let key = texture_key(app.shown_key, scale_rows, compose.range, heard);
            let input = RollViewInput {
                source: app.document.roll(),
                generated,
                key,
                seed_start: app.document.seed_start(),
                playhead: app.transport.playhead(),
                zoom: app.view.zoom,
                pitch_zoom: app.view.pitch_zoom,
                selection: app.document.selection(),
                performance: &app.performance,
                parts: &app.parts_view,
                locked: app.document.locked(),
                scale_rows,
                range: compose.range,
                ghost: if app.composing.ghost_notes() {
                    app.generation.ghost()
                } else {
                    None
                },
                heard,
                tool: app.view.tool,
                snap: app.view.snap,
            };
            commands.extend(roll_view::show(ui, &mut app.view, &input));
        });
        plot::show(ui, app);
    });
    path_prompt(ui, app, &mut commands);
    commands.extend(shortcuts(ui, app));
    commands
}

/// The continuation or fill shown, as the roll view draws it.
fn generated_view(generation: &Generation) -> Option<GeneratedView<'_>> {
    generation.result().map(|g| {
        let (replaces_to, rows) = match &g.passage {
            Passage::Fill { range, rows } => {
                (range.end, range_rows((rows.0, rows.1.saturating_sub(1))))
            }
            Passage::Continue { .. } => (usize::MAX, u128::MAX),
        };
        GeneratedView {
            from: g.first_step(),
            steps: g.shown().steps.as_slice(),
            replaces_to,
            rows,
        }
    })
}

/// What identifies the textures' content: whatever they show changes it.
fn texture_key(shown: u64, scale_rows: u128, range: (usize, usize), heard: Option<&Heard>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        shown,
        scale_rows,
        range,
        heard.map(|h| (h.sounding.as_ptr() as usize, h.sounding.len())),
    )
        .hash(&mut hasher);
    hasher.finish()
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
    // Ctrl+Shift+Z redoes; Ctrl+C, X, V copy, cut and paste, Ctrl+D
    // duplicates, Ctrl+A selects all.
    let command_keys = [
        (
            egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
            egui::Key::Z,
            Command::Redo,
        ),
        (egui::Modifiers::COMMAND, egui::Key::Z, Command::Undo),
        (
            egui::Modifiers::COMMAND,
            egui::Key::O,
            Command::Ask(FileQuestion::Open),
        ),
        (
            egui::Modifiers::COMMAND,
            egui::Key::S,
            Command::Ask(FileQuestion::SaveRoll),
        ),
        (
            egui::Modifiers::COMMAND,
            egui::Key::E,
            Command::Ask(FileQuestion::ExportWav),
        ),
        (egui::Modifiers::COMMAND, egui::Key::D, Command::Duplicate),
        (egui::Modifiers::COMMAND, egui::Key::A, Command::SelectAll),
    ];
    let text_focused = ui.ctx().egui_wants_keyboard_input();
    for (modifiers, key, command) in command_keys {
        // A text field keeps Ctrl+A for its own text.
        if text_focused && matches!(command, Command::SelectAll) {
            continue;
        }
        if ui.input_mut(|i| i.consume_key(modifiers, key)) {
            commands.push(command);
        }
    }
    if !text_focused {
        // A desktop turns Ctrl+C, X and V into clipboard events; the keys
        // count too, once.
        let (copy, cut, paste) = ui.input_mut(|i| {
            let mut found = (
                i.consume_key(egui::Modifiers::COMMAND, egui::Key::C),
                i.consume_key(egui::Modifiers::COMMAND, egui::Key::X),
                i.consume_key(egui::Modifiers::COMMAND, egui::Key::V),
            );
            for event in &i.events {
                match event {
                    egui::Event::Copy => found.0 = true,
                    egui::Event::Cut => found.1 = true,
                    egui::Event::Paste(_) => found.2 = true,
                    _ => {}
                }
            }
            found
        });
        for (pressed, command) in [
            (copy, Command::Copy { cut: false }),
            (cut, Command::Copy { cut: true }),
            (paste, Command::Paste),
        ] {
            if pressed {
                commands.push(command);
            }
        }
    }
    if text_focused {
        return commands;
    }
    commands.extend(plain_keys(ui, app));
    commands
}

/// Keys without a modifier (Shift aside). Space plays, G generates, F fills
/// the selection, H harmonises it, L locks it, K keeps, B switches to the
/// lock brush, N shows ghost notes and Tab accepts them, U turns the
/// surprise lens on; the arrows move the selection (Up/Down a semitone,
/// Shift an octave; Left/Right a snap length) or, with nothing selected,
/// the seed window; Delete deletes the selection, Escape drops a fill or
/// the selection; V shows the velocity lane, R records the keyboard, A
/// answers it.
fn plain_keys(ui: &mut egui::Ui, app: &CadenzaApp) -> Vec<Command> {
    let mut commands = Vec::new();
    let pressed = |key: egui::Key| ui.input(|i| i.key_pressed(key) && !i.modifiers.command);
    let shift = ui.input(|i| i.modifiers.shift);
    let seed = app.document.seed_start();
    let selected = app.document.selection().is_some();
    let octave = if shift { 12 } else { 1 };
    let filling = app.composing.focus().is_some();
    let brush = app.view.tool == Tool::Lock;
    let keys = [
        (
            egui::Key::Space,
            if app.transport.playhead().is_some() {
                Command::Pause
            } else {
                Command::Play
            },
        ),
        (egui::Key::G, Command::Generate),
        (egui::Key::F, Command::Fill),
        (egui::Key::H, Command::Harmonise),
        (egui::Key::L, Command::ToggleLockSelection),
        (egui::Key::K, Command::Keep),
        (
            egui::Key::B,
            Command::SetTool(if brush { Tool::Draw } else { Tool::Lock }),
        ),
        (
            egui::Key::N,
            Command::ShowGhosts(!app.composing.ghost_notes()),
        ),
        (egui::Key::U, Command::ShowLens(!app.composing.lens())),
        (
            egui::Key::V,
            Command::ShowVelocityLane(!app.parts_view.velocity_lane),
        ),
        (egui::Key::R, Command::Record(!app.keyboard.is_recording())),
        (egui::Key::A, Command::Answer(!app.keyboard.is_answering())),
        (
            egui::Key::ArrowLeft,
            if selected {
                Command::NudgeSelection { steps: -1, rows: 0 }
            } else {
                Command::SetSeed(seed.saturating_sub(1))
            },
        ),
        (
            egui::Key::ArrowRight,
            if selected {
                Command::NudgeSelection { steps: 1, rows: 0 }
            } else {
                Command::SetSeed(seed + 1)
            },
        ),
        (
            egui::Key::Escape,
            if filling {
                Command::DiscardFill
            } else {
                Command::Select(None)
            },
        ),
    ];
    for (key, command) in keys {
        if pressed(key) {
            commands.push(command);
        }
    }
    if selected {
        for (key, rows) in [
            (egui::Key::ArrowUp, octave),
            (egui::Key::ArrowDown, -octave),
        ] {
            if pressed(key) {
                commands.push(Command::NudgeSelection { steps: 0, rows });
            }
        }
        if pressed(egui::Key::Delete) || pressed(egui::Key::Backspace) {
            commands.push(Command::DeleteSelection);
        }
    }
    commands
}

/// Tab accepts the ghost notes while they show and no widget has the
/// keyboard: taken before the widgets are drawn, so focus does not move.
fn accept_ghost_key(ui: &mut egui::Ui, app: &CadenzaApp) -> Option<Command> {
    let shown = app.composing.ghost_notes() && app.generation.ghost().is_some();
    if !shown
        || ui.ctx().egui_wants_keyboard_input()
        || !ui.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Tab))
    {
        return None;
    }
    ui.ctx()
        .memory_mut(|m| m.move_focus(egui::FocusDirection::None));
    Some(Command::AcceptGhost)
}
