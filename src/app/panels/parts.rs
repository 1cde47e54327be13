//! The parts of the roll: a legend of colours and programs, mute / solo /
//! hide for each, the part new notes go to, and the velocity lane switch.

use eframe::egui;

use super::super::parts::{PartToggle, part_colour};
use super::super::{CadenzaApp, Command};
use crate::gm::program_name;

pub fn show(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let performance = &app.performance;
    let mut counts = vec![0usize; performance.parts.len()];
    let mut programs: Vec<Option<u8>> = vec![None; performance.parts.len()];
    for note in &performance.notes {
        let part = usize::from(note.part);
        counts[part] += 1;
        programs[part].get_or_insert(note.program);
    }
    for (index, part) in performance.parts.iter().enumerate() {
        let id = index as u16;
        let toggles = app.parts_view.toggles(id);
        ui.horizontal(|ui| {
            let (swatch, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
            ui.painter()
                .rect_filled(swatch, 2.0, part_colour(performance, id));
            let instrument = if part.is_drums() {
                "drums".to_owned()
            } else {
                programs[index].map_or_else(|| "no notes".to_owned(), program_name)
            };
            let hover = format!(
                "{}: channel {}, {instrument}, {} notes",
                part.name,
                part.channel + 1,
                counts[index]
            );
            // The buttons keep their place at the right; a long name is cut.
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                for (toggle, label, on, tip) in [
                    (
                        PartToggle::Hide,
                        "H",
                        toggles.hidden,
                        "Hide: this part is not drawn",
                    ),
                    (
                        PartToggle::Solo,
                        "S",
                        toggles.solo,
                        "Solo: only soloed parts play",
                    ),
                    (
                        PartToggle::Mute,
                        "M",
                        toggles.muted,
                        "Mute: this part does not play",
                    ),
                ] {
                    let button = ui
                        .selectable_label(on, label)
                        .on_hover_text(format!("{tip} ({})", part.name));
                    if button.clicked() {
                        commands.push(Command::TogglePart { part: id, toggle });
                    }
                }
                // The legend: the part's name and the instrument it plays.
                ui.add(egui::Label::new(format!("{} · {instrument}", part.name)).truncate())
                    .on_hover_text(hover);
            });
        });
    }
    target_choice(ui, app, commands);
    let mut lane = app.parts_view.velocity_lane;
    if ui
        .checkbox(&mut lane, "Velocity lane (V)")
        .on_hover_text(
            "Show each note's velocity under the roll; click or drag there to set the \
             velocity of the notes starting at that step (in the selection's rows when it \
             covers the step)",
        )
        .changed()
    {
        commands.push(Command::ShowVelocityLane(lane));
    }
}

/// The part drawn and generated notes go to.
fn target_choice(ui: &mut egui::Ui, app: &CadenzaApp, commands: &mut Vec<Command>) {
    let performance = &app.performance;
    let arrangement = app.document.roll().arrangement();
    let pitched: Vec<(u16, &str)> = performance
        .parts
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_drums())
        .map(|(i, p)| (i as u16, p.name.as_str()))
        .collect();
    let chosen = arrangement.chosen_target();
    let automatic = arrangement
        .target_part()
        .and_then(|p| performance.parts.get(usize::from(p)))
        .map_or("a new part".to_owned(), |p| p.name.clone());
    let name_of = |target: Option<u16>| match target {
        None => format!("most notes ({automatic})"),
        Some(part) => pitched
            .iter()
            .find(|(i, _)| *i == part)
            .map_or_else(|| "?".to_owned(), |(_, name)| (*name).to_owned()),
    };
    ui.label("New notes go to");
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("target-part")
            .width(ui.available_width() - 8.0)
            .truncate()
            .selected_text(name_of(chosen))
            .show_ui(ui, |ui| {
                for target in std::iter::once(None).chain(pitched.iter().map(|(i, _)| Some(*i))) {
                    if ui
                        .selectable_label(chosen == target, name_of(target))
                        .clicked()
                        && chosen != target
                    {
                        commands.push(Command::SetTargetPart(target));
                    }
                }
            })
            .response
            .on_hover_text(
                "The part that drawn and generated notes play in, at the velocity of its notes \
                 before them",
            );
    });
}
