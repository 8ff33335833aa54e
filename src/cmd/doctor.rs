//! `scorecard doctor`: checks the configuration `scorecard serve` would start
//! with (the same flags and `SCORECARD_*` variables) and says, in plain words,
//! what is wrong and how to fix it. It changes nothing: it does not migrate,
//! create the database file, write the development secret or hold a port.

use std::net::TcpListener;

use crate::cmd::config::{DEV_SECRET_FILE, ServeArgs};
use scorecard::auth::Verifier;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// `serve` would start, but something deserves attention.
    Warn,
    /// `serve` would not start, or would start wrong.
    Fail,
}

/// One line of the report, with what to do when it is not ok.
#[derive(Debug, Clone)]
pub struct Finding {
    pub verdict: Verdict,
    pub topic: &'static str,
    pub what: String,
    pub fix: Option<String>,
}

fn ok(topic: &'static str, what: impl Into<String>) -> Finding {
    Finding { verdict: Verdict::Ok, topic, what: what.into(), fix: None }
}

fn warn(topic: &'static str, what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { verdict: Verdict::Warn, topic, what: what.into(), fix: Some(fix.into()) }
}

fn fail(topic: &'static str, what: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { verdict: Verdict::Fail, topic, what: what.into(), fix: Some(fix.into()) }
}

/// Every check, in the order `serve` meets them.
pub async fn check(args: &ServeArgs) -> Vec<Finding> {
    let mut findings = vec![database(args).await];
    findings.extend(tokens(args).await);
    findings.push(self_identification(args));
    // The self-identification key has its own line above.
    let mut others = args.clone();
    others.self_id.self_id_key = None;
    others.self_id.self_id_old_keys = None;
    findings.push(match others.settings() {
        Ok(_) => ok("settings", "rate limits, deadlines, webhook and calibration settings are valid"),
        Err(e) => {
            fail("settings", e.to_string(), "correct the setting named above (scorecard serve --help lists them)")
        }
    });
    findings.push(listener("listen", &args.listen, "--listen / SCORECARD_LISTEN"));
    if args.http_listen.eq_ignore_ascii_case("off") {
        findings.push(ok("http-listen", "off: no report pages, /metrics or /healthz"));
    } else {
        findings.push(listener("http-listen", &args.http_listen, "--http-listen / SCORECARD_HTTP_LISTEN"));
        if !is_loopback(&args.http_listen) && args.metrics_token.as_ref().is_none_or(|t| t.0.is_empty()) {
            findings.push(warn(
                "metrics",
                format!("/metrics on {} is open to anyone who can reach it", args.http_listen),
                "set SCORECARD_METRICS_TOKEN and give Prometheus the same value as its bearer token",
            ));
        }
    }
    findings
}

/// The report as printed, and whether `serve` would start.
pub fn report(findings: &[Finding]) -> (String, bool) {
    let mut out = String::from("scorecard doctor: the configuration `scorecard serve` would start with\n\n");
    let width = findings.iter().map(|f| f.topic.len()).max().unwrap_or(0);
    for f in findings {
        let verdict = match f.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        out.push_str(&format!("{verdict}  {:<width$}  {}\n", f.topic, f.what));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
        }
    }
    let failed = findings.iter().filter(|f| f.verdict == Verdict::Fail).count();
    let warned = findings.iter().filter(|f| f.verdict == Verdict::Warn).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    out.push('\n');
    out.push_str(&if failed == 0 {
        format!("{}, {}: `scorecard serve` would start\n", plural(0, "problem"), plural(warned, "warning"))
    } else {
        format!(
            "{}, {}: `scorecard serve` would not start as configured\n",
            plural(failed, "problem"),
            plural(warned, "warning")
        )
    });
    (out, failed == 0)
}

async fn database(args: &ServeArgs) -> Finding {
    let url = &args.database.database_url;
    let shown = redact_password(url);
    if let Some(path) = sqlite_path(url)
        && path != ":memory:"
        && !std::path::Path::new(&path).exists()
    {
        return ok("database", format!("{shown}: no file yet; `scorecard serve` creates it and migrates it"));
    }
    let state = match scorecard::store::schema_state(url).await {
        Ok(state) => state,
        Err(e) => {
            return fail(
                "database",
                format!("{shown}: cannot connect or read its migrations ({e})"),
                "check SCORECARD_DATABASE_URL (sqlite://FILE or postgres://USER@HOST/DB), that the server is up, \
                 and that this user may connect and read the database",
            );
        }
    };
    match state {
        s if !s.failed.is_empty() => fail(
            "database",
            format!("{shown}: migration {:?} started and did not finish", s.failed),
            "restore the database from a backup taken before it, or finish the migration by hand, then run `scorecard migrate`",
        ),
        s if !s.unknown.is_empty() => fail(
            "database",
            format!("{shown}: migrated by a newer scorecard (migrations {:?} are unknown to this binary)", s.unknown),
            "run the scorecard version that migrated it, or newer",
        ),
        s if !s.pending.is_empty() => warn(
            "database",
            format!(
                "{shown}: reachable; {} of {} migrations applied, pending: {}",
                s.applied,
                s.known,
                s.pending.join(", ")
            ),
            "`scorecard serve` applies them at start; to apply them now, run `scorecard migrate`",
        ),
        s => ok("database", format!("{shown}: reachable, all {} migrations applied", s.known)),
    }
}

/// Token keys, issuer and audience, as `serve` would load them (a JWKS URL
/// is fetched).
async fn tokens(args: &ServeArgs) -> Vec<Finding> {
    let auth = &args.auth;
    let secret = auth.jwt_secret.as_ref().map(|s| s.0.as_str()).filter(|s| !s.is_empty());
    let file = auth.jwt_public_keys.as_deref();
    let url = auth.jwt_jwks_url.as_deref().filter(|u| !u.is_empty());
    let mut out = Vec::new();
    if secret.is_none() && !auth.has_public_keys() {
        out.push(if args.dev {
            let file = if std::path::Path::new(DEV_SECRET_FILE).exists() { "" } else { " (generated at start)" };
            warn(
                "tokens",
                format!("development mode: tokens are signed and checked with ./{DEV_SECRET_FILE}{file}"),
                "for production, set SCORECARD_JWT_SECRET, or SCORECARD_JWT_JWKS_URL (or SCORECARD_JWT_PUBLIC_KEYS) \
                 with SCORECARD_JWT_AUDIENCE",
            )
        } else {
            fail(
                "tokens",
                "no token keys configured",
                "set SCORECARD_JWT_SECRET (HS256, at least 32 bytes), or your identity provider's \
                 SCORECARD_JWT_JWKS_URL (or a PEM/JWKS file in SCORECARD_JWT_PUBLIC_KEYS) with \
                 SCORECARD_JWT_AUDIENCE; or pass --dev for a generated development secret",
            )
        });
        return out;
    }
    let (issuer, audience) = (auth.jwt_issuer.clone(), auth.jwt_audience.clone());
    let built = match (file, url) {
        (Some(_), Some(_)) => Err(scorecard::auth::KeyError::TwoKeySources),
        (_, Some(url)) => match auth.jwks_min_refresh() {
            Ok(min) => Verifier::with_jwks_url(secret, url, issuer, audience, min).await,
            Err(e) => {
                out.push(fail("tokens", e.to_string(), "give a number of seconds, 0 or more"));
                return out;
            }
        },
        (file, None) => Verifier::new(secret, file, issuer, audience),
    };
    match built {
        Err(e) => out.push(fail(
            "tokens",
            e.to_string(),
            "fix the key source named above: a secret of 32 bytes or more (`openssl rand -hex 32`), a readable PEM \
             public key or JWKS file, or a JWKS URL this machine can reach",
        )),
        Ok(v) => {
            let mut kinds = Vec::new();
            if secret.is_some() {
                kinds.push("an HS256 secret".to_string());
            }
            if let Some(path) = file {
                kinds.push(format!("{} public key(s) from {}", v.public_key_count(), path.display()));
            }
            if let Some(url) = url {
                kinds.push(format!("{} public key(s) from {url}", v.public_key_count()));
            }
            out.push(ok("tokens", format!("loaded {}", kinds.join(" and "))));
        }
    }
    match (&auth.jwt_audience, auth.has_public_keys()) {
        (None, true) => out.push(fail(
            "audience",
            "public keys without SCORECARD_JWT_AUDIENCE: any token of the same identity provider that carries \
             `org` and `roles` would be accepted",
            "set SCORECARD_JWT_AUDIENCE to the `aud` your identity provider writes into scorecard's tokens",
        )),
        (None, false) => out.push(warn(
            "audience",
            "no SCORECARD_JWT_AUDIENCE: tokens are accepted whatever their `aud`",
            "set SCORECARD_JWT_AUDIENCE (and mint with the same value) so that tokens meant for another service \
             are refused",
        )),
        (Some(aud), _) => out.push(ok("audience", format!("tokens must carry aud = {aud}"))),
    }
    if auth.has_public_keys() && auth.jwt_issuer.is_none() {
        out.push(warn(
            "issuer",
            "no SCORECARD_JWT_ISSUER: the `iss` of tokens is not checked",
            "set SCORECARD_JWT_ISSUER to your identity provider's issuer URL",
        ));
    }
    out
}

fn self_identification(args: &ServeArgs) -> Finding {
    match args.self_id.keys() {
        Ok(Some(keys)) => ok("self-id", format!("self-identification sealed under key {}", keys.current_id())),
        Ok(None) => warn(
            "self-id",
            "no SCORECARD_SELF_ID_KEY: SetSelfIdentification answers FAILED_PRECONDITION and adverse-impact reports \
             have no categories",
            "set SCORECARD_SELF_ID_KEY to 32 random bytes in base64 (`openssl rand -base64 32`), kept in your \
             secret store",
        ),
        Err(e) => fail(
            "self-id",
            e.to_string(),
            "SCORECARD_SELF_ID_KEY and each of SCORECARD_SELF_ID_OLD_KEYS must be 32 bytes in base64",
        ),
    }
}

/// Whether the address can be listened on now (the listener is let go at once).
fn listener(topic: &'static str, addr: &str, setting: &str) -> Finding {
    match TcpListener::bind(addr) {
        Ok(_) => ok(topic, format!("{addr} is free")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => fail(
            topic,
            format!("{addr} is in use by another process (is scorecard already running?)"),
            format!("stop that process, or choose another address with {setting}"),
        ),
        Err(e) => fail(
            topic,
            format!("cannot listen on {addr}: {e}"),
            format!("give a host:port this machine has with {setting}"),
        ),
    }
}

fn is_loopback(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(['[', ']']);
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The SQLite file a `sqlite:` URL names (without its query), if it is one.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest).to_string())
}

/// The URL with any password replaced, for printing.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        assert_eq!(redact_password("postgres://app:s3cret@db:5432/sc"), "postgres://app:***@db:5432/sc");
        assert_eq!(redact_password("postgres://postgres@127.0.0.1/test"), "postgres://postgres@127.0.0.1/test");
        assert_eq!(redact_password("sqlite://scorecard.db"), "sqlite://scorecard.db");
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite://scorecard.db").as_deref(), Some("scorecard.db"));
        assert_eq!(sqlite_path("sqlite:data/sc.db?mode=rwc").as_deref(), Some("data/sc.db"));
        assert_eq!(sqlite_path("postgres://x@y/z"), None);
    }

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback("127.0.0.1:8080") && is_loopback("[::1]:8080") && is_loopback("localhost:8080"));
        assert!(!is_loopback("0.0.0.0:8080") && !is_loopback("10.0.0.5:8080"));
    }

    #[test]
    fn the_report_says_whether_serve_would_start() {
        let (text, starts) = report(&[ok("database", "fine"), warn("audience", "none set", "set one")]);
        assert!(starts && text.contains("0 problems, 1 warning: `scorecard serve` would start"), "{text}");
        assert!(text.contains("warn  audience  none set\n") && text.contains("fix: set one"), "{text}");
        let (text, starts) = report(&[fail("listen", "in use", "stop it")]);
        assert!(!starts && text.contains("FAIL  listen  in use") && text.contains("1 problem, 0 warnings"), "{text}");
    }
}
