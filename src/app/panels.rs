//! The panels: a top bar (files, transport), the generation controls, the
//! roll with its plot, and a status bar. Each draws and returns [`Command`]s.

use eframe::egui;
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints};

use super::roll_view::{self, RollViewInput};
use super::{CadenzaApp, Command, Measurement, Params};
use crate::assets::{DEFAULT_MODEL, SHIPPED_MODELS};
use crate::dataset::Preset;
use crate::device::BackendChoice;
use crate::generate::{Rule, RuleKind};
use crate::gm::program_name;
use crate::model::{Architecture, WINDOW_STEPS};
use crate::train::LossKind;

/// Draws the whole window for one frame.
pub fn show(ui: &mut egui::Ui, app: &mut CadenzaApp) -> Vec<Command> {
    let mut commands = Vec::new();
    if let Some(offer) = &app.restore_offer {
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
    egui::Panel::top("top-bar").show(ui, |ui| top_bar(ui, app, &mut commands));
    egui::Panel::bottom("status-bar").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(&app.status);
            ui.separator();
            ui.label(
                egui::RichText::new(format!(
                    "{} · {} · {}",
                    app.source_name, app.model_name, app.device_label
                ))
                .weak(),
            );
        });
    });
    egui::Panel::left("controls")
        .resizable(false)
        .default_size(260.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                controls(ui, app, &mut commands);
                ui.separator();
                egui::CollapsingHeader::new("Train a model")
                    .default_open(false)
                    .show(ui, |ui| training(ui, app, &mut commands));
                egui::CollapsingHeader::new("Measure the model")
                    .default_open(false)
                    .show(ui, |ui| measure(ui, app, &mut commands));
            });
        });
    egui::CentralPanel::default().show(ui, |ui| {
        let plot_height = 150.0;
        let roll_height = (ui.available_height() - plot_height - 12.0).max(120.0);
        ui.allocate_ui(egui::Vec2::new(ui.available_width(), roll_height), |ui| {
            let generated = app.generated.as_ref().map(|g| {
                (
                    g.seed_start + WINDOW_STEPS,
                    g.continuations[g.chosen].steps.as_slice(),
                )
            });
            let input = RollViewInput {
                source: &app.source,
                generated,
                key: app.display_key,
                seed_start: app.seed_start,
                playhead: app.playhead(),
                zoom: app.zoom,
                pitch_zoom: app.pitch_zoom,
                selection: app.selection,
            };
            commands.extend(roll_view::show(ui, &mut app.textures, &input));
        });
        plot(ui, app);
    });
    commands.extend(shortcuts(ui, app));
    commands
}

/// Rolls, models and SoundFonts: what Open and drag-and-drop take.
fn open_dialog() -> Option<std::path::PathBuf> {
    rfd::FileDialog::new()
        .add_filter(
            "Everything Cadenza opens",
            &["mid", "midi", "png", "cadenza", "npz", "sf2"],
        )
        .add_filter("MIDI or roll PNG", &["mid", "midi", "png"])
        .add_filter("Model (Cadenza or Keras .npz)", &["cadenza", "npz"])
        .add_filter("SoundFont", &["sf2"])
        .pick_file()
}

/// MIDI or a midi2img PNG, by the extension chosen.
fn save_roll_dialog() -> Option<std::path::PathBuf> {
    rfd::FileDialog::new()
        .add_filter("MIDI", &["mid"])
        .add_filter("Roll PNG (midi2img)", &["png"])
        .set_file_name("cadenza.mid")
        .save_file()
}

fn save_wav_dialog() -> Option<std::path::PathBuf> {
    rfd::FileDialog::new()
        .add_filter("WAV", &["wav"])
        .set_file_name("cadenza.wav")
        .save_file()
}

/// The shipped models, one click each, and any model file.
fn model_menu(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    ui.menu_button("Model", |ui| {
        for shipped in SHIPPED_MODELS {
            let current = app.model_name().starts_with(shipped.name)
                && app.model_name().ends_with("(shipped)");
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
            if let Some(path) = rfd::FileDialog::new()
                .add_filter("Model (Cadenza or Keras .npz)", &["cadenza", "npz"])
                .pick_file()
            {
                commands.push(Command::Open(path));
            }
        }
    })
    .response
    .on_hover_text(format!("generating with {}", app.model_name()));
}

fn top_bar(ui: &mut egui::Ui, app: &mut CadenzaApp, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        if ui.button("Open...").clicked()
            && let Some(path) = open_dialog()
        {
            commands.push(Command::Open(path));
        }
        ui.add_enabled_ui(!app.settings.recent.is_empty(), |ui| {
            ui.menu_button("Recent", |ui| {
                for path in &app.settings.recent {
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
        if ui.button("Save...").clicked()
            && let Some(path) = save_roll_dialog()
        {
            commands.push(Command::SaveRoll(path));
        }
        if ui.button("Export WAV...").clicked()
            && let Some(path) = save_wav_dialog()
        {
            commands.push(Command::ExportWav(path));
        }
        ui.separator();
        let sound = app.audio_problem().map(str::to_owned);
        ui.add_enabled_ui(sound.is_none(), |ui| {
            if ui.button("Play").clicked() {
                commands.push(Command::Play);
            }
            if ui.button("Pause").clicked() {
                commands.push(Command::Pause);
            }
            if ui.button("Stop").clicked() {
                commands.push(Command::Stop);
            }
        });
        if let Some(reason) = sound {
            // The whole reason is long (it quotes the sound system): on hover.
            ui.label(egui::RichText::new("no sound output").weak())
                .on_hover_text(reason);
        }
        let mut transport = *app.transport();
        ui.add(egui::Slider::new(&mut transport.bpm, 20.0..=300.0).text("BPM"));
        egui::ComboBox::from_label("instrument")
            .selected_text(program_name(transport.program))
            .show_ui(ui, |ui| {
                for program in 0..=127u8 {
                    ui.selectable_value(&mut transport.program, program, program_name(program));
                }
            });
        ui.add(egui::Slider::new(&mut transport.volume, 0.0..=1.5).text("volume"));
        ui.checkbox(&mut transport.looping, "loop")
            .on_hover_text("Loop the selection, else the generated part");
        if transport != *app.transport() {
            commands.push(Command::TransportChanged(transport));
        }
        ui.separator();
        ui.add(
            egui::Slider::new(&mut app.zoom, 1.0..=24.0)
                .show_value(false)
                .text("zoom"),
        );
        ui.add(
            egui::Slider::new(&mut app.pitch_zoom, 1.0..=4.0)
                .show_value(false)
                .text("pitch zoom"),
        );
    });
}

fn controls(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let mut params: Params = app.params;
    ui.heading("Generate");
    ui.label(format!(
        "Seed window: steps {}..{}",
        app.seed_start,
        app.seed_start + WINDOW_STEPS
    ));
    ui.horizontal(|ui| {
        ui.selectable_value(&mut params.rule.kind, RuleKind::Boost, "Boost");
        ui.selectable_value(&mut params.rule.kind, RuleKind::Threshold, "Threshold");
        ui.selectable_value(&mut params.rule.kind, RuleKind::Sample, "Sample");
    });
    match params.rule.kind {
        RuleKind::Boost => {
            ui.add(
                egui::Slider::new(&mut params.rule.vanish_proof, 0.0..=1.0).text("vanish_proof"),
            );
            ui.add(
                egui::Slider::new(&mut params.rule.vanish_inc, 0.99..=1.02)
                    .step_by(0.0005)
                    .fixed_decimals(4)
                    .text("vanish_inc"),
            );
        }
        RuleKind::Threshold => {
            ui.add(egui::Slider::new(&mut params.rule.threshold, 0.01..=0.99).text("threshold"));
        }
        RuleKind::Sample => {
            ui.add(egui::Slider::new(&mut params.rule.temperature, 0.1..=3.0).text("temperature"));
            ui.add(egui::Slider::new(&mut params.rule.rng_seed, 0..=999).text("rng seed"));
        }
    }
    ui.add(egui::Slider::new(&mut params.steps, 9..=1024).text("steps"));
    ui.add(egui::Slider::new(&mut params.variations, 1..=8).text("variations"));
    ui.checkbox(&mut params.live, "Live (regenerate on every change)");
    if params != app.params {
        commands.push(Command::ParamsChanged(params));
    }
    ui.horizontal(|ui| {
        if ui.button("Generate (G)").clicked() {
            commands.push(Command::Generate);
        }
        if ui
            .add_enabled(app.generated.is_some(), egui::Button::new("Keep"))
            .on_hover_text("Write this continuation into the roll and continue from its end")
            .clicked()
        {
            commands.push(Command::Keep);
        }
    });
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!app.undo.is_empty(), egui::Button::new("Undo"))
            .clicked()
        {
            commands.push(Command::Undo);
        }
        if ui
            .add_enabled(!app.redo.is_empty(), egui::Button::new("Redo"))
            .clicked()
        {
            commands.push(Command::Redo);
        }
    });
    ui.label(
        egui::RichText::new(
            "Ruler: click or drag for the seed window, right-click to seek. \
             Roll: drag to draw a note, right-click to erase one, Shift+drag to \
             select, Delete to delete the selection.",
        )
        .weak(),
    );
    backend_choice(ui, app, commands);
    if let Some(generated) = &app.generated
        && generated.continuations.len() > 1
    {
        ui.separator();
        ui.label("Variation");
        ui.horizontal_wrapped(|ui| {
            for index in 0..generated.continuations.len() {
                if ui
                    .selectable_label(generated.chosen == index, format!("{}", index + 1))
                    .clicked()
                {
                    commands.push(Command::ChooseVariation(index));
                }
            }
        });
    }
}

/// Notes per generated step, the boost's effective threshold and the mean
/// probability, so the user sees the music hold or vanish.
fn plot(ui: &mut egui::Ui, app: &CadenzaApp) {
    let Some(generated) = &app.generated else {
        ui.label("Generating...");
        return;
    };
    let continuation = &generated.continuations[generated.chosen];
    let notes: Vec<[f64; 2]> = continuation
        .steps
        .iter()
        .enumerate()
        .map(|(k, m)| [k as f64, f64::from(m.count_ones())])
        .collect();
    let mean: Vec<[f64; 2]> = (0..continuation.steps.len())
        .map(|k| {
            let p = continuation.step_probabilities(k);
            [
                k as f64,
                p.iter().map(|&v| f64::from(v)).sum::<f64>() / p.len() as f64 * 10.0,
            ]
        })
        .collect();
    let threshold: Option<Vec<[f64; 2]>> = match generated.options.rule {
        Rule::Boost {
            vanish_proof,
            vanish_inc,
        } => Some(
            (0..continuation.steps.len())
                .map(|k| {
                    [
                        k as f64,
                        (1.0 - vanish_proof * vanish_inc.powi(k as i32)) * 10.0,
                    ]
                })
                .collect(),
        ),
        Rule::Threshold { threshold } => Some(
            (0..continuation.steps.len())
                .map(|k| [k as f64, f64::from(threshold) * 10.0])
                .collect(),
        ),
        Rule::Sample { .. } => None,
    };
    let hovered = app
        .hovered_step()
        .and_then(|step| step.checked_sub(generated.seed_start + WINDOW_STEPS))
        .filter(|&k| k < continuation.steps.len());
    let height = ui.available_height().max(80.0);
    let width = ui.available_width();
    ui.horizontal(|ui| {
        ui.allocate_ui(egui::vec2(width * 0.62, height), |ui| {
            Plot::new("generation-plot")
                .height(height)
                .legend(Legend::default())
                .allow_scroll(false)
                .show(ui, |plot| {
                    plot.line(Line::new("notes per step", PlotPoints::from(notes)));
                    plot.line(Line::new("mean probability x10", PlotPoints::from(mean)));
                    if let Some(threshold) = threshold {
                        plot.line(Line::new(
                            "effective threshold x10",
                            PlotPoints::from(threshold),
                        ));
                    }
                });
        });
        // The model's probabilities for the generated step under the mouse.
        let bars: Vec<Bar> = hovered
            .map(|k| {
                continuation
                    .step_probabilities(k)
                    .iter()
                    .enumerate()
                    .map(|(row, &p)| Bar::new((row + 21) as f64, f64::from(p)).width(0.8))
                    .collect()
            })
            .unwrap_or_default();
        let title = hovered.map_or_else(
            || "probabilities (hover a generated step)".to_owned(),
            |k| format!("probabilities at generated step {k} (MIDI 21..126)"),
        );
        Plot::new("step-probabilities")
            .height(height)
            .include_y(0.0)
            .include_y(1.0)
            .allow_scroll(false)
            .legend(Legend::default())
            .show(ui, |plot| plot.bar_chart(BarChart::new(title, bars)));
    });
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
    if undo {
        commands.push(Command::Undo);
    }
    let (delete, escape) = ui.input(|i| {
        (
            i.key_pressed(egui::Key::Delete) || i.key_pressed(egui::Key::Backspace),
            i.key_pressed(egui::Key::Escape),
        )
    });
    if delete && app.selection.is_some() && !ui.ctx().egui_wants_keyboard_input() {
        commands.push(Command::DeleteSelection);
    }
    if escape {
        commands.push(Command::Select(None));
    }
    if redo {
        commands.push(Command::Redo);
    }
    if open && let Some(path) = open_dialog() {
        commands.push(Command::Open(path));
    }
    if save && let Some(path) = save_roll_dialog() {
        commands.push(Command::SaveRoll(path));
    }
    if export && let Some(path) = save_wav_dialog() {
        commands.push(Command::ExportWav(path));
    }
    // Keyboard: Space plays, G generates, arrows move the seed window.
    let (space, g, left, right) = ui.input(|i| {
        (
            i.key_pressed(egui::Key::Space),
            i.key_pressed(egui::Key::G),
            i.key_pressed(egui::Key::ArrowLeft),
            i.key_pressed(egui::Key::ArrowRight),
        )
    });
    if !ui.ctx().egui_wants_keyboard_input() {
        if space {
            commands.push(if app.playhead().is_some() {
                Command::Pause
            } else {
                Command::Play
            });
        }
        if g {
            commands.push(Command::Generate);
        }
        if left {
            commands.push(Command::SetSeed(app.seed_start.saturating_sub(1)));
        }
        if right {
            commands.push(Command::SetSeed(app.seed_start + 1));
        }
    }
    commands
}

/// CPU or GPU; the GPU button says why when there is no usable adapter.
fn backend_choice(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    ui.separator();
    ui.label("Runs on");
    let gpu = app.gpu_choice();
    ui.horizontal(|ui| {
        if ui
            .selectable_label(app.backend == BackendChoice::Cpu, "CPU")
            .clicked()
        {
            commands.push(Command::SetBackend(BackendChoice::Cpu));
        }
        match gpu {
            Ok(label) => {
                if ui
                    .selectable_label(app.backend == BackendChoice::Gpu, "GPU")
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
    ui.label(egui::RichText::new(&app.device_label).weak());
    if let Some(notice) = &app.device_notice {
        ui.label(egui::RichText::new(notice).weak().small());
    }
}

/// Scores the model in use on a folder of music with the rule, parameters
/// and length set above: `cadenza eval`'s figures and the vanish curve.
fn measure(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let mut folder = app.measure_folder().to_owned();
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut folder)
                .hint_text("folder of MIDI/PNG files")
                .desired_width(150.0),
        )
        .labelled_by(ui.label("Music").id);
        if ui.button("Browse...").clicked()
            && let Some(chosen) = rfd::FileDialog::new().pick_folder()
        {
            folder = chosen.display().to_string();
        }
    });
    if folder != app.measure_folder() {
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

/// The training panel: data folder, epochs, preset, loss, start/cancel,
/// progress, loss curves, and what to do with the result.
fn training(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let mut form = app.train_form.clone();
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut form.data_dir)
                .hint_text("folder of MIDI/PNG files")
                .desired_width(150.0),
        )
        .labelled_by(ui.label("Data").id);
        if ui.button("Browse...").clicked()
            && let Some(folder) = rfd::FileDialog::new().pick_folder()
        {
            form.data_dir = folder.display().to_string();
        }
    });
    ui.add(egui::Slider::new(&mut form.epochs, 1..=200).text("epochs"));
    ui.horizontal(|ui| {
        let before = form.arch;
        ui.selectable_value(&mut form.arch, Architecture::RollLstm, "roll LSTM")
            .on_hover_text("Cadenza's network: an LSTM over the steps, trained with BCE");
        ui.selectable_value(&mut form.arch, Architecture::Seed, "seed network")
            .on_hover_text("the article's Conv1D + LSTM over 9-step windows, trained with MSE");
        if form.arch != before {
            // Each network with the loss (and windows) it is meant for.
            form.loss = match form.arch {
                Architecture::RollLstm => LossKind::Bce,
                Architecture::Seed => LossKind::Mse,
            };
            form.preset = Preset::Forward;
        }
    });
    ui.add_enabled_ui(form.arch == Architecture::Seed, |ui| {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut form.preset, Preset::Forward, "forward");
            ui.selectable_value(&mut form.preset, Preset::Seed, "seed preset");
        });
    });
    ui.horizontal(|ui| {
        ui.selectable_value(&mut form.loss, LossKind::Mse, "MSE");
        ui.selectable_value(&mut form.loss, LossKind::Bce, "BCE");
    });
    if form != app.train_form {
        commands.push(Command::TrainFormChanged(form));
    }
    let progress = app.training_progress();
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
        "epoch {}, loss {:.4}, {:.0} windows/s, ETA {:.0} s",
        progress.epoch, progress.loss, progress.windows_per_s, progress.eta_seconds
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
            if ui.button("Save model...").clicked()
                && let Some(path) = rfd::FileDialog::new()
                    .add_filter("Cadenza model", &["cadenza"])
                    .set_file_name("model.cadenza")
                    .save_file()
            {
                commands.push(Command::SaveTrainedModel(path));
            }
        });
    }
}
