//! The compliance page and the auditor's CSV, rendered from the API's own
//! messages: no I/O here, so both can be pinned by unit tests. Aggregates
//! only: no candidate appears, and no category of anyone; the rater
//! differentials name interviewers, whom the page is about.
//!
//! The page: the organisation's adverse-impact tables, then each job's
//! (folded, its four-fifths breaches counted in the summary line), then the
//! rater differentials of each grouping as interval bars with the same
//! numbers in a table. Breaches are marked in words and shape, not colour
//! alone. No inline styles or scripts (the Content-Security-Policy).

use std::fmt::Write as _;

use super::report::{Axis, esc, page};
use crate::proto;

/// Comparisons drawn per grouping; the API lists the rest.
const MAX_DRAWN: usize = 200;

/// One job's report on the page.
#[derive(Debug, Clone, PartialEq)]
pub struct JobImpact {
    pub id: String,
    pub title: String,
    pub report: proto::AdverseImpactReport,
}

/// Everything the compliance page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CompliancePage {
    pub organisation: proto::AdverseImpactReport,
    pub jobs: Vec<JobImpact>,
    /// Per grouping (its title), every rater's differentials.
    pub differentials: Vec<(String, proto::ListRaterDifferentialsResponse)>,
    pub generated_at: String,
}

/// `calibrated_score`, `sex`: the enum names without their prefix, lower case
/// (the names the CSV and the CLI use).
pub fn measure_name(measure: i32) -> String {
    let name = proto::Measure::try_from(measure).map_or("MEASURE_UNKNOWN", |m| m.as_str_name());
    name.trim_start_matches("MEASURE_").to_lowercase()
}

pub fn grouping_name(grouping: i32) -> String {
    let name = proto::Grouping::try_from(grouping).map_or("GROUPING_UNKNOWN", |g| g.as_str_name());
    name.trim_start_matches("GROUPING_").to_lowercase()
}

fn measure_title(measure: i32) -> &'static str {
    match proto::Measure::try_from(measure) {
        Ok(proto::Measure::CalibratedScore) => "Scoring rate, calibrated score (above the job's median)",
        Ok(proto::Measure::RawMean) => "Scoring rate, raw mean of the ratings (above the job's median)",
        Ok(proto::Measure::Recommendation) => "Recommendation rate (most scorecards recommend yes)",
        Ok(proto::Measure::Decision) => "Selection rate (latest decision advanced, offered or hired)",
        _ => "Other measure",
    }
}

fn grouping_title(grouping: i32) -> &'static str {
    match proto::Grouping::try_from(grouping) {
        Ok(proto::Grouping::Sex) => "sex",
        Ok(proto::Grouping::RaceEthnicity) => "race/ethnicity",
        Ok(proto::Grouping::Intersectional) => "intersection",
        _ => "other",
    }
}

/// Rows below four-fifths in a report.
pub fn breaches(report: &proto::AdverseImpactReport) -> usize {
    report.tables.iter().flat_map(|t| &t.rows).filter(|r| r.below_four_fifths).count()
}

fn counts_line(report: &proto::AdverseImpactReport) -> String {
    format!(
        "{} subjects; sex unknown for {}, race/ethnicity unknown for {}.",
        report.subject_count, report.unknown_sex_count, report.unknown_race_ethnicity_count
    )
}

/// One table per measure: grouping, category, subjects, rate, impact ratio, status.
fn impact_tables(report: &proto::AdverseImpactReport) -> String {
    let mut out = String::new();
    let mut measures: Vec<i32> = report.tables.iter().map(|t| t.measure).collect();
    measures.dedup();
    for measure in measures {
        let _ = write!(
            out,
            "<table class=\"impact\"><caption>{}</caption><thead><tr><th scope=\"col\">Grouping</th>\
             <th scope=\"col\">Category</th><th scope=\"col\">Subjects</th><th scope=\"col\">Rate</th>\
             <th scope=\"col\">Impact ratio</th><th scope=\"col\">Status</th></tr></thead><tbody>",
            esc(measure_title(measure))
        );
        let mut any = false;
        for table in report.tables.iter().filter(|t| t.measure == measure) {
            for row in &table.rows {
                any = true;
                let (class, status, ratio) = if row.excluded {
                    (" class=\"excluded\"", "excluded: under the minimum share", "–".to_string())
                } else if row.below_four_fifths {
                    (" class=\"breach\"", "▼ below four-fifths", format!("{:.2}", row.impact_ratio))
                } else {
                    ("", "", format!("{:.2}", row.impact_ratio))
                };
                let _ = write!(
                    out,
                    "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{ratio}</td><td>{status}</td></tr>",
                    grouping_title(table.grouping),
                    esc(&row.category),
                    row.count,
                    row.rate,
                );
            }
        }
        if !any {
            out.push_str("<tr><td colspan=\"6\">No subject with a known category has a value.</td></tr>");
        }
        out.push_str("</tbody></table>");
    }
    out
}

/// The comparisons of one grouping, flagged first, then by size.
fn ordered(response: &proto::ListRaterDifferentialsResponse) -> Vec<(&str, bool, &proto::RaterComparison)> {
    let mut all: Vec<(&str, bool, &proto::RaterComparison)> = response
        .differentials
        .iter()
        .flat_map(|d| d.comparisons.iter().map(move |c| (d.rater.as_str(), c.flagged, c)))
        .collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.difference.abs().total_cmp(&a.2.difference.abs())));
    all
}

/// Interval bars: a row per comparison, its 90% interval as a bar, the
/// difference as a dot (a square when flagged), zero as a line.
fn differential_chart(title: &str, rows: &[(&str, bool, &proto::RaterComparison)]) -> String {
    const ROW: f64 = 24.0;
    const LEFT: f64 = 300.0;
    const WIDTH: f64 = 760.0;
    let drawn = &rows[..rows.len().min(MAX_DRAWN)];
    let reach = drawn.iter().map(|(_, _, c)| c.lower.abs().max(c.upper.abs())).fold(0.5_f64, f64::max).ceil();
    let x = Axis { lo: -reach, hi: reach, from: LEFT, to: WIDTH - 20.0 };
    let height = 40.0 + ROW * drawn.len() as f64;
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-labelledby=\"dt-{id} dd-{id}\" viewBox=\"0 0 {WIDTH} {height}\">\
         <title id=\"dt-{id}\">Rater differentials by {t}</title>\
         <desc id=\"dd-{id}\">For each interviewer and category, how much higher (right) or lower (left) \
         they score that category's candidates than the panel does, relative to the reference category, in \
         scale points, with a 90% interval. Flagged comparisons are squares.</desc>",
        id = esc(&title.replace('/', "-")),
        t = esc(title),
    );
    let zero = x.at(0.0);
    let _ = write!(
        svg,
        "<line class=\"zero\" x1=\"{zero:.1}\" y1=\"16\" x2=\"{zero:.1}\" y2=\"{:.1}\"/>\
         <text class=\"axis\" x=\"{:.1}\" y=\"12\">−{reach}</text><text class=\"axis\" x=\"{zero:.1}\" y=\"12\">0</text>\
         <text class=\"axis\" x=\"{:.1}\" y=\"12\">+{reach}</text>",
        height - 8.0,
        x.at(-reach),
        x.at(reach) - 16.0,
    );
    for (i, (rater, flagged, c)) in drawn.iter().enumerate() {
        let y = 32.0 + ROW * i as f64;
        let class = if *flagged { "flagged" } else { "mark" };
        let _ = write!(
            svg,
            "<text class=\"label\" x=\"4\" y=\"{:.1}\">{} · {} vs {}</text>\
             <line class=\"interval {class}\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>",
            y + 4.0,
            esc(rater),
            esc(&c.category),
            esc(&c.reference_category),
            x.at(c.lower),
            x.at(c.upper),
        );
        let cx = x.at(c.difference);
        if *flagged {
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\"/>",
                cx - 5.0,
                y - 5.0
            );
        } else {
            let _ = write!(svg, "<circle class=\"{class}\" cx=\"{cx:.1}\" cy=\"{y:.1}\" r=\"4\"/>");
        }
    }
    svg.push_str("</svg>");
    svg
}

fn differential_table(rows: &[(&str, bool, &proto::RaterComparison)]) -> String {
    let mut out = String::from(
        "<table class=\"differentials\"><thead><tr><th scope=\"col\">Interviewer</th><th scope=\"col\">Category</th>\
         <th scope=\"col\">Reference</th><th scope=\"col\">Scorecards</th><th scope=\"col\">Difference</th>\
         <th scope=\"col\">90% interval</th><th scope=\"col\">q</th><th scope=\"col\">Status</th></tr></thead><tbody>",
    );
    for (rater, flagged, c) in rows {
        let (class, status) = if *flagged { (" class=\"breach\"", "■ flagged") } else { ("", "") };
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{:+.2}</td><td>{:+.2} to {:+.2}</td>\
             <td>{:.3}</td><td>{status}</td></tr>",
            esc(rater),
            esc(&c.category),
            esc(&c.reference_category),
            c.scorecard_count,
            c.reference_scorecard_count,
            c.difference,
            c.lower,
            c.upper,
            c.q_value,
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The `/compliance` page.
pub fn compliance_page(viewer: &str, p: &CompliancePage) -> String {
    let mut body = String::from("<h1>Compliance</h1>");
    let _ = write!(
        body,
        "<p class=\"meta\">Generated {}. Aggregates only: no candidate and no one's category is shown. \
         Impact ratio: a category's rate over the highest rate among categories not excluded; under 0.8 is below \
         four-fifths (EEOC, 29 CFR 1607.4(D)). See docs/compliance.md for every definition.</p>",
        esc(&p.generated_at)
    );
    let _ = write!(
        body,
        "<h2>Organisation</h2><p>{} <a href=\"/compliance/adverse-impact.csv\">Download the CSV</a></p>{}",
        counts_line(&p.organisation),
        impact_tables(&p.organisation)
    );
    body.push_str("<h2>Jobs</h2>");
    if p.jobs.is_empty() {
        body.push_str("<p>No job has a scored candidate yet.</p>");
    }
    for job in &p.jobs {
        let breaches = breaches(&job.report);
        let mark = match breaches {
            0 => String::new(),
            1 => " — ▼ 1 row below four-fifths".to_string(),
            n => format!(" — ▼ {n} rows below four-fifths"),
        };
        let _ = write!(
            body,
            "<details class=\"job\"><summary>{} ({} subjects){mark}</summary><p>{} \
             <a href=\"/compliance/adverse-impact.csv?job={}\">Download the CSV</a></p>{}</details>",
            esc(&job.title),
            job.report.subject_count,
            counts_line(&job.report),
            esc(&job.id),
            impact_tables(&job.report)
        );
    }
    body.push_str(
        "<h2>Interviewers: rater differentials</h2><p>How far each interviewer's ratings of a category's \
         candidates sit from the panel's view, relative to the reference category (the largest), in scale points. \
         Flagged: beyond the threshold and significant after false-discovery control across every interviewer \
         and comparison. Only comparisons with enough scorecards on both sides are shown.</p>",
    );
    for (title, response) in &p.differentials {
        let rows = ordered(response);
        let _ = write!(body, "<h3>By {}</h3>", esc(title));
        if rows.is_empty() {
            body.push_str("<p>No interviewer has enough scorecards in two categories to compare.</p>");
            continue;
        }
        let flagged = response.differentials.iter().filter(|d| d.flagged).count();
        let _ = write!(
            body,
            "<p>{} comparisons of {} interviewers; {flagged} flagged.{}</p>",
            rows.len(),
            response.differentials.len(),
            if rows.len() > MAX_DRAWN {
                format!(" The chart draws the first {MAX_DRAWN}; the table lists all.")
            } else {
                String::new()
            }
        );
        body.push_str(&differential_chart(title, &rows));
        body.push_str(&differential_table(&rows));
    }
    page("Compliance", viewer, &body)
}

/// A CSV field, quoted when it holds a delimiter, a quote or a line break
/// (RFC 4180), and defused when a spreadsheet would read it as a formula.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

/// The auditor's export: one row per measure × grouping × category, each
/// carrying the report's scope and counts so that a row stands alone.
pub fn adverse_impact_csv(scope: &str, report: &proto::AdverseImpactReport, generated_at: &str) -> String {
    let mut out = String::from(
        "scope,measure,grouping,category,count,rate,impact_ratio,excluded,below_four_fifths,\
         subject_count,unknown_sex_count,unknown_race_ethnicity_count,generate_time\r\n",
    );
    for table in &report.tables {
        for row in &table.rows {
            let _ = write!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
                field(scope),
                measure_name(table.measure),
                grouping_name(table.grouping),
                field(&row.category),
                row.count,
                row.rate,
                row.impact_ratio,
                row.excluded,
                row.below_four_fifths,
                report.subject_count,
                report.unknown_sex_count,
                report.unknown_race_ethnicity_count,
                field(generated_at),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(category: &str, count: i32, rate: f64, ratio: f64, excluded: bool) -> proto::ImpactRow {
        proto::ImpactRow {
            category: category.into(),
            count,
            rate,
            impact_ratio: ratio,
            excluded,
            below_four_fifths: !excluded && ratio < 0.8,
        }
    }

    fn report() -> proto::AdverseImpactReport {
        proto::AdverseImpactReport {
            subject_count: 10,
            unknown_sex_count: 1,
            unknown_race_ethnicity_count: 2,
            tables: vec![proto::ImpactTable {
                measure: proto::Measure::CalibratedScore as i32,
                grouping: proto::Grouping::Sex as i32,
                rows: vec![
                    row("another", 1, 1.0, 0.0, true),
                    row("female", 4, 0.25, 0.375, false),
                    row("male", 3, 0.667, 1.0, false),
                ],
            }],
            generate_time: None,
        }
    }

    #[test]
    fn the_csv_has_a_row_per_category_with_the_reports_counts() {
        let csv = adverse_impact_csv("jobs/j-1", &report(), "2026-12-03T00:00:00Z");
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(lines[0].starts_with("scope,measure,grouping,category,count,rate,impact_ratio"));
        assert_eq!(
            lines[2],
            "jobs/j-1,calibrated_score,sex,female,4,0.25,0.375,false,true,10,1,2,2026-12-03T00:00:00Z"
        );
        assert!(lines[1].contains(",another,1,1,0,true,false,"), "{}", lines[1]);
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    #[test]
    fn the_page_marks_breaches_in_words_and_escapes_names() {
        let differential = proto::RaterDifferential {
            rater: "<oscar>".into(),
            grouping: proto::Grouping::Sex as i32,
            comparisons: vec![proto::RaterComparison {
                category: "female".into(),
                reference_category: "male".into(),
                scorecard_count: 12,
                reference_scorecard_count: 14,
                difference: -0.9,
                lower: -1.3,
                upper: -0.5,
                p_value: 0.001,
                q_value: 0.01,
                flagged: true,
            }],
            flagged: true,
            detail: String::new(),
        };
        let page = compliance_page(
            "cora",
            &CompliancePage {
                organisation: report(),
                jobs: vec![JobImpact { id: "j-1".into(), title: "Backend <engineer>".into(), report: report() }],
                differentials: vec![(
                    "sex".into(),
                    proto::ListRaterDifferentialsResponse { differentials: vec![differential], ..Default::default() },
                )],
                generated_at: "2026-12-03 09:00 UTC".into(),
            },
        );
        assert!(page.contains("▼ below four-fifths"), "breach in words");
        assert!(page.contains("excluded: under the minimum share"));
        assert!(page.contains("Backend &lt;engineer&gt; (10 subjects) — ▼ 1 row below four-fifths"));
        assert!(page.contains("/compliance/adverse-impact.csv?job=j-1"));
        assert!(page.contains("&lt;oscar&gt; · female vs male"), "rater escaped in the chart");
        assert!(page.contains("■ flagged"));
        assert!(page.contains("<rect class=\"flagged\""), "flagged as a square");
        assert!(!page.contains("<oscar>") && !page.contains("style="), "escaped, no inline styles");
    }
}
