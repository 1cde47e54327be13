//! The generation controls: rule, boost sliders, length, variations, the
//! key, range and density, the buttons that generate, fill and keep, undo
//! and redo, and the device.

use eframe::egui;

use super::super::{CadenzaApp, Command, Params};
use super::compose;
use crate::device::BackendChoice;
use crate::generate::RuleKind;
use crate::limits;
use crate::model::WINDOW_STEPS;

pub fn show(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let mut params: Params = app.generation.params;
    ui.heading("Generate");
    ui.label(format!(
        "Seed window: steps {}..{}",
        app.document.seed_start(),
        app.document.seed_start() + WINDOW_STEPS
    ));
    rule(ui, &mut params);
    ui.add(
        egui::Slider::new(&mut params.steps, limits::GENERATE_STEPS.range())
            .logarithmic(true)
            .text("steps"),
    );
    ui.add_enabled(
        params.rule.kind.draws_at_random(),
        egui::Slider::new(&mut params.variations, limits::VARIATIONS.range()).text("variations"),
    )
    .on_disabled_hover_text(
        "Boost and Threshold decide every note the same way each time: variations need Sample",
    );
    ui.checkbox(&mut params.live, "Live (regenerate on every change)")
        .on_hover_text("Every change of a control regenerates the continuation or the fill");
    compose::settings(ui, app, &mut params);
    if params != app.generation.params {
        commands.push(Command::ParamsChanged(params));
    }
    buttons(ui, app, commands);
    compose::actions(ui, app, commands);
    ui.label(
        egui::RichText::new(
            "Ruler: click for the seed window, drag to select a span, right-click \
             to seek. Roll: drag to draw a note, drag a note to move it or its end to \
             resize it, click a note to select it, right-click to erase one, \
             Shift+drag to select. Keyboard strip: drag the two handles for the range.",
        )
        .weak(),
    );
    backend_choice(ui, app, commands);
    variations(ui, app, commands);
}

/// The rule and its parameters.
fn rule(ui: &mut egui::Ui, params: &mut Params) {
    ui.horizontal(|ui| {
        ui.selectable_value(&mut params.rule.kind, RuleKind::Boost, "Boost");
        ui.selectable_value(&mut params.rule.kind, RuleKind::Threshold, "Threshold");
        ui.selectable_value(&mut params.rule.kind, RuleKind::Sample, "Sample");
    });
    match params.rule.kind {
        RuleKind::Boost => {
            ui.add(
                egui::Slider::new(&mut params.rule.vanish_proof, limits::VANISH_PROOF.range())
                    .text("vanish_proof"),
            );
            ui.add(
                egui::Slider::new(&mut params.rule.vanish_inc, limits::VANISH_INC.range())
                    .step_by(0.0005)
                    .fixed_decimals(4)
                    .text("vanish_inc"),
            );
        }
        RuleKind::Threshold => {
            ui.add(
                egui::Slider::new(&mut params.rule.threshold, limits::THRESHOLD.range())
                    .text("threshold"),
            );
        }
        RuleKind::Sample => {
            ui.add(
                egui::Slider::new(&mut params.rule.temperature, limits::TEMPERATURE.range())
                    .logarithmic(true)
                    .text("temperature"),
            );
            ui.horizontal(|ui| {
                ui.add(egui::DragValue::new(&mut params.rule.rng_seed))
                    .labelled_by(ui.label("rng seed").id);
            });
        }
    }
}

/// Generate, Keep, Undo and Redo.
fn buttons(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        if ui.button("Generate (G)").clicked() {
            commands.push(Command::Generate);
        }
        if ui
            .add_enabled(
                app.generation.result().is_some(),
                egui::Button::new("Keep (K)"),
            )
            .on_hover_text(
                "Write this continuation into the roll and continue from its end, or write \
                 the fill being auditioned into its span",
            )
            .clicked()
        {
            commands.push(Command::Keep);
        }
    });
    ui.horizontal(|ui| {
        if ui
            .add_enabled(app.document.history().can_undo(), egui::Button::new("Undo"))
            .clicked()
        {
            commands.push(Command::Undo);
        }
        if ui
            .add_enabled(app.document.history().can_redo(), egui::Button::new("Redo"))
            .clicked()
        {
            commands.push(Command::Redo);
        }
    });
}

/// The tabs of the variations, when there are several.
fn variations(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    if let Some(generated) = app.generation.result()
        && generated.continuations.len() > 1
    {
        ui.separator();
        ui.label("Variation");
        ui.horizontal_wrapped(|ui| {
            for index in 0..generated.continuations.len() {
                if ui
                    .selectable_label(generated.chosen == index, format!("{}", index + 1))
                    .on_hover_text("Show and play this variation; Keep (K) writes it in")
                    .clicked()
                {
                    commands.push(Command::ChooseVariation(index));
                }
            }
        });
    }
}

/// CPU or GPU; the GPU button says why when there is no usable adapter.
fn backend_choice(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    ui.separator();
    ui.label("Runs on");
    let gpu = app.generation.gpu();
    let backend = app.generation.backend();
    ui.horizontal(|ui| {
        if ui
            .selectable_label(backend == BackendChoice::Cpu, "CPU")
            .clicked()
        {
            commands.push(Command::SetBackend(BackendChoice::Cpu));
        }
        match gpu {
            Ok(label) => {
                if ui
                    .selectable_label(backend == BackendChoice::Gpu, "GPU")
                    .on_hover_text(label)
                    .clicked()
                {
                    commands.push(Command::SetBackend(BackendChoice::Gpu));
                }
            }
            Err(reason) => {
                ui.add_enabled(false, egui::Button::new("GPU"))
                    .on_disabled_hover_text(reason);
            }
        }
    });
    ui.label(egui::RichText::new(app.generation.device_label()).weak());
    if let Some(notice) = app.generation.device_notice() {
        ui.label(egui::RichText::new(notice).weak().small());
    }
}
