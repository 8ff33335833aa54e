//! Panel reliability per competency and overall: ICC(2,1), ICC(2,k) and
//! Krippendorff's alpha (ordinal and interval) on the ratings of a job or
//! rubric.

use std::collections::HashMap;
use std::sync::Arc;

use crate::calibration::reliability::{self, Metric};
use crate::error::Error;

use super::{Calibrator, lock};

/// Reliability of one set of ratings (scale points).
#[derive(Debug, Clone, Default)]
pub struct ReliabilityFigures {
    pub competency: String,
    pub icc2_1: Option<f64>,
    pub icc2_k: Option<f64>,
    pub alpha_ordinal: Option<f64>,
    pub alpha_interval: Option<f64>,
    pub rater_count: u32,
    pub subject_count: u32,
}

impl Calibrator {
    /// Reliability per competency and overall of the panels of the given jobs.
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "reliability"))]
    pub async fn reliability(
        self: &Arc<Self>,
        org: &str,
        job_ids: &[String],
    ) -> Result<(Vec<ReliabilityFigures>, ReliabilityFigures), Error> {
        let state = self.fresh(org).await?;
        let s = lock(&state);
        // competency key -> (subject, rater, score on the scale)
        let mut by_key: std::collections::BTreeMap<String, Vec<(u32, u32, f64)>> = Default::default();
        let mut overall: HashMap<(u32, u32), (f64, f64)> = HashMap::new();
        for (subject, (job, _)) in s.subjects.ids.iter().enumerate() {
            if !job_ids.iter().any(|j| **j == **job) {
                continue;
            }
            let Some(info) = s.jobs.get(&**job) else { continue };
            let span = info.shape.scale_max - info.shape.scale_min;
            for o in s.model.ratings(subject as u32) {
                let Some((_, key)) = s.items.ids.get(o.item as usize) else { continue };
                let value = info.shape.scale_min + o.value() * span;
                by_key.entry(key.clone()).or_default().push((subject as u32, o.rater, value));
                let e = overall.entry((subject as u32, o.rater)).or_default();
                e.0 += value;
                e.1 += 1.0;
            }
        }
        let figures = |competency: String, cells: &[(u32, u32, f64)]| {
            let mut units: HashMap<u32, Vec<f64>> = HashMap::new();
            for &(subject, _, v) in cells {
                units.entry(subject).or_default().push(v);
            }
            let mut units: Vec<(u32, Vec<f64>)> = units.into_iter().collect();
            units.sort_by_key(|u| u.0);
            let units: Vec<Vec<f64>> = units.into_iter().map(|u| u.1).collect();
            let mut raters: Vec<u32> = cells.iter().map(|c| c.1).collect();
            raters.sort_unstable();
            raters.dedup();
            let icc = reliability::icc2(cells);
            ReliabilityFigures {
                competency,
                icc2_1: icc.map(|x| x.0),
                icc2_k: icc.map(|x| x.1),
                alpha_ordinal: reliability::krippendorff_alpha(&units, Metric::Ordinal),
                alpha_interval: reliability::krippendorff_alpha(&units, Metric::Interval),
                rater_count: raters.len() as u32,
                subject_count: units.len() as u32,
            }
        };
        let per: Vec<ReliabilityFigures> = by_key.iter().map(|(k, cells)| figures(k.clone(), cells)).collect();
        let mut cells: Vec<(u32, u32, f64)> = overall.into_iter().map(|((s, r), (sum, n))| (s, r, sum / n)).collect();
        cells.sort_by_key(|c| (c.0, c.1));
        Ok((per, figures(String::new(), &cells)))
    }
}
