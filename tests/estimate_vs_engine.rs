//! `lra check`'s parameter estimate equals the parameter count of the model the engine builds.

mod common;

use lra::engine::params::ParamStore;
use lra::estimate::estimate;
use lra::train::compile::{build_model, DataShape, Role};
use lra::train::objective::Corruption;

/// The estimated and the built parameter count of the fine-tuning model of `text`.
fn parameters(text: &str) -> (u64, usize) {
    let x = common::experiment(text);
    let mut store = ParamStore::new(dfdx::prelude::Cpu::default(), 0);
    build_model(&x, DataShape::nominal(&x, Role::Finetune), &mut store).unwrap();
    (estimate(&x, None).params, store.parameter_count())
}

#[test]
fn transformer_estimates_match_built_models() {
    for model in [
        "model transformer { layers 2 d_model 32 heads 4 ffn 64 }",
        "model transformer { layers 1 d_model 16 heads 2 norm post position learned }",
        "model transformer { layers 2 d_model 32 heads 4 causal true position rotary }",
        "model transformer { layers 1 d_model 16 heads 2 norm_kind batch }",
    ] {
        for task in [
            "task listops { max_len 256 }",
            "task retrieval { max_len 128 }",
            "task image { encoding continuous }",
            "task pathfinder { }",
        ] {
            let text = format!("experiment \"e\" {{ {task} {model} finetune {{ epochs 1 }} }}");
            let (estimated, built) = parameters(&text);
            assert_eq!(estimated, built as u64, "{task} {model}");
        }
    }
}

#[test]
fn state_space_estimates_match_built_models() {
    for model in [
        "model s4 { layers 2 d_model 16 d_state 8 }",
        "model s4 { layers 1 d_model 8 d_state 6 mode diag channels 2 bidirectional false }",
        "model s4 { layers 1 d_model 8 d_state 4 mode diag init lin post none }",
        "model dlr { layers 2 d_model 16 d_state 8 }",
        "model dlr { layers 1 d_model 8 d_state 3 bidirectional false norm post }",
        "model s4d { layers 1 d_model 8 d_state 4 }",
        "model lru { layers 1 d_model 8 d_state 4 }",
        "model s5 { layers 2 d_model 16 d_state 8 blocks 2 }",
        "model s5 { layers 1 d_model 16 d_state 6 blocks 3 conj_sym false bidirectional false }",
        "model s5 { layers 1 d_model 8 d_state 8 blocks 4 post none norm post norm_kind batch }",
        "model mega { layers 2 d_model 16 d_attin 8 d_attout 24 ema_dims 4 }",
        "model mega { layers 1 d_model 16 d_attin 8 d_attout 8 chunk 32 bidirectional false attention_activation laplace }",
        "model mega { layers 1 d_model 8 d_attin 4 d_attout 16 ffn_expand 4 norm post norm_kind batch ssm_lr 1e-3 }",
        // A chunk longer than some tasks' inputs: the bias table is clamped to the input.
        "model mega { layers 1 d_model 8 d_attin 4 d_attout 8 chunk 512 attention_dropout 0.1 }",
    ] {
        for task in [
            "task listops { max_len 256 }",
            "task retrieval { max_len 128 }",
            "task image { encoding continuous }",
        ] {
            let text = format!("experiment \"e\" {{ {task} {model} finetune {{ epochs 1 }} }}");
            let (estimated, built) = parameters(&text);
            assert_eq!(estimated, built as u64, "{task} {model}");
        }
    }
}

#[test]
fn pretraining_estimates_include_the_indicator_channel_and_the_prediction_head() {
    let text = "experiment \"e\" { task image { encoding continuous } model transformer { layers 1 d_model 16 heads 2 } pretrain masked { loss l1 epochs 1 } finetune { epochs 1 } }";
    let x = common::experiment(text);
    let corruption = Corruption::Masked {
        rate: 0.5,
        span: None,
    };
    let mut store = ParamStore::new(dfdx::prelude::Cpu::default(), 0);
    build_model(
        &x,
        DataShape::nominal(&x, Role::Pretrain(corruption)),
        &mut store,
    )
    .unwrap();
    // The run swaps the classifier for a per-position head predicting one value (L1).
    let classifier = (16 * 16 + 16) + (16 * 10 + 10);
    let prediction_head = 16 + 1;
    assert_eq!(
        estimate(&x, None).pretrain_params.unwrap(),
        (store.parameter_count() - classifier + prediction_head) as u64
    );
}
