//! The visual report in a real browser, as a newcomer meets it: `scorecard
//! demo` started as the README says, its printed link opened in headless
//! Chromium (driven through ChromeDriver's WebDriver protocol), the sign-in
//! script following the link, a click on the first job, and the page checked
//! for the demo's candidates and flagged raters. A screenshot is kept as a test
//! artifact. Needs Debian's `chromium` and `chromium-driver`, which
//! `scripts/test` installs; without them this test fails, it never skips.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Kills a child process when dropped, so a failing assertion leaves nothing running.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
}

impl Driver {
    async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
        let mut request = http.request(method, url);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("WebDriver {url}: {e}"));
        let bytes = response.bytes().await.expect("WebDriver body");
        let value: Value = serde_json::from_slice(&bytes).expect("WebDriver JSON");
        if value["value"]["error"].is_string() {
            panic!("WebDriver {url}: {}", value["value"]);
        }
        value["value"].clone()
    }

    async fn start(port: u16, profile: &std::path::Path) -> Driver {
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        // ChromeDriver takes a moment to listen.
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1280,2600",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let created = Self::call(&http, reqwest::Method::POST, &format!("{base}/session"), Some(capabilities)).await;
        let session = created["sessionId"].as_str().expect("a session id").to_string();
        Driver { http, base, session }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        Self::call(&self.http, reqwest::Method::POST, &url, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        Self::call(&self.http, reqwest::Method::GET, &url, None).await
    }

    async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Waits until `script` returns true.
    async fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.script(script).await == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let seen = self.script("return [location.href, document.body ? document.body.innerText : ''];").await;
                panic!("timed out waiting for {what}; the browser shows {seen}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn quit(self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_report_opens_in_a_browser() {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: install Debian's chromium and chromium-driver (scripts/test does, as root)"
        );
    }
    // The README's first command, on ports of its own.
    let mut demo = Command::new(env!("CARGO_BIN_EXE_scorecard"))
        .args(["demo", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env_remove("SCORECARD_LISTEN")
        .env_remove("SCORECARD_HTTP_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start demo");
    let stdout = demo.stdout.take().expect("stdout");
    let _demo = Reaper(demo);
    let link = tokio::task::spawn_blocking(move || {
        let mut link = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read");
            // The first link signs in the recruiter (the second, the compliance officer).
            if let Some(url) = line.trim().strip_prefix("http://").filter(|u| u.contains("/login#token="))
                && link.is_empty()
            {
                link = format!("http://{url}");
            }
            if line.starts_with("demo ready") {
                break;
            }
        }
        link
    })
    .await
    .expect("join");
    assert!(link.contains("/login#token="), "the demo prints a link that opens the report");

    let port = free_port();
    let driver_process = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let _driver_process = Reaper(driver_process);
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = Driver::start(port, profile.path()).await;

    // The link signs the browser in (the fragment is posted, then dropped from
    // the address) and lands on the list of jobs.
    browser.post("/url", json!({"url": link})).await;
    browser
        .wait_for(
            "the jobs page",
            "return location.pathname === '/' && document.querySelectorAll('ul.jobs a').length === 3;",
        )
        .await;
    assert_eq!(browser.script("return location.hash;").await, json!(""), "no token left in the address");
    let cookie_visible = browser.script("return document.cookie.includes('scorecard_session');").await;
    assert_eq!(cookie_visible, json!(false), "the session cookie is HttpOnly");

    // A real click on the first job.
    let link = browser.post("/element", json!({"using": "css selector", "value": "ul.jobs a"})).await;
    let element = link[ELEMENT].as_str().expect("element id").to_string();
    browser.post(&format!("/element/{element}/click"), json!({})).await;
    browser
        .wait_for(
            "the job report",
            "return location.pathname.startsWith('/jobs/') && document.querySelector('svg.chart') !== null;",
        )
        .await;

    let candidates = browser
        .script("return document.querySelectorAll('svg[aria-labelledby^=\"rank-title\"] g.candidate').length;")
        .await;
    assert_eq!(candidates, json!(20), "every candidate of the job has an interval bar");
    let rows = browser.script("return document.querySelectorAll('table.ranking tbody tr').length;").await;
    assert_eq!(rows, json!(20));
    // The demo's jobs have a hiring bar: drawn once, with each candidate's probability.
    let bars = browser.script("return document.querySelectorAll('svg line.bar').length;").await;
    assert_eq!(bars, json!(1), "the hiring bar is drawn");
    let p = browser
        .script("return Array.from(document.querySelectorAll('g.candidate text.flags')).filter(t => t.textContent.startsWith('P(≥ bar) ')).length;")
        .await;
    assert_eq!(p, json!(20), "every candidate shows P(≥ bar)");
    let flagged = browser
        .script("return Array.from(document.querySelectorAll('g.rater.flagged text')).map(t => t.textContent);")
        .await;
    let flagged: Vec<String> =
        flagged.as_array().expect("labels").iter().filter_map(|v| v.as_str().map(String::from)).collect();
    for planted in ["dagny", "lena", "nadia"] {
        assert!(flagged.iter().any(|l| l.starts_with(&format!("{planted} ("))), "{planted} labelled: {flagged:?}");
    }
    // The dimension scatter's labels, as the browser lays them out, never
    // overlap one another.
    let overlapping = browser
        .script(
            "const boxes = Array.from(document.querySelectorAll('text.point-label')).map(t => t.getBoundingClientRect());\
             let n = 0;\
             for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {\
               const a = boxes[i], b = boxes[j];\
               if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) n++;\
             }\
             return [boxes.length, n];",
        )
        .await;
    let labelled = overlapping[0].as_u64().expect("label count");
    assert!(labelled >= 3, "the scatter labels the top of the ranking: {overlapping}");
    assert_eq!(overlapping[1], json!(0), "scatter labels overlap: {overlapping}");
    // Names a recruiter can tell apart: no surname twice in a job.
    let names = browser
        .script("return Array.from(document.querySelectorAll('table.ranking tbody th')).map(t => t.textContent);")
        .await;
    let surnames: std::collections::HashSet<String> = names
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|v| v.as_str().and_then(|n| n.split(' ').next_back()).map(String::from))
        .collect();
    assert_eq!(surnames.len(), 20, "every candidate of the job has a surname of their own: {names}");
    // The style sheet applied (the Content-Security-Policy lets our own in).
    let header = browser.script("return getComputedStyle(document.querySelector('header')).backgroundColor;").await;
    assert_eq!(header, json!("rgb(11, 42, 91)"));
    let text = browser.script("return document.body.innerText;").await;
    let text = text.as_str().unwrap_or_default();
    assert!(text.contains("Calibrated ranking") && text.contains("Flagged interviewers"), "{text}");

    let shot = browser.get("/screenshot").await;
    let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().expect("base64 PNG")).expect("decode");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000, "a real screenshot ({} bytes)", png.len());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    let path = dir.join("report.png");
    std::fs::write(&path, &png).expect("write screenshot");
    println!("screenshot: {}", path.display());
    browser.quit().await;
}
