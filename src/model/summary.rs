//! `cadenza model summary`: a Keras-style table of a network.

use std::fmt::Write as _;

use serde::Serialize;

use super::composer::GAP_FEATURES;
use super::{ArticleNet, ArticleNetConfig, ComposerConfig, NetworkConfig, RollLstmConfig};
use crate::meter::METER_FEATURES;

/// One row of the summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerRow {
    /// Keras-style name, e.g. `time_distributed_2 (TimeDistributed(Conv1D))`.
    pub layer: String,
    /// Output shape with `None` for the batch (and the outer time axis).
    pub output_shape: String,
    pub params: usize,
    /// Parameters not trained by gradient descent (batch-norm moving statistics).
    pub non_trainable: usize,
}

/// The whole table and its totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The model's name and kind, the table's title.
    pub title: String,
    pub rows: Vec<LayerRow>,
    pub total: usize,
    pub trainable: usize,
    pub non_trainable: usize,
}

fn linear_params(layer: &burn::nn::Linear) -> usize {
    let [d_input, d_output] = layer.weight.dims();
    d_input * d_output + layer.bias.as_ref().map_or(0, |_| d_output)
}

/// Describes `model` (built from `config`) layer by layer.
pub fn summarize(model: &ArticleNet, config: &ArticleNetConfig) -> Summary {
    let (window, filters) = (config.window, config.filters);
    let after_pool = [window / 2, window / 4, window / 8];
    let norm_features = config.lstm2_units;
    let row = |layer: &str, shape: String, params: usize, non_trainable: usize| LayerRow {
        layer: layer.to_owned(),
        output_shape: shape,
        params,
        non_trainable,
    };
    let td = |steps: usize| format!("(None, 1, {steps}, {filters})");
    let rows = vec![
        row(
            "time_distributed (TimeDistributed(Conv1D))",
            td(window),
            linear_params(&model.conv0),
            0,
        ),
        row(
            "time_distributed_1 (TimeDistributed(MaxPooling1D))",
            td(after_pool[0]),
            0,
            0,
        ),
        row(
            "time_distributed_2 (TimeDistributed(Conv1D))",
            td(after_pool[0]),
            linear_params(&model.conv2),
            0,
        ),
        row(
            "time_distributed_3 (TimeDistributed(MaxPooling1D))",
            td(after_pool[1]),
            0,
            0,
        ),
        row(
            "time_distributed_4 (TimeDistributed(Conv1D))",
            td(after_pool[1]),
            linear_params(&model.conv4),
            0,
        ),
        row(
            "time_distributed_5 (TimeDistributed(MaxPooling1D))",
            td(after_pool[2]),
            0,
            0,
        ),
        row(
            "time_distributed_6 (TimeDistributed(Conv1D))",
            td(after_pool[2]),
            linear_params(&model.conv6),
            0,
        ),
        row(
            "time_distributed_7 (TimeDistributed(Flatten))",
            format!("(None, 1, {})", after_pool[2] * filters),
            0,
            0,
        ),
        row(
            "lstm (LSTM)",
            format!("(None, 1, {})", model.lstm8.units),
            model.lstm8.param_count(),
            0,
        ),
        row(
            "lstm_1 (LSTM)",
            format!("(None, {})", model.lstm9.units),
            model.lstm9.param_count(),
            0,
        ),
        row(
            "batch_normalization (BatchNormalization)",
            format!("(None, {norm_features})"),
            4 * norm_features,
            2 * norm_features,
        ),
        row(
            "dense (Dense)",
            format!("(None, {})", config.pitches),
            linear_params(&model.dense11),
            0,
        ),
    ];
    let total = rows.iter().map(|r| r.params).sum();
    let non_trainable = rows.iter().map(|r| r.non_trainable).sum();
    Summary {
        title: "article (Conv1D + LSTM, Sim 2020)".to_owned(),
        rows,
        total,
        trainable: total - non_trainable,
        non_trainable,
    }
}

/// Describes the roll LSTM of `config` layer by layer.
pub fn summarize_roll(config: &RollLstmConfig) -> Summary {
    let (pitches, units) = (config.pitches, config.units);
    let lstm = 4 * units * (pitches + units + 1);
    let dense = (units + 1) * pitches;
    let row = |layer: &str, shape: String, params: usize| LayerRow {
        layer: layer.to_owned(),
        output_shape: shape,
        params,
        non_trainable: 0,
    };
    let rows = vec![
        row(
            "lstm (LSTM, state carried)",
            format!("(None, None, {units})"),
            lstm,
        ),
        row("dropout (Dropout)", format!("(None, None, {units})"), 0),
        row(
            "dense (Dense, sigmoid)",
            format!("(None, None, {pitches})"),
            dense,
        ),
    ];
    let total = lstm + dense;
    Summary {
        title: "roll-lstm (LSTM over steps)".to_owned(),
        rows,
        total,
        trainable: total,
        non_trainable: 0,
    }
}

/// Describes the composer of `config` layer by layer.
pub fn summarize_composer(config: &ComposerConfig) -> Summary {
    let (pitches, units, after, nade) = (
        config.pitches,
        config.units,
        config.future_units,
        config.nade_units,
    );
    let inputs = config.step_inputs();
    let context = config.context_size();
    let row = |layer: &str, shape: String, params: usize| LayerRow {
        layer: layer.to_owned(),
        output_shape: shape,
        params,
        non_trainable: 0,
    };
    let rows = vec![
        row(
            &format!("past (LSTM over {pitches} pitches + {METER_FEATURES} meter)"),
            format!("(None, None, {units})"),
            4 * units * (inputs + units + 1),
        ),
        row(
            "future (LSTM, backwards after the gap)",
            format!("(None, None, {after})"),
            4 * after * (inputs + after + 1),
        ),
        row(
            &format!(
                "context (+ first step after, {GAP_FEATURES} gap, {METER_FEATURES} meter{}{}{})",
                if config.has_near_after() {
                    ", first step after by nearness"
                } else {
                    ""
                },
                if config.has_pitch_profile() {
                    ", pitch-class profile"
                } else {
                    ""
                },
                if config.has_key_input() {
                    ", key weights"
                } else {
                    ""
                }
            ),
            format!("(None, None, {context})"),
            0,
        ),
        row(
            "visible_bias (Dense)",
            format!("(None, None, {pitches})"),
            (context + 1) * pitches,
        ),
        row(
            "hidden_bias (Dense)",
            format!("(None, None, {nade})"),
            (context + 1) * nade,
        ),
        row(
            "nade (W in, V out; pitch by pitch)",
            format!("(None, None, {pitches})"),
            2 * pitches * nade,
        ),
    ];
    let total = rows.iter().map(|r| r.params).sum();
    Summary {
        title: "composer (LSTM + NADE, beat, both sides)".to_owned(),
        rows,
        total,
        trainable: total,
        non_trainable: 0,
    }
}

/// Describes a network of any architecture from its config.
pub fn summarize_config(config: &NetworkConfig) -> Summary {
    match config {
        NetworkConfig::Article(config) => summarize(&config.init(&crate::device::cpu()), config),
        NetworkConfig::RollLstm(config) => summarize_roll(config),
        NetworkConfig::Composer(config) => summarize_composer(config),
    }
}

/// Thousands separated by commas, as Keras prints counts.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Summary {
    /// The table as Keras's `model.summary()` draws it.
    pub fn to_text(&self) -> String {
        let width = [52, 22, 12];
        let rule = |c: char| c.to_string().repeat(width.iter().sum::<usize>() + 4);
        let mut text = String::new();
        let _ = writeln!(text, "Model: {}", self.title);
        let _ = writeln!(text, "{}", rule('━'));
        let _ = writeln!(
            text,
            "{:<w0$}  {:<w1$}  {:>w2$}",
            "Layer (type)",
            "Output Shape",
            "Param #",
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        );
        let _ = writeln!(text, "{}", rule('━'));
        for row in &self.rows {
            let _ = writeln!(
                text,
                "{:<w0$}  {:<w1$}  {:>w2$}",
                row.layer,
                row.output_shape,
                grouped(row.params),
                w0 = width[0],
                w1 = width[1],
                w2 = width[2]
            );
        }
        let _ = writeln!(text, "{}", rule('━'));
        let _ = writeln!(text, " Total params: {}", grouped(self.total));
        let _ = writeln!(text, " Trainable params: {}", grouped(self.trainable));
        let _ = writeln!(
            text,
            " Non-trainable params: {}",
            grouped(self.non_trainable)
        );
        text
    }
}

#[cfg(test)]
mod unit_tests {
    use super::grouped;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(251_370), "251,370");
        assert_eq!(grouped(128), "128");
        assert_eq!(grouped(1_000), "1,000");
    }
}
