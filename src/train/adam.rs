//! Adam as Keras 3 computes it, on burn's optimizer state.

use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

/// Adam exactly as Keras 3 computes it: epsilon is added to `sqrt(v)` before
/// the bias correction is applied through the step size. (burn's Adam scales
/// epsilon by the correction, which moves near-zero-gradient weights by up to
/// ~30x more on the first steps.) The state is burn's `AdamState`, so it saves
/// and loads like burn's own.
#[derive(Clone, Debug)]
pub struct KerasAdam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl Default for KerasAdam {
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl Optimizer for KerasAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (m, v, time) = match state {
            Some(state) => (
                state.momentum.moment_1,
                state.momentum.moment_2,
                state.momentum.time,
            ),
            None => (grad.zeros_like(), grad.zeros_like(), 0),
        };
        let time = time + 1;
        // Keras: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2), in f32.
        let m = m.clone() + (grad.clone() - m).mul_scalar(1.0 - self.beta_1);
        let v = v.clone() + (grad.square() - v).mul_scalar(1.0 - self.beta_2);
        let step = time as i32;
        let alpha =
            lr as f32 * (1.0 - self.beta_2.powi(step)).sqrt() / (1.0 - self.beta_1.powi(step));
        let update = m
            .clone()
            .mul_scalar(alpha)
            .div(v.clone().sqrt().add_scalar(self.epsilon));
        let state = AdamState::new(AdaptiveMomentumState::new(time, m, v));
        (tensor - update, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}
