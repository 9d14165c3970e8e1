//! HTTPS for `serve`: rustls (ring) over the TCP listener. Handshakes run
//! in each connection's own task under the server's header-read timeout
//! (`tumen_httpd`), so a slow or silent client does not hold up others.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls_cert {}: {source}", path.display())]
    ReadCert {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("tls_cert {}: {what}", path.display())]
    BadCert {
        path: std::path::PathBuf,
        what: String,
    },
    #[error("tls_key {}: {source}", path.display())]
    ReadKey {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("tls_key {}: no usable PEM private key ({what})", path.display())]
    BadKey {
        path: std::path::PathBuf,
        what: String,
    },
    #[error("tls_cert {} / tls_key {}: {source}", cert.display(), key.display())]
    Mismatch {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
        source: rustls::Error,
    },
    #[error("TLS: {0}")]
    Protocol(rustls::Error),
}

/// Builds the acceptor from PEM files (a certificate chain, leaf first;
/// a PKCS#8, PKCS#1 or SEC1 private key).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let pem = std::fs::read(cert).map_err(|source| TlsError::ReadCert {
        path: cert.to_path_buf(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadCert {
            path: cert.to_path_buf(),
            what: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::BadCert {
            path: cert.to_path_buf(),
            what: "no PEM certificate in the file".into(),
        });
    }
    let key_pem = std::fs::read(key).map_err(|source| TlsError::ReadKey {
        path: key.to_path_buf(),
        source,
    })?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
        path: key.to_path_buf(),
        what: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocol)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|source| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// TLS as the server loop's handshake: it runs in the connection's own
/// task, under the header-read timeout, so a client that never sends its
/// ClientHello holds nothing for long and holds up no one.
#[derive(Clone)]
pub struct Tls(pub TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl tumen_httpd::Handshake for Tls {
    type Io = TlsStream<TcpStream>;
    fn handshake(
        &self,
        tcp: TcpStream,
    ) -> impl std::future::Future<Output = std::io::Result<Self::Io>> + Send + 'static {
        self.0.accept(tcp)
    }
}
