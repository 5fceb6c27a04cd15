//! `callview healthcheck`: asks a running server's `/healthz` whether it is
//! well, for container health checks (the runtime image has no curl).
//!
//! A plain HTTP/1.1 `GET` over TCP, no TLS: the check runs next to the
//! server, on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where a server listening on `listen` is reached from the same host: an
/// unspecified address (`0.0.0.0`, `[::]`) becomes loopback.
///
/// ```
/// use callview_server::healthcheck::local_address;
/// assert_eq!(local_address("0.0.0.0:3000".parse().unwrap()).to_string(), "127.0.0.1:3000");
/// assert_eq!(local_address("[::]:3000".parse().unwrap()).to_string(), "[::1]:3000");
/// assert_eq!(local_address("10.0.0.5:80".parse().unwrap()).to_string(), "10.0.0.5:80");
/// ```
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// No answer in time.
    #[error("no answer from {0} within {1:?}")]
    Timeout(SocketAddr, Duration),
    /// The connection failed.
    #[error("cannot reach {0}: {1}")]
    Io(SocketAddr, std::io::Error),
    /// The answer is not HTTP.
    #[error("{0} did not answer HTTP")]
    NotHttp(SocketAddr),
}

/// `GET path` on `addr`; the answer's status code and body (at most 64 KiB).
pub async fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), CheckError> {
    tokio::time::timeout(timeout, async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| CheckError::Io(addr, e))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: callview-healthcheck\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| CheckError::Io(addr, e))?;
        let mut answer = Vec::new();
        stream
            .take(64 * 1024)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| CheckError::Io(addr, e))?;
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or(CheckError::NotHttp(addr))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    })
    .await
    .map_err(|_| CheckError::Timeout(addr, timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_the_status_of_a_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/healthz",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "{\"status\":\"degraded\"}",
                )
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (status, body) = get(addr, "/healthz", Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, 503);
        assert!(body.contains("degraded"), "{body}");
        let (status, _) = get(addr, "/nope", Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, 404);

        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = get(closed, "/healthz", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, CheckError::Io(..)), "{e}");
    }
}
