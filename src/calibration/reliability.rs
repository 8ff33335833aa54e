//! Inter-rater reliability, exactly as the literature defines it.
//!
//! - ICC(1,1), ICC(2,1), ICC(3,1) and their k-rater versions from the two-way
//!   ANOVA mean squares of Shrout & Fleiss (1979), for complete designs (every
//!   subject rated by the same k raters).
//! - For incomplete designs (panels differ by candidate, as in hiring), ICC(2,1)
//!   and ICC(2,k) are the same ratios of variance components — subject, rater and
//!   residual — with the components estimated by moments from a least-squares
//!   fit of the additive two-way model; on complete data this reproduces the
//!   ANOVA values exactly.
//! - Krippendorff's alpha (2011) for nominal, ordinal, interval and ratio data,
//!   through the coincidence matrix, with missing values as alpha allows (units
//!   with fewer than two values are not pairable and drop out).

use std::collections::BTreeMap;

/// The six intraclass correlations of Shrout & Fleiss (1979).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Icc {
    pub icc1_1: f64,
    pub icc2_1: f64,
    pub icc3_1: f64,
    pub icc1_k: f64,
    pub icc2_k: f64,
    pub icc3_k: f64,
}

/// The two-way ANOVA of a complete matrix: (BMS, JMS, WMS, EMS, n, k).
fn mean_squares(rows: &[Vec<f64>]) -> Option<(f64, f64, f64, f64, f64, f64)> {
    let n = rows.len();
    let k = rows.first()?.len();
    if n < 2 || k < 2 || rows.iter().any(|r| r.len() != k) {
        return None;
    }
    let (nf, kf) = (n as f64, k as f64);
    let grand = rows.iter().flatten().sum::<f64>() / (nf * kf);
    let row_means: Vec<f64> = rows.iter().map(|r| r.iter().sum::<f64>() / kf).collect();
    let col_means: Vec<f64> = (0..k).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / nf).collect();
    let bms = kf * row_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (nf - 1.0);
    let jms = nf * col_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (kf - 1.0);
    let wms = rows.iter().zip(&row_means).map(|(r, m)| r.iter().map(|x| (x - m).powi(2)).sum::<f64>()).sum::<f64>()
        / (nf * (kf - 1.0));
    let ems = rows
        .iter()
        .zip(&row_means)
        .map(|(r, rm)| r.iter().zip(&col_means).map(|(x, cm)| (x - rm - cm + grand).powi(2)).sum::<f64>())
        .sum::<f64>()
        / ((nf - 1.0) * (kf - 1.0));
    Some((bms, jms, wms, ems, nf, kf))
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    if den.abs() > 1e-12 { Some(num / den) } else { None }
}

/// Shrout & Fleiss ICCs of a complete `n` subjects × `k` raters matrix (rows are
/// subjects). `None` for fewer than 2 subjects or raters, ragged rows, or when
/// any of the six ratios is undefined (no variation).
pub fn icc_complete(rows: &[Vec<f64>]) -> Option<Icc> {
    let (bms, jms, wms, ems, nf, kf) = mean_squares(rows)?;
    Some(Icc {
        icc1_1: ratio(bms - wms, bms + (kf - 1.0) * wms)?,
        icc2_1: ratio(bms - ems, bms + (kf - 1.0) * ems + kf * (jms - ems) / nf)?,
        icc3_1: ratio(bms - ems, bms + (kf - 1.0) * ems)?,
        icc1_k: ratio(bms - wms, bms)?,
        icc2_k: ratio(bms - ems, bms + (jms - ems) / nf)?,
        icc3_k: ratio(bms - ems, bms)?,
    })
}

/// ICC(2,1) and ICC(2,k) of possibly incomplete data `(subject, rater, value)`,
/// where k is the mean number of ratings per subject. Exact Shrout & Fleiss
/// values when the design is complete. `None` when undefined (fewer than two
/// subjects or raters, no residual degrees of freedom, or no variation).
pub fn icc2(cells: &[(u32, u32, f64)]) -> Option<(f64, f64)> {
    let mut subjects: BTreeMap<u32, usize> = BTreeMap::new();
    let mut raters: BTreeMap<u32, usize> = BTreeMap::new();
    for &(s, r, _) in cells {
        let ns = subjects.len();
        subjects.entry(s).or_insert(ns);
        let nr = raters.len();
        raters.entry(r).or_insert(nr);
    }
    let (ns, nr, n) = (subjects.len(), raters.len(), cells.len());
    if ns < 2 || nr < 2 {
        return None;
    }
    // Complete design: the ANOVA formulas.
    let mut matrix = vec![vec![f64::NAN; nr]; ns];
    let mut duplicate = false;
    for &(s, r, v) in cells {
        let cell = &mut matrix[subjects[&s]][raters[&r]];
        duplicate |= !cell.is_nan();
        *cell = v;
    }
    if !duplicate && n == ns * nr {
        let (bms, jms, _, ems, nf, kf) = mean_squares(&matrix)?;
        return Some((
            ratio(bms - ems, bms + (kf - 1.0) * ems + kf * (jms - ems) / nf)?,
            ratio(bms - ems, bms + (jms - ems) / nf)?,
        ));
    }
    let df_e = n as f64 - ns as f64 - nr as f64 + 1.0;
    if df_e < 1.0 {
        return None;
    }
    // Additive model y = m + c_s + r_j + e by alternating least squares.
    let idx: Vec<(usize, usize, f64)> = cells.iter().map(|&(s, r, v)| (subjects[&s], raters[&r], v)).collect();
    let m = idx.iter().map(|c| c.2).sum::<f64>() / n as f64;
    let (mut cs, mut rs) = (vec![0.0; ns], vec![0.0; nr]);
    let (mut count_s, mut count_r) = (vec![0.0; ns], vec![0.0; nr]);
    for &(s, r, _) in &idx {
        count_s[s] += 1.0;
        count_r[r] += 1.0;
    }
    for _ in 0..200 {
        let mut sum = vec![0.0; ns];
        for &(s, r, v) in &idx {
            sum[s] += v - m - rs[r];
        }
        for s in 0..ns {
            cs[s] = sum[s] / count_s[s];
        }
        let mut sum = vec![0.0; nr];
        for &(s, r, v) in &idx {
            sum[r] += v - m - cs[s];
        }
        let mut change: f64 = 0.0;
        for r in 0..nr {
            let new = sum[r] / count_r[r];
            change = change.max((new - rs[r]).abs());
            rs[r] = new;
        }
        let centre = rs.iter().zip(&count_r).map(|(x, c)| x * c).sum::<f64>() / n as f64;
        rs.iter_mut().for_each(|x| *x -= centre);
        cs.iter_mut().for_each(|x| *x += centre);
        if change < 1e-12 {
            break;
        }
    }
    let rss: f64 = idx.iter().map(|&(s, r, v)| (v - m - cs[s] - rs[r]).powi(2)).sum();
    let error = rss / df_e;
    let spread = |effects: &[f64], counts: &[f64]| {
        let k = effects.len() as f64;
        let mean = effects.iter().sum::<f64>() / k;
        let var = effects.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (k - 1.0);
        let noise = error * counts.iter().map(|c| 1.0 / c).sum::<f64>() / k;
        (var - noise).max(0.0)
    };
    let subject_var = spread(&cs, &count_s);
    let rater_var = spread(&rs, &count_r);
    let total = subject_var + rater_var + error;
    if total <= 1e-12 {
        return None;
    }
    let k = n as f64 / ns as f64;
    Some((subject_var / total, subject_var / (subject_var + (rater_var + error) / k)))
}

/// The metric of Krippendorff's alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Nominal,
    Ordinal,
    Interval,
    Ratio,
}

/// Krippendorff's alpha of `units`, each the values the observers gave it
/// (missing values simply absent). `None` when undefined: fewer than two
/// pairable values, or no expected disagreement (every value the same).
pub fn krippendorff_alpha(units: &[Vec<f64>], metric: Metric) -> Option<f64> {
    let mut values: Vec<f64> = units.iter().flatten().copied().collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let index = |v: f64| values.binary_search_by(|x| x.total_cmp(&v)).ok();
    let v = values.len();
    let mut o = vec![vec![0.0; v]; v];
    for unit in units.iter().filter(|u| u.len() >= 2) {
        let m = unit.len() as f64;
        for (i, &a) in unit.iter().enumerate() {
            for (j, &b) in unit.iter().enumerate() {
                if i != j {
                    o[index(a)?][index(b)?] += 1.0 / (m - 1.0);
                }
            }
        }
    }
    let n_c: Vec<f64> = o.iter().map(|row| row.iter().sum()).collect();
    let n: f64 = n_c.iter().sum();
    if n < 2.0 {
        return None;
    }
    let delta = |c: usize, k: usize| -> f64 {
        match metric {
            Metric::Nominal => f64::from(u8::from(c != k)),
            Metric::Interval => (values[c] - values[k]).powi(2),
            Metric::Ratio => {
                let s = values[c] + values[k];
                if s == 0.0 { 0.0 } else { ((values[c] - values[k]) / s).powi(2) }
            }
            Metric::Ordinal => {
                let (lo, hi) = if c <= k { (c, k) } else { (k, c) };
                let between: f64 = n_c[lo..=hi].iter().sum();
                (between - (n_c[c] + n_c[k]) / 2.0).powi(2)
            }
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for c in 0..v {
        for k in 0..v {
            let d = delta(c, k);
            observed += o[c][k] * d;
            expected += n_c[c] * n_c[k] * d;
        }
    }
    let d_o = observed / n;
    let d_e = expected / (n * (n - 1.0));
    if d_e <= 0.0 { None } else { Some(1.0 - d_o / d_e) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shrout & Fleiss (1979), Table 2: six targets rated by four judges.
    fn shrout_fleiss_table_2() -> Vec<Vec<f64>> {
        vec![
            vec![9.0, 2.0, 5.0, 8.0],
            vec![6.0, 1.0, 3.0, 2.0],
            vec![8.0, 4.0, 6.0, 8.0],
            vec![7.0, 1.0, 2.0, 6.0],
            vec![10.0, 5.0, 6.0, 9.0],
            vec![6.0, 2.0, 4.0, 7.0],
        ]
    }

    fn close(got: f64, published: f64) {
        // Published to two decimals.
        assert!((got - published).abs() < 0.005, "got {got:.4}, published {published}");
    }

    #[test]
    fn reproduces_shrout_fleiss_published_iccs() {
        let icc = icc_complete(&shrout_fleiss_table_2()).expect("defined");
        close(icc.icc1_1, 0.17);
        close(icc.icc2_1, 0.29);
        close(icc.icc3_1, 0.71);
        close(icc.icc1_k, 0.44);
        close(icc.icc2_k, 0.62);
        close(icc.icc3_k, 0.91);
    }

    #[test]
    fn incomplete_estimator_equals_anova_on_complete_data() {
        let rows = shrout_fleiss_table_2();
        let cells: Vec<(u32, u32, f64)> = rows
            .iter()
            .enumerate()
            .flat_map(|(s, r)| r.iter().enumerate().map(move |(j, &v)| (s as u32, j as u32, v)))
            .collect();
        let (one, k) = icc2(&cells).expect("defined");
        close(one, 0.29);
        close(k, 0.62);
        // Remove one cell: still defined, and close to the complete answer.
        let (one, _) = icc2(&cells[1..]).expect("defined with a missing cell");
        assert!((one - 0.29).abs() < 0.1, "{one}");
    }

    /// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the
    /// reliability data with missing values: four observers, twelve units.
    fn krippendorff_example() -> Vec<Vec<f64>> {
        let nan = f64::NAN;
        let observers = [
            [1.0, 2.0, 3.0, 3.0, 2.0, 1.0, 4.0, 1.0, 2.0, nan, nan, nan],
            [1.0, 2.0, 3.0, 3.0, 2.0, 2.0, 4.0, 1.0, 2.0, 5.0, nan, 3.0],
            [nan, 3.0, 3.0, 3.0, 2.0, 3.0, 4.0, 2.0, 2.0, 5.0, 1.0, nan],
            [1.0, 2.0, 3.0, 3.0, 2.0, 4.0, 4.0, 1.0, 2.0, 5.0, 1.0, nan],
        ];
        (0..12).map(|u| observers.iter().map(|o| o[u]).filter(|v| !v.is_nan()).collect()).collect()
    }

    #[test]
    fn reproduces_krippendorffs_published_alphas() {
        let units = krippendorff_example();
        let alpha = |m| krippendorff_alpha(&units, m).expect("defined");
        assert!((alpha(Metric::Nominal) - 0.743).abs() < 0.0005, "{}", alpha(Metric::Nominal));
        assert!((alpha(Metric::Ordinal) - 0.815).abs() < 0.0005, "{}", alpha(Metric::Ordinal));
        assert!((alpha(Metric::Interval) - 0.849).abs() < 0.0005, "{}", alpha(Metric::Interval));
        assert!((alpha(Metric::Ratio) - 0.797).abs() < 0.0005, "{}", alpha(Metric::Ratio));
    }

    #[test]
    fn undefined_cases_are_none_not_nan() {
        assert_eq!(krippendorff_alpha(&[vec![1.0, 1.0], vec![1.0, 1.0]], Metric::Interval), None);
        assert_eq!(krippendorff_alpha(&[vec![1.0]], Metric::Nominal), None);
        assert_eq!(icc_complete(&[vec![1.0, 1.0], vec![1.0, 1.0]]), None);
        assert_eq!(icc2(&[(0, 0, 1.0), (1, 1, 2.0)]), None);
    }
}
