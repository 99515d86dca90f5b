//! `SECRETS_BACKEND=aws`: one `GetSecretValue` on AWS Secrets Manager with the official SDK.
//!
//! Owns: the SDK client for one call (region, credentials and endpoint from the standard AWS
//! chain, with crbot's `AWS_REGION`/`AWS_ENDPOINT_URL` on top when set), reading the current
//! version's `SecretString`, and mapping the SDK's errors to one line each. Must not: keep the
//! client or the secret text after the keys are parsed, or show the SDK's response body.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use zeroize::Zeroizing;

use super::{AwsSettings, SecretsError, fields, one_line};
use crate::vault::ModeKeys;

const BACKEND: &str = "aws";

/// Fetches and parses the secret `settings.secret_id` (its current version, `AWSCURRENT`).
pub async fn fetch(settings: &AwsSettings) -> Result<ModeKeys, SecretsError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(30))
            .build(),
    );
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint.as_str().trim_end_matches('/'));
    }
    let sdk = loader.load().await;
    let Some(region) = sdk.region().map(|r| r.to_string()) else {
        return Err(SecretsError::Other {
            backend: BACKEND,
            detail: "no AWS region: set AWS_REGION (or a region in the AWS profile)".into(),
        });
    };
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let answer = client
        .get_secret_value()
        .secret_id(&settings.secret_id)
        .send()
        .await
        .map_err(|e| classify(e, settings, &region))?;
    // The text moves into a wiping buffer at once; the rest of the answer holds no secret.
    let text = Zeroizing::new(answer.secret_string.unwrap_or_default());
    if text.is_empty() {
        return Err(malformed(
            settings,
            "has no SecretString (a binary secret?): store the keys as JSON text".into(),
        ));
    }
    fields::parse_keys(text.as_bytes()).map_err(|problem| malformed(settings, problem))
}

fn malformed(settings: &AwsSettings, problem: String) -> SecretsError {
    SecretsError::Malformed {
        backend: BACKEND,
        name: format!("AWS_SECRET_ID={}", settings.secret_id),
        problem,
    }
}

/// One line per way `GetSecretValue` fails, each naming what to fix.
fn classify(e: SdkError<GetSecretValueError>, settings: &AwsSettings, region: &str) -> SecretsError {
    let name = format!("AWS_SECRET_ID={}", settings.secret_id);
    let endpoint = settings
        .endpoint
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("AWS Secrets Manager in {region}"));
    let chain = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("unknown");
            let message = one_line(err.message().unwrap_or(""));
            // An answer whose error code the JSON protocol could not read: an XML error
            // document (`<Code>…</Code>`, as IAM's query protocol writes it), else its status.
            let xml_code = service
                .raw()
                .body()
                .bytes()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|t| Some(t.split_once("<Code>")?.1.split_once("</Code>")?.0.to_string()));
            let code = match (code, xml_code.as_deref(), service.raw().status().as_u16()) {
                ("unknown", Some(xml), _) => xml,
                ("unknown", None, 403) => "AccessDeniedException",
                (code, ..) => code,
            };
            match code {
                "ResourceNotFoundException" => SecretsError::Missing {
                    backend: BACKEND,
                    name,
                    fix: format!(
                        "create it in {region} with the keys as JSON, or correct AWS_SECRET_ID/AWS_REGION"
                    ),
                },
                "AccessDeniedException" | "AccessDenied" => SecretsError::AccessDenied {
                    backend: BACKEND,
                    name,
                    fix: "allow secretsmanager:GetSecretValue on this secret (and kms:Decrypt on its key) \
                          to the AWS identity crbot runs as"
                        .into(),
                },
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "IncompleteSignature"
                | "ExpiredTokenException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch" => SecretsError::AccessDenied {
                    backend: BACKEND,
                    name,
                    fix: format!(
                        "the AWS credentials were refused ({code}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role"
                    ),
                },
                "InvalidRequestException" => SecretsError::Missing {
                    backend: BACKEND,
                    name,
                    fix: format!(
                        "it cannot be read now ({message}); restore it or point AWS_SECRET_ID at another"
                    ),
                },
                _ => SecretsError::Other {
                    backend: BACKEND,
                    detail: format!("GetSecretValue {name} failed: {code}: {message}"),
                },
            }
        }
        _ if chain.to_ascii_lowercase().contains("credential") => SecretsError::NoCredentials {
            backend: BACKEND,
            fix: "none found in the standard AWS chain: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                  AWS_PROFILE, or run with an instance or task role"
                .into(),
        },
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => SecretsError::Unreachable {
            backend: BACKEND,
            endpoint,
            cause: one_line(&chain),
        },
        _ => SecretsError::Other {
            backend: BACKEND,
            detail: format!("GetSecretValue {name} failed: {}", one_line(&chain)),
        },
    }
}
