//! The recruiter CLI: `scorecard ranking`, `scorecard raters`, `scorecard
//! reliability`, and `scorecard compliance impact` and `scorecard compliance
//! raters` for the compliance role. Plain gRPC clients of a running server; they print aligned
//! tables (bold headers and red flags on a terminal, plain text when piped or
//! with `NO_COLOR` set) or, with `--json`, the numbers as JSON for scripts.

use serde_json::{Value, json};
use tonic::Request;
use tonic::transport::Channel;

use crate::cmd::config::ClientArgs;
use scorecard::api::flag_name;
use scorecard::proto::{self, calibration_service_client::CalibrationServiceClient};
use scorecard::server::AppError;

fn request<T>(token: &str, message: T) -> Result<Request<T>, AppError> {
    let mut r = Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| AppError::Config("the token is not a valid header value".into()))?;
    r.metadata_mut().insert("authorization", value);
    Ok(r)
}

/// The server's URI from `--addr`: `http://…` and `https://…` as given, and a
/// bare `host:port` (as grpcurl takes it) as plain `http://host:port`.
fn server_uri(addr: &str) -> String {
    let addr = addr.trim();
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

async fn channel(args: &ClientArgs) -> Result<Channel, AppError> {
    Channel::from_shared(server_uri(&args.addr))
        .map_err(|e| AppError::Config(format!("bad --addr {}: {e}", args.addr)))?
        .connect()
        .await
        .map_err(|e| AppError::Server(format!("cannot reach {}: {e}", args.addr)))
}

async fn client(args: &ClientArgs) -> Result<CalibrationServiceClient<Channel>, AppError> {
    Ok(CalibrationServiceClient::new(channel(args).await?))
}

fn status(e: tonic::Status) -> AppError {
    AppError::Server(format!("{:?}: {}", e.code(), e.message()))
}

/// Whether tables are coloured: only on a terminal, and never with `NO_COLOR`
/// (https://no-color.org).
fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// Left-aligned table with a header row; the last column holds flags.
fn table(header: &[String], rows: &[Vec<String>]) -> String {
    styled_table(header, rows, colour())
}

/// [`table`], with a bold header and red flags when `colour`. Escapes wrap the
/// padded cells, so columns stay aligned.
fn styled_table(header: &[String], rows: &[Vec<String>], colour: bool) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String], style: Option<&str>, last_style: Option<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let last = i + 1 == cells.len();
            let text = if last { cell.clone() } else { format!("{cell:<w$}") };
            match (if last { last_style.or(style) } else { style }).filter(|_| colour && !cell.is_empty()) {
                Some(code) => {
                    let padding = text.len() - text.trim_end().len();
                    out.push_str(&format!("{code}{}{RESET}{}", text.trim_end(), " ".repeat(padding)));
                }
                None => out.push_str(&text),
            }
            if !last {
                out.push_str("  ");
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header, Some(BOLD), None);
    for row in rows {
        out.push('\n');
        out.push_str(&line(row, None, Some(RED)));
    }
    out.push('\n');
    out
}

fn optional(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The job's whole calibrated ranking.
pub async fn ranking(args: &ClientArgs, job: &str, as_json: bool) -> Result<String, AppError> {
    let mut client = client(args).await?;
    let mut entries = Vec::new();
    let mut page_token = String::new();
    let mut bar;
    loop {
        let page = client
            .get_ranking(request(
                &args.token,
                proto::GetRankingRequest { job: job.to_string(), page_size: 1000, page_token: page_token.clone() },
            )?)
            .await
            .map_err(status)?
            .into_inner();
        entries.extend(page.entries);
        bar = page.hiring_bar;
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if as_json {
        let rows: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "rank": e.rank, "candidate": e.candidate, "score": e.score,
                    "score_lower": e.score_lower, "score_upper": e.score_upper, "raw_mean": e.raw_mean,
                    "dimensions": e.dimensions.iter().map(|d| json!({
                        "dimension": d.dimension, "score": d.score, "lower": d.lower, "upper": d.upper, "raw_mean": d.raw_mean,
                    })).collect::<Vec<_>>(),
                    "scorecard_count": e.scorecard_count, "flags": e.flags,
                    "tier": e.tier, "p_above_bar": e.p_above_bar,
                })
            })
            .collect();
        return Ok(format!("{}\n", json!({ "job": job, "hiring_bar": bar, "entries": rows })));
    }
    let mut dimensions: Vec<String> = Vec::new();
    for d in entries.iter().flat_map(|e| &e.dimensions) {
        if !dimensions.contains(&d.dimension) {
            dimensions.push(d.dimension.clone());
        }
    }
    let mut header: Vec<String> = ["rank", "tier", "candidate", "score", "90% interval"].map(String::from).to_vec();
    if let Some(bar) = bar {
        header.push(format!("P(≥ {bar})"));
    }
    header.push("raw mean".to_string());
    header.extend(dimensions.iter().cloned());
    header.extend(["scorecards".to_string(), "flags".to_string()]);
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let mut row = vec![
                e.rank.to_string(),
                e.tier.to_string(),
                e.candidate.clone(),
                format!("{:.2}", e.score),
                format!("{:.2}–{:.2}", e.score_lower, e.score_upper),
            ];
            if bar.is_some() {
                row.push(optional(e.p_above_bar));
            }
            row.push(format!("{:.2}", e.raw_mean));
            for d in &dimensions {
                row.push(optional(e.dimensions.iter().find(|x| &x.dimension == d).map(|x| x.score)));
            }
            row.push(e.scorecard_count.to_string());
            row.push(e.flags.join("; "));
            row
        })
        .collect();
    let legend = match bar {
        Some(bar) => format!(
            "hiring bar {bar}: P(≥ {bar}) is the probability that the candidate's calibrated score is at or above it; \
             a new tier starts where the higher candidate is above the next with probability 0.9 or more\n"
        ),
        None => "no hiring bar (set one with UpdateJob); a new tier starts where the higher candidate is above the next with probability 0.9 or more\n".to_string(),
    };
    Ok(format!("{}{legend}", table(&header, &rows)))
}

/// The next interviews for a job.
pub async fn plan(
    args: &ClientArgs,
    job: &str,
    slots: i32,
    interviewers: &[String],
    max_per_interviewer: i32,
    as_json: bool,
) -> Result<String, AppError> {
    let mut client = client(args).await?;
    let plan = client
        .plan_interviews(request(
            &args.token,
            proto::PlanInterviewsRequest {
                job: job.to_string(),
                slots,
                interviewers: interviewers.to_vec(),
                max_per_interviewer,
                ..Default::default()
            },
        )?)
        .await
        .map_err(status)?
        .into_inner();
    if as_json {
        let rows: Vec<Value> = plan
            .suggestions
            .iter()
            .map(|s| {
                json!({
                    "candidate": s.candidate, "interviewer": s.interviewer, "competencies": s.competencies,
                    "expected_gain": s.expected_gain, "p_above_line": s.p_above_line, "reason": s.reason,
                })
            })
            .collect();
        return Ok(format!(
            "{}\n",
            json!({
                "job": job, "decision_line": plan.decision_line, "shortlist": plan.shortlist,
                "expected_wrong_decisions_before": plan.expected_wrong_decisions_before,
                "expected_wrong_decisions_after": plan.expected_wrong_decisions_after,
                "suggestions": rows,
            })
        ));
    }
    let header: Vec<String> =
        ["#", "candidate", "interviewer", "competencies", "P(≥ line)", "gain", "why"].map(String::from).to_vec();
    let rows: Vec<Vec<String>> = plan
        .suggestions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                (i + 1).to_string(),
                s.candidate.clone(),
                s.interviewer.clone(),
                s.competencies.join(", "),
                format!("{:.2}", s.p_above_line),
                format!("{:.3}", s.expected_gain),
                s.reason.clone(),
            ]
        })
        .collect();
    let line = if plan.shortlist {
        format!("the shortlist line {:.2} (the job has no hiring bar)", plan.decision_line)
    } else {
        format!("the hiring bar {}", plan.decision_line)
    };
    let summary = format!(
        "{} interviews planned against {line}: expected wrong side-of-the-line decisions {:.2} now, {:.2} after them\n",
        plan.suggestions.len(),
        plan.expected_wrong_decisions_before,
        plan.expected_wrong_decisions_after
    );
    if plan.suggestions.is_empty() {
        return Ok(format!("{summary}no interview would settle a decision: every candidate is on a clear side\n"));
    }
    Ok(format!("{}{summary}", table(&header, &rows)))
}

/// Every rater report (or only flagged raters).
pub async fn raters(args: &ClientArgs, flagged_only: bool, as_json: bool) -> Result<String, AppError> {
    let mut client = client(args).await?;
    let mut reports = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_rater_reports(request(
                &args.token,
                proto::ListRaterReportsRequest { flagged_only, page_size: 1000, page_token: page_token.clone() },
            )?)
            .await
            .map_err(status)?
            .into_inner();
        reports.extend(page.reports);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if as_json {
        let rows: Vec<Value> = reports
            .iter()
            .map(|r| {
                json!({
                    "rater": r.rater, "rating_count": r.rating_count, "severity": r.severity,
                    "severity_lower": r.severity_lower, "severity_upper": r.severity_upper, "noise": r.noise,
                    "halo": r.halo, "range_use": r.range_use, "drift": r.drift,
                    "recommendation_agreement": r.recommendation_agreement, "evidence_quality": r.evidence_quality,
                    "flags": r.flags.iter().map(|f| json!({ "kind": flag_name(f.kind), "detail": f.detail })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok(format!("{}\n", json!({ "reports": rows })));
    }
    let header: Vec<String> =
        ["rater", "ratings", "severity", "90% interval", "noise", "halo", "range use", "drift/yr", "flags"]
            .map(String::from)
            .to_vec();
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.rater.clone(),
                r.rating_count.to_string(),
                format!("{:+.2}", r.severity),
                format!("{:+.2}–{:+.2}", r.severity_lower, r.severity_upper),
                format!("{:.2}", r.noise),
                format!("{:.2}", r.halo),
                format!("{:.2}", r.range_use),
                format!("{:+.2}", r.drift),
                r.flags.iter().map(|f| format!("{}: {}", flag_name(f.kind), f.detail)).collect::<Vec<_>>().join(" | "),
            ]
        })
        .collect();
    Ok(table(&header, &rows))
}

/// Panel reliability of a job.
pub async fn reliability(args: &ClientArgs, job: &str, as_json: bool) -> Result<String, AppError> {
    let mut client = client(args).await?;
    let r = client
        .get_panel_reliability(request(
            &args.token,
            proto::GetPanelReliabilityRequest { job: job.to_string(), rubric: String::new() },
        )?)
        .await
        .map_err(status)?
        .into_inner();
    let mut all: Vec<proto::ReliabilityFigures> = r.competencies;
    all.extend(r.overall);
    if as_json {
        let rows: Vec<Value> = all
            .iter()
            .map(|f| {
                json!({
                    "competency": if f.competency.is_empty() { "(overall)" } else { f.competency.as_str() },
                    "icc2_1": f.icc2_1, "icc2_k": f.icc2_k, "alpha_ordinal": f.alpha_ordinal,
                    "alpha_interval": f.alpha_interval, "rater_count": f.rater_count, "subject_count": f.subject_count,
                })
            })
            .collect();
        return Ok(format!("{}\n", json!({ "job": job, "figures": rows })));
    }
    let header: Vec<String> =
        ["competency", "ICC(2,1)", "ICC(2,k)", "alpha ordinal", "alpha interval", "raters", "candidates"]
            .map(String::from)
            .to_vec();
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|f| {
            vec![
                if f.competency.is_empty() { "(overall)".into() } else { f.competency.clone() },
                optional(f.icc2_1),
                optional(f.icc2_k),
                optional(f.alpha_ordinal),
                optional(f.alpha_interval),
                f.rater_count.to_string(),
                f.subject_count.to_string(),
            ]
        })
        .collect();
    Ok(table(&header, &rows))
}

/// The adverse-impact report, one row per measure × grouping × category.
pub async fn impact(args: &ClientArgs, job: &str, rubric: &str, as_json: bool) -> Result<String, AppError> {
    use proto::compliance_service_client::ComplianceServiceClient;
    let mut client = ComplianceServiceClient::new(channel(args).await?);
    let r = client
        .get_adverse_impact_report(request(
            &args.token,
            proto::GetAdverseImpactReportRequest { job: job.into(), rubric: rubric.into(), ..Default::default() },
        )?)
        .await
        .map_err(status)?
        .into_inner();
    let name = |measure: i32, grouping: i32| {
        let m = proto::Measure::try_from(measure).map_or("?", |m| m.as_str_name());
        let g = proto::Grouping::try_from(grouping).map_or("?", |g| g.as_str_name());
        (m.trim_start_matches("MEASURE_").to_lowercase(), g.trim_start_matches("GROUPING_").to_lowercase())
    };
    let rows: Vec<(String, String, &proto::ImpactRow)> = r
        .tables
        .iter()
        .flat_map(|t| {
            let (m, g) = name(t.measure, t.grouping);
            t.rows.iter().map(move |row| (m.clone(), g.clone(), row))
        })
        .collect();
    if as_json {
        let rows: Vec<Value> = rows
            .iter()
            .map(|(m, g, row)| {
                json!({
                    "measure": m, "grouping": g, "category": row.category, "count": row.count,
                    "rate": row.rate, "impact_ratio": row.impact_ratio, "excluded": row.excluded,
                    "below_four_fifths": row.below_four_fifths,
                })
            })
            .collect();
        return Ok(format!(
            "{}\n",
            json!({
                "subject_count": r.subject_count, "unknown_sex_count": r.unknown_sex_count,
                "unknown_race_ethnicity_count": r.unknown_race_ethnicity_count, "rows": rows,
            })
        ));
    }
    let header: Vec<String> =
        ["measure", "grouping", "category", "subjects", "rate", "impact ratio", "flags"].map(String::from).to_vec();
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(m, g, row)| {
            let flag = if row.excluded {
                "excluded (under the minimum share)"
            } else if row.below_four_fifths {
                "below four-fifths"
            } else {
                ""
            };
            vec![
                m.clone(),
                g.clone(),
                row.category.clone(),
                row.count.to_string(),
                format!("{:.2}", row.rate),
                if row.excluded { "-".into() } else { format!("{:.2}", row.impact_ratio) },
                flag.into(),
            ]
        })
        .collect();
    Ok(format!(
        "{} subjects; sex unknown for {}, race/ethnicity unknown for {}\n\n{}",
        r.subject_count,
        r.unknown_sex_count,
        r.unknown_race_ethnicity_count,
        table(&header, &table_rows)
    ))
}

/// Rater differentials under one grouping, one row per comparison, flagged first.
pub async fn differentials(
    args: &ClientArgs,
    grouping: proto::Grouping,
    flagged_only: bool,
    as_json: bool,
) -> Result<String, AppError> {
    use proto::compliance_service_client::ComplianceServiceClient;
    let mut client = ComplianceServiceClient::new(channel(args).await?);
    let mut differentials = Vec::new();
    let mut page_token = String::new();
    let mut reference = String::new();
    loop {
        let page = client
            .list_rater_differentials(request(
                &args.token,
                proto::ListRaterDifferentialsRequest {
                    grouping: grouping as i32,
                    flagged_only,
                    page_size: 1000,
                    page_token: page_token.clone(),
                },
            )?)
            .await
            .map_err(status)?
            .into_inner();
        differentials.extend(page.differentials);
        if reference.is_empty() {
            reference = page.reference_category;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut rows: Vec<(&str, &proto::RaterComparison)> =
        differentials.iter().flat_map(|d| d.comparisons.iter().map(move |c| (d.rater.as_str(), c))).collect();
    rows.sort_by(|a, b| b.1.flagged.cmp(&a.1.flagged).then(b.1.difference.abs().total_cmp(&a.1.difference.abs())));
    if as_json {
        let rows: Vec<Value> = rows
            .iter()
            .map(|(rater, c)| {
                json!({
                    "rater": rater, "category": c.category, "reference_category": c.reference_category,
                    "scorecard_count": c.scorecard_count, "reference_scorecard_count": c.reference_scorecard_count,
                    "difference": c.difference, "lower": c.lower, "upper": c.upper,
                    "p_value": c.p_value, "q_value": c.q_value, "flagged": c.flagged,
                })
            })
            .collect();
        return Ok(format!("{}\n", json!({ "reference_category": reference, "comparisons": rows })));
    }
    let header: Vec<String> = ["rater", "category", "vs", "scorecards", "difference", "90% interval", "q", "flags"]
        .map(String::from)
        .to_vec();
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(rater, c)| {
            vec![
                rater.to_string(),
                c.category.clone(),
                c.reference_category.clone(),
                format!("{} / {}", c.scorecard_count, c.reference_scorecard_count),
                format!("{:+.2}", c.difference),
                format!("{:+.2}–{:+.2}", c.lower, c.upper),
                format!("{:.3}", c.q_value),
                if c.flagged { "flagged".into() } else { String::new() },
            ]
        })
        .collect();
    if table_rows.is_empty() {
        return Ok("No interviewer has enough scorecards in two categories to compare.\n".into());
    }
    Ok(format!(
        "differences in scale points from the panel's view, relative to {reference} (the largest category)\n\n{}",
        table(&header, &table_rows)
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bare_host_and_port_is_plain_http() {
        assert_eq!(super::server_uri("127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(super::server_uri(" localhost:50051 "), "http://localhost:50051");
        assert_eq!(super::server_uri("http://10.0.0.1:50051"), "http://10.0.0.1:50051");
        assert_eq!(super::server_uri("https://scorecard.example.com"), "https://scorecard.example.com");
    }

    #[test]
    fn tables_align_columns() {
        let t =
            super::table(&["a".into(), "long header".into(), "x".into()], &[vec!["1".into(), "2".into(), "3".into()]]);
        assert_eq!(t, "a  long header  x\n1  2            3\n");
    }

    #[test]
    fn colour_keeps_columns_aligned() {
        let header = ["rank".to_string(), "flags".to_string()];
        let rows = [vec!["1".to_string(), "panel disagrees".to_string()], vec!["10".to_string(), String::new()]];
        let coloured = super::styled_table(&header, &rows, true);
        assert_eq!(coloured, "\x1b[1mrank\x1b[0m  \x1b[1mflags\x1b[0m\n1     \x1b[31mpanel disagrees\x1b[0m\n10\n");
        let plain = super::styled_table(&header, &rows, false);
        assert_eq!(plain, "rank  flags\n1     panel disagrees\n10\n");
    }
}
