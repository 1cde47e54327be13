//! A Keras-layout LSTM's forward and backward pass through time on a chunk
//! of sequences, with the gates fused: one matrix product projects every
//! step's input at once, one per step adds the recurrent term, and the
//! weight gradients of all steps come from one product each.
//!
//! Layout: time-major, `[time][batch][..]`, so each step's rows are one
//! contiguous block. Gates in Keras's order: input, forget, cell, output.

use crate::linalg::{self, MatRef, matmul};

/// An LSTM's size.
#[derive(Clone, Copy, Debug)]
pub(super) struct LstmShape {
    pub inputs: usize,
    pub units: usize,
}

/// The LSTM's weights (or their gradients): kernel `[inputs][4u]`,
/// recurrent kernel `[u][4u]`, bias `[4u]`.
#[derive(Debug)]
pub(super) struct LstmWeights<T> {
    pub kernel: T,
    pub recurrent: T,
    pub bias: T,
}

/// An LSTM's shape and weights.
#[derive(Debug)]
pub(super) struct Lstm<'a> {
    pub shape: LstmShape,
    pub weights: LstmWeights<&'a [f32]>,
}

/// Rows of 0/1 values kept as the indices of their ones: a roll step sounds
/// a few of its 106 pitches, so projecting it is a few row additions.
#[derive(Debug, Default)]
pub(super) struct BinaryRows {
    pub ones: Vec<u32>,
    /// `ones[starts[r]..starts[r + 1]]` are row r's.
    pub starts: Vec<usize>,
}

impl BinaryRows {
    /// The rows of `values` (`width` each), if every value is 0 or 1.
    pub fn from_dense(values: &[f32], width: usize, out: &mut Self) -> bool {
        out.ones.clear();
        out.starts.clear();
        out.starts.push(0);
        for row in values.chunks_exact(width) {
            for (index, &v) in row.iter().enumerate() {
                if v == 1.0 {
                    out.ones.push(index as u32);
                } else if v != 0.0 {
                    return false;
                }
            }
            out.starts.push(out.ones.len());
        }
        true
    }

    pub fn row(&self, r: usize) -> &[u32] {
        &self.ones[self.starts[r]..self.starts[r + 1]]
    }
}

/// An input to the LSTM: dense rows, or 0/1 rows by their ones.
#[derive(Clone, Copy, Debug)]
pub(super) enum LstmInput<'a> {
    Dense(&'a [f32]),
    Binary(&'a BinaryRows),
}

/// What the forward pass keeps for the backward pass.
#[derive(Debug, Default)]
pub(super) struct LstmTape {
    /// Gate activations, `[time][batch][4u]`.
    gates: Vec<f32>,
    /// Cell states, `[time][batch][u]`.
    cells: Vec<f32>,
    /// `tanh` of the cell states.
    tanh_cells: Vec<f32>,
    /// Hidden states (the outputs), `[time][batch][u]`.
    pub hidden: Vec<f32>,
    /// Each sequence's factor per hidden unit where it feeds the next step
    /// (recurrent dropout, `[batch][u]`, set before the forward pass; empty:
    /// none).
    recurrent_mask: Vec<f32>,
    /// With a mask, the hidden states times it that fed each next step,
    /// `[time - 1][batch][u]`.
    masked_hidden: Vec<f32>,
    batch: usize,
    time: usize,
}

impl LstmTape {
    /// The recurrent dropout of the next forward passes (`[batch][u]`;
    /// empty: none).
    pub fn set_recurrent_mask(&mut self, mask: &[f32]) {
        self.recurrent_mask.clear();
        self.recurrent_mask.extend_from_slice(mask);
    }
}

/// Scratch of the backward pass.
#[derive(Debug, Default)]
pub(super) struct LstmBackScratch {
    /// Gradient of the gate pre-activations, `[time][batch][4u]`.
    gate_grads: Vec<f32>,
    hidden_next: Vec<f32>,
    cell_next: Vec<f32>,
    /// The cell state before the first step.
    zeros: Vec<f32>,
}

/// Runs `batch` sequences of `time` steps from a zero state; the hidden
/// states land in `tape.hidden`.
pub(super) fn forward(
    lstm: &Lstm<'_>,
    input: LstmInput<'_>,
    batch: usize,
    time: usize,
    tape: &mut LstmTape,
) {
    let (shape, weights) = (lstm.shape, &lstm.weights);
    let units = shape.units;
    let gates_width = 4 * units;
    let rows = batch * time;
    tape.batch = batch;
    tape.time = time;
    resize(&mut tape.gates, rows * gates_width);
    resize(&mut tape.cells, rows * units);
    resize(&mut tape.tanh_cells, rows * units);
    resize(&mut tape.hidden, rows * units);
    project(shape, weights, input, rows, &mut tape.gates);
    let step_gates = batch * gates_width;
    let step_units = batch * units;
    let masked = !tape.recurrent_mask.is_empty();
    debug_assert!(!masked || tape.recurrent_mask.len() == step_units);
    if masked {
        resize(&mut tape.masked_hidden, time.saturating_sub(1) * step_units);
    }
    for t in 0..time {
        let gates = &mut tape.gates[t * step_gates..(t + 1) * step_gates];
        if t > 0 {
            let mut previous = &tape.hidden[(t - 1) * step_units..t * step_units];
            if masked {
                let into = &mut tape.masked_hidden[(t - 1) * step_units..t * step_units];
                for ((m, &h), &keep) in into.iter_mut().zip(previous).zip(&tape.recurrent_mask) {
                    *m = h * keep;
                }
                previous = into;
            }
            matmul(
                gates,
                MatRef::new(previous, batch, units),
                MatRef::new(weights.recurrent, units, gates_width),
                true,
            );
        }
        let (before, now) = tape.cells.split_at_mut(t * step_units);
        let previous_cells = (t > 0).then(|| &before[(t - 1) * step_units..]);
        for r in 0..batch {
            let z = &mut gates[r * gates_width..(r + 1) * gates_width];
            let (sig, rest) = z.split_at_mut(2 * units);
            let (candidate, out_gate) = rest.split_at_mut(units);
            linalg::sigmoid_in_place(sig);
            linalg::sigmoid_in_place(out_gate);
            linalg::tanh_in_place(candidate);
            let (in_gate, forget) = sig.split_at(units);
            let cell = &mut now[r * units..(r + 1) * units];
            for u in 0..units {
                cell[u] = in_gate[u] * candidate[u];
            }
            if let Some(previous) = previous_cells {
                let previous = &previous[r * units..(r + 1) * units];
                for u in 0..units {
                    cell[u] += forget[u] * previous[u];
                }
            }
            let at = t * step_units + r * units;
            let tanh_cell = &mut tape.tanh_cells[at..at + units];
            let hidden = &mut tape.hidden[at..at + units];
            for u in 0..units {
                tanh_cell[u] = linalg::tanh(cell[u]);
                hidden[u] = out_gate[u] * tanh_cell[u];
            }
        }
    }
}

/// Every row's input projection plus the bias, into `out` (`[rows][4u]`).
fn project(
    shape: LstmShape,
    weights: &LstmWeights<&[f32]>,
    input: LstmInput<'_>,
    rows: usize,
    out: &mut [f32],
) {
    let width = 4 * shape.units;
    match input {
        LstmInput::Dense(values) => {
            matmul(
                out,
                MatRef::new(values, rows, shape.inputs),
                MatRef::new(weights.kernel, shape.inputs, width),
                false,
            );
            for row in out.chunks_exact_mut(width) {
                linalg::add_assign(row, weights.bias);
            }
        }
        LstmInput::Binary(binary) => {
            for (r, row) in out.chunks_exact_mut(width).enumerate().take(rows) {
                row.copy_from_slice(weights.bias);
                for &one in binary.row(r) {
                    let one = one as usize;
                    linalg::add_assign(row, &weights.kernel[one * width..(one + 1) * width]);
                }
            }
        }
    }
}

/// Back-propagates `hidden_grads` (the loss's gradient at every hidden
/// state, `[time][batch][u]`) through the run `tape` recorded: adds the
/// weights' gradients to `grads` and, when asked, writes the input's
/// gradient to `input_grads` (`[time][batch][inputs]`).
pub(super) fn backward(
    lstm: &Lstm<'_>,
    input: LstmInput<'_>,
    tape: &LstmTape,
    hidden_grads: &[f32],
    grads: &mut LstmWeights<&mut [f32]>,
    input_grads: Option<&mut [f32]>,
    scratch: &mut LstmBackScratch,
) {
    let (shape, weights) = (lstm.shape, &lstm.weights);
    let (batch, time, units) = (tape.batch, tape.time, shape.units);
    let gates_width = 4 * units;
    let rows = batch * time;
    let step_gates = batch * gates_width;
    let step_units = batch * units;
    resize(&mut scratch.gate_grads, rows * gates_width);
    resize(&mut scratch.hidden_next, step_units);
    resize(&mut scratch.cell_next, step_units);
    scratch.hidden_next.fill(0.0);
    scratch.cell_next.fill(0.0);
    scratch.zeros.clear();
    scratch.zeros.resize(units, 0.0);
    for t in (0..time).rev() {
        for r in 0..batch {
            let at = t * step_units + r * units;
            let gate_at = t * step_gates + r * gates_width;
            let gates = &tape.gates[gate_at..gate_at + gates_width];
            let (in_gate, rest) = gates.split_at(units);
            let (forget, rest) = rest.split_at(units);
            let (candidate, out_gate) = rest.split_at(units);
            let tanh_cell = &tape.tanh_cells[at..at + units];
            let from_output = &hidden_grads[at..at + units];
            let hidden_next = &scratch.hidden_next[r * units..(r + 1) * units];
            let cell_next = &mut scratch.cell_next[r * units..(r + 1) * units];
            let dz = &mut scratch.gate_grads[gate_at..gate_at + gates_width];
            let (d_in, rest) = dz.split_at_mut(units);
            let (d_forget, rest) = rest.split_at_mut(units);
            let (d_candidate, d_out) = rest.split_at_mut(units);
            let previous = if t > 0 {
                &tape.cells[at - step_units..at - step_units + units]
            } else {
                &scratch.zeros[..units]
            };
            for u in 0..units {
                let dh = from_output[u] + hidden_next[u];
                let (o, tc) = (out_gate[u], tanh_cell[u]);
                d_out[u] = dh * tc * o * (1.0 - o);
                let dc = dh * o * (1.0 - tc * tc) + cell_next[u];
                let (i, f, g) = (in_gate[u], forget[u], candidate[u]);
                d_in[u] = dc * g * i * (1.0 - i);
                d_forget[u] = dc * previous[u] * f * (1.0 - f);
                d_candidate[u] = dc * i * (1.0 - g * g);
                cell_next[u] = dc * f;
            }
        }
        if t > 0 {
            matmul(
                &mut scratch.hidden_next,
                MatRef::new(&scratch.gate_grads[t * step_gates..], batch, gates_width),
                MatRef::new(weights.recurrent, units, gates_width).t(),
                false,
            );
            // A dropped unit fed the step nothing.
            for (d, &keep) in scratch.hidden_next.iter_mut().zip(&tape.recurrent_mask) {
                *d *= keep;
            }
        }
    }
    let gate_grads = &scratch.gate_grads[..rows * gates_width];
    if time > 1 {
        let fed = if tape.recurrent_mask.is_empty() {
            &tape.hidden
        } else {
            &tape.masked_hidden
        };
        matmul(
            grads.recurrent,
            MatRef::new(fed, (time - 1) * batch, units).t(),
            MatRef::new(&gate_grads[step_gates..], (time - 1) * batch, gates_width),
            true,
        );
    }
    linalg::add_column_sums(gate_grads, grads.bias);
    match input {
        LstmInput::Dense(values) => matmul(
            grads.kernel,
            MatRef::new(values, rows, shape.inputs).t(),
            MatRef::new(gate_grads, rows, gates_width),
            true,
        ),
        LstmInput::Binary(binary) => {
            for (r, dz) in gate_grads.chunks_exact(gates_width).enumerate() {
                for &one in binary.row(r) {
                    let one = one as usize;
                    linalg::add_assign(&mut grads.kernel[one * gates_width..][..gates_width], dz);
                }
            }
        }
    }
    if let Some(input_grads) = input_grads {
        matmul(
            input_grads,
            MatRef::new(gate_grads, rows, gates_width),
            MatRef::new(weights.kernel, shape.inputs, gates_width).t(),
            false,
        );
    }
}

/// Sets `values` to `len` values (old ones are overwritten by the caller).
pub(super) fn resize(values: &mut Vec<f32>, len: usize) {
    values.resize(len, 0.0);
}
