//! https for the command service: a TLS listener axum can serve on.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::pki::Pki;

/// A TLS acceptor with the PKI's server certificate (and its CA, so the
/// agent gets the whole chain).
pub fn acceptor(pki: &Pki) -> std::io::Result<TlsAcceptor> {
    let invalid =
        |what: &str, e: &dyn std::fmt::Display| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what}: {e}"));
    let mut chain: Vec<CertificateDer<'static>> = Vec::new();
    for path in [&pki.server_cert, &pki.ca_cert] {
        let cert = CertificateDer::from_pem_file(path).map_err(|e| invalid(&path.display().to_string(), &e))?;
        chain.push(cert);
    }
    let key = PrivateKeyDer::from_pem_file(&pki.server_key).map_err(|e| invalid("server key", &e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("server certificate", &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TCP listener whose connections are TLS sessions; a failed handshake
/// drops that connection and waits for the next.
pub struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    /// Wraps `tcp`.
    pub fn new(tcp: tokio::net::TcpListener, acceptor: TlsAcceptor) -> Self {
        Self { tcp, acceptor }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else { continue };
            // Bounded, so one client stalling its handshake cannot stop the rest for long.
            let handshake = tokio::time::timeout(std::time::Duration::from_secs(5), self.acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
