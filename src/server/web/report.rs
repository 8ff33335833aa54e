//! The report pages as HTML with inline SVG, rendered from plain data: no I/O
//! here, so every page can be pinned by unit tests. Every text that came from a
//! client (titles, names, rater ids, flag sentences) goes through [`esc`].
//!
//! Accessibility: each chart is an `<svg role="img">` with a title and a
//! description, and the same numbers follow in an HTML table; colours keep a
//! contrast of at least 4.5:1 on white, and marks differ in shape as well as
//! colour (raw mean is a hollow diamond, calibrated score a filled dot).
//! No inline styles or scripts: the Content-Security-Policy forbids them.

use std::fmt::Write as _;

/// One candidate's line in a job's ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedCandidate {
    pub rank: i32,
    pub name: String,
    pub score: f64,
    pub lower: f64,
    pub upper: f64,
    pub raw_mean: f64,
    /// Scores of the two plotted dimensions, when assessed.
    pub x_dimension: Option<f64>,
    pub y_dimension: Option<f64>,
    pub scorecards: i32,
    pub flags: Vec<String>,
    /// 1 = top; a new tier starts where the evidence separates neighbours.
    pub tier: i32,
    /// P(calibrated score ≥ the job's hiring bar), with a bar.
    pub p_above_bar: Option<f64>,
}

/// One rater on the rater map.
#[derive(Debug, Clone, PartialEq)]
pub struct RaterPoint {
    pub rater: String,
    pub ratings: i32,
    pub severity: f64,
    pub noise: f64,
    /// Flag names (e.g. `SEVERE`) with their sentences; `INSUFFICIENT_DATA` excluded.
    pub flags: Vec<(String, String)>,
    pub insufficient_data: bool,
}

/// Everything a job's report page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    pub job_id: String,
    pub job_title: String,
    pub calibrated_at: String,
    pub scale_min: i32,
    pub scale_max: i32,
    /// The job's hiring bar, drawn on the ranking.
    pub hiring_bar: Option<f64>,
    /// Titles of the dimensions on the scatter's x and y axes (None: the rubric
    /// has fewer than two dimensions).
    pub dimensions: Option<(String, String)>,
    pub candidates: Vec<RankedCandidate>,
    /// Candidates in the ranking, when more than are shown.
    pub total_candidates: usize,
    pub raters: Vec<RaterPoint>,
    /// ICC(2,1) and Krippendorff's ordinal alpha over the job's panels.
    pub icc2_1: Option<f64>,
    pub alpha_ordinal: Option<f64>,
}

/// A job on the index page.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLink {
    pub id: String,
    pub title: String,
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn page(title: &str, viewer: &str, body: &str) -> String {
    let viewer_bar = if viewer.is_empty() {
        String::new()
    } else {
        format!(
            "<form class=\"session\" method=\"post\" action=\"/logout\"><span>Signed in as {}</span> \
             <button type=\"submit\">Sign out</button></form>",
            esc(viewer)
        )
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · scorecard</title><link rel=\"stylesheet\" href=\"/static/report.css\"></head>\
         <body><header><a class=\"brand\" href=\"/\">scorecard</a>{viewer_bar}</header><main>{body}</main></body></html>\n",
        esc(title)
    )
}

fn number(x: f64) -> String {
    format!("{x:.2}")
}

/// The list of jobs, each linking to its report.
pub fn index_page(viewer: &str, jobs: &[JobLink], compliance: bool) -> String {
    let mut body = String::from("<h1>Jobs</h1>");
    if compliance {
        body.push_str("<p><a href=\"/compliance\">Compliance: adverse impact and rater differentials</a></p>");
    }
    if jobs.is_empty() {
        body.push_str("<p>No jobs yet. Create one through the API (HiringService.CreateJob).</p>");
    } else {
        body.push_str("<ul class=\"jobs\">");
        for job in jobs {
            let _ = write!(body, "<li><a href=\"/jobs/{}\">{}</a></li>", esc(&job.id), esc(&job.title));
        }
        body.push_str("</ul>");
    }
    page("Jobs", viewer, &body)
}

/// The sign-in page: paste a token, or arrive with `#token=…` in the address
/// (the fragment never reaches the server's logs; `/static/login.js` posts it).
pub fn login_page(message: Option<&str>) -> String {
    let note = message.map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m))).unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{note}<p>Paste an API token (a recruiter's, an admin's, or for the compliance page a compliance officer's). \
         It is kept in a cookie only this site can read and only for this browser session.</p>\
         <form id=\"login\" method=\"post\" action=\"/session\"><label for=\"token\">Token</label>\
         <textarea id=\"token\" name=\"token\" rows=\"4\" cols=\"60\" autocomplete=\"off\" spellcheck=\"false\" required></textarea>\
         <button type=\"submit\">Sign in</button></form><script src=\"/static/login.js\"></script>"
    );
    page("Sign in", "", &body)
}

/// A page that says what went wrong, in words a recruiter can act on.
pub fn error_page(viewer: &str, title: &str, message: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p role=\"alert\">{}</p><p><a href=\"/\">Back to the jobs</a></p>",
        esc(title),
        esc(message)
    );
    page(title, viewer, &body)
}

/// Maps values of `lo..=hi` onto pixels `from..=to`.
#[derive(Clone, Copy)]
pub(super) struct Axis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) from: f64,
    pub(super) to: f64,
}

impl Axis {
    pub(super) fn at(&self, v: f64) -> f64 {
        let v = if v.is_nan() { self.lo } else { v.clamp(self.lo, self.hi) };
        let span = if self.hi > self.lo { self.hi - self.lo } else { 1.0 };
        self.from + (v - self.lo) / span * (self.to - self.from)
    }
}

fn diamond(x: f64, y: f64, r: f64) -> String {
    format!("M{:.1},{:.1} l{r},{r} l-{r},{r} l-{r},-{r} z", x, y - r)
}

/// Interval bars: one row per candidate, the 90% interval as a bar, the
/// calibrated score as a dot, the raw mean as a hollow diamond.
fn ranking_chart(r: &JobReport) -> String {
    const ROW: f64 = 26.0;
    const TOP: f64 = 40.0;
    let (left, right, width) = (230.0, 690.0, 900.0);
    let height = TOP + ROW * r.candidates.len() as f64 + 20.0;
    let x = Axis { lo: f64::from(r.scale_min), hi: f64::from(r.scale_max), from: left, to: right };
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-labelledby=\"rank-title rank-desc\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"rank-title\">Calibrated ranking of {}</title>\
         <desc id=\"rank-desc\">For each candidate, in rank order: the 90% interval of the calibrated score as a bar, \
         the calibrated score as a dot and the raw mean of the ratings as a hollow diamond, on the rubric scale \
         {} to {}{}; a line between rows starts a new tier.</desc>",
        esc(&r.job_title),
        r.scale_min,
        r.scale_max,
        r.hiring_bar.map_or(String::new(), |b| format!(
            ", with the hiring bar at {} and each candidate's probability of being at or above it",
            number(b)
        ))
    );
    for tick in r.scale_min..=r.scale_max {
        let tx = x.at(f64::from(tick));
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tick\" x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\">{tick}</text>",
            TOP - 12.0,
            height - 14.0,
            TOP - 18.0
        );
    }
    if let Some(bar) = r.hiring_bar {
        let bx = x.at(bar);
        let _ = write!(
            svg,
            "<line class=\"bar\" x1=\"{bx:.1}\" y1=\"{}\" x2=\"{bx:.1}\" y2=\"{:.1}\"/>\
             <text class=\"bar-label\" x=\"{bx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">hiring bar {}</text>",
            TOP - 8.0,
            height - 18.0,
            height - 4.0,
            number(bar)
        );
    }
    for (i, c) in r.candidates.iter().enumerate() {
        let y = TOP + ROW * i as f64 + ROW / 2.0;
        if i > 0 && r.candidates[i - 1].tier != c.tier {
            let ty = y - ROW / 2.0;
            let _ = write!(
                svg,
                "<line class=\"tier\" x1=\"10\" y1=\"{ty:.1}\" x2=\"{right:.1}\" y2=\"{ty:.1}\"/>\
                 <text class=\"tier-label\" x=\"12\" y=\"{:.1}\">tier {}</text>",
                ty + 11.0,
                c.tier
            );
        }
        let mut notes: Vec<String> = Vec::new();
        if let Some(p) = c.p_above_bar {
            notes.push(format!("P(≥ bar) {p:.2}"));
        }
        notes.extend(c.flags.iter().cloned());
        let flags = notes.join(", ");
        let _ = write!(
            svg,
            "<g class=\"candidate\"><title>{rank}. {name}: calibrated {score} (90% interval {lo} to {hi}), raw mean {raw}, \
             {n} scorecard(s){flag_note}</title>\
             <text class=\"label\" x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{rank}. {name}</text>\
             <line class=\"interval\" x1=\"{x1:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\"/>\
             <circle class=\"score\" cx=\"{sx:.1}\" cy=\"{y:.1}\" r=\"5\"/>\
             <path class=\"raw\" d=\"{raw_mark}\"/>\
             <text class=\"flags\" x=\"{fx}\" y=\"{ty:.1}\">{flags}</text></g>",
            rank = c.rank,
            name = esc(&c.name),
            score = number(c.score),
            lo = number(c.lower),
            hi = number(c.upper),
            raw = number(c.raw_mean),
            n = c.scorecards,
            flag_note = if flags.is_empty() { String::new() } else { format!("; {}", esc(&flags)) },
            lx = left - 12.0,
            ty = y + 4.0,
            x1 = x.at(c.lower),
            x2 = x.at(c.upper),
            sx = x.at(c.score),
            raw_mark = diamond(x.at(c.raw_mean), y, 5.0),
            fx = right + 14.0,
            flags = esc(&flags),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Technical against communication (the rubric's first two dimensions).
fn dimension_scatter(r: &JobReport, x_title: &str, y_title: &str) -> String {
    let (width, height) = (560.0, 460.0);
    let (lo, hi) = (f64::from(r.scale_min), f64::from(r.scale_max));
    let x = Axis { lo, hi, from: 70.0, to: width - 30.0 };
    let y = Axis { lo, hi, from: height - 60.0, to: 30.0 };
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-labelledby=\"dims-title dims-desc\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"dims-title\">{xt} against {yt}</title>\
         <desc id=\"dims-desc\">Each candidate's calibrated {xt} score across and {yt} score up; \
         the top five of the ranking are labelled.</desc>",
        xt = esc(x_title),
        yt = esc(y_title)
    );
    for tick in r.scale_min..=r.scale_max {
        let v = f64::from(tick);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
             <line class=\"grid\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick}</text>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
            x.at(v),
            y.from,
            x.at(v),
            y.to,
            x.from,
            y.at(v),
            x.to,
            y.at(v),
            x.at(v),
            y.from + 18.0,
            x.from - 8.0,
            y.at(v) + 4.0
        );
    }
    let _ = write!(
        svg,
        "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text class=\"axis\" x=\"18\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {:.1})\">{}</text>",
        (x.from + x.to) / 2.0,
        height - 18.0,
        esc(x_title),
        (y.from + y.to) / 2.0,
        (y.from + y.to) / 2.0,
        esc(y_title)
    );
    let plotted: Vec<(&RankedCandidate, f64, f64)> =
        r.candidates.iter().filter_map(|c| Some((c, x.at(c.x_dimension?), y.at(c.y_dimension?)))).collect();
    let points: Vec<(f64, f64)> = plotted.iter().map(|p| (p.1, p.2)).collect();
    let wanted: Vec<(usize, usize)> =
        plotted.iter().enumerate().filter(|(_, p)| p.0.rank <= 5).map(|(i, p)| (i, p.0.name.chars().count())).collect();
    let labels = place_labels(&points, &wanted, (x.from, y.to, x.to, y.from));
    for (i, &(c, px, py)) in plotted.iter().enumerate() {
        let _ = write!(
            svg,
            "<g class=\"candidate\"><title>{}. {}: {} {}, {} {}</title><circle class=\"point\" cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"5\"/>",
            c.rank,
            esc(&c.name),
            esc(x_title),
            optional(c.x_dimension),
            esc(y_title),
            optional(c.y_dimension)
        );
        if let Some(Some(label)) = labels.iter().find(|l| l.0 == i).map(|l| l.1) {
            let _ = write!(
                svg,
                "<text class=\"point-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{}\">{}</text>",
                label.x,
                label.y,
                if label.end { "end" } else { "start" },
                esc(&c.name)
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

/// Where a point's label goes: its text's anchor (`end`: the text ends at x).
#[derive(Debug, Clone, Copy, PartialEq)]
struct LabelSpot {
    x: f64,
    y: f64,
    end: bool,
}

/// Width of a label's character and the label's height, in the chart's pixels
/// (the style sheet's 11–12 px system font, a little generous).
const LABEL_CHAR_WIDTH: f64 = 6.8;
const LABEL_HEIGHT: f64 = 13.0;
/// A point's radius, and the space kept around it.
const POINT_CLEARANCE: f64 = 6.0;

impl LabelSpot {
    /// (left, top, right, bottom) of a label of `chars` characters.
    fn bounds(&self, chars: usize) -> (f64, f64, f64, f64) {
        let w = chars as f64 * LABEL_CHAR_WIDTH;
        let (l, r) = if self.end { (self.x - w, self.x) } else { (self.x, self.x + w) };
        (l, self.y - LABEL_HEIGHT + 3.0, r, self.y + 3.0)
    }
}

fn overlaps(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Labels for the points `wanted` (index into `points`, characters), in
/// order, each at the first spot around its point (right, left, above,
/// below; then further out) that stays inside `plot` (left, top, right,
/// bottom) and overlaps no label placed before it and no point. A label with
/// no free spot is left out: its point keeps its tooltip, and the table has
/// every name.
fn place_labels(
    points: &[(f64, f64)],
    wanted: &[(usize, usize)],
    plot: (f64, f64, f64, f64),
) -> Vec<(usize, Option<LabelSpot>)> {
    let mut placed: Vec<(f64, f64, f64, f64)> = Vec::new();
    let mut out = Vec::new();
    for &(i, chars) in wanted {
        let (px, py) = points[i];
        let spot = (1..=4).find_map(|step| {
            let d = 8.0 * f64::from(step);
            let spots = [
                LabelSpot { x: px + d, y: py - d * 0.5, end: false },
                LabelSpot { x: px + d, y: py + d * 0.5 + LABEL_HEIGHT - 3.0, end: false },
                LabelSpot { x: px - d, y: py - d * 0.5, end: true },
                LabelSpot { x: px - d, y: py + d * 0.5 + LABEL_HEIGHT - 3.0, end: true },
                LabelSpot { x: px - chars as f64 * LABEL_CHAR_WIDTH / 2.0, y: py - d, end: false },
                LabelSpot { x: px - chars as f64 * LABEL_CHAR_WIDTH / 2.0, y: py + d + LABEL_HEIGHT - 3.0, end: false },
            ];
            spots.into_iter().find(|s| {
                let b = s.bounds(chars);
                let inside = b.0 >= plot.0 && b.1 >= plot.1 && b.2 <= plot.2 && b.3 <= plot.3;
                let clear_of_points = points.iter().all(|&(qx, qy)| {
                    !overlaps(
                        b,
                        (qx - POINT_CLEARANCE, qy - POINT_CLEARANCE, qx + POINT_CLEARANCE, qy + POINT_CLEARANCE),
                    )
                });
                inside && clear_of_points && placed.iter().all(|&p| !overlaps(b, p))
            })
        });
        if let Some(s) = spot {
            placed.push(s.bounds(chars));
        }
        out.push((i, spot));
    }
    out
}

/// Rater map: severity across (negative is harsh), noise up; flagged raters
/// in red and named with their flags.
fn rater_map(r: &JobReport) -> String {
    let (width, height) = (720.0, 460.0);
    let spread = r.raters.iter().map(|p| p.severity.abs()).filter(|v| v.is_finite()).fold(0.5_f64, f64::max) * 1.15;
    let top = r.raters.iter().map(|p| p.noise).filter(|v| v.is_finite()).fold(0.5_f64, f64::max) * 1.15;
    let x = Axis { lo: -spread, hi: spread, from: 70.0, to: width - 160.0 };
    let y = Axis { lo: 0.0, hi: top, from: height - 60.0, to: 30.0 };
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-labelledby=\"raters-title raters-desc\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"raters-title\">Rater map</title>\
         <desc id=\"raters-desc\">Each interviewer's severity across (left of the centre line rates lower than the \
         organisation, right rates higher) and noise up (higher is less consistent). Flagged interviewers are \
         red squares, named with their flags; others are grey dots.</desc>\
         <line class=\"zero\" x1=\"{z:.1}\" y1=\"{:.1}\" x2=\"{z:.1}\" y2=\"{:.1}\"/>\
         <line class=\"grid\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
         <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">severity (rating points; harsh ← → lenient)</text>\
         <text class=\"axis\" x=\"18\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {:.1})\">noise (rating points)</text>",
        y.from,
        y.to,
        x.from,
        y.from,
        x.to,
        y.from,
        (x.from + x.to) / 2.0,
        height - 18.0,
        (y.from + y.to) / 2.0,
        (y.from + y.to) / 2.0,
        z = x.at(0.0),
    );
    let step = |range: f64| {
        if range > 3.0 {
            1.0
        } else if range > 1.2 {
            0.5
        } else {
            0.25
        }
    };
    let x_step = step(spread);
    let mut tick = -(spread / x_step).floor() * x_step;
    while tick <= spread + 1e-9 {
        let tx = x.at(tick);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tick\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick:+.2}</text>",
            y.from,
            y.from + 5.0,
            y.from + 18.0
        );
        tick += x_step;
    }
    let y_step = step(top);
    let mut tick = 0.0;
    while tick <= top + 1e-9 {
        let ty = y.at(tick);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{:.1}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick:.2}</text>",
            x.from,
            x.to,
            x.from - 8.0,
            ty + 4.0
        );
        tick += y_step;
    }
    // Flagged raters are drawn last, on top.
    for flagged in [false, true] {
        for p in r.raters.iter().filter(|p| p.flags.is_empty() != flagged) {
            let (px, py) = (x.at(p.severity), y.at(p.noise));
            let names: Vec<&str> = p.flags.iter().map(|(k, _)| k.as_str()).collect();
            let _ = write!(
                svg,
                "<g class=\"{}\"><title>{}: severity {}, noise {}, {} ratings{}</title>",
                if flagged { "rater flagged" } else { "rater" },
                esc(&p.rater),
                number(p.severity),
                number(p.noise),
                p.ratings,
                if names.is_empty() { String::new() } else { format!("; {}", esc(&names.join(", "))) }
            );
            if flagged {
                let _ = write!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\"/>\
                     <text class=\"point-label\" x=\"{:.1}\" y=\"{:.1}\">{} ({})</text>",
                    px - 5.0,
                    py - 5.0,
                    px + 9.0,
                    py + 4.0,
                    esc(&p.rater),
                    esc(&names.join(", "))
                );
            } else {
                let _ = write!(svg, "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\"/>");
            }
            svg.push_str("</g>");
        }
    }
    svg.push_str("</svg>");
    svg
}

fn optional(x: Option<f64>) -> String {
    x.map(number).unwrap_or_else(|| "–".into())
}

/// A job's report: ranking with intervals, the dimension scatter, the rater map,
/// and the tables behind them.
pub fn job_page(viewer: &str, r: &JobReport) -> String {
    let mut body = format!(
        "<p><a href=\"/\">← Jobs</a></p><h1>{}</h1><p class=\"meta\">Calibrated {} · {} candidates ranked · \
         panel reliability ICC(2,1) {} · Krippendorff's α (ordinal) {}</p>",
        esc(&r.job_title),
        esc(&r.calibrated_at),
        r.total_candidates,
        optional(r.icc2_1),
        optional(r.alpha_ordinal)
    );
    body.push_str("<section aria-labelledby=\"ranking-heading\"><h2 id=\"ranking-heading\">Calibrated ranking</h2>");
    if r.candidates.is_empty() {
        body.push_str("<p>No scorecards for this job yet.</p>");
    } else {
        body.push_str(
            "<p class=\"legend\"><span class=\"key-interval\">━</span> 90% interval · \
             <span class=\"key-score\">●</span> calibrated score · <span class=\"key-raw\">◇</span> raw mean. \
             Overlapping bars mean the evidence does not separate those candidates; a line between rows starts a \
             new tier (the candidate above it is truly higher with probability 0.9 or more).</p>",
        );
        if let Some(bar) = r.hiring_bar {
            let _ = write!(
                body,
                "<p class=\"legend\">The dashed line is the hiring bar, {}. P(≥ bar) is the probability that the \
                 candidate's calibrated score is at or above it, given the evidence so far.</p>",
                number(bar)
            );
        }
        if r.total_candidates > r.candidates.len() {
            let _ = write!(
                body,
                "<p>Showing the top {} of {}; the API and `scorecard ranking` list them all.</p>",
                r.candidates.len(),
                r.total_candidates
            );
        }
        body.push_str(&ranking_chart(r));
    }
    body.push_str("</section>");
    if let Some((x_title, y_title)) = &r.dimensions
        && !r.candidates.is_empty()
    {
        let _ = write!(
            body,
            "<section aria-labelledby=\"dims-heading\"><h2 id=\"dims-heading\">{} and {}</h2>{}</section>",
            esc(x_title),
            esc(y_title),
            dimension_scatter(r, x_title, y_title)
        );
    }
    body.push_str("<section aria-labelledby=\"raters-heading\"><h2 id=\"raters-heading\">Interviewers</h2>");
    if r.raters.is_empty() {
        body.push_str("<p>No rater reports yet.</p>");
    } else {
        body.push_str(&rater_map(r));
        let flagged: Vec<&RaterPoint> = r.raters.iter().filter(|p| !p.flags.is_empty()).collect();
        if flagged.is_empty() {
            body.push_str("<p>No interviewer is flagged.</p>");
        } else {
            body.push_str(
                "<table class=\"flagged\"><caption>Flagged interviewers</caption><thead><tr><th scope=\"col\">Interviewer</th>\
                 <th scope=\"col\">Ratings</th><th scope=\"col\">Flag</th><th scope=\"col\">Why</th></tr></thead><tbody>",
            );
            for p in flagged {
                for (kind, detail) in &p.flags {
                    let _ = write!(
                        body,
                        "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&p.rater),
                        p.ratings,
                        esc(kind),
                        esc(detail)
                    );
                }
            }
            body.push_str("</tbody></table>");
        }
    }
    body.push_str("</section>");
    if !r.candidates.is_empty() {
        let (xh, yh) = r.dimensions.clone().unwrap_or_else(|| ("–".into(), "–".into()));
        let _ = write!(
            body,
            "<section aria-labelledby=\"table-heading\"><h2 id=\"table-heading\">The numbers</h2>\
             <table class=\"ranking\"><thead><tr><th scope=\"col\">Rank</th><th scope=\"col\">Tier</th>\
             <th scope=\"col\">Candidate</th><th scope=\"col\">Calibrated</th><th scope=\"col\">90% interval</th>\
             <th scope=\"col\">P(≥ bar)</th><th scope=\"col\">Raw mean</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">Scorecards</th><th scope=\"col\">Flags</th>\
             </tr></thead><tbody>",
            esc(&xh),
            esc(&yh)
        );
        for c in &r.candidates {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td>{} – {}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.rank,
                c.tier,
                esc(&c.name),
                number(c.score),
                number(c.lower),
                number(c.upper),
                optional(c.p_above_bar),
                number(c.raw_mean),
                optional(c.x_dimension),
                optional(c.y_dimension),
                c.scorecards,
                esc(&c.flags.join(", "))
            );
        }
        body.push_str("</tbody></table></section>");
    }
    page(&r.job_title, viewer, &body)
}

/// The style sheet (served as `/static/report.css`).
pub const CSS: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a; background: #fff; margin: 0; }
header { display: flex; justify-content: space-between; align-items: center; padding: 0.6rem 1.5rem; background: #0b2a5b; color: #fff; }
header a.brand { color: #fff; font-weight: 700; text-decoration: none; font-size: 1.1rem; }
header form.session { display: flex; gap: 0.8rem; align-items: center; margin: 0; }
header button { font: inherit; }
main { padding: 1rem 1.5rem 3rem; max-width: 1100px; }
a { color: #1f4e9c; }
.meta, .legend { color: #3d3d3d; }
.error { color: #b00020; font-weight: 600; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 0.5rem 0 1.5rem; }
svg text { font-size: 13px; fill: #1a1a1a; }
svg .tick { fill: #3d3d3d; font-size: 12px; }
svg .axis { fill: #3d3d3d; font-size: 13px; }
svg .grid { stroke: #d0d0d0; stroke-width: 1; }
svg .zero { stroke: #6b6b6b; stroke-dasharray: 4 3; }
svg .interval { stroke: #1f4e9c; stroke-width: 6; stroke-linecap: round; opacity: 0.55; }
svg .score { fill: #0b2a5b; }
svg .raw { fill: #fff; stroke: #b3420e; stroke-width: 2; }
svg .flags { fill: #b00020; font-size: 12px; }
svg .point { fill: #1f4e9c; }
svg .point-label { font-size: 12px; }
svg .rater circle { fill: #6b6b6b; }
svg .rater.flagged rect { fill: #b00020; }
svg .rater.flagged text { fill: #b00020; font-weight: 600; }
.key-interval { color: #1f4e9c; } .key-score { color: #0b2a5b; } .key-raw { color: #b3420e; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid #d0d0d0; padding: 0.3rem 0.7rem; text-align: left; }
tbody th { font-weight: 500; }
ul.jobs { line-height: 1.9; }
tr.breach td { color: #b00020; font-weight: 600; }
tr.excluded td { color: #5c5c5c; }
details.job { margin: 0.4rem 0; }
details.job summary { cursor: pointer; padding: 0.2rem 0; }
svg .label { font-size: 12px; }
svg .interval.flagged { stroke: #b00020; }
svg .bar { stroke: #1a7f37; stroke-width: 2; stroke-dasharray: 6 4; }
svg .bar-label { fill: #1a7f37; font-size: 12px; }
svg .tier { stroke: #8a8a8a; stroke-width: 1; }
svg .tier-label { fill: #5a5a5a; font-size: 11px; }
svg circle.mark { fill: #0b2a5b; }
svg rect.flagged { fill: #b00020; }
textarea { display: block; width: 100%; max-width: 40rem; margin: 0.4rem 0 0.8rem; font-family: monospace; }
"#;

/// Posts a token given in the address fragment (`/login#token=…`), so the demo
/// can print one link that signs the browser in. The fragment is removed from
/// the address bar and history before anything else.
pub const LOGIN_JS: &str = r#"(function () {
  var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (!match) { return; }
  history.replaceState(null, "", window.location.pathname);
  var form = document.getElementById("login");
  document.getElementById("token").value = decodeURIComponent(match[1]);
  form.submit();
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> JobReport {
        JobReport {
            job_id: "j1".into(),
            job_title: "Backend <Engineer>".into(),
            calibrated_at: "2026-11-22 10:00 UTC".into(),
            scale_min: 1,
            scale_max: 5,
            hiring_bar: Some(3.5),
            dimensions: Some(("Technical".into(), "Communication".into())),
            candidates: vec![
                RankedCandidate {
                    rank: 1,
                    name: "Ada \"<script>\" Okafor".into(),
                    score: 4.2,
                    lower: 3.8,
                    upper: 4.6,
                    raw_mean: 3.9,
                    x_dimension: Some(4.4),
                    y_dimension: Some(4.0),
                    scorecards: 5,
                    flags: vec![],
                    tier: 1,
                    p_above_bar: Some(0.97),
                },
                RankedCandidate {
                    rank: 2,
                    name: "Bilal Moreau".into(),
                    score: 3.1,
                    lower: 2.2,
                    upper: 4.0,
                    raw_mean: 3.4,
                    x_dimension: Some(3.0),
                    y_dimension: None,
                    scorecards: 1,
                    flags: vec!["only one interview".into()],
                    tier: 2,
                    p_above_bar: Some(0.31),
                },
            ],
            total_candidates: 2,
            raters: vec![
                RaterPoint {
                    rater: "bruno".into(),
                    ratings: 40,
                    severity: -0.8,
                    noise: 0.5,
                    flags: vec![("SEVERE".into(), "Rates 0.8 points below the organisation.".into())],
                    insufficient_data: false,
                },
                RaterPoint {
                    rater: "amara".into(),
                    ratings: 35,
                    severity: 0.05,
                    noise: 0.4,
                    flags: vec![],
                    insufficient_data: false,
                },
            ],
            icc2_1: Some(0.61),
            alpha_ordinal: None,
        }
    }

    #[test]
    fn the_bar_tiers_and_probabilities_are_drawn_and_tabled() {
        let page = job_page("rita", &report());
        // 3.5 on 1..5 across 230..690: x = 517.5.
        assert!(page.contains("<line class=\"bar\" x1=\"517.5\""), "{page}");
        assert!(page.contains("hiring bar 3.50"));
        assert!(page.contains("<text class=\"tier-label\" x=\"12\""), "a line before the second tier");
        assert_eq!(page.matches("class=\"tier\"").count(), 1);
        assert!(page.contains("P(≥ bar) 0.97") && page.contains("<td>0.31</td>"));
        let without = job_page("rita", &JobReport { hiring_bar: None, ..report() });
        assert!(!without.contains("class=\"bar\"") && !without.contains("hiring bar"));
    }

    #[test]
    fn client_text_is_escaped_everywhere() {
        let html = job_page("rita <admin>", &report());
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<Engineer>"));
        assert!(!html.contains("<admin>"));
        assert!(html.contains("Ada &quot;&lt;script&gt;&quot; Okafor"));
        assert!(html.contains("Backend &lt;Engineer&gt;"));
        assert_eq!(esc("a&b'c"), "a&amp;b&#39;c");
    }

    #[test]
    fn the_page_has_no_inline_style_or_script() {
        let html = job_page("rita", &report()) + &login_page(Some("x")) + &index_page("rita", &[], true);
        assert!(!html.contains("style="), "inline styles break under the Content-Security-Policy");
        assert!(!html.contains("<style"));
        assert!(!html.contains("<script>"), "only external scripts");
    }

    #[test]
    fn interval_bars_sit_on_the_scale() {
        let html = job_page("rita", &report());
        // Scale 1..5 onto x 230..690: 3.8 -> 552, 4.6 -> 644, score 4.2 -> 598.
        assert!(html.contains("x1=\"552.0\""), "{html}");
        assert!(html.contains("x2=\"644.0\""));
        assert!(html.contains("cx=\"598.0\""));
        // The raw mean diamond starts at 3.9 -> 563.5.
        assert!(html.contains("d=\"M563.5,"));
        assert!(html.contains("only one interview"));
    }

    #[test]
    fn flagged_raters_are_named_and_others_are_not() {
        let html = job_page("rita", &report());
        assert!(html.contains("bruno (SEVERE)"));
        assert!(html.contains("Rates 0.8 points below the organisation."));
        assert!(!html.contains("amara ("), "unflagged raters are dots with a tooltip only");
        assert!(html.contains("<title>amara: severity 0.05"));
    }

    #[test]
    fn scatter_labels_never_overlap_each_other_or_the_points() {
        // Five labelled candidates on nearly the same spot, and others around.
        let mut points: Vec<(f64, f64)> = (0..5).map(|i| (300.0 + f64::from(i), 200.0 + f64::from(i) * 0.5)).collect();
        points.extend([(330.0, 200.0), (270.0, 190.0), (300.0, 230.0)]);
        let wanted: Vec<(usize, usize)> = (0..5).map(|i| (i, 14)).collect();
        let plot = (70.0, 30.0, 530.0, 400.0);
        let labels = place_labels(&points, &wanted, plot);
        let boxes: Vec<(f64, f64, f64, f64)> = labels.iter().filter_map(|l| l.1.map(|s| s.bounds(14))).collect();
        assert!(boxes.len() >= 4, "most of the crowd gets a label: {labels:?}");
        for (a, x) in boxes.iter().enumerate() {
            assert!(x.0 >= plot.0 && x.1 >= plot.1 && x.2 <= plot.2 && x.3 <= plot.3, "inside the plot");
            for y in &boxes[a + 1..] {
                assert!(!overlaps(*x, *y), "{x:?} overlaps {y:?}");
            }
            for &(px, py) in &points {
                assert!(!overlaps(*x, (px - 5.0, py - 5.0, px + 5.0, py + 5.0)), "{x:?} covers a point");
            }
        }
        // A point at the right edge is labelled to its left.
        let edge = place_labels(&[(525.0, 100.0)], &[(0, 10)], plot);
        assert!(edge[0].1.is_some_and(|s| s.end), "{edge:?}");
    }

    #[test]
    fn candidates_missing_a_dimension_are_left_out_of_the_scatter() {
        let html = job_page("rita", &report());
        let scatter = html.split("<title id=\"dims-title\">").nth(1).unwrap_or_default();
        let scatter = scatter.split("</svg>").next().unwrap_or_default();
        assert!(scatter.contains("Okafor"));
        assert!(!scatter.contains("Bilal"));
    }

    #[test]
    fn long_rankings_say_how_many_are_not_shown() {
        let mut r = report();
        assert!(!job_page("rita", &r).contains("Showing the top"));
        r.total_candidates = 1_500;
        assert!(job_page("rita", &r).contains("Showing the top 2 of 1500"));
    }

    #[test]
    fn odd_numbers_never_leave_the_chart() {
        let mut r = report();
        r.candidates[0].lower = f64::NAN;
        r.candidates[0].upper = f64::INFINITY;
        r.raters[0].severity = f64::NAN;
        let html = job_page("rita", &r);
        for bad in ["=\"NaN", "=\"inf", "=\"-inf", ",NaN", ",inf"] {
            assert!(!html.contains(bad), "coordinates must be finite: {bad}");
        }
        // Infinite upper bound clamps to the scale's top (x 690).
        assert!(html.contains("x2=\"690.0\""));
    }
}
