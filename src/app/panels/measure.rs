//! The measuring panel: the folder, the button, and the figures and vanish
//! curve of the last measurement.

use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::super::{CadenzaApp, Command, FileQuestion, Measurement};

/// Scores the model in use on a folder of music with the rule, parameters
/// and length set above: `cadenza eval`'s figures and the vanish curve.
pub fn show(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let mut folder = app.measuring.folder.clone();
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut folder)
                .hint_text("folder of MIDI/PNG files")
                .desired_width(150.0),
        )
        .labelled_by(ui.label("Music").id);
        if ui.button("Browse...").clicked() {
            commands.push(Command::Ask(FileQuestion::MeasureFolder));
        }
    });
    if folder != app.measuring.folder {
        commands.push(Command::MeasureFolderChanged(folder));
    }
    let running = matches!(app.measurement(), Some(None));
    if ui
        .add_enabled(!running, egui::Button::new("Measure"))
        .on_hover_text(
            "Held-out scores of the model in use (its validation files when this is the folder \
             it was trained on) with the rule, parameters and length set above",
        )
        .clicked()
    {
        commands.push(Command::Measure);
    }
    match app.measurement() {
        None => {}
        Some(None) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("measuring...");
            });
        }
        Some(Some(Err(error))) => {
            ui.label(egui::RichText::new(error).color(ui.visuals().error_fg_color));
        }
        Some(Some(Ok(measurement))) => measurement_figures(ui, measurement),
    }
}

fn measurement_figures(ui: &mut egui::Ui, m: &Measurement) {
    let (t, f) = (&m.evaluation.teacher_forced, &m.evaluation.free_running);
    let small = |text: String| egui::RichText::new(text).small();
    ui.label(small(format!(
        "{} on {} held-out files: BCE {:.2} nats/step, F1 {:.3} at 0.5, best {:.3} at {:.2}",
        m.model, m.held_out_files, t.bce_nats_per_step, t.at_half.f1, t.best.f1, t.best.threshold
    )));
    ui.label(small(format!(
        "{}: {:.2} notes/step (music {:.2}), {:.2} to {:.2} of the music's at any step; \
         empty steps {:.1}%, polyphony {:.2} ({:.2}), note length {:.1} ({:.1}), pitch-class \
         distance {:.3}",
        m.rule,
        f.notes_per_step,
        f.data_notes_per_step,
        f.curve_ratio_range.0,
        f.curve_ratio_range.1,
        f.empty_step_rate * 100.0,
        f.polyphony,
        f.data_polyphony,
        f.mean_note_length,
        f.data_mean_note_length,
        f.pitch_class_distance
    )));
    let curve: Vec<[f64; 2]> = f
        .vanish_curve
        .iter()
        .enumerate()
        .map(|(step, &v)| [(step + 1) as f64, v])
        .collect();
    let music = vec![
        [1.0, f.data_notes_per_step],
        [f.vanish_curve.len() as f64, f.data_notes_per_step],
    ];
    Plot::new("vanish-curve")
        .height(110.0)
        .legend(Legend::default())
        .allow_scroll(false)
        .include_y(0.0)
        .show(ui, |plot| {
            plot.line(Line::new("notes per step", PlotPoints::from(curve)));
            plot.line(Line::new("held-out music", PlotPoints::from(music)));
        });
}
