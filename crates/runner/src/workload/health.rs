//! The startup health probe for `service` workloads: one HTTP/1.0 GET over a
//! plain TCP connection to 127.0.0.1.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Result of one probe: Ok(status code) or the reason no status was read.
pub fn probe(port: u16, path: &str, timeout: Duration) -> Result<u16, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let timeout = timeout.max(Duration::from_millis(50));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(describe)?;
    stream.set_read_timeout(Some(timeout)).map_err(describe)?;
    stream.set_write_timeout(Some(timeout)).map_err(describe)?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: treza-workload\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(describe)?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(describe(e)),
        }
    }
    parse_status_line(&head)
}

pub fn is_healthy(status: u16) -> bool {
    (200..400).contains(&status)
}

fn parse_status_line(head: &[u8]) -> Result<u16, String> {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code
            .parse::<u16>()
            .map_err(|_| "malformed HTTP status line".to_string()),
        _ if head.is_empty() => Err("connection closed without a response".to_string()),
        _ => Err("response is not HTTP".to_string()),
    }
}

fn describe(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn status_line_parsing() {
        assert_eq!(parse_status_line(b"HTTP/1.0 204 No Content\r\n"), Ok(204));
        assert_eq!(parse_status_line(b"HTTP/1.1 503 Busy\r\n"), Ok(503));
        assert!(parse_status_line(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status_line(b"").is_err());
        assert!(is_healthy(301) && !is_healthy(404));
    }

    #[test]
    fn probe_reads_a_real_response_and_reports_refusal() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut req = [0u8; 1024];
            let n = conn.read(&mut req).expect("read");
            let req = String::from_utf8_lossy(&req[..n]).to_string();
            conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nok").expect("write");
            req
        });
        assert_eq!(probe(port, "/healthz", Duration::from_secs(2)), Ok(200));
        let req = server.join().expect("server thread");
        assert!(req.starts_with("GET /healthz HTTP/1.0\r\n"), "{req}");
        // The listener is gone now.
        assert_eq!(
            probe(port, "/", Duration::from_secs(2)),
            Err("connection refused".to_string())
        );
    }
}
