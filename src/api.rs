//! The engine's control API over HTTP: JSON documents read from the engine's snapshots, and
//! the kill switch, re-arm and order cancels sent to it as commands.
//!
//! Owns: the router (routes, bearer-token guards, the per-address rate limit, CORS by `ENV`,
//! the body limit, JSON errors for every refusal) built over an [`EngineLink`], the same two
//! channels the screen uses. Must not: hold or change trading state, reach the exchange or the
//! journal, or answer a bad request with a panic or a backtrace: every refusal is a 4xx
//! `{"error": CODE, "message": TEXT}`.
//!
//! Served as plain HTTP ([`serve`]) or HTTPS ([`serve_tls`], `API_TLS_CERT`/`API_TLS_KEY`):
//! `crbot serve` refuses a non-loopback address outside development without TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

pub mod auth;
pub mod auth_alerts;
pub mod docs;
pub mod error;
pub mod limit;
pub mod metrics;
pub mod orders;
mod routes;
pub mod socket;
pub mod standby;
pub mod stream;
pub mod tls;

use crate::config::{Config, Environment};
use crate::engine::runtime::Replies;
use crate::engine::snapshot::{Command, Snapshot};
use crate::secret::{SealedSecret, SecretString};
use auth::TokenKeys;
use error::ApiError;

/// The largest request body taken: the API's bodies are a few fields.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The engine as the API sees it: where commands go and where snapshots come from.
#[derive(Debug, Clone)]
pub struct EngineLink {
    pub commands: mpsc::Sender<Command>,
    pub snapshots: watch::Receiver<Snapshot>,
    /// The vault passphrase a re-arm needs in a mode with keys (read from
    /// `CRBOT_PASSPHRASE_FILE` by `crbot serve`); `None` where none is needed.
    pub rearm_passphrase: Option<SealedSecret>,
    /// Where the engine's answers to `POST /api/orders` arrive (the runtime's reply map).
    pub replies: Replies,
}

/// What the router needs from the configuration.
#[derive(Debug)]
pub struct ApiSettings {
    pub env: Environment,
    pub keys: TokenKeys,
    /// `(requests, window)`; `None`: no limit (development with `RATE_LIMIT_REQUESTS=0`).
    pub rate_limit: Option<(u32, Duration)>,
    pub cors_origins: Vec<String>,
}

impl ApiSettings {
    /// The settings of `config`, with the signing key resolved (see [`auth::signing_secret`])
    /// and the warning to show when that key is weak.
    pub fn from_config(config: &Config) -> Result<(ApiSettings, Option<String>), auth::KeyError> {
        let secret = auth::signing_secret(config)?;
        let settings = ApiSettings {
            env: config.env,
            keys: TokenKeys::new(&secret.secret)?,
            rate_limit: config
                .api
                .rate_limit_requests
                .map(|n| (n, Duration::from_secs(config.api.rate_limit_window_secs))),
            cors_origins: config.api.cors_origins.clone(),
        };
        Ok((settings, secret.warning))
    }
}

/// The handlers' shared state: cheap to clone (channels and an `Arc`).
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    keys: Arc<TokenKeys>,
    commands: mpsc::Sender<Command>,
    snapshots: watch::Receiver<Snapshot>,
    rearm_passphrase: Option<Arc<SealedSecret>>,
    replies: Replies,
}

impl FromRef<AppState> for Arc<TokenKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.keys.clone()
    }
}

/// The API's router. Serve it with the peer's address (see [`serve`]) so that the rate limit
/// counts per client; without it every request counts as one client.
pub fn router(link: EngineLink, settings: ApiSettings) -> Router {
    let app = routes_of(link, settings.keys, false);
    outer_layers(app, settings.env, settings.rate_limit, &settings.cors_origins)
}

/// The router of a standby (`crbot serve` waiting for the lease: [`standby`]), with the same
/// rate limit and CORS as [`router`].
pub fn standby_router(
    settings: ApiSettings,
    feed: &standby::StandbyFeed,
    mode: crate::domain::Mode,
    journal: crate::journal::Location,
) -> Router {
    let app = standby::routes(settings.keys, feed, mode, journal);
    outer_layers(app, settings.env, settings.rate_limit, &settings.cors_origins)
}

/// What the TCP routers ([`router`], [`standby_router`]) wear outside their routes: the rate
/// limit (when set), a panic's 500, and CORS.
fn outer_layers(
    app: Router,
    env: Environment,
    rate_limit: Option<(u32, Duration)>,
    cors_origins: &[String],
) -> Router {
    let app = match rate_limit {
        Some((requests, window)) => {
            let limiter = Arc::new(limit::RateLimiter::new(requests, window));
            app.layer(axum::middleware::from_fn_with_state(limiter, limit::enforce))
        }
        None => app,
    };
    app.layer(CatchPanicLayer::custom(panic_response))
        .layer(cors(env, cors_origins))
}

/// `app` refusing the trade routes (orders, cancels, resume; never the kill) with 503
/// `LEASE_LOST` once `lease` is no longer valid: the leader stops trading as soon as its lease
/// on PostgreSQL is in doubt, before another engine can lead.
pub fn lease_gate(app: Router, lease: crate::journal::lease::LeaseGuard) -> Router {
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let lease = lease.clone();
            async move {
                let path = req.uri().path();
                let trade = matches!(
                    (req.method().as_str(), path),
                    ("POST", "/api/orders") | ("POST", "/api/resume")
                ) || (req.method() == Method::DELETE && path.starts_with("/api/orders/"));
                if trade && !lease.valid() {
                    return ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "LEASE_LOST",
                        crate::journal::lease::LOST_MESSAGE,
                    )
                    .into_response();
                }
                next.run(req).await
            }
        },
    ))
}

/// The router served on the engine's unix socket ([`socket::serve`]): the same routes
/// without a rate limit or CORS (no browser reaches a unix socket); every request is marked trusted by the server,
/// so no token is asked (the socket's 0600 permissions are its authentication).
pub fn socket_router(link: EngineLink) -> Router {
    // No token is ever checked over the socket; the key only fills the state's slot.
    let keys = TokenKeys::new(&SecretString::new(hex::encode(rand::random::<[u8; 32]>())))
        .expect("an HS256 key from 32 random bytes");
    routes_of(link, keys, true).layer(CatchPanicLayer::custom(panic_response))
}

/// The routes; `socket`: also the socket-only ones (`POST /api/backup`, which writes a file
/// where the caller says, as the engine's user).
fn routes_of(link: EngineLink, keys: TokenKeys, socket: bool) -> Router {
    let state = AppState {
        keys: Arc::new(keys),
        commands: link.commands,
        snapshots: link.snapshots,
        rearm_passphrase: link.rearm_passphrase.map(Arc::new),
        replies: link.replies,
    };
    let app = Router::new();
    let app = if socket {
        app.route("/api/backup", post(orders::backup))
            .route("/api/report/{kind}", get(orders::report))
            .route("/api/export", post(orders::export))
    } else {
        app
    };
    app.route("/api/health", get(routes::health))
        .route("/api/positions", get(routes::positions))
        .route("/api/orders", get(routes::orders).post(orders::place))
        .route("/api/orders/{client_order_id}", delete(routes::cancel))
        .route("/api/pnl", get(routes::pnl))
        .route("/api/risk", get(routes::risk))
        .route("/api/equity", get(routes::equity))
        .route("/api/trades", get(orders::trades))
        .route("/api/stream", get(stream::route))
        .route("/api/broker/balance", get(routes::balance))
        .route("/api/broker/ping", get(routes::ping))
        .route("/api/kill", post(routes::kill))
        .route("/api/resume", post(routes::resume))
        .route("/metrics", get(routes::metrics))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Development: any origin. Staging and production: only `CORS_ORIGINS` (none by default, so
/// no browser page may call the API).
fn cors(env: Environment, origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER]);
    match env {
        Environment::Development => layer.allow_origin(Any),
        Environment::Staging | Environment::Production => layer.allow_origin(AllowOrigin::list(
            origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()),
        )),
    }
}

/// A handler that panicked answers 500 with the error shape and no detail (the panic itself
/// goes to the log through the panic hook).
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "the request could not be handled; see the engine's log",
    )
    .into_response()
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

/// [`serve`] over TLS: each connection's handshake is done before axum sees it.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // `tap_io` keeps the peer's address available as `ConnectInfo<SocketAddr>` (rate limit).
    let listener = tls::TlsListener::new(listener, acceptor)?.tap_io(|_| {});
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}
