//! The MIDI panel: a keyboard in, playback out, Record and Answer.

use eframe::egui;

use super::super::midi::{HAS_VIRTUAL_PORTS, OutputChoice, VIRTUAL_PORT_NAME};
use super::super::{CadenzaApp, Command};

pub fn show(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let keyboard = app.keyboard();
    if !keyboard.listed {
        commands.push(Command::RefreshMidiPorts);
    }
    let input = app.midi.input_name().map(str::to_owned);
    ui.horizontal(|ui| {
        ui.label("Input");
        egui::ComboBox::from_id_salt("midi-input")
            .selected_text(input.clone().unwrap_or_else(|| "none".to_owned()))
            .show_ui(ui, |ui| {
                let choices =
                    std::iter::once(None).chain(keyboard.inputs.iter().cloned().map(Some));
                for choice in choices {
                    let label = choice.clone().unwrap_or_else(|| "none".to_owned());
                    if ui.selectable_label(input == choice, label).clicked() && input != choice {
                        commands.push(Command::MidiInput(choice));
                    }
                }
            })
            .response
            .on_hover_text(
                "A MIDI keyboard: what it plays sounds at once, and Record and Answer use it",
            );
    });
    let output = app.midi.output_choice().cloned();
    let output_name = |choice: &Option<OutputChoice>| match choice {
        None => "internal synth only".to_owned(),
        Some(OutputChoice::Virtual) => format!("{VIRTUAL_PORT_NAME} (virtual port)"),
        Some(OutputChoice::Port(name)) => name.clone(),
    };
    ui.horizontal(|ui| {
        ui.label("Output");
        egui::ComboBox::from_id_salt("midi-output")
            .selected_text(output_name(&output))
            .show_ui(ui, |ui| {
                let virtual_port = HAS_VIRTUAL_PORTS.then_some(Some(OutputChoice::Virtual));
                let choices = std::iter::once(None).chain(virtual_port).chain(
                    keyboard
                        .outputs
                        .iter()
                        .cloned()
                        .map(|n| Some(OutputChoice::Port(n))),
                );
                for choice in choices {
                    let label = output_name(&choice);
                    if ui.selectable_label(output == choice, label).clicked() && output != choice {
                        commands.push(Command::MidiOutput(choice));
                    }
                }
            })
            .response
            .on_hover_text(
                "Send playback and answers to another program or device as well, or to a \
                 virtual port named Cadenza that a DAW can record from",
            );
    });
    ui.horizontal(|ui| {
        let mut internal = keyboard.internal_synth;
        if ui
            .checkbox(&mut internal, "Internal synth")
            .on_hover_text("Off: only the MIDI output plays the song and the keyboard")
            .changed()
        {
            commands.push(Command::InternalSynth(internal));
        }
        if ui
            .button("↻")
            .on_hover_text("Look for MIDI ports again")
            .clicked()
        {
            commands.push(Command::RefreshMidiPorts);
        }
    });
    record_and_answer(ui, app, commands);
    if let Some(problem) = &keyboard.port_problem {
        ui.label(egui::RichText::new(problem).weak().small());
    }
}

/// Record and Answer.
fn record_and_answer(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let keyboard = app.keyboard();
    ui.horizontal(|ui| {
        let recording = keyboard.is_recording();
        if ui
            .selectable_label(recording, "⏺ Record (R)")
            .on_hover_text(
                "Record the keyboard into the roll from the playhead (else the selection, \
                 else the end of the seed window), on the grid, in the target part; \
                 again to stop. Undo takes it back.",
            )
            .clicked()
        {
            commands.push(Command::Record(!recording));
        }
        let answering = keyboard.is_answering();
        if ui
            .selectable_label(answering, "Answer (A)")
            .on_hover_text(
                "Call and response: play a phrase and pause for a bar; the phrase joins the \
                 roll and the model continues it and plays the continuation",
            )
            .clicked()
        {
            commands.push(Command::Answer(!answering));
        }
    });
}
