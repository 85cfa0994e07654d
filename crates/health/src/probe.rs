//! One check: connect (TCP), optionally TLS, optionally one HTTP/1.1 GET whose status
//! line decides. The caller bounds it with the check's timeout.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::spec::Target;

/// Why a check failed (a metric label and log field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Connect(String),
    Tls(String),
    /// The server closed or sent something that is not an HTTP status line.
    Protocol(String),
    /// An HTTP status other than 2xx/3xx.
    Status(u16),
    Timeout,
}

impl Failure {
    pub fn label(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::Tls(_) => "tls",
            Failure::Protocol(_) => "protocol",
            Failure::Status(_) => "status",
            Failure::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "connect: {e}"),
            Failure::Tls(e) => write!(f, "TLS: {e}"),
            Failure::Protocol(e) => write!(f, "HTTP: {e}"),
            Failure::Status(s) => write!(f, "HTTP status {s}"),
            Failure::Timeout => f.write_str("timed out"),
        }
    }
}

/// Runs the check once within `timeout`; `Ok` carries the latency.
pub async fn check(target: &Target, timeout: Duration) -> Result<Duration, Failure> {
    let start = Instant::now();
    match tokio::time::timeout(timeout, check_unbounded(target)).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Failure::Timeout),
    }
}

async fn check_unbounded(target: &Target) -> Result<(), Failure> {
    match target {
        Target::Tcp { host, port } => {
            connect(host, *port).await?;
            Ok(())
        }
        Target::Http { host, port, path } => {
            let stream = connect(host, *port).await?;
            http_get(stream, host, *port, path).await
        }
        Target::Https {
            host,
            port,
            path,
            verify,
        } => {
            let stream = connect(host, *port).await?;
            let config = tls_config(*verify)?;
            let name = ServerName::try_from(host.clone())
                .map_err(|e| Failure::Tls(format!("server name {host:?}: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| Failure::Tls(e.to_string()))?;
            http_get(tls, host, *port, path).await
        }
    }
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, Failure> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| Failure::Connect(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// One GET; passes on a 2xx or 3xx status (HAProxy's `httpchk` rule).
async fn http_get<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    port: u16,
    path: &str,
) -> Result<(), Failure> {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: oxlb-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Failure::Connect(e.to_string()))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    // The status line is all that matters; it fits in far less than 1 KiB.
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 1024 {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| Failure::Protocol(e.to_string()))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let status = status_code(&buf)?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(Failure::Status(status))
    }
}

/// The status code of `HTTP/1.x NNN ...`.
pub fn status_code(head: &[u8]) -> Result<u16, Failure> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| Failure::Protocol("no status line".into()))?;
    let line = std::str::from_utf8(head.get(..line_end).unwrap_or_default())
        .map_err(|_| Failure::Protocol("status line is not text".into()))?;
    let mut parts = line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(Failure::Protocol(format!("not HTTP/1.x: {line:?}")));
    }
    let code = parts.next().unwrap_or_default();
    match code.parse::<u16>() {
        Ok(c) if code.len() == 3 && (100..600).contains(&c) => Ok(c),
        _ => Err(Failure::Protocol(format!("bad status line {line:?}"))),
    }
}

fn tls_config(verify: bool) -> Result<Arc<rustls::ClientConfig>, Failure> {
    static VERIFIED: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    static UNVERIFIED: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let cell = if verify { &VERIFIED } else { &UNVERIFIED };
    cell.get_or_init(|| build_tls_config(verify))
        .clone()
        .map_err(Failure::Tls)
}

fn build_tls_config(verify: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if verify {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err("no CA certificate found on this host to verify the server with (set oxlb.io/health-check-tls-verify: \"false\" for a self-signed server)".into());
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Accepts any certificate (a self-signed API server), but still checks the handshake
/// signatures, so the TLS session itself is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
