//! The piano roll as an image: high notes at the top, the seed part and the
//! generated continuation in different colours, the 9-step seed window and
//! the playhead drawn over it. Clicking or dragging picks the seed window.

use eframe::egui::{
    self, Color32, ColorImage, Pos2, Rect, Sense, Stroke, TextureHandle, TextureOptions, Vec2,
};

use super::Command;
use super::parts::{PartsView, part_colour, velocity_shade};
use crate::arrangement::Performance;
use crate::limits;
use crate::model::WINDOW_STEPS;
use crate::roll::{PITCH_COUNT, PianoRoll, Pitch};

/// Columns per texture: GPUs refuse textures wider than 8192 pixels.
const TEXTURE_COLUMNS: usize = 4096;
const BACKGROUND: Color32 = Color32::from_rgb(24, 26, 31);
const BLACK_KEY_ROW: Color32 = Color32::from_rgb(19, 21, 25);
const GENERATED_NOTE: Color32 = Color32::from_rgb(255, 168, 64);
const REPLACED_NOTE: Color32 = Color32::from_rgb(70, 78, 96);
const KEYBOARD_WIDTH: f32 = 34.0;
/// The time ruler above the roll: bar numbers; a click there seeks.
const RULER_HEIGHT: f32 = 14.0;
/// The velocity lane under the roll, when shown.
const VELOCITY_LANE_HEIGHT: f32 = 48.0;

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
            let played = played_colours(input, first, width);
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
                    let part = played[row * width + x];
                    let colour = if new & bit != 0 {
                        GENERATED_NOTE
                    } else if original & bit != 0 && after_seed {
                        // The source beyond the seed window is what the
                        // continuation replaces: shown dimmed.
                        REPLACED_NOTE
                    } else if let Some(colour) = part {
                        colour
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

/// The colour of each cell of columns `first..first + width` that a shown
/// part plays (`[row * width + x]`): the part's colour shaded by velocity;
/// drum hits (which have no cells) as one dim cell at their key.
fn played_colours(input: &RollViewInput<'_>, first: usize, width: usize) -> Vec<Option<Color32>> {
    let mut colours = vec![None; PITCH_COUNT * width];
    let end = first + width;
    for note in &input.performance.notes {
        if note.start >= end || note.end() <= first || !input.parts.visible(note.part) {
            continue;
        }
        let Some(pitch) = Pitch::from_midi(note.key) else {
            continue;
        };
        let colour = velocity_shade(part_colour(input.performance, note.part), note.velocity);
        let cells = if note.in_roll {
            note.start..note.end()
        } else {
            note.start..note.start + 1
        };
        for step in cells.start.max(first)..cells.end.min(end) {
            let cell = &mut colours[pitch.row() * width + step - first];
            // A pitched note shows over a drum hit on the same cell.
            if note.in_roll || cell.is_none() {
                *cell = Some(colour);
            }
        }
    }
    colours
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
    /// The source's notes as its parts play them (colours, velocities).
    pub performance: &'a Performance,
    /// Which parts show.
    pub parts: &'a PartsView,
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
    let lane = if input.parts.velocity_lane {
        VELOCITY_LANE_HEIGHT
    } else {
        0.0
    };
    let row_height = ((ui.available_height() - 8.0 - RULER_HEIGHT - lane) / PITCH_COUNT as f32)
        .clamp(2.0, 8.0)
        * limits::PITCH_ZOOM.clamp(input.pitch_zoom);
    let size = Vec2::new(
        KEYBOARD_WIDTH + steps as f32 * input.zoom,
        RULER_HEIGHT + PITCH_COUNT as f32 * row_height + lane,
    );
    egui::ScrollArea::both()
        .id_salt("roll-scroll")
        .show(ui, |ui| {
            let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
            let painter = ui.painter_at(rect);
            let grid = Rect::from_min_max(
                rect.min + Vec2::new(KEYBOARD_WIDTH, RULER_HEIGHT),
                rect.max - Vec2::new(0.0, lane),
            );
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
            if lane > 0.0 {
                let lane_rect = Rect::from_min_max(
                    Pos2::new(grid.left(), grid.bottom()),
                    Pos2::new(grid.right(), rect.bottom()),
                );
                paint_velocity_lane(&painter, lane_rect, input);
                if let Some(command) = velocity_pointer(&response, lane_rect, input, &painter) {
                    commands.push(command);
                }
            }
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
    // Bar and beat lines from the time signatures, each metre counted from
    // where it begins; the ruler numbers the bars and names each metre.
    let stretches = input.source.metre_stretches();
    let mut bar = 0usize;
    // Where the last ruler label ends: a label that would overlap it is left out.
    let mut label_end = f32::MIN;
    for (index, stretch) in stretches.iter().enumerate() {
        let end = stretches
            .get(index + 1)
            .map_or(steps + 1, |next| next.start.min(steps + 1));
        let (per_beat, per_bar) = (
            stretch.meter.steps_per_beat().max(1),
            stretch.meter.steps_per_bar().max(1),
        );
        if input.zoom * per_beat as f32 >= 4.0 {
            for step in (stretch.start..end).step_by(per_beat) {
                let colour = if (step - stretch.start).is_multiple_of(per_bar) {
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
        let every = (40.0 / (per_bar as f32 * input.zoom)).ceil().max(1.0) as usize;
        let ruler_y = rect.top() + RULER_HEIGHT / 2.0;
        // Where a metre begins, its bar number names it too.
        let named = index > 0 || stretch.signature != crate::meter::TimeSignature::COMMON;
        for step in (stretch.start..end.min(steps)).step_by(per_bar) {
            let first = step == stretch.start && named;
            let x = x_of(step as f64) + 2.0;
            if (bar.is_multiple_of(every) || first) && x >= label_end {
                let (text, colour) = if first {
                    (
                        format!("{} {}", bar + 1, stretch.signature),
                        Color32::from_rgb(240, 200, 120),
                    )
                } else {
                    (format!("{}", bar + 1), Color32::from_gray(170))
                };
                let drawn = painter.text(
                    Pos2::new(x, ruler_y),
                    egui::Align2::LEFT_CENTER,
                    text,
                    egui::FontId::monospace(9.0),
                    colour,
                );
                label_end = drawn.right() + 4.0;
            }
            bar += 1;
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

/// The velocity lane: a stem per note start of the shown parts, as tall as
/// its velocity, in its part's colour.
fn paint_velocity_lane(painter: &egui::Painter, lane: Rect, input: &RollViewInput<'_>) {
    painter.rect_filled(lane, 0.0, Color32::from_gray(28));
    painter.line_segment(
        [lane.left_top(), lane.right_top()],
        Stroke::new(1.0, Color32::from_gray(60)),
    );
    let clip = painter.clip_rect();
    for note in &input.performance.notes {
        if !input.parts.visible(note.part) {
            continue;
        }
        let x = lane.left() + (note.start as f32 + 0.5) * input.zoom;
        if x < clip.left() - 2.0 || x > clip.right() + 2.0 {
            continue;
        }
        let height = (lane.height() - 4.0) * f32::from(note.velocity) / 127.0;
        let colour = part_colour(input.performance, note.part);
        painter.line_segment(
            [
                Pos2::new(x, lane.bottom() - 1.0),
                Pos2::new(x, lane.bottom() - 1.0 - height),
            ],
            Stroke::new((input.zoom * 0.4).clamp(1.0, 3.0), colour),
        );
    }
}

/// Clicking or dragging in the velocity lane sets the velocity of the notes
/// that start at that step (within the selection's rows when it covers the
/// step), on release; while dragging, a line previews it.
fn velocity_pointer(
    response: &egui::Response,
    lane: Rect,
    input: &RollViewInput<'_>,
    painter: &egui::Painter,
) -> Option<Command> {
    let pos = response.interact_pointer_pos()?;
    let press = response.ctx.input(|i| i.pointer.press_origin())?;
    if !lane.contains(press) {
        return None;
    }
    let step = ((press.x - lane.left()) / input.zoom).max(0.0) as usize;
    let share = ((lane.bottom() - 2.0 - pos.y) / (lane.height() - 4.0)).clamp(0.0, 1.0);
    let velocity = (share * 127.0).round().max(1.0) as u8;
    if response.clicked() || response.drag_stopped() {
        let rows = input
            .selection
            .filter(|s| (s.steps.0..s.steps.1).contains(&step))
            .map_or((0, PITCH_COUNT), |s| s.rows);
        return Some(Command::SetVelocity {
            step,
            rows,
            velocity,
        });
    }
    let x = lane.left() + (step as f32 + 0.5) * input.zoom;
    painter.line_segment(
        [Pos2::new(x - 6.0, pos.y), Pos2::new(x + 6.0, pos.y)],
        Stroke::new(2.0, Color32::WHITE),
    );
    painter.text(
        Pos2::new(x + 8.0, pos.y),
        egui::Align2::LEFT_CENTER,
        velocity.to_string(),
        egui::FontId::monospace(10.0),
        Color32::WHITE,
    );
    None
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
    // The velocity lane below the grid takes its own presses.
    let pressed_in_lane = response
        .ctx
        .input(|i| i.pointer.press_origin())
        .is_some_and(|origin| origin.y > grid.bottom());
    if pressed_in_lane {
        return commands;
    }
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
