//! `crbot serve` over HTTPS: a certificate generated here (`rcgen`), `API_TLS_CERT` /
//! `API_TLS_KEY` pointing at it, `api=https://…` printed, and a client that trusts only that
//! certificate talking to it (TLS 1.2 and 1.3; a plain-HTTP request gets no answer). Also the
//! one-line refusals: a missing file, a key that is not the certificate's, one variable
//! without the other, and a non-loopback address outside development without TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod serve_support;

use std::path::{Path, PathBuf};

use crbot::api::auth::Scope;
use serve_support::{Serve, crbot};

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM in `dir`.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert_pem = ck.cert.pem();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, cert_pem)
}

fn trusting(cert_pem: &str, min: reqwest::tls::Version, max: reqwest::tls::Version) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .tls_version_min(min)
        .tls_version_max(max)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_serve_speaks_https_only_to_a_client_that_trusts_it() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, pem) = certificate(certs.path(), "api");
    let mut serve = Serve::start(&[
        ("API_TLS_CERT", cert.to_str().unwrap()),
        ("API_TLS_KEY", key.to_str().unwrap()),
    ]);
    assert!(serve.base.starts_with("https://127.0.0.1:"), "{}", serve.base);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let warning = crbot::api::tls::key_warning(&key).expect("a key others can read: a warning");
    assert!(
        warning.contains("chmod 600") && warning.contains("644"),
        "{warning}"
    );
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert_eq!(crbot::api::tls::key_warning(&key), None);
    use reqwest::tls::Version;
    for (min, max) in [
        (Version::TLS_1_2, Version::TLS_1_2),
        (Version::TLS_1_3, Version::TLS_1_3),
    ] {
        let client = trusting(&pem, min, max);
        let res = client
            .get(format!("{}/api/health", serve.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{min:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["mode"], "sim");
        let res = client
            .get(format!("{}/api/positions", serve.base))
            .bearer_auth(serve.token(Scope::Read))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
    }
    // TLS 1.1 and older are not offered.
    let old = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .tls_version_max(Version::TLS_1_1)
        .build();
    if let Ok(old) = old {
        assert!(
            old.get(format!("{}/api/health", serve.base))
                .send()
                .await
                .is_err()
        );
    }
    // A client that does not trust the certificate is refused by its own check.
    let (_, _, other_pem) = certificate(certs.path(), "other");
    let stranger = trusting(&other_pem, Version::TLS_1_2, Version::TLS_1_3);
    assert!(
        stranger
            .get(format!("{}/api/health", serve.base))
            .send()
            .await
            .is_err()
    );
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = serve.base.replacen("https://", "http://", 1);
    let answered = reqwest::Client::new()
        .get(format!("{plain}/api/health"))
        .timeout(std::time::Duration::from_secs(15))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    assert!(!answered, "plain HTTP must not be served");

    let (code, lines) = serve.terminate();
    assert_eq!(code, Some(0), "{lines:?}");
}

/// Runs serve with `env` and `args`, expecting a one-line refusal on stderr and exit code 1.
fn refused(env: &[(&str, &str)], args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = crbot(home.path(), env).arg("serve").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    stderr
}

#[test]
fn a_missing_or_mismatched_certificate_or_key_is_a_one_line_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _key, _) = certificate(dir.path(), "a");
    let (_, other_key, _) = certificate(dir.path(), "b");
    let cert = cert.to_str().unwrap();
    let other_key = other_key.to_str().unwrap();
    let missing = dir.path().join("nope.key");
    let missing = missing.to_str().unwrap();

    let err = refused(&[("API_TLS_CERT", cert), ("API_TLS_KEY", other_key)], &[]);
    assert!(err.contains("does not match"), "{err}");
    let err = refused(&[("API_TLS_CERT", cert), ("API_TLS_KEY", missing)], &[]);
    assert!(
        err.contains("API_TLS_KEY") && err.contains("cannot be read"),
        "{err}"
    );
    let err = refused(&[("API_TLS_CERT", other_key), ("API_TLS_KEY", other_key)], &[]);
    assert!(
        err.contains("API_TLS_CERT") && err.contains("no PEM certificate"),
        "{err}"
    );
    let err = refused(&[("API_TLS_CERT", cert)], &[]);
    assert!(err.contains("API_TLS_KEY"), "{err}");
    // The key's content is never shown.
    let key_text = std::fs::read_to_string(other_key).unwrap();
    let body_line = key_text.lines().nth(1).unwrap();
    assert!(!err.contains(body_line));
}

#[test]
fn outside_development_a_non_loopback_address_needs_tls() {
    let err = refused(&[("ENV", "staging")], &["--addr", "0.0.0.0:0"]);
    assert!(err.contains("no TLS") && err.contains("API_TLS_CERT"), "{err}");
}

#[test]
fn production_refuses_an_http_webhook_without_showing_it() {
    let home = tempfile::tempdir().unwrap();
    let out = crbot(
        home.path(),
        &[
            ("ENV", "production"),
            (
                "ALERT_WEBHOOK_URL",
                "http://hooks.example.com/services/SECRET?token=abc",
            ),
        ],
    )
    .arg("serve")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ALERT_WEBHOOK_URL") && stderr.contains("https://"),
        "{stderr}"
    );
    assert!(!stderr.contains("SECRET") && !stderr.contains("abc"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
