//! The piano roll as an image: high notes at the top, the seed part and the
//! generated continuation in different colours, the 9-step seed window and
//! the playhead drawn over it. Clicking or dragging picks the seed window.

use eframe::egui::{
    self, Color32, ColorImage, Pos2, Rect, Sense, Stroke, TextureHandle, TextureOptions, Vec2,
};

use super::Command;
use crate::limits;
use crate::model::WINDOW_STEPS;
use crate::roll::{PITCH_COUNT, PianoRoll, Pitch};

/// Columns per texture: GPUs refuse textures wider than 8192 pixels.
const TEXTURE_COLUMNS: usize = 4096;
const BACKGROUND: Color32 = Color32::from_rgb(24, 26, 31);
const BLACK_KEY_ROW: Color32 = Color32::from_rgb(19, 21, 25);
const SEED_NOTE: Color32 = Color32::from_rgb(150, 180, 230);
const GENERATED_NOTE: Color32 = Color32::from_rgb(255, 168, 64);
const REPLACED_NOTE: Color32 = Color32::from_rgb(70, 78, 96);
const KEYBOARD_WIDTH: f32 = 34.0;
/// The time ruler above the roll: bar numbers; a click there seeks.
const RULER_HEIGHT: f32 = 14.0;

/// What the view keeps between frames: the textures of the roll, rebuilt
/// only when it changes, and a note being drawn.
#[derive(Default)]
pub struct RollTextures {
    key: u64,
    chunks: Vec<TextureHandle>,
    /// (pitch row, first step) of a note being dragged out.
    drawing: Option<(usize, usize)>,
    /// Whether that drag selects (Shift held when it began) instead.
    selecting: bool,
}

impl std::fmt::Debug for RollTextures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollTextures")
            .field("key", &self.key)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// How the roll is looked at: zoom on both axes, the step under the mouse,
/// and the view's textures.
#[derive(Debug)]
pub struct View {
    /// Pixels per step.
    pub zoom: f32,
    /// Times the height that fits all 106 pitches.
    pub pitch_zoom: f32,
    pub hovered_step: Option<usize>,
    pub textures: RollTextures,
}

impl Default for View {
    fn default() -> Self {
        Self {
            zoom: 6.0,
            pitch_zoom: 1.0,
            hovered_step: None,
            textures: RollTextures::default(),
        }
    }
}

fn is_black_key(row: usize) -> bool {
    matches!((row + 21) % 12, 1 | 3 | 6 | 8 | 10)
}

impl RollTextures {
    /// Makes sure the textures show `input`; `input.key` identifies the
    /// content, so they are rebuilt only when it changes.
    fn update(&mut self, ctx: &egui::Context, input: &RollViewInput<'_>) {
        if input.key == self.key && !self.chunks.is_empty() {
            return;
        }
        self.key = input.key;
        self.chunks.clear();
        let source = input.source.sounding_masks();
        let (from, generated) = input.generated.unwrap_or((usize::MAX, &[]));
        let columns = input.columns();
        for first in (0..columns.max(1)).step_by(TEXTURE_COLUMNS) {
            let width = (columns - first).clamp(1, TEXTURE_COLUMNS);
            let mut image = ColorImage::filled([width, PITCH_COUNT], BACKGROUND);
            for x in 0..width {
                let step = first + x;
                let original = source.get(step).copied().unwrap_or(0);
                let new = step
                    .checked_sub(from)
                    .and_then(|k| generated.get(k))
                    .copied()
                    .unwrap_or(0);
                let after_seed = step >= from;
                for row in 0..PITCH_COUNT {
                    let bit = 1u128 << row;
                    let colour = if new & bit != 0 {
                        GENERATED_NOTE
                    } else if original & bit != 0 {
                        // The source beyond the seed window is what the
                        // continuation replaces: shown dimmed.
                        if after_seed { REPLACED_NOTE } else { SEED_NOTE }
                    } else if is_black_key(row) {
                        BLACK_KEY_ROW
                    } else {
                        BACKGROUND
                    };
                    image.pixels[(PITCH_COUNT - 1 - row) * width + x] = colour;
                }
            }
            self.chunks.push(ctx.load_texture(
                format!("roll-{first}"),
                image,
                TextureOptions::NEAREST,
            ));
        }
    }
}

/// A rectangle of the roll: pitch rows and steps, both inclusive-exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub rows: (usize, usize),
    pub steps: (usize, usize),
}

/// What the view needs to draw one frame.
pub struct RollViewInput<'a> {
    /// The roll the seed window is picked from.
    pub source: &'a PianoRoll,
    /// The continuation and the step it starts at (the seed window's end).
    pub generated: Option<(usize, &'a [u128])>,
    /// Changes whenever `source` or `generated` does.
    pub key: u64,
    pub seed_start: usize,
    pub playhead: Option<f64>,
    /// Horizontal pixels per step.
    pub zoom: f32,
    /// Vertical zoom: 1 fits all 106 pitches in the view.
    pub pitch_zoom: f32,
    pub selection: Option<Selection>,
}

impl RollViewInput<'_> {
    /// Steps drawn: the source, or further where the continuation ends later.
    fn columns(&self) -> usize {
        let generated_end = self.generated.map_or(0, |(from, steps)| from + steps.len());
        self.source.steps().max(generated_end)
    }
}

/// Draws the roll and returns what the user asked for.
pub fn show(
    ui: &mut egui::Ui,
    textures: &mut RollTextures,
    input: &RollViewInput<'_>,
) -> Vec<Command> {
    let mut commands = Vec::new();
    textures.update(ui.ctx(), input);
    let steps = input.columns().max(1);
    let row_height = ((ui.available_height() - 8.0 - RULER_HEIGHT) / PITCH_COUNT as f32)
        .clamp(2.0, 8.0)
        * limits::PITCH_ZOOM.clamp(input.pitch_zoom);
    let size = Vec2::new(
        KEYBOARD_WIDTH + steps as f32 * input.zoom,
        RULER_HEIGHT + PITCH_COUNT as f32 * row_height,
    );
    egui::ScrollArea::both()
        .id_salt("roll-scroll")
        .show(ui, |ui| {
            let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
            let painter = ui.painter_at(rect);
            let grid =
                Rect::from_min_max(rect.min + Vec2::new(KEYBOARD_WIDTH, RULER_HEIGHT), rect.max);
            // The image, one texture per chunk of columns.
            for (index, texture) in textures.chunks.iter().enumerate() {
                let first = (index * TEXTURE_COLUMNS) as f32 * input.zoom;
                let width = texture.size()[0] as f32 * input.zoom;
                let chunk_rect = Rect::from_min_size(
                    grid.min + Vec2::new(first, 0.0),
                    Vec2::new(width, grid.height()),
                );
                painter.image(
                    texture.id(),
                    chunk_rect,
                    Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                    Color32::WHITE,
                );
            }
            paint_grid(&painter, rect, grid, input, row_height);
            paint_overlays(&painter, grid, input);
            commands.extend(pointer(
                &response,
                grid,
                input,
                row_height,
                &mut textures.drawing,
                &mut textures.selecting,
                &painter,
            ));
        });
    commands
}

/// The seed window, where generation begins, and the playhead.
fn paint_overlays(painter: &egui::Painter, grid: Rect, input: &RollViewInput<'_>) {
    let x_of = |step: f64| grid.left() + step as f32 * input.zoom;
    // The seed window and where generation begins.
    let seed = Rect::from_min_max(
        Pos2::new(x_of(input.seed_start as f64), grid.top()),
        Pos2::new(
            x_of((input.seed_start + WINDOW_STEPS) as f64),
            grid.bottom(),
        ),
    );
    painter.rect_filled(seed, 0.0, Color32::from_rgba_unmultiplied(90, 160, 255, 45));
    painter.rect_stroke(
        seed,
        0.0,
        Stroke::new(1.5, Color32::from_rgb(90, 160, 255)),
        egui::StrokeKind::Inside,
    );
    if let Some((from, _)) = input.generated {
        let x = x_of(from as f64);
        painter.line_segment(
            [Pos2::new(x, grid.top()), Pos2::new(x, grid.bottom())],
            Stroke::new(2.0, GENERATED_NOTE),
        );
    }
    if let Some(selection) = input.selection {
        let row_height = grid.height() / PITCH_COUNT as f32;
        let rect = Rect::from_min_max(
            Pos2::new(
                x_of(selection.steps.0 as f64),
                grid.top() + (PITCH_COUNT - selection.rows.1) as f32 * row_height,
            ),
            Pos2::new(
                x_of(selection.steps.1 as f64),
                grid.top() + (PITCH_COUNT - selection.rows.0) as f32 * row_height,
            ),
        );
        painter.rect_stroke(
            rect,
            0.0,
            Stroke::new(1.5, Color32::from_rgb(240, 240, 120)),
            egui::StrokeKind::Inside,
        );
    }
    if let Some(position) = input.playhead {
        let x = x_of(position);
        painter.line_segment(
            [Pos2::new(x, grid.top()), Pos2::new(x, grid.bottom())],
            Stroke::new(2.0, Color32::WHITE),
        );
    }
}

/// Bar and beat lines, the ruler's bar numbers and the keyboard strip.
fn paint_grid(
    painter: &egui::Painter,
    rect: Rect,
    grid: Rect,
    input: &RollViewInput<'_>,
    row_height: f32,
) {
    let steps = input.columns().max(1);
    let x_of = |step: f64| grid.left() + step as f32 * input.zoom;
    // Bar lines (4 quarters) and beat lines.
    let per_quarter = usize::from(input.source.meta().steps_per_quarter).max(1);
    if input.zoom * per_quarter as f32 >= 4.0 {
        for step in (0..=steps).step_by(per_quarter) {
            let bar = step % (4 * per_quarter) == 0;
            let colour = if bar {
                Color32::from_gray(70)
            } else {
                Color32::from_gray(40)
            };
            let x = x_of(step as f64);
            painter.line_segment(
                [Pos2::new(x, grid.top()), Pos2::new(x, grid.bottom())],
                Stroke::new(1.0, colour),
            );
        }
    }
    // The ruler: bar numbers.
    let bar_steps = 4 * per_quarter;
    let every = (40.0 / (bar_steps as f32 * input.zoom)).ceil().max(1.0) as usize;
    for (bar, step) in (0..steps).step_by(bar_steps).enumerate() {
        if bar % every == 0 {
            painter.text(
                Pos2::new(x_of(step as f64) + 2.0, rect.top() + RULER_HEIGHT / 2.0),
                egui::Align2::LEFT_CENTER,
                format!("{}", bar + 1),
                egui::FontId::monospace(9.0),
                Color32::from_gray(170),
            );
        }
    }
    // The keyboard strip: a label at every C.
    painter.rect_filled(
        Rect::from_min_max(rect.min, Pos2::new(grid.left(), rect.bottom())),
        0.0,
        Color32::from_gray(35),
    );
    for row in (0..PITCH_COUNT).filter(|row| (row + 21) % 12 == 0) {
        let y = grid.top() + (PITCH_COUNT - 1 - row) as f32 * row_height;
        if let Some(pitch) = Pitch::from_row(row) {
            painter.text(
                Pos2::new(rect.left() + 2.0, y + row_height / 2.0),
                egui::Align2::LEFT_CENTER,
                pitch.name(),
                egui::FontId::monospace(9.0),
                Color32::from_gray(200),
            );
        }
    }
}

/// The pointer over the roll. On the ruler: click or drag places the seed
/// window, right-click seeks. On the notes: click or drag draws a note,
/// right-click erases one. Hovering names the pitch and step.
fn pointer(
    response: &egui::Response,
    grid: Rect,
    input: &RollViewInput<'_>,
    row_height: f32,
    drawing: &mut Option<(usize, usize)>,
    selecting: &mut bool,
    painter: &egui::Painter,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let cell = |pos: Pos2| {
        let step = ((pos.x - grid.left()) / input.zoom).max(0.0) as usize;
        let row = PITCH_COUNT
            - 1
            - (((pos.y - grid.top()) / row_height).max(0.0) as usize).min(PITCH_COUNT - 1);
        (row, step)
    };
    let hovered = response.hover_pos().filter(|pos| grid.contains(*pos));
    commands.push(Command::Hover(hovered.map(|pos| cell(pos).1)));
    if let Some(pos) = hovered {
        let (row, step) = cell(pos);
        if let Some(pitch) = Pitch::from_row(row) {
            response.clone().on_hover_text_at_pointer(format!(
                "{} (MIDI {}), step {step}",
                pitch.name(),
                pitch.midi()
            ));
        }
    }
    let Some(pos) = response.interact_pointer_pos() else {
        *drawing = None;
        return commands;
    };
    let (row, step) = cell(pos);
    if pos.y < grid.top() {
        // The ruler.
        if response.secondary_clicked() {
            commands.push(Command::Seek(f64::from((pos.x - grid.left()) / input.zoom)));
        } else if response.clicked() || response.dragged() {
            // The window is centred on the pointer and kept in the roll.
            let latest = input.source.steps().saturating_sub(WINDOW_STEPS);
            let start = step.saturating_sub(WINDOW_STEPS / 2).min(latest);
            if start != input.seed_start {
                commands.push(Command::SetSeed(start));
            }
        }
        return commands;
    }
    let shift = response.ctx.input(|i| i.modifiers.shift);
    if response.secondary_clicked() {
        commands.push(Command::EraseAt { row, step });
    } else if response.clicked() {
        if shift {
            commands.push(Command::Select(None));
        } else {
            commands.push(Command::DrawNote {
                row,
                start: step,
                end: step + 1,
            });
        }
    } else if response.drag_started() {
        *drawing = Some((row, step));
        *selecting = shift;
    } else if let Some((first_row, first)) = *drawing {
        let (start, end) = (first.min(step), first.max(step) + 1);
        let rows = if *selecting {
            (first_row.min(row), first_row.max(row) + 1)
        } else {
            (first_row, first_row + 1)
        };
        if response.drag_stopped() {
            *drawing = None;
            commands.push(if *selecting {
                Command::Select(Some(Selection {
                    rows,
                    steps: (start, end),
                }))
            } else {
                Command::DrawNote {
                    row: first_row,
                    start,
                    end,
                }
            });
        } else {
            // Preview the note being drawn or the rectangle being selected.
            let top = grid.top() + (PITCH_COUNT - rows.1) as f32 * row_height;
            let bottom = grid.top() + (PITCH_COUNT - rows.0) as f32 * row_height;
            painter.rect_filled(
                Rect::from_min_max(
                    Pos2::new(grid.left() + start as f32 * input.zoom, top),
                    Pos2::new(grid.left() + end as f32 * input.zoom, bottom),
                ),
                0.0,
                Color32::from_rgba_unmultiplied(150, 180, 230, 110),
            );
        }
    }
    commands
}
