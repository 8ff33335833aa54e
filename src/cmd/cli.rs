//! The recruiter CLI: `scorecard ranking`, `scorecard plan`, `scorecard
//! raters`, `scorecard reliability`, and `scorecard compliance impact` and
//! `scorecard compliance raters` for the compliance role. Plain gRPC clients of
//! a running server. Every read command prints in the form `--output` asks
//! for: an aligned table for people (candidates by their display names, bold
//! headers and red flags on a terminal, plain text when piped or with
//! `NO_COLOR` set), or JSON or CSV for scripts and spreadsheets, which carry
//! both the resource ids and the names.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use tonic::Request;
use tonic::transport::{Channel, ClientTlsConfig};

use crate::cmd::config::{ClientArgs, Output};
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
    let uri = server_uri(&args.addr);
    let mut endpoint =
        Channel::from_shared(uri.clone()).map_err(|e| AppError::Config(format!("bad --addr {}: {e}", args.addr)))?;
    if uri.starts_with("https://") {
        // TLS against the system's trust store, the server name from the URI.
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_native_roots())
            .map_err(|e| AppError::Config(format!("TLS for {}: {e}", args.addr)))?;
    }
    endpoint.connect().await.map_err(|e| AppError::Server(format!("cannot reach {}: {}", args.addr, source_chain(&e))))
}

/// An error with its causes ("transport error: tcp connect error: Connection
/// refused"): tonic's top-level message alone says only "transport error".
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
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

/// One record of a listing: its fields in column order. Values may nest for
/// JSON; CSV flattens them ([`csv`]).
type Record = Vec<(&'static str, Value)>;

/// What a read command prints, in each `--output` form from one set of
/// records, so that the three never disagree.
struct Listing {
    /// Top-level JSON fields beside the records (the job, its hiring bar…).
    meta: Vec<(&'static str, Value)>,
    /// The name of the records' array in JSON.
    key: &'static str,
    records: Vec<Record>,
    /// The table form: its header and rows, and text before and after it.
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    before: String,
    after: String,
}

impl Listing {
    fn render(self, output: Output) -> String {
        match output {
            Output::Table => format!("{}{}{}", self.before, table(&self.header, &self.rows), self.after),
            Output::Json => {
                let mut top = Map::new();
                for (k, v) in self.meta {
                    top.insert(k.into(), v);
                }
                let records = self.records.into_iter().map(|r| Value::Object(object(r))).collect();
                top.insert(self.key.into(), Value::Array(records));
                format!("{}\n", Value::Object(top))
            }
            Output::Csv => csv(&self.records),
        }
    }
}

fn object(record: Record) -> Map<String, Value> {
    record.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// RFC 4180 CSV of the records, one column per field in order of first
/// appearance. A list of scalars is one cell ("; " between them); a list of
/// named sub-records (a ranking's dimensions, a rater's flags) becomes one
/// column per name and field ("technical score", "SEVERE detail"), so a
/// spreadsheet gets a number per cell.
fn csv(records: &[Record]) -> String {
    // Fields that hold sub-records in any record become their columns only.
    let expanded: Vec<&str> = records
        .iter()
        .flatten()
        .filter(|(_, v)| v.as_array().is_some_and(|items| items.iter().any(Value::is_object)))
        .map(|(k, _)| *k)
        .collect();
    let flat: Vec<Vec<(String, String)>> = records.iter().map(|r| flatten(r, &expanded)).collect();
    let mut columns: Vec<String> = Vec::new();
    for row in &flat {
        for (k, _) in row {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let mut out = columns.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    for row in &flat {
        let cells: HashMap<&str, &str> = row.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let line: Vec<String> =
            columns.iter().map(|c| csv_cell(cells.get(c.as_str()).copied().unwrap_or(""))).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn flatten(record: &Record, expanded: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, value) in record {
        match value {
            Value::Array(items) if expanded.contains(key) => {
                for item in items.iter().filter_map(Value::as_object) {
                    let mut fields = item.iter();
                    let Some((_, Value::String(name))) = fields.next() else { continue };
                    for (field, v) in fields {
                        out.push((format!("{name} {field}"), scalar(v)));
                    }
                }
            }
            Value::Array(items) => {
                out.push((key.to_string(), items.iter().map(scalar).collect::<Vec<_>>().join("; ")));
            }
            v => out.push((key.to_string(), scalar(v))),
        }
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => {
            // A cell a spreadsheet would run as a formula (a display name of
            // "=HYPERLINK(…)") is kept as text (OWASP, CSV injection).
            if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.clone() }
        }
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Display names of candidates (`candidates/{id}` → name) by GetCandidate,
/// a few requests at a time over one connection. A candidate the caller may
/// not read, or one since deleted, keeps its id; an erased one reads
/// "(erased)".
async fn candidate_names(args: &ClientArgs, channel: &Channel, ids: Vec<String>) -> HashMap<String, String> {
    use proto::hiring_service_client::HiringServiceClient;
    const IN_FLIGHT: usize = 16;
    let mut unique = ids;
    unique.sort();
    unique.dedup();
    let mut names = HashMap::new();
    let mut pending = tokio::task::JoinSet::new();
    let mut queue = unique.into_iter();
    loop {
        while pending.len() < IN_FLIGHT {
            let Some(id) = queue.next() else { break };
            let Ok(r) = request(&args.token, proto::GetCandidateRequest { name: id.clone() }) else { break };
            let mut client = HiringServiceClient::new(channel.clone());
            pending.spawn(async move { (id, client.get_candidate(r).await.map(|c| c.into_inner())) });
        }
        let Some(done) = pending.join_next().await else { break };
        if let Ok((id, Ok(candidate))) = done {
            let name = if candidate.erased { "(erased)".to_string() } else { candidate.display_name };
            names.insert(id, name);
        }
    }
    names
}

/// How a candidate appears in a table: by name, with the id's last characters
/// when two candidates of the listing share a name; by id when the name is
/// unknown.
fn table_names(names: &HashMap<String, String>) -> HashMap<String, String> {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for name in names.values() {
        *uses.entry(name.as_str()).or_default() += 1;
    }
    names
        .iter()
        .map(|(id, name)| {
            let shown = if uses[name.as_str()] > 1 || name.is_empty() {
                let tail: String = id.chars().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
                format!("{name} (…{tail})")
            } else {
                name.clone()
            };
            (id.clone(), shown)
        })
        .collect()
}

fn shown<'a>(names: &'a HashMap<String, String>, id: &'a str) -> &'a str {
    names.get(id).map_or(id, String::as_str)
}

/// The job's whole calibrated ranking.
pub async fn ranking(args: &ClientArgs, job: &str) -> Result<String, AppError> {
    let channel = channel(args).await?;
    let mut client = CalibrationServiceClient::new(channel.clone());
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
    let names = candidate_names(args, &channel, entries.iter().map(|e| e.candidate.clone()).collect()).await;
    let in_table = table_names(&names);
    let records = entries
        .iter()
        .map(|e| {
            vec![
                ("rank", json!(e.rank)),
                ("tier", json!(e.tier)),
                ("candidate", json!(e.candidate)),
                ("candidate_name", json!(names.get(&e.candidate))),
                ("score", json!(e.score)),
                ("score_lower", json!(e.score_lower)),
                ("score_upper", json!(e.score_upper)),
                ("p_above_bar", json!(e.p_above_bar)),
                ("raw_mean", json!(e.raw_mean)),
                (
                    "dimensions",
                    e.dimensions
                        .iter()
                        .map(|d| {
                            json!({
                                "dimension": d.dimension, "score": d.score, "lower": d.lower,
                                "upper": d.upper, "raw_mean": d.raw_mean,
                            })
                        })
                        .collect(),
                ),
                ("scorecard_count", json!(e.scorecard_count)),
                ("flags", json!(e.flags)),
            ]
        })
        .collect();
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
                shown(&in_table, &e.candidate).to_string(),
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
    let after = match bar {
        Some(bar) => format!(
            "hiring bar {bar}: P(≥ {bar}) is the probability that the candidate's calibrated score is at or above it; \
             a new tier starts where the higher candidate is above the next with probability 0.9 or more\n"
        ),
        None => "no hiring bar (set one with UpdateJob); a new tier starts where the higher candidate is above the next with probability 0.9 or more\n".to_string(),
    };
    let listing = Listing {
        meta: vec![("job", json!(job)), ("hiring_bar", json!(bar))],
        key: "entries",
        records,
        header,
        rows,
        before: String::new(),
        after,
    };
    Ok(listing.render(args.output()))
}

/// The next interviews for a job.
pub async fn plan(
    args: &ClientArgs,
    job: &str,
    slots: i32,
    interviewers: &[String],
    max_per_interviewer: i32,
) -> Result<String, AppError> {
    let channel = channel(args).await?;
    let mut client = CalibrationServiceClient::new(channel.clone());
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
    let names = candidate_names(args, &channel, plan.suggestions.iter().map(|s| s.candidate.clone()).collect()).await;
    let in_table = table_names(&names);
    let records = plan
        .suggestions
        .iter()
        .map(|s| {
            vec![
                ("candidate", json!(s.candidate)),
                ("candidate_name", json!(names.get(&s.candidate))),
                ("interviewer", json!(s.interviewer)),
                ("competencies", json!(s.competencies)),
                ("expected_gain", json!(s.expected_gain)),
                ("p_above_line", json!(s.p_above_line)),
                ("reason", json!(s.reason)),
            ]
        })
        .collect();
    let header: Vec<String> =
        ["#", "candidate", "interviewer", "competencies", "P(≥ line)", "gain", "why"].map(String::from).to_vec();
    let rows: Vec<Vec<String>> = plan
        .suggestions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                (i + 1).to_string(),
                shown(&in_table, &s.candidate).to_string(),
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
    let mut after = format!(
        "{} interviews planned against {line}: expected wrong side-of-the-line decisions {:.2} now, {:.2} after them\n",
        plan.suggestions.len(),
        plan.expected_wrong_decisions_before,
        plan.expected_wrong_decisions_after
    );
    if plan.suggestions.is_empty() {
        after.push_str("no interview would settle a decision: every candidate is on a clear side\n");
    }
    let listing = Listing {
        meta: vec![
            ("job", json!(job)),
            ("decision_line", json!(plan.decision_line)),
            ("shortlist", json!(plan.shortlist)),
            ("expected_wrong_decisions_before", json!(plan.expected_wrong_decisions_before)),
            ("expected_wrong_decisions_after", json!(plan.expected_wrong_decisions_after)),
        ],
        key: "suggestions",
        records,
        header,
        rows,
        before: String::new(),
        after,
    };
    Ok(listing.render(args.output()))
}

/// Every rater report (or only flagged raters).
pub async fn raters(args: &ClientArgs, flagged_only: bool) -> Result<String, AppError> {
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
    let records = reports
        .iter()
        .map(|r| {
            vec![
                ("rater", json!(r.rater)),
                ("rating_count", json!(r.rating_count)),
                ("severity", json!(r.severity)),
                ("severity_lower", json!(r.severity_lower)),
                ("severity_upper", json!(r.severity_upper)),
                ("noise", json!(r.noise)),
                ("halo", json!(r.halo)),
                ("range_use", json!(r.range_use)),
                ("drift", json!(r.drift)),
                ("recommendation_agreement", json!(r.recommendation_agreement)),
                ("evidence_quality", json!(r.evidence_quality)),
                ("flags", r.flags.iter().map(|f| json!({ "kind": flag_name(f.kind), "detail": f.detail })).collect()),
            ]
        })
        .collect();
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
    let listing =
        Listing { meta: vec![], key: "reports", records, header, rows, before: String::new(), after: String::new() };
    Ok(listing.render(args.output()))
}

/// Panel reliability of a job.
pub async fn reliability(args: &ClientArgs, job: &str) -> Result<String, AppError> {
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
    let label = |f: &proto::ReliabilityFigures| {
        if f.competency.is_empty() { "(overall)".to_string() } else { f.competency.clone() }
    };
    let records = all
        .iter()
        .map(|f| {
            vec![
                ("competency", json!(label(f))),
                ("icc2_1", json!(f.icc2_1)),
                ("icc2_k", json!(f.icc2_k)),
                ("alpha_ordinal", json!(f.alpha_ordinal)),
                ("alpha_interval", json!(f.alpha_interval)),
                ("rater_count", json!(f.rater_count)),
                ("subject_count", json!(f.subject_count)),
            ]
        })
        .collect();
    let header: Vec<String> =
        ["competency", "ICC(2,1)", "ICC(2,k)", "alpha ordinal", "alpha interval", "raters", "candidates"]
            .map(String::from)
            .to_vec();
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|f| {
            vec![
                label(f),
                optional(f.icc2_1),
                optional(f.icc2_k),
                optional(f.alpha_ordinal),
                optional(f.alpha_interval),
                f.rater_count.to_string(),
                f.subject_count.to_string(),
            ]
        })
        .collect();
    let listing = Listing {
        meta: vec![("job", json!(job))],
        key: "figures",
        records,
        header,
        rows,
        before: String::new(),
        after: String::new(),
    };
    Ok(listing.render(args.output()))
}

/// The adverse-impact report, one row per measure × grouping × category.
pub async fn impact(args: &ClientArgs, job: &str, rubric: &str) -> Result<String, AppError> {
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
    let records = rows
        .iter()
        .map(|(m, g, row)| {
            vec![
                ("measure", json!(m)),
                ("grouping", json!(g)),
                ("category", json!(row.category)),
                ("count", json!(row.count)),
                ("rate", json!(row.rate)),
                ("impact_ratio", json!(row.impact_ratio)),
                ("excluded", json!(row.excluded)),
                ("below_four_fifths", json!(row.below_four_fifths)),
            ]
        })
        .collect();
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
    let listing = Listing {
        meta: vec![
            ("subject_count", json!(r.subject_count)),
            ("unknown_sex_count", json!(r.unknown_sex_count)),
            ("unknown_race_ethnicity_count", json!(r.unknown_race_ethnicity_count)),
        ],
        key: "rows",
        records,
        header,
        rows: table_rows,
        before: format!(
            "{} subjects; sex unknown for {}, race/ethnicity unknown for {}\n\n",
            r.subject_count, r.unknown_sex_count, r.unknown_race_ethnicity_count
        ),
        after: String::new(),
    };
    Ok(listing.render(args.output()))
}

/// Rater differentials under one grouping, one row per comparison, flagged first.
pub async fn differentials(
    args: &ClientArgs,
    grouping: proto::Grouping,
    flagged_only: bool,
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
    let records = rows
        .iter()
        .map(|(rater, c)| {
            vec![
                ("rater", json!(rater)),
                ("category", json!(c.category)),
                ("reference_category", json!(c.reference_category)),
                ("scorecard_count", json!(c.scorecard_count)),
                ("reference_scorecard_count", json!(c.reference_scorecard_count)),
                ("difference", json!(c.difference)),
                ("lower", json!(c.lower)),
                ("upper", json!(c.upper)),
                ("p_value", json!(c.p_value)),
                ("q_value", json!(c.q_value)),
                ("flagged", json!(c.flagged)),
            ]
        })
        .collect();
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
    if table_rows.is_empty() && args.output() == Output::Table {
        return Ok("No interviewer has enough scorecards in two categories to compare.\n".into());
    }
    let listing = Listing {
        meta: vec![("reference_category", json!(reference))],
        key: "comparisons",
        records,
        header,
        rows: table_rows,
        before: format!(
            "differences in scale points from the panel's view, relative to {reference} (the largest category)\n\n"
        ),
        after: String::new(),
    };
    Ok(listing.render(args.output()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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

    #[test]
    fn csv_quotes_flattens_and_defuses_formulas() {
        let records = vec![
            vec![
                ("candidate", json!("candidates/1")),
                ("candidate_name", json!("O'Brien, Siobhán")),
                ("score", json!(3.25)),
                ("dimensions", json!([{ "dimension": "technical", "score": 3.5, "lower": 3.0 }])),
                ("flags", json!(["thin evidence", "panel disagrees"])),
            ],
            vec![
                ("candidate", json!("candidates/2")),
                ("candidate_name", json!("=HYPERLINK(\"x\")")),
                ("score", json!(-0.5)),
                ("dimensions", json!([])),
                ("flags", json!([])),
            ],
        ];
        assert_eq!(
            super::csv(&records),
            "candidate,candidate_name,score,technical score,technical lower,flags\r\n\
             candidates/1,\"O'Brien, Siobhán\",3.25,3.5,3.0,thin evidence; panel disagrees\r\n\
             candidates/2,\"'=HYPERLINK(\"\"x\"\")\",-0.5,,,\r\n"
        );
    }

    #[test]
    fn shared_names_carry_the_end_of_their_ids() {
        let names: std::collections::HashMap<String, String> = [
            ("candidates/aaaa111111", "Ana Silva"),
            ("candidates/bbbb222222", "Ana Silva"),
            ("candidates/cccc333333", "Ben Okafor"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .into_iter()
        .collect();
        let shown = super::table_names(&names);
        assert_eq!(shown["candidates/aaaa111111"], "Ana Silva (…111111)");
        assert_eq!(shown["candidates/bbbb222222"], "Ana Silva (…222222)");
        assert_eq!(shown["candidates/cccc333333"], "Ben Okafor");
        assert_eq!(super::shown(&shown, "candidates/unknown"), "candidates/unknown");
    }
}
