//! The layer against S4D written out as a recurrence in f64 from its parameters: the
//! discretisation (ZOH), the parameter layout and the bidirectional form.

use dfdx::prelude::*;
use num_complex::Complex64;

use super::*;
use crate::engine::layers::ssm::testing::{assert_matches_reference, output};
use crate::engine::params::{ParamStore, DEFAULT_GROUP};

const H: usize = 3;

fn build(init: S4dInit, channels: usize, bidirectional: bool) -> (ParamStore<Cpu>, S4d) {
    let mut store = ParamStore::new(Cpu::default(), 5);
    let config = S4dConfig {
        d_state: 8,
        init,
        dt_min: 1e-2,
        dt_max: 5e-1,
        channels,
        bidirectional,
    };
    let layer = S4d::build(&mut Scope::root(&mut store), H, config, DEFAULT_GROUP).unwrap();
    (store, layer)
}

/// y[b, t, c·H + h] by the recurrence x_t = λ x_{t−1} + B̄ u_t, y_t = 2·Re(C x_t) + D u_t, and
/// for the reversed half, the state after t (exclusive).
fn reference(store: &ParamStore<Cpu>, s4d: &S4d, u: &[f32], batch: usize, len: usize) -> Vec<f64> {
    let value = |id| -> Vec<f64> { store.values(id).iter().map(|&v| v as f64).collect() };
    let (log_dt, log_a, a_im, c, d) = (
        value(s4d.log_dt),
        value(s4d.log_a_real),
        value(s4d.a_imag),
        value(s4d.c),
        value(s4d.d),
    );
    let cfg = &s4d.config;
    let (n, channels, kernels) = (cfg.d_state / 2, cfg.channels, cfg.kernels());
    let half = kernels * H * n;
    let mut y = vec![0.0; batch * len * channels * H];
    for b in 0..batch {
        for ch in 0..channels {
            for h in 0..H {
                let dt = log_dt[h].exp();
                let modes: Vec<(Complex64, Complex64)> = (0..n)
                    .map(|m| {
                        let a = Complex64::new(-log_a[h * n + m].exp(), a_im[h * n + m]);
                        let lambda = (a * dt).exp();
                        (lambda, (lambda - 1.0) / a)
                    })
                    .collect();
                let weight = |k: usize, m: usize| {
                    let i = (k * H + h) * n + m;
                    Complex64::new(c[i], c[half + i])
                };
                let input = |t: usize| u[(b * len + t) * H + h] as f64;
                let out = |t: usize| (b * len + t) * channels * H + ch * H + h;
                let mut state = vec![Complex64::default(); n];
                for t in 0..len {
                    let mut acc = d[ch * H + h] * input(t);
                    for m in 0..n {
                        state[m] = modes[m].0 * state[m] + modes[m].1 * input(t);
                        acc += 2.0 * (weight(ch, m) * state[m]).re;
                    }
                    y[out(t)] = acc;
                }
                if cfg.bidirectional {
                    let mut state = vec![Complex64::default(); n];
                    for t in (0..len).rev() {
                        for m in 0..n {
                            y[out(t)] += 2.0 * (weight(channels + ch, m) * state[m]).re;
                            state[m] = modes[m].0 * state[m] + modes[m].1 * input(t);
                        }
                    }
                }
            }
        }
    }
    y
}

#[test]
fn the_layer_is_the_discretised_recurrence() {
    let (batch, len) = (2, 21);
    let u: Vec<f32> = (0..batch * len * H)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    for (init, channels, bidirectional) in [
        (S4dInit::Lin, 1, false),
        (S4dInit::Inv, 2, true),
        (S4dInit::Lin, 1, true),
        (S4dInit::Legs, 1, true),
    ] {
        let (store, s4d) = build(init, channels, bidirectional);
        let y = output(&store, &s4d, &u, (batch, len, H));
        let expected = reference(&store, &s4d, &u, batch, len);
        let case = format!("{init:?} c={channels} bidirectional={bidirectional}");
        assert_matches_reference(&y, &expected, &case);
    }
}

/// S4D-LegS: A is the diagonal of HiPPO-LegS's normal part, and C is the same CN(0, 1) draw as
/// the B = 1 inits times B̃ = VᴴB, so that the kernel starts as the reference's (C, B̃) pair.
#[test]
fn legs_takes_a_from_hippo_and_folds_its_input_vector_into_c() {
    let (lin_store, lin) = build(S4dInit::Lin, 2, true);
    let (legs_store, legs) = build(S4dInit::Legs, 2, true);
    let hippo = crate::engine::layers::ssm::hippo::legs_nplr(8);
    let n = hippo.lambda.len();
    let (log_a, a_im) = (
        legs_store.values(legs.log_a_real),
        legs_store.values(legs.a_imag),
    );
    for h in 0..H {
        for m in 0..n {
            let a = Complex64::new(-(log_a[h * n + m] as f64).exp(), a_im[h * n + m] as f64);
            assert!((a - hippo.lambda[m]).norm() < 1e-5, "A[{h}, {m}] = {a}");
        }
    }
    let (c_lin, c_legs) = (lin_store.values(lin.c), legs_store.values(legs.c));
    let half = c_lin.len() / 2;
    for i in 0..half {
        let expected = Complex64::new(c_lin[i] as f64, c_lin[half + i] as f64) * hippo.b[i % n];
        let got = Complex64::new(c_legs[i] as f64, c_legs[half + i] as f64);
        assert!(
            (got - expected).norm() < 1e-5 * (1.0 + expected.norm()),
            "C[{i}]"
        );
    }
    // LegS's modes differ from Lin's: the fold is not the identity.
    assert!(hippo.b.iter().any(|b| (b - 1.0).norm() > 0.1));
}

#[test]
fn legs_refuses_an_odd_state_size() {
    let config = S4dConfig {
        d_state: 7,
        init: S4dInit::Legs,
        dt_min: 1e-2,
        dt_max: 5e-1,
        channels: 1,
        bidirectional: false,
    };
    let mut store = ParamStore::new(Cpu::default(), 5);
    let err = S4d::build(&mut Scope::root(&mut store), H, config, DEFAULT_GROUP).unwrap_err();
    assert!(err.to_string().contains("even d_state"), "{err}");
}
