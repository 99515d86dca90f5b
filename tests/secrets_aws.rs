//! `SECRETS_BACKEND=aws` against moto's Secrets Manager server (`moto[server]`): the `crbot`
//! binary in testnet mode, aimed at a local exchange whose keys are only in the secret, so a
//! command that reads the account proves where its keys came from. Created and read; rotated
//! with `PutSecretValue` and picked up at the next start; missing; malformed; access denied
//! (moto enforcing IAM after `INITIAL_NO_AUTH_ACTION_COUNT` requests); endpoint unreachable; no
//! credentials. Every failure is one line on stderr naming what to fix, with no secret in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod secrets_support;

use std::time::Duration;

use crbot::exchange::sim::{self, SimConfig, SimHandle};
use secrets_support::{Moto, crbot_testnet, hmac_json, run, xml_value};
use serde_json::Value;

struct Setup {
    rt: tokio::runtime::Runtime,
    ex: SimHandle,
    home: tempfile::TempDir,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ex = rt
        .block_on(sim::start(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig {
                step_interval: Duration::from_secs(3600),
                ..SimConfig::default()
            },
        ))
        .unwrap();
    Setup {
        rt,
        ex,
        home: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    fn secret_json(&self) -> String {
        hmac_json(&self.ex.api_key(), self.ex.api_secret().expose())
    }

    /// `crbot --mode testnet ARGS` with the aws backend on `moto` and `env`.
    fn crbot(
        &self,
        moto: &Moto,
        secret_id: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> (i32, String, String) {
        let url = moto.url();
        let mut all = vec![
            ("SECRETS_BACKEND", "aws"),
            ("AWS_SECRET_ID", secret_id),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ];
        for (k, v) in env {
            all.retain(|(name, _)| name != k);
            all.push((k, v));
        }
        let mut c = crbot_testnet(&self.ex, self.home.path(), &all);
        c.args(args);
        run(c)
    }

    /// A failure: exit 1, one line on stderr that never shows the exchange's secret.
    fn refused(&self, moto: &Moto, secret_id: &str, env: &[(&str, &str)]) -> String {
        let (code, out, err) = self.crbot(moto, secret_id, env, &["balance"]);
        assert_eq!(code, 1, "{err}\n{out}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.contains("warning")).collect();
        assert_eq!(lines.len(), 1, "one line: {err}");
        assert!(!err.contains(self.ex.api_secret().expose()), "{err}");
        lines[0].to_string()
    }
}

#[test]
fn keys_created_in_secrets_manager_trade_and_a_new_version_is_used_from_the_next_start() {
    let s = setup();
    let moto = Moto::start(&[]);
    s.rt.block_on(moto.create("crbot/binance/test", &s.secret_json()));

    let (code, out, err) = s.crbot(&moto, "crbot/binance/test", &[], &["--json", "balance"]);
    assert_eq!(code, 0, "{err}\n{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(
        doc.to_string().contains("USDT"),
        "the account, read with the keys: {doc}"
    );

    // health says which backend served the keys, never the keys.
    let (code, out, err) = s.crbot(&moto, "crbot/binance/test", &[], &["health"]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains("keys: from aws (AWS_SECRET_ID=crbot/binance/test)"),
        "{out}"
    );
    assert!(!out.contains(&s.ex.api_key()) && !out.contains(s.ex.api_secret().expose()));
    let (_, out, _) = s.crbot(&moto, "crbot/binance/test", &[], &["--json", "health"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["keys_from"], "aws (AWS_SECRET_ID=crbot/binance/test)");

    // doctor's secrets-backend line, and the key check passes with no vault file at all.
    let (_, out, err) = s.crbot(&moto, "crbot/binance/test", &[], &["--json", "doctor"]);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let check = |item: &str| {
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["item"] == item)
            .unwrap_or_else(|| panic!("no {item}: {doc}"))
            .clone()
    };
    assert_eq!(check("secrets backend")["status"], "pass", "{doc}");
    assert_eq!(
        check("secrets backend")["detail"],
        "aws (AWS_SECRET_ID=crbot/binance/test)"
    );
    assert_eq!(check("keys for mode")["status"], "pass", "{doc}");
    assert_eq!(check("vault")["status"], "skipped", "{doc}");

    // Rotation: PutSecretValue makes a new AWSCURRENT version. A key the exchange does not
    // know, then the right one again: each next start uses the version current then.
    let v2 = s.rt.block_on(moto.rotate(
        "crbot/binance/test",
        &hmac_json("ROTATEDKEY0123456789", "rotated"),
    ));
    assert!(!v2.is_empty());
    let (code, out, err) = s.crbot(&moto, "crbot/binance/test", &[], &["balance"]);
    assert_ne!(code, 0, "the rotated (unknown) key is used: {out}");
    assert!(
        err.to_lowercase().contains("api-key") || err.contains("-2014") || err.contains("-2015"),
        "{err}"
    );
    s.rt.block_on(moto.rotate("crbot/binance/test", &s.secret_json()));
    let (code, out, err) = s.crbot(&moto, "crbot/binance/test", &[], &["balance"]);
    assert_eq!(code, 0, "{err}\n{out}");
}

#[test]
fn a_missing_secret_names_it_and_how_to_create_it() {
    let s = setup();
    let moto = Moto::start(&[]);
    let line = s.refused(&moto, "crbot/binance/none", &[]);
    assert!(
        line.contains("AWS_SECRET_ID=crbot/binance/none") && line.contains("does not exist"),
        "{line}"
    );
}

#[test]
fn a_malformed_secret_names_the_problem_without_quoting_it() {
    let s = setup();
    let moto = Moto::start(&[]);
    let secret = s.ex.api_secret().expose().to_string();
    let key = s.ex.api_key();
    s.rt.block_on(async {
        moto.create("bad/not-json", &format!("api_key={key} api_secret={secret}"))
            .await;
        moto.create("bad/no-secret", &format!("{{\"api_key\":\"{key}\"}}"))
            .await;
        moto.create("bad/string", &format!("\"{secret}\"")).await;
    });
    for (id, want) in [
        ("bad/not-json", "is not valid JSON"),
        ("bad/no-secret", "neither \"api_secret\""),
        ("bad/string", "not a JSON object"),
    ] {
        let line = s.refused(&moto, id, &[]);
        assert!(line.contains(want) && line.contains(id), "{line}");
        assert!(!line.contains(&secret), "{line}");
    }
}

#[test]
fn access_denied_by_iam_names_the_permission_to_grant() {
    let s = setup();
    // moto answers the first three requests without checking who asks (the secret, the user,
    // its access key), then authenticates and authorises every request like IAM does: a user
    // with no policy may not read the secret.
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    s.rt.block_on(moto.create("crbot/binance/locked", &s.secret_json()));
    let (id, secret) = s.rt.block_on(async {
        moto.iam(&[("Action", "CreateUser"), ("UserName", "crbot-no-policy")])
            .await;
        let xml = moto
            .iam(&[("Action", "CreateAccessKey"), ("UserName", "crbot-no-policy")])
            .await;
        (xml_value(&xml, "AccessKeyId"), xml_value(&xml, "SecretAccessKey"))
    });
    let line = s.refused(
        &moto,
        "crbot/binance/locked",
        &[("AWS_ACCESS_KEY_ID", &id), ("AWS_SECRET_ACCESS_KEY", &secret)],
    );
    assert!(
        line.contains("access denied to AWS_SECRET_ID=crbot/binance/locked")
            && line.contains("secretsmanager:GetSecretValue"),
        "{line}"
    );
    assert!(!line.contains(&secret), "{line}");
    // Credentials IAM never issued are refused as such.
    let line = s.refused(
        &moto,
        "crbot/binance/locked",
        &[
            ("AWS_ACCESS_KEY_ID", "AKIANOTISSUED0000000"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
        ],
    );
    assert!(
        line.contains("access denied") && line.contains("credentials were refused"),
        "{line}"
    );
}

#[test]
fn an_unreachable_endpoint_and_missing_credentials_say_what_to_fix() {
    let s = setup();
    let moto = Moto::start(&[]);
    let closed = format!("http://127.0.0.1:{}", secrets_support::closed_port());
    let line = s.refused(&moto, "crbot/binance/test", &[("AWS_ENDPOINT_URL", &closed)]);
    assert!(line.contains(&closed) && line.contains("unreachable"), "{line}");

    // No key in the environment, no profile file, no instance metadata.
    let mut c = crbot_testnet(
        &s.ex,
        s.home.path(),
        &[
            ("SECRETS_BACKEND", "aws"),
            ("AWS_SECRET_ID", "crbot/binance/test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &moto.url()),
        ],
    );
    c.arg("balance");
    let (code, out, err) = run(c);
    assert_eq!(code, 1, "{err}\n{out}");
    assert!(
        err.contains("aws: no credentials") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );
}

#[test]
fn resume_re_arms_only_while_the_secret_can_still_be_read() {
    let s = setup();
    let moto = Moto::start(&[]);
    s.rt.block_on(moto.create("crbot/binance/rearm", &s.secret_json()));
    let (code, out, err) = s.crbot(&moto, "crbot/binance/rearm", &[], &["kill"]);
    assert_eq!(code, 0, "{err}\n{out}");

    s.rt.block_on(async {
        moto.client()
            .delete_secret()
            .secret_id("crbot/binance/rearm")
            .force_delete_without_recovery(true)
            .send()
            .await
            .unwrap();
    });
    let (code, out, err) = s.crbot(&moto, "crbot/binance/rearm", &[], &["resume"]);
    assert_eq!(code, 1, "{err}\n{out}");
    assert!(
        err.contains("re-arm needs the keys") && err.contains("does not exist"),
        "{err}"
    );

    s.rt.block_on(moto.create("crbot/binance/rearm", &s.secret_json()));
    let (code, out, err) = s.crbot(&moto, "crbot/binance/rearm", &[], &["--json", "resume"]);
    assert_eq!(code, 0, "{err}\n{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["rearmed"], true, "{doc}");
}
