//! What the model did: notes per generated step, the rule's effective
//! threshold and the mean probability, so the user sees the music hold or
//! vanish; and the probabilities at the hovered step.

use eframe::egui;
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints};

use super::super::CadenzaApp;
use crate::generate::Rule;

pub fn show(ui: &mut egui::Ui, app: &CadenzaApp) {
    let Some(generated) = app.generation.result() else {
        ui.label("Generating...");
        return;
    };
    let continuation = generated.shown();
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
        .and_then(|step| step.checked_sub(generated.first_step()))
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
