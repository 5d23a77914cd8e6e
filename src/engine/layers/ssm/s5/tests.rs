//! S5 against its recurrence written out in f64 from the parameters (ZOH, the MIMO maps,
//! conjugate symmetry, both directions), its gradient against finite differences, causality,
//! conjugate symmetry against the full state, and the HiPPO-N initialisation.

use dfdx::prelude::*;
use num_complex::Complex64;

use super::*;
use crate::engine::layers::ssm::hippo::diagonalise_normal;
use crate::engine::layers::ssm::testing::output;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};
use crate::engine::ops::kernels::{Composed, CpuKernels};
use crate::engine::params::ParamStore;

const H: usize = 3;

fn config(d_state: usize, blocks: usize, conj_sym: bool, bidirectional: bool) -> S5Config {
    S5Config {
        d_state,
        blocks,
        conj_sym,
        clip_eigs: false,
        dt_min: 1e-2,
        dt_max: 5e-1,
        bidirectional,
    }
}

fn build(config: S5Config) -> (ParamStore<Cpu>, S5) {
    let mut store = ParamStore::new(Cpu::default(), 11);
    let layer = S5::build(&mut Scope::root(&mut store), H, config, GroupId(0)).unwrap();
    (store, layer)
}

/// S5's parameters as plain f64 vectors, in the layouts of the module documentation.
#[derive(Clone)]
struct Weights {
    lambda_re: Vec<f64>,
    lambda_im: Vec<f64>,
    log_dt: Vec<f64>,
    b: Vec<f64>,
    c: Vec<Vec<f64>>,
    d: Vec<f64>,
}

impl Weights {
    fn of(store: &ParamStore<Cpu>, s5: &S5) -> Self {
        let value = |id| -> Vec<f64> { store.values(id).iter().map(|&v| v as f64).collect() };
        Weights {
            lambda_re: value(s5.lambda_re),
            lambda_im: value(s5.lambda_im),
            log_dt: value(s5.log_dt),
            b: value(s5.b),
            c: s5.c.iter().map(|&c| value(c)).collect(),
            d: value(s5.d),
        }
    }

    /// Random weights for `p` states and `width` channels, with one eigenvalue in the right
    /// half-plane (so `clip_eigs` has something to clip).
    fn random(p: usize, width: usize, directions: usize, seed: u64) -> Self {
        let r = |n, s| random_values(n, seed * 10 + s);
        let mut lambda_re: Vec<f64> = r(p, 1).iter().map(|x| -0.1 - x.abs()).collect();
        lambda_re[0] = 0.3;
        Weights {
            lambda_re,
            lambda_im: r(p, 2).iter().map(|x| 3.0 * x).collect(),
            log_dt: r(p, 3).iter().map(|x| -1.5 + x).collect(),
            b: r(2 * p * width, 4),
            c: (0..directions)
                .map(|k| r(2 * width * p, 5 + k as u64))
                .collect(),
            d: r(width, 8),
        }
    }

    fn tensors<T: Tape<f64, Cpu>>(&self, dev: &Cpu) -> S5Tensors<f64, Cpu, T> {
        let t = |v: &Vec<f64>| dev.tensor_from_vec(v.clone(), (v.len(),)).retaped::<T>();
        S5Tensors {
            lambda_re: t(&self.lambda_re),
            lambda_im: t(&self.lambda_im),
            log_dt: t(&self.log_dt),
            b: t(&self.b),
            c: self.c.iter().map(t).collect(),
            d: t(&self.d),
        }
    }
}

/// y for u (batch, len, width) by the sequential recurrence in f64: Λ̄ = exp(ΛΔ),
/// B̄ = (Λ̄ − 1)/Λ·B̃, x_t = Λ̄x_{t∓1} + B̄u_t, y_t = s·Re Σ_dir C̃_dir x_t + D u_t.
fn recurrence(w: &Weights, u: &[f64], len: usize, conj_sym: bool, clip_eigs: bool) -> Vec<f64> {
    let (p, width) = (w.log_dt.len(), w.d.len());
    let batch = u.len() / (len * width);
    let bar: Vec<(Complex64, Complex64)> = (0..p)
        .map(|k| {
            let re = if clip_eigs {
                w.lambda_re[k].min(MAX_EIGENVALUE_REAL_PART)
            } else {
                w.lambda_re[k]
            };
            let lambda = Complex64::new(re, w.lambda_im[k]);
            let lambda_bar = (lambda * w.log_dt[k].exp()).exp();
            (lambda_bar, (lambda_bar - 1.0) / lambda)
        })
        .collect();
    let b = |k: usize, h: usize| Complex64::new(w.b[k * width + h], w.b[(p + k) * width + h]);
    let scale = if conj_sym { 2.0 } else { 1.0 };
    let mut y = vec![0.0; u.len()];
    for e in 0..batch {
        let row = |t: usize| &u[(e * len + t) * width..(e * len + t + 1) * width];
        for t in 0..len {
            for h in 0..width {
                y[(e * len + t) * width + h] = w.d[h] * row(t)[h];
            }
        }
        for (dir, c) in w.c.iter().enumerate() {
            let times: Vec<usize> = match dir {
                0 => (0..len).collect(),
                _ => (0..len).rev().collect(),
            };
            let mut x = vec![Complex64::default(); p];
            for t in times {
                for k in 0..p {
                    let bu: Complex64 = (0..width).map(|h| b(k, h) * row(t)[h]).sum();
                    x[k] = bar[k].0 * x[k] + bar[k].1 * bu;
                }
                for h in 0..width {
                    let cx: Complex64 = (0..p)
                        .map(|k| Complex64::new(c[h * p + k], c[(width + h) * p + k]) * x[k])
                        .sum();
                    y[(e * len + t) * width + h] += scale * cx.re;
                }
            }
        }
    }
    y
}

#[test]
fn the_parallel_scan_equals_the_sequential_recurrence_in_f64() {
    let dev = Cpu::default();
    let (batch, len, width, p) = (2, 23, 4, 5);
    let u = random_values(batch * len * width, 1);
    for (directions, conj_sym, clip_eigs) in [(1, true, true), (2, false, false), (2, true, true)] {
        let w = Weights::random(p, width, directions, 2);
        let expected = recurrence(&w, &u, len, conj_sym, clip_eigs);
        let ut = dev.tensor_from_vec(u.clone(), (batch, len, width));
        let parallel = s5_ssm(
            ut.clone(),
            w.tensors::<NoneTape>(&dev),
            conj_sym,
            clip_eigs,
            &Composed,
        )
        .unwrap();
        assert_close(&parallel.as_vec(), &expected, 1e-10, "parallel scan");
        let sequential = s5_ssm(
            ut,
            w.tensors::<NoneTape>(&dev),
            conj_sym,
            clip_eigs,
            &CpuKernels,
        )
        .unwrap();
        assert_close(&sequential.as_vec(), &expected, 1e-10, "CPU kernel");
    }
}

#[test]
fn the_layer_is_the_recurrence_of_its_parameters() {
    let (batch, len) = (2, 19);
    let u: Vec<f32> = (0..batch * len * H)
        .map(|i| ((i * 31 % 13) as f32 - 6.0) / 6.0)
        .collect();
    for (conj_sym, bidirectional) in [(true, true), (false, false), (true, false)] {
        let (store, s5) = build(config(8, 2, conj_sym, bidirectional));
        let y = output(&store, &s5, &u, (batch, len, H));
        let u64: Vec<f64> = u.iter().map(|&v| v as f64).collect();
        let expected = recurrence(&Weights::of(&store, &s5), &u64, len, conj_sym, false);
        let y: Vec<f64> = y.into_iter().map(f64::from).collect();
        assert_close(
            &y,
            &expected,
            1e-4,
            &format!("conj_sym={conj_sym} bidirectional={bidirectional}"),
        );
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let (batch, len, width, p) = (2, 5, 2, 3);
    for directions in [1, 2] {
        let w = Weights::random(p, width, directions, 3);
        let mut inputs = vec![
            random_values(batch * len * width, 4),
            w.lambda_re.clone(),
            w.lambda_im.clone(),
            w.log_dt.clone(),
            w.b.clone(),
            w.d.clone(),
        ];
        inputs.extend(w.c.iter().cloned());
        for parallel in [false, true] {
            gradcheck(
                &inputs,
                |xs| {
                    let mut xs = xs.into_iter();
                    let mut next = || xs.next().unwrap();
                    let u = next().reshape_like(&(batch, len, width));
                    let (lambda_re, lambda_im, log_dt, b, d) =
                        (next(), next(), next(), next(), next());
                    let c = (0..directions).map(|_| next()).collect();
                    let weights = S5Tensors {
                        lambda_re,
                        lambda_im,
                        log_dt,
                        b,
                        c,
                        d,
                    };
                    let y = match parallel {
                        true => s5_ssm(u, weights, true, true, &Composed),
                        false => s5_ssm(u, weights, true, true, &CpuKernels),
                    };
                    y.unwrap().reshape_like(&(batch * len * width,))
                },
                1e-6,
            );
        }
    }
}

fn forward(store: &ParamStore<Cpu>, s5: &S5, u: &[f32], batch: usize) -> Vec<f32> {
    output(store, s5, u, (batch, u.len() / (batch * H), H))
}

#[test]
fn a_unidirectional_layer_never_reads_the_future() {
    let len = 32;
    let u: Vec<f32> = random_values(len * H, 5)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let mut changed = u.clone();
    let cut = 20;
    for v in &mut changed[(cut + 1) * H..] {
        *v += 1.0;
    }
    for bidirectional in [false, true] {
        let (store, s5) = build(config(8, 2, true, bidirectional));
        let (before, after) = (
            forward(&store, &s5, &u, 1),
            forward(&store, &s5, &changed, 1),
        );
        let past_same = before[..(cut + 1) * H] == after[..(cut + 1) * H];
        // The bidirectional layer shows the change reaches the past when it may.
        assert_eq!(past_same, !bidirectional, "bidirectional={bidirectional}");
        assert_ne!(before[(cut + 1) * H..], after[(cut + 1) * H..]);
    }
}

#[test]
fn conjugate_symmetry_equals_the_full_state() {
    let (batch, len) = (2, 15);
    let u: Vec<f32> = random_values(batch * len * H, 6)
        .iter()
        .map(|&v| v as f32)
        .collect();
    for bidirectional in [false, true] {
        let (half_store, half) = build(config(8, 2, true, bidirectional));
        let (mut full_store, full) = build(config(8, 2, false, bidirectional));
        // The full system: every kept state and its conjugate, with conjugate B̃ rows and C̃
        // columns, and the same Δ and D.
        let p = half.config.states();
        let conjugated = |values: Vec<f32>, imaginary: bool| {
            let mut twice = values.clone();
            twice.extend(values.iter().map(|&v| if imaginary { -v } else { v }));
            twice
        };
        let set = |store: &mut ParamStore<Cpu>, id, values: Vec<f32>| {
            store.set_values(id, &values).unwrap()
        };
        set(
            &mut full_store,
            full.lambda_re,
            conjugated(half_store.values(half.lambda_re), false),
        );
        set(
            &mut full_store,
            full.lambda_im,
            conjugated(half_store.values(half.lambda_im), true),
        );
        set(
            &mut full_store,
            full.log_dt,
            conjugated(half_store.values(half.log_dt), false),
        );
        set(&mut full_store, full.d, half_store.values(half.d));
        // B (2, P, H): the conjugate rows follow the kept ones within each part.
        let b = half_store.values(half.b);
        let (re, im) = b.split_at(p * H);
        let mut full_b = conjugated(re.to_vec(), false);
        full_b.extend(conjugated(im.to_vec(), true));
        set(&mut full_store, full.b, full_b);
        // C (2, H, P): the conjugate columns follow the kept ones within each row.
        for (&half_c, &full_c) in half.c.iter().zip(&full.c) {
            let c = half_store.values(half_c);
            let widened: Vec<f32> = c
                .chunks(p)
                .enumerate()
                .flat_map(|(row, values)| conjugated(values.to_vec(), row >= H))
                .collect();
            set(&mut full_store, full_c, widened);
        }
        let y_half = forward(&half_store, &half, &u, batch);
        let y_full = forward(&full_store, &full, &u, batch);
        assert_close(
            &y_half,
            &y_full,
            1e-5,
            &format!("bidirectional={bidirectional}"),
        );
    }
}

#[test]
fn the_initial_eigenvalues_are_hippo_n_per_block() {
    for conj_sym in [true, false] {
        let (store, s5) = build(config(12, 3, conj_sym, false));
        let hippo = diagonalise_normal(4);
        let kept = if conj_sym { 2 } else { 4 };
        let (re, im) = (store.values(s5.lambda_re), store.values(s5.lambda_im));
        assert_eq!(re.len(), 3 * kept);
        for (k, (&re, &im)) in re.iter().zip(&im).enumerate() {
            let expected = hippo.eigenvalues[k % kept];
            assert!((re as f64 - expected.re).abs() < 1e-6);
            assert!((im as f64 - expected.im).abs() < 1e-6);
        }
        if conj_sym {
            // One of each conjugate pair: the negative frequencies.
            assert!(im.iter().all(|&w| w < 0.0), "{im:?}");
        }
    }
}

#[test]
fn the_full_state_input_matrix_is_the_real_draw_in_the_eigenbasis() {
    // Without conjugate symmetry V is square and unitary, so V·B̃ = B must be real.
    let (store, s5) = build(config(8, 2, false, false));
    let v = diagonalise_normal(4).eigenvectors;
    let b = store.values(s5.b);
    let (p, block) = (8, 4);
    for h in 0..H {
        for row in 0..p {
            let base = row / block * block;
            let value: Complex64 = (0..block)
                .map(|k| {
                    let state = base + k;
                    v[row % block][k]
                        * Complex64::new(b[state * H + h] as f64, b[(p + state) * H + h] as f64)
                })
                .sum();
            assert!(value.im.abs() < 1e-5, "B[{row}][{h}] = {value}");
        }
    }
}

#[test]
fn ssm_parameters_are_in_the_ssm_group() {
    let mut store = ParamStore::new(Cpu::default(), 0);
    let group = store.add_group(crate::engine::params::ParamGroup::new("ssm"));
    let s5 = S5::build(
        &mut Scope::root(&mut store),
        H,
        config(8, 2, true, true),
        group,
    )
    .unwrap();
    for id in [s5.lambda_re, s5.lambda_im, s5.log_dt, s5.b] {
        assert_eq!(store.param(id).group, group, "{}", store.param(id).name);
    }
    for id in s5.c.iter().copied().chain([s5.d]) {
        assert_eq!(
            store.param(id).group,
            DEFAULT_GROUP,
            "{}",
            store.param(id).name
        );
    }
    assert_eq!(store.parameter_count(), s5.config.parameter_count(H));
}

#[test]
fn invalid_configurations_are_refused() {
    assert!(config(8, 3, false, false).validate().is_err());
    assert!(config(12, 4, true, false).validate().is_err());
    assert!(config(12, 4, false, false).validate().is_ok());
    let mut bad_dt = config(8, 2, true, false);
    bad_dt.dt_min = 1.0;
    assert!(bad_dt.validate().is_err());
}
