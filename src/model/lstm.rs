//! An LSTM laid out as Keras lays it out, so Keras weights load unchanged and
//! the parameter count matches the article's: one kernel, one recurrent kernel
//! and one bias, each holding the gates' blocks side by side in the order
//! input, forget, cell, output. (burn's `Lstm` keeps two biases per gate.)

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

/// Keras `LSTM(units)`: tanh activation, sigmoid recurrent activation.
#[derive(Module, Debug)]
pub struct KerasLstm {
    /// `[d_input, 4 * units]`.
    pub kernel: Param<Tensor<2>>,
    /// `[units, 4 * units]`.
    pub recurrent_kernel: Param<Tensor<2>>,
    /// `[4 * units]`.
    pub bias: Param<Tensor<1>>,
    pub units: usize,
}

impl KerasLstm {
    /// Keras's initialisation: Glorot-uniform kernel, orthogonal recurrent
    /// kernel, zero bias except ones for the forget gate.
    pub fn new(d_input: usize, units: usize, device: &Device) -> Self {
        let glorot = Initializer::XavierUniform { gain: 1.0 };
        let orthogonal = Initializer::Orthogonal { gain: 1.0 };
        let mut bias = vec![0.0f32; 4 * units];
        bias[units..2 * units].fill(1.0);
        Self {
            kernel: glorot.init_with([d_input, 4 * units], Some(d_input), Some(4 * units), device),
            recurrent_kernel: orthogonal.init_with(
                [units, 4 * units],
                Some(units),
                Some(4 * units),
                device,
            ),
            bias: Param::from_data(burn::tensor::TensorData::new(bias, [4 * units]), device),
            units,
        }
    }

    /// Number of parameters: `4u(d_input + u + 1)`.
    pub fn param_count(&self) -> usize {
        let [d_input, _] = self.kernel.dims();
        4 * self.units * (d_input + self.units + 1)
    }

    /// Runs the sequence from a zero state.
    /// `input`: `[batch, time, d_input]`; returns every step's hidden state,
    /// `[batch, time, units]`.
    pub fn forward(&self, input: Tensor<3>) -> Tensor<3> {
        self.forward_from(input, None).0
    }

    /// Runs the sequence from `state` (zero when `None`) and returns every
    /// step's hidden state with the state after the last step, so a sequence
    /// can be continued a step at a time.
    pub fn forward_from(
        &self,
        input: Tensor<3>,
        state: Option<LstmState>,
    ) -> (Tensor<3>, Option<LstmState>) {
        self.forward_masked(input, state, None)
    }

    /// [`forward_from`](Self::forward_from) with recurrent dropout: each
    /// hidden state is multiplied by `recurrent_mask` (`[batch, units]`, the
    /// same at every step) where it feeds the next step. Training only.
    pub fn forward_masked(
        &self,
        input: Tensor<3>,
        state: Option<LstmState>,
        recurrent_mask: Option<&Tensor<2>>,
    ) -> (Tensor<3>, Option<LstmState>) {
        let [batch, time, _] = input.dims();
        let units = self.units;
        // The input projection of every step at once: [batch, time, 4u].
        let projected = input.matmul(self.kernel.val().unsqueeze()) + self.bias.val().unsqueeze();
        let (mut hidden, mut cell) = match state {
            Some(LstmState { hidden, cell }) => (Some(hidden), Some(cell)),
            None => (None, None),
        };
        let mut outputs = Vec::with_capacity(time);
        for step in 0..time {
            // [batch, 4u]
            let mut z = projected
                .clone()
                .narrow(1, step, 1)
                .reshape([batch, 4 * units]);
            // From the zero state the recurrent term is zero: skip the matmul.
            if let Some(h) = &hidden {
                let fed = match recurrent_mask {
                    Some(mask) => h.clone() * mask.clone(),
                    None => h.clone(),
                };
                z = z + fed.matmul(self.recurrent_kernel.val());
            }
            let gate = |k: usize| z.clone().narrow(1, k * units, units);
            let input_gate = sigmoid(gate(0));
            let candidate = gate(2).tanh() * input_gate;
            let new_cell = match cell.take() {
                Some(c) => sigmoid(gate(1)) * c + candidate,
                None => candidate,
            };
            let new_hidden = sigmoid(gate(3)) * new_cell.clone().tanh();
            outputs.push(new_hidden.clone().unsqueeze_dim(1));
            cell = Some(new_cell);
            hidden = Some(new_hidden);
        }
        let state = match (hidden, cell) {
            (Some(hidden), Some(cell)) => Some(LstmState { hidden, cell }),
            _ => None,
        };
        (Tensor::cat(outputs, 1), state)
    }
}

/// An LSTM's hidden and cell state after some steps, `[batch, units]` each.
#[derive(Clone, Debug)]
pub struct LstmState {
    pub hidden: Tensor<2>,
    pub cell: Tensor<2>,
}
