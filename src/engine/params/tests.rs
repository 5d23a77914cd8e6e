use super::*;

#[test]
fn lecun_normal_is_truncated_at_two_deviations_with_variance_one_over_fan_in() {
    let mut rng = StdRng::seed_from_u64(3);
    let fan_in = 16;
    let draws = Init::LecunNormal { fan_in }.sample(200_000, &mut rng);
    let bound = 2.0 / (fan_in as f32).sqrt() / TRUNCATED_STD;
    assert!(draws.iter().all(|x| x.abs() <= bound + 1e-6));
    let mean = draws.iter().map(|&x| x as f64).sum::<f64>() / draws.len() as f64;
    let variance = draws
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / draws.len() as f64;
    assert!(mean.abs() < 2e-3, "mean {mean}");
    assert!(
        (variance * fan_in as f64 - 1.0).abs() < 0.02,
        "variance {variance}"
    );
}
