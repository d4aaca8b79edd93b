//! rustls client configurations for HTTPS checks (ring provider), and the server name used for
//! SNI and verification. No TLS is implemented here: rustls does the protocol.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::ProbeError;
use crate::spec::TlsVerify;

/// The ring provider. rustls 0.23.48 deprecates it for lacking post-quantum key exchange; a
/// health probe carries nothing secret (a GET of a health page), and aws-lc-rs, the provider that
/// has it, needs cmake and a long C build on every machine that builds the workspace.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `verify`. The system trust store is read once per process.
pub fn client_config(verify: &TlsVerify) -> Result<Arc<ClientConfig>, ProbeError> {
    match verify {
        TlsVerify::Off => {
            let p = provider();
            let builder = builder(&p)?;
            Ok(Arc::new(
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NoVerify(p)))
                    .with_no_client_auth(),
            ))
        }
        TlsVerify::System => {
            static SYSTEM: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
            SYSTEM
                .get_or_init(|| {
                    let found = rustls_native_certs::load_native_certs();
                    let mut roots = RootCertStore::empty();
                    let (added, _) = roots.add_parsable_certificates(found.certs);
                    if added == 0 {
                        return Err(format!(
                            "no usable certificate in the system trust store ({} errors)",
                            found.errors.len()
                        ));
                    }
                    with_roots(roots).map_err(|e| e.to_string())
                })
                .clone()
                .map_err(ProbeError::TlsSetup)
        }
        TlsVerify::CaFile(path) => {
            let setup = |e: String| ProbeError::TlsSetup(format!("{}: {e}", path.display()));
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| setup(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| setup(e.to_string()))?;
                roots.add(cert).map_err(|e| setup(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(setup("no certificate in the file".into()));
            }
            with_roots(roots)
        }
    }
}

fn builder(
    p: &Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, ProbeError> {
    ClientConfig::builder_with_provider(Arc::clone(p))
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::TlsSetup(e.to_string()))
}

fn with_roots(roots: RootCertStore) -> Result<Arc<ClientConfig>, ProbeError> {
    Ok(Arc::new(
        builder(&provider())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// The name sent in SNI and checked against the certificate: `sni` if set, else the Host
/// header's name (port removed) when it is a DNS name, else the connect address (rustls sends no
/// SNI for an address and checks the certificate's IP SAN).
pub fn server_name(
    sni: Option<&str>,
    host: Option<&str>,
    addr: SocketAddr,
) -> Result<ServerName<'static>, ProbeError> {
    let name = match (sni, host.map(host_name)) {
        (Some(s), _) => s.to_owned(),
        (None, Some(h)) if !h.is_empty() => h.to_owned(),
        _ => return Ok(ServerName::IpAddress(addr.ip().into())),
    };
    ServerName::try_from(name.clone())
        .map_err(|e| ProbeError::TlsSetup(format!("server name {name:?}: {e}")))
}

/// The name part of a Host header value: `a.example:8443` -> `a.example`, `[2001:db8::1]:443` ->
/// `2001:db8::1`, `a.example` -> `a.example`.
pub fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Accepts any certificate chain and name; still checks the handshake signatures with the
/// provider's algorithms (a peer must hold the key of the certificate it shows).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(host_name("a.example:8443"), "a.example");
        assert_eq!(host_name("a.example"), "a.example");
        assert_eq!(host_name("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(host_name("192.0.2.1:80"), "192.0.2.1");
    }

    #[test]
    fn server_names() {
        let addr: SocketAddr = "192.0.2.7:443".parse().unwrap();
        let n = server_name(Some("sni.example"), Some("host.example"), addr).unwrap();
        assert_eq!(n.to_str(), "sni.example");
        let n = server_name(None, Some("host.example:8443"), addr).unwrap();
        assert_eq!(n.to_str(), "host.example");
        let n = server_name(None, None, addr).unwrap();
        assert!(matches!(n, ServerName::IpAddress(_)));
        assert!(server_name(Some("bad name!"), None, addr).is_err());
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let e = client_config(&TlsVerify::CaFile("/nonexistent/ca.pem".into()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        assert!(client_config(&TlsVerify::Off).is_ok());
    }
}
