//! The normal distribution as the ordinal likelihood needs it: its tails to
//! full relative precision (a rating far beyond what the model predicts must
//! not turn into 0/0), the moments of a normal variable known to lie in an
//! interval, and the expected rating on an ordinal scale.
//!
//! An ordinal rating k on a scale of `steps` steps mapped onto 0..1 says the
//! rater's latent judgement y* fell between the half-steps around it,
//! ((k − ½)/steps, (k + ½)/steps], the ends open: the scale's own points are
//! the cut-points of a cumulative-probit model. See docs/calibration.md.

use std::f64::consts::SQRT_2;

/// √(2π).
const SQRT_TAU: f64 = 2.506_628_274_631_000_7;

/// Standard normal density.
pub fn pdf(x: f64) -> f64 {
    exp(-0.5 * x * x) * (1.0 / SQRT_TAU)
}

/// eˣ for x ≤ 709 to a relative 10⁻⁸ (0 below −708): 2ᵏ·eʳ with
/// |r| ≤ ln 2/2 and eʳ by its Taylor polynomial to r⁸/8! ≈ 5·10⁻⁹. Inlined
/// into the hot loop, where the library's exp (exact to an ulp, behind a
/// call) cost a fifth of a fit; the tail functions it serves are good to
/// 10⁻⁷ anyway.
#[inline]
const fn exp(x: f64) -> f64 {
    if x < -708.0 {
        return 0.0;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // Nearest integer by truncation (f64::round is a library call on the
    // baseline x86-64 target).
    let scaled = x * std::f64::consts::LOG2_E;
    let k = (scaled + if scaled < 0.0 { -0.5 } else { 0.5 }) as i64;
    let r = x - k as f64 * LN2_HI - k as f64 * LN2_LO;
    let (r2, r4) = (r * r, r * r * r * r);
    let p = (1.0 + r)
        + (0.5 + r * (1.0 / 6.0)) * r2
        + ((1.0 / 24.0 + r * (1.0 / 120.0)) + (1.0 / 720.0 + r * (1.0 / 5040.0)) * r2 + r4 * (1.0 / 40320.0)) * r4;
    // k is within −1022..=1023 here: a normal power of two.
    f64::from_bits(((k + 1023) as u64) << 52) * p
}

/// exp(z²)·erfc(z) for z ≥ 0, the scaled complementary error function, by
/// the Chebyshev fit of Numerical Recipes (2nd ed., §6.2, `erfcc`): relative
/// error below 1.2·10⁻⁷ everywhere, one exp. Scaled, it neither underflows
/// nor loses precision in the far tail. (libm's erfc is exact to an ulp but
/// three times slower, and the fit evaluates this for every rating on every
/// sweep; 10⁻⁷ is far below what any rating can tell.)
const fn erfcx(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * z);
    // The polynomial by Estrin's scheme: four dependent steps instead of
    // Horner's nine (latency, not arithmetic, is its cost).
    let (t2, c) = (t * t, ERFCC);
    let t4 = t2 * t2;
    let low = (c[0] + c[1] * t) + (c[2] + c[3] * t) * t2 + ((c[4] + c[5] * t) + (c[6] + c[7] * t) * t2) * t4;
    let p = low + (c[8] + c[9] * t) * (t4 * t4);
    t * exp(p)
}

/// Coefficients of the exponent in [`erfcx`] (Numerical Recipes' `erfcc`).
const ERFCC: [f64; 10] = [
    -1.265_512_23,
    1.000_023_68,
    0.374_091_96,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_07,
    -1.135_203_98,
    1.488_515_87,
    -0.822_152_23,
    0.170_872_77,
];

/// √(π/2).
const SQRT_HALF_PI: f64 = 1.253_314_137_315_500_3;

/// Mills' ratio Q(x)/φ(x) for x ≥ 0 (Q the upper tail), 0 at +∞:
/// √(π/2)·erfcx(x/√2). Below [`MILLS_TABLE_END`], where nearly every
/// rating's interval ends, it is read from [`MILLS_TABLE`] by cubic Hermite
/// interpolation: the slopes come from the ratio's own differential equation,
/// M′(x) = x·M(x) − 1, so two loads and a dozen multiplications replace a
/// division and an exponential (the category computations were half of an
/// ordinal sweep). The interpolation adds under 10⁻⁸ to the closed form's
/// 1.2·10⁻⁷ (unit test `the_tabulated_mills_ratio_is_the_computed_one`).
#[inline]
fn mills(x: f64) -> f64 {
    if x < MILLS_TABLE_END {
        let scaled = x * MILLS_NODES_PER_UNIT;
        let i = scaled as usize; // x ≥ 0: truncation is the floor
        let u = scaled - i as f64;
        let (m0, m1) = (MILLS_TABLE[i], MILLS_TABLE[i + 1]);
        let x0 = i as f64 * (1.0 / MILLS_NODES_PER_UNIT);
        let h = 1.0 / MILLS_NODES_PER_UNIT;
        let (d0, d1) = ((x0 * m0 - 1.0) * h, ((x0 + h) * m1 - 1.0) * h);
        // Hermite form around the chord: m0 + u·Δ + u(1−u)·((1−u)(d0 − Δ) − u(d1 − Δ)).
        let delta = m1 - m0;
        return m0 + u * delta + u * (1.0 - u) * ((1.0 - u) * (d0 - delta) - u * (d1 - delta));
    }
    mills_computed(x)
}

/// [`mills`] from its closed form (the far tail, and the table's nodes).
const fn mills_computed(x: f64) -> f64 {
    if x == f64::INFINITY {
        return 0.0;
    }
    SQRT_HALF_PI * erfcx(x / SQRT_2)
}

/// Where [`MILLS_TABLE`] ends, and its nodes per unit of x.
const MILLS_TABLE_END: f64 = 8.0;
const MILLS_NODES_PER_UNIT: f64 = 64.0;
const MILLS_NODES: usize = 8 * 64 + 1;

/// Mills' ratio at x = i/64, i = 0..=512, computed when the program is
/// compiled.
static MILLS_TABLE: [f64; MILLS_NODES] = {
    let mut table = [0.0; MILLS_NODES];
    let mut i = 0;
    while i < MILLS_NODES {
        table[i] = mills_computed(i as f64 / MILLS_NODES_PER_UNIT);
        i += 1;
    }
    table
};

/// The upper tail Q(x) for x ≥ 0 (0 at +∞).
fn upper_tail(x: f64) -> f64 {
    if x == f64::INFINITY { 0.0 } else { pdf(x) * mills(x) }
}

/// Standard normal distribution function, to full relative precision in
/// both tails.
pub fn cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x >= 0.0 { 1.0 - upper_tail(x) } else { upper_tail(-x) }
}

/// Moments of a standard normal variable given that it lies in (a, b]
/// (a < b, either may be infinite): its conditional mean, and
/// 1 − its conditional variance — the share of a point observation's
/// information about the location that knowing only the interval keeps
/// (the negative second derivative of log P(a < X ≤ b) in the location).
/// The share is computed without the `1 −`, so it keeps its precision when
/// it is tiny (a rating at the scale's end from a candidate far beyond it).
pub fn interval_moments(a: f64, b: f64) -> (f64, f64) {
    debug_assert!(a < b, "({a}, {b}]");
    if b <= 0.0 {
        // Mirror into the upper half, where the tail formulas are stable.
        let (mean, info) = interval_moments(-b, -a);
        return (-mean, info);
    }
    // (One division per case: the fit evaluates this for every rating on
    // every sweep.)
    let (mean, info) = if a >= 0.0 {
        // Both ends in the upper tail: everything relative to φ(a).
        let (r, b_term) = if b.is_finite() {
            let r = exp(-0.5 * (b - a) * (b + a));
            (r, b * r)
        } else {
            (0.0, 0.0)
        };
        let inverse_mass = 1.0 / (mills(a) - r * mills(b));
        let mean = (1.0 - r) * inverse_mass;
        (mean, mean * mean - (a - b_term) * inverse_mass)
    } else {
        // The interval holds the centre: its mass is not small.
        let (pa, apa, tail_a) = if a.is_finite() {
            let pa = pdf(a);
            (pa, a * pa, pa * mills(-a))
        } else {
            (0.0, 0.0, 0.0)
        };
        let (pb, bpb, tail_b) = if b.is_finite() {
            let pb = pdf(b);
            (pb, b * pb, pb * mills(b))
        } else {
            (0.0, 0.0, 0.0)
        };
        let inverse_mass = 1.0 / (1.0 - tail_a - tail_b);
        let mean = (pa - pb) * inverse_mass;
        (mean, mean * mean - (apa - bpb) * inverse_mass)
    };
    (mean, info.clamp(1e-12, 1.0))
}

/// The rating an average rater gives on a scale of `steps` steps (0..1),
/// expected over their latent noise `sd`, when their latent judgement is
/// centred on `x`: Σ_t Φ((x − c_t)/sd)/steps over the cut-points
/// c_t = (t − ½)/steps. With `steps` 0 (a continuous scale) it is `x`.
pub fn expected_rating(x: f64, steps: u32, sd: f64) -> f64 {
    if steps == 0 {
        return x;
    }
    let n = f64::from(steps);
    (1..=steps).map(|t| cdf((x - (f64::from(t) - 0.5) / n) / sd)).sum::<f64>() / n
}

/// The derivative of [`expected_rating`] in `x`.
pub fn expected_rating_slope(x: f64, steps: u32, sd: f64) -> f64 {
    if steps == 0 {
        return 1.0;
    }
    let n = f64::from(steps);
    (1..=steps).map(|t| pdf((x - (f64::from(t) - 0.5) / n) / sd)).sum::<f64>() / (n * sd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn the_inlined_exp_agrees_with_the_library() {
        for i in -7080..=7080 {
            let x = f64::from(i) / 10.0 + 0.037;
            let (ours, library) = (exp(x), x.exp());
            assert!((ours - library).abs() <= 2e-8 * library, "exp({x}): {ours} against {library}");
        }
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn the_tabulated_mills_ratio_is_the_computed_one() {
        let mut worst: f64 = 0.0;
        for i in 0..=90_000 {
            let x = f64::from(i) * 1e-4 + 1.3e-6;
            let (tabulated, computed) = (mills(x), mills_computed(x));
            worst = worst.max((tabulated - computed).abs() / computed);
        }
        assert!(worst < 2e-8, "worst relative difference {worst:e}");
        // The nodes are the computed values, and beyond the table it is computed.
        assert_eq!(mills(0.0), mills_computed(0.0));
        assert_eq!(mills(2.5), mills_computed(2.5));
        assert_eq!(mills(12.0), mills_computed(12.0));
        assert_eq!(mills(f64::INFINITY), 0.0);
    }

    #[test]
    fn cdf_matches_tables_in_the_centre_and_the_far_tails() {
        // Reference values: R's pnorm (and scipy.stats.norm.cdf).
        for (x, p) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_542_9),
            (-1.959_963_984_540_054, 0.025),
            (-5.0, 2.866_515_718_791_939e-7),
            (-10.0, 7.619_853_024_160_527e-24),
            (-30.0, 4.906_713_927_148_187e-198),
            (3.0, 0.998_650_101_968_369_9),
        ] {
            assert!(close(cdf(x), p, 2e-7), "Φ({x}) = {} against {p}", cdf(x));
        }
        assert_eq!(cdf(f64::NEG_INFINITY), 0.0);
        assert_eq!(cdf(f64::INFINITY), 1.0);
    }

    #[test]
    fn interval_moments_match_the_truncated_normal() {
        // (a, b, mean, variance): half-normal, symmetric and tail intervals;
        // reference values from mpmath at 60 digits (the truncated normal's
        // moments, (φ(a) − φ(b))/Z and 1 + (aφ(a) − bφ(b))/Z − mean²).
        for (a, b, mean, var) in [
            (0.0, f64::INFINITY, 0.797_884_560_802_865_4, 0.363_380_227_632_418_7),
            (f64::NEG_INFINITY, 0.0, -0.797_884_560_802_865_4, 0.363_380_227_632_418_7),
            (-1.0, 1.0, 0.0, 0.291_125_094_772_793_2),
            (2.0, 3.0, 2.315_821_326_743_782, 0.061_520_779_574_489_97),
            (-3.0, -2.0, -2.315_821_326_743_782, 0.061_520_779_574_489_97),
            (-0.5, 2.0, 0.445_743_778_272_514_8, 0.376_593_836_136_835_9),
            (1.5, f64::INFINITY, 1.938_677_166_622_543_2, 0.149_546_593_550_202_7),
            (30.0, 31.0, 30.033_259_667_433_622, 0.001_103_771_511_835_282_3),
            (f64::NEG_INFINITY, -40.0, -40.024_968_847_207_26, 0.000_622_668_378_591_388_8),
        ] {
            let (m, info) = interval_moments(a, b);
            assert!(close(m, mean, 1e-6) || (m - mean).abs() < 1e-9, "({a}, {b}]: mean {m} against {mean}");
            // The variance is a difference of terms of size mean²: it keeps
            // the tail function's 10⁻⁷ relative to those.
            let tolerance = 1e-6 * (1.0 + mean * mean);
            assert!((1.0 - info - var).abs() < tolerance, "({a}, {b}]: variance {} against {var}", 1.0 - info);
        }
        // Far inside an open end the category says almost nothing, and the
        // share of information stays a small positive number, not 0 or NaN.
        let (m, info) = interval_moments(-40.0, f64::INFINITY);
        assert!((0.0..1e-12).contains(&m) && info > 0.0 && info <= 1e-12, "{m} {info}");
    }

    #[test]
    fn the_expected_rating_runs_from_one_end_of_the_scale_to_the_other() {
        assert!(expected_rating(-5.0, 4, 0.1) < 1e-9);
        assert!(expected_rating(6.0, 4, 0.1) > 1.0 - 1e-9);
        // Symmetric around the middle, and close to the identity there.
        assert!((expected_rating(0.5, 4, 0.125) - 0.5).abs() < 1e-12);
        assert!((expected_rating(0.625, 4, 0.125) - 0.625).abs() < 0.01);
        // Its slope is the derivative.
        let (x, h) = (0.8, 1e-6);
        let numeric = (expected_rating(x + h, 4, 0.13) - expected_rating(x - h, 4, 0.13)) / (2.0 * h);
        assert!((expected_rating_slope(x, 4, 0.13) - numeric).abs() < 1e-6);
        assert_eq!(expected_rating(0.3, 0, 0.1), 0.3);
    }
}
