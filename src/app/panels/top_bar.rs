//! The top bar: files, the model menu, the transport and the zoom.

use eframe::egui;

use super::super::{CadenzaApp, Command, FileQuestion, Snap};
use crate::assets::{DEFAULT_MODEL, SHIPPED_MODELS};
use crate::gm::program_name;
use crate::limits;

pub fn show(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        files(ui, app, commands);
        ui.separator();
        transport(ui, app, commands);
        ui.separator();
        zoom(ui, app, commands);
    });
}

/// A button that asks a file question; without dialogs it says why on
/// hover (the click then opens the typed-path prompt).
fn ask_button(
    ui: &mut egui::Ui,
    app: &CadenzaApp,
    label: &str,
    question: FileQuestion,
    commands: &mut Vec<Command>,
) {
    let mut response = ui.button(label);
    if let Some(reason) = app.dialogs.problem() {
        response = response.on_hover_text(reason);
    }
    if response.clicked() {
        commands.push(Command::Ask(question));
    }
}

fn files(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    ask_button(ui, app, "Open...", FileQuestion::Open, commands);
    let recent = app.session.recent();
    ui.add_enabled_ui(!recent.is_empty(), |ui| {
        ui.menu_button("Recent", |ui| {
            for path in recent {
                let name = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                if ui
                    .button(name)
                    .on_hover_text(path.display().to_string())
                    .clicked()
                {
                    commands.push(Command::Open(path.clone()));
                }
            }
        });
    });
    model_menu(ui, app, commands);
    ask_button(ui, app, "Save...", FileQuestion::SaveRoll, commands);
    ask_button(ui, app, "Export WAV...", FileQuestion::ExportWav, commands);
}

/// The shipped models, one click each, and any model file.
fn model_menu(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let name = app.model_name();
    ui.menu_button("Model", |ui| {
        for shipped in SHIPPED_MODELS {
            let current = name.starts_with(shipped.name) && name.ends_with("(shipped)");
            let label = if shipped.name == DEFAULT_MODEL {
                format!("{} (default)", shipped.name)
            } else {
                shipped.name.to_owned()
            };
            if ui
                .selectable_label(current, label)
                .on_hover_text(shipped.description)
                .clicked()
            {
                commands.push(Command::UseShippedModel(shipped.name.to_owned()));
                ui.close();
            }
        }
        ui.separator();
        if ui.button("Model file...").clicked() {
            ui.close();
            commands.push(Command::Ask(FileQuestion::OpenModel));
        }
    })
    .response
    .on_hover_text(format!("generating with {name}"));
}

fn transport(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let problem = app.transport.problem();
    ui.add_enabled_ui(problem.is_none(), |ui| {
        for (label, command) in [
            ("Play", Command::Play),
            ("Pause", Command::Pause),
            ("Stop", Command::Stop),
        ] {
            if ui.button(label).clicked() {
                commands.push(command);
            }
        }
    });
    if let Some(reason) = problem {
        // The whole reason is long (it quotes the sound system): on hover.
        ui.label(egui::RichText::new("no sound output").weak())
            .on_hover_text(reason);
    }
    let mut settings = app.transport.settings;
    ui.add(
        egui::Slider::new(&mut settings.bpm, limits::TEMPO_BPM.range())
            .logarithmic(true)
            .text("BPM"),
    );
    egui::ComboBox::from_label("instrument")
        .selected_text(program_name(settings.program))
        .show_ui(ui, |ui| {
            for program in 0..=127u8 {
                ui.selectable_value(&mut settings.program, program, program_name(program));
            }
        });
    ui.add(egui::Slider::new(&mut settings.volume, limits::VOLUME.range()).text("volume"));
    ui.checkbox(&mut settings.looping, "loop")
        .on_hover_text("Loop the selection, else the generated part (a fill always loops)");
    if settings != app.transport.settings {
        commands.push(Command::TransportChanged(settings));
    }
}

fn zoom(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let (mut steps, mut pitches) = (app.view.zoom, app.view.pitch_zoom);
    ui.add(
        egui::Slider::new(&mut steps, limits::ZOOM.range())
            .show_value(false)
            .text("zoom"),
    );
    ui.add(
        egui::Slider::new(&mut pitches, limits::PITCH_ZOOM.range())
            .show_value(false)
            .text("pitch zoom"),
    );
    if (steps, pitches) != (app.view.zoom, app.view.pitch_zoom) {
        commands.push(Command::Zoom { steps, pitches });
    }
    if ui
        .button("Fit")
        .on_hover_text("Zoom the pitches to the music's range")
        .clicked()
    {
        commands.push(Command::FitPitches);
    }
    let mut snap = app.view.snap;
    egui::ComboBox::from_label("snap")
        .selected_text(snap.label())
        .show_ui(ui, |ui| {
            for choice in Snap::ALL {
                ui.selectable_value(&mut snap, choice, choice.label());
            }
        })
        .response
        .on_hover_text("What drawn, moved and resized notes snap to");
    if snap != app.view.snap {
        commands.push(Command::SetSnap(snap));
    }
}
