//! HTTPS for the control API: the certificate and key from `API_TLS_CERT` / `API_TLS_KEY`
//! (PEM), rustls with TLS 1.2 and 1.3 only, and a listener that hands axum connections whose
//! TLS handshake is done.
//!
//! Owns: reading and checking the PEM files (a missing, unreadable, empty or mismatched
//! certificate or key is one line naming the file, never its content) and the handshakes.
//! Must not: let one slow or silent client hold up the others: each handshake runs on a task of
//! its own, bounded in time ([`HANDSHAKE_TIMEOUT`]) and in number ([`MAX_HANDSHAKES`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at most; further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 256;

/// Reads `cert` (a PEM chain, leaf first) and `key` (a PEM private key) into an acceptor that
/// speaks TLS 1.2 and 1.3. Each error is one line naming the variable and the file.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let shown_cert = format!("API_TLS_CERT={}", cert.display());
    let shown_key = format!("API_TLS_KEY={}", key.display());
    std::fs::metadata(cert).map_err(|e| format!("{shown_cert} cannot be read: {e}"))?;
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{shown_cert} cannot be read: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("{shown_cert} is not a PEM certificate chain"))?;
    if chain.is_empty() {
        return Err(format!("{shown_cert} holds no PEM certificate"));
    }
    std::fs::metadata(key).map_err(|e| format!("{shown_key} cannot be read: {e}"))?;
    // The key's content is never quoted: only whether it parsed.
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|_| format!("{shown_key} holds no PEM private key"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let signing = provider
        .key_provider
        .load_private_key(private.clone_key())
        .map_err(|_| format!("{shown_key} is not a usable private key"))?;
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing);
    certified
        .keys_match()
        .map_err(|_| format!("{shown_key} does not match the certificate in {shown_cert}"))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| format!("{shown_cert} / {shown_key}: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A warning when the private key file is readable by other users (it is a secret; a systemd
/// credential or a 0600 file is expected). Not a refusal: some set-ups share it through a group.
pub fn key_warning(key: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(key).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "API_TLS_KEY={} is readable by other users (mode {:o}): chmod 600 it",
            key.display(),
            mode & 0o777
        )
    })
}

/// A TCP listener whose connections come out with their TLS handshake done.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp` from now on, handshaking each connection on a task of its own.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(TlsListener { ready, local, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "control API: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if tx.is_closed() {
            return;
        }
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "control API: TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "control API: TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop ended (it only does when this listener is dropped): no more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
