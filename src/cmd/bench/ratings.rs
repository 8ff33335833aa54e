//! `scorecard bench ratings`: fits a file of real ratings exactly as the service
//! fits an organisation (same model, sweeps and tolerance) and prints each
//! subject's calibrated overall score. `bench/realdata/compare.py` uses it to
//! put the model beside the raw mean, lme4 and an empirical-Bayes additive model
//! on public rating data sets; see docs/calibration.md.
//!
//! Input: CSV with the header `rater,subject,item,scorecard,score` (any strings
//! as identifiers; `score` a number on the scale). Every subject is one
//! candidate of one job; every item a competency of one dimension, weighted
//! equally. Output: `subject,score,lower,upper,raw` on stdout, fit summary on
//! stderr.

use std::io::{BufRead, Write};
use std::time::Instant;

use scorecard::calibration::Index;
use scorecard::calibration::model::{Model, Obs};
use scorecard::calibration::scores::{DimensionShape, RubricShape, ranking_scores};

pub fn run(
    input: &str,
    scale: Option<(f64, f64)>,
    sweeps: usize,
    tolerance: f64,
    live: Option<u32>,
) -> Result<(), String> {
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(input).map_err(|e| format!("{input}: {e}"))?))
    };
    let mut lines = reader.lines();
    let header = lines.next().ok_or("empty input")?.map_err(|e| e.to_string())?;
    let columns: Vec<&str> = header.trim().split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name).ok_or(format!("no column {name}"));
    let (rc, sc, ic, jc, vc) = (at("rater")?, at("subject")?, at("item")?, at("scorecard")?, at("score")?);
    let (mut raters, mut subjects, mut items, mut scorecards) =
        (Index::default(), Index::default(), Index::default(), Index::default());
    let mut rows: Vec<(u32, u32, u32, u32, f64)> = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.trim().split(',').collect();
        let field = |i: usize| f.get(i).copied().ok_or(format!("line {}: too few fields", n + 2));
        let score: f64 = field(vc)?
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or(format!("line {}: score is not a finite number", n + 2))?;
        rows.push((
            raters.get_or_insert(&field(rc)?.to_owned()),
            subjects.get_or_insert(&field(sc)?.to_owned()),
            items.get_or_insert(&field(ic)?.to_owned()),
            scorecards.get_or_insert(&field(jc)?.to_owned()),
            score,
        ));
    }
    if rows.is_empty() {
        return Err("no ratings".into());
    }
    let (lo, hi) = scale.unwrap_or_else(|| {
        rows.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| (lo.min(r.4), hi.max(r.4)))
    });
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    // The service adds a scorecard's ratings together, subject by subject.
    rows.sort_by_key(|r| (r.1, r.3, r.2, r.0));
    let cards: Vec<(u32, Vec<Obs>)> = rows
        .chunk_by(|a, b| (a.1, a.3) == (b.1, b.3))
        .map(|chunk| {
            (chunk[0].1, chunk.iter().map(|&(r, _, k, j, v)| Obs::new(r, k, j, (v - lo) / span, 0.0)).collect())
        })
        .collect();
    // With --live: every `live`-th scorecard (a share spread over the file)
    // arrives after the fit through the live path, with no refit after it.
    let arrives_live = |card: &(u32, Vec<Obs>)| live.is_some_and(|every| card.1[0].scorecard.is_multiple_of(every));
    let mut model = Model::new();
    // Whole-number scores on a whole-number scale are ordinal, as a rubric's
    // are in the service; anything else is taken as continuous.
    let whole = |x: f64| x.fract() == 0.0;
    if whole(lo) && whole(hi) && rows.iter().all(|r| whole(r.4)) {
        for k in 0..items.ids.len() as u32 {
            model.set_item_steps(k, span as u32);
        }
    }
    for card in cards.iter().filter(|c| !arrives_live(c)) {
        model.add(card.0, &card.1);
    }
    let started = Instant::now();
    let report = model.fit(sweeps, tolerance);
    for card in cards.iter().filter(|c| arrives_live(c)) {
        model.add(card.0, &card.1);
        model.update_locally(card.0, &[card.1[0].rater]);
    }
    let shape = RubricShape {
        scale_min: lo,
        scale_max: hi,
        dimensions: vec![DimensionShape {
            weight: 1.0,
            items: (0..items.ids.len() as u32).map(|k| (k, 1.0)).collect(),
        }],
    };
    eprintln!(
        "{} ratings, {} subjects, {} raters, {} items, scale {lo}..{hi}{}: {} sweeps (converged {}), {:.0} ms; hyper {:?}",
        rows.len(),
        subjects.ids.len(),
        raters.ids.len(),
        items.ids.len(),
        if model.item_steps(0) > 0 { " (ordinal)" } else { "" },
        report.sweeps,
        report.converged,
        started.elapsed().as_secs_f64() * 1e3,
        model.hyper
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let write = |out: &mut dyn Write, s: String| out.write_all(s.as_bytes()).map_err(|e| e.to_string());
    write(&mut out, "subject,score,lower,upper,raw\n".into())?;
    for (s, name) in subjects.ids.iter().enumerate() {
        if let Some(o) = ranking_scores(&model, s as u32, &shape).overall {
            write(&mut out, format!("{name},{},{},{},{}\n", o.mean, o.lower, o.upper, o.raw_mean))?;
        }
    }
    out.flush().map_err(|e| e.to_string())
}
