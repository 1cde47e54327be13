//! The training panel: data folder, epochs, network, loss, start and
//! cancel, progress, loss curves, and what to do with the result.

use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::super::{CadenzaApp, Command, FileQuestion, TrainForm};
use crate::dataset::Preset;
use crate::limits;
use crate::model::Architecture;
use crate::record::LossKind;

pub fn show(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let mut form = app.training.form.clone();
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut form.data_dir)
                .hint_text("folder of MIDI/PNG files")
                .desired_width(150.0),
        )
        .labelled_by(ui.label("Data").id);
        if ui.button("Browse...").clicked() {
            commands.push(Command::Ask(FileQuestion::TrainingFolder));
        }
    });
    ui.add(
        egui::Slider::new(&mut form.epochs, limits::EPOCHS.range())
            .logarithmic(true)
            .text("epochs"),
    );
    ui.add(egui::Slider::new(&mut form.average_epochs, 0..=50).text("average over epochs"))
        .on_hover_text(
            "Save an average of the weights of about the last N epochs (0: the last epoch's); \
         it often does better on music it never saw",
        );
    network_choice(ui, &mut form);
    if form != app.training.form {
        commands.push(Command::TrainFormChanged(form));
    }
    let progress = app.training.progress();
    let running = progress.is_some_and(|p| !p.finished);
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!running, egui::Button::new("Start training"))
            .clicked()
        {
            commands.push(Command::StartTraining);
        }
        if ui
            .add_enabled(running, egui::Button::new("Cancel"))
            .clicked()
        {
            commands.push(Command::CancelTraining);
        }
    });
    let Some(progress) = progress else {
        return;
    };
    ui.add(egui::ProgressBar::new(progress.fraction).text(format!(
        "epoch {}, loss {:.4}, {:.0} {}, ETA {:.0} s",
        progress.epoch,
        progress.loss,
        progress.windows_per_s,
        progress.throughput_unit,
        progress.eta_seconds
    )));
    ui.label(egui::RichText::new(&progress.message).weak());
    let train: Vec<[f64; 2]> = progress
        .epochs
        .iter()
        .map(|r| [r.epoch as f64, r.train_loss])
        .collect();
    let validation: Vec<[f64; 2]> = progress
        .epochs
        .iter()
        .filter_map(|r| Some([r.epoch as f64, r.validation_loss?]))
        .collect();
    Plot::new("loss-curves")
        .height(110.0)
        .legend(Legend::default())
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.line(Line::new("train loss", PlotPoints::from(train)));
            plot.line(Line::new("validation loss", PlotPoints::from(validation)));
        });
    if progress.model.is_some() {
        ui.horizontal(|ui| {
            if ui.button("Use this model").clicked() {
                commands.push(Command::UseTrainedModel);
            }
            if ui.button("Save model...").clicked() {
                commands.push(Command::Ask(FileQuestion::SaveTrainedModel));
            }
        });
    }
}

/// The network to train, its windows and its loss: each network with the
/// loss (and windows) it is meant for.
fn network_choice(ui: &mut egui::Ui, form: &mut TrainForm) {
    ui.horizontal(|ui| {
        let before = form.arch;
        ui.selectable_value(&mut form.arch, Architecture::RollLstm, "roll LSTM")
            .on_hover_text("Cadenza's network: an LSTM over the steps, trained with BCE");
        ui.selectable_value(&mut form.arch, Architecture::Article, "article's network")
            .on_hover_text("the article's Conv1D + LSTM over 9-step windows, trained with MSE");
        ui.selectable_value(&mut form.arch, Architecture::Composer, "composer")
            .on_hover_text(
                "Cadenza's composing network: chords drawn note by note, the beat, and \
                 filling from both sides; trained on the likelihood of whole steps",
            );
        if form.arch != before {
            // Each network with the loss (and windows) it is meant for.
            *form = form.clone().with_arch(form.arch);
        }
    });
    ui.add_enabled_ui(form.arch == Architecture::Article, |ui| {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut form.preset, Preset::Forward, "forward");
            ui.selectable_value(&mut form.preset, Preset::Article, "as the article");
        });
    });
    ui.horizontal(|ui| {
        if form.arch == Architecture::Composer {
            // Its one loss: the chain rule's likelihood of whole steps.
            ui.label("loss: NLL of whole steps");
        } else {
            ui.selectable_value(&mut form.loss, LossKind::Mse, "MSE");
            ui.selectable_value(&mut form.loss, LossKind::Bce, "BCE");
        }
    });
}
