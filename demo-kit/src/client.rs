//! A minimal HTTP/1.1 client for `tinymon healthcheck`, `tinymon load` and
//! the tests: plain `http://`, one request at a time per connection,
//! keep-alive, bodies delimited by Content-Length (what tinymon sends),
//! chunked encoding (what Prometheus's API sends) or the connection closing.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest response head accepted, so a broken peer cannot grow memory.
const MAX_HEAD: usize = 64 * 1024;

/// A parsed `http://host:port/path` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses an `http://` URL such as `http://127.0.0.1:8080/work?fail=1`;
    /// the port defaults to 80.
    pub fn parse(url: &str) -> Result<Url, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{url:?}: invalid port {p:?}"))?,
            ),
            _ => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(Url {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// Resolves the host to a socket address.
    pub fn socket_addr(&self) -> io::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other(format!("{}: no address", self.host)))
    }
}

/// A received response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive connection.
pub struct Connection {
    reader: BufReader<TcpStream>,
    host: String,
    closed: bool,
}

impl Connection {
    /// Connects with `timeout` for the connect and every read and write.
    pub fn open(addr: SocketAddr, timeout: Duration) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream),
            host: addr.to_string(),
            closed: false,
        })
    }

    /// The address this connection was opened to.
    pub fn peer(&self) -> &str {
        &self.host
    }

    /// True once the server said it will close the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends `method path` and reads the whole response.
    pub fn request(&mut self, method: &str, path: &str) -> io::Result<Response> {
        self.request_with(method, path, &[])
    }

    /// Sends `method path` with extra headers and reads the whole response.
    pub fn request_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.reader.get_mut().write_all(head.as_bytes())?;
        self.read_response(method == "HEAD")
    }

    fn read_chunked(&mut self, body: &mut Vec<u8>) -> io::Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.by_ref().take(1024).read_line(&mut line)?;
            let size = line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    line.clear();
                    self.reader
                        .by_ref()
                        .take(MAX_HEAD as u64)
                        .read_line(&mut line)?;
                    if line.trim_end().is_empty() {
                        return Ok(());
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            line.clear();
            self.reader.by_ref().take(2).read_line(&mut line)?;
        }
    }

    fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let mut line = String::new();
        let mut head_len = 0;
        let mut next_line = |reader: &mut BufReader<TcpStream>, line: &mut String| {
            line.clear();
            let n = reader.by_ref().take(MAX_HEAD as u64).read_line(line)?;
            head_len += n;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            if head_len > MAX_HEAD {
                return Err(io::Error::other("response head too large"));
            }
            Ok(line.trim_end_matches(['\r', '\n']).to_owned())
        };
        let status_line = next_line(&mut self.reader, &mut line)?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let l = next_line(&mut self.reader, &mut line)?;
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if response
            .header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            self.closed = true;
        }
        if head_only {
            return Ok(response);
        }
        let chunked = response
            .header("Transfer-Encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        match response.header("Content-Length") {
            _ if chunked => self.read_chunked(&mut response.body)?,
            Some(len) => {
                let len: usize = len
                    .parse()
                    .map_err(|_| io::Error::other("bad Content-Length"))?;
                response.body.resize(len, 0);
                self.reader.read_exact(&mut response.body)?;
            }
            None => {
                self.closed = true;
                self.reader.read_to_end(&mut response.body)?;
            }
        }
        Ok(response)
    }
}

/// One GET on a fresh connection.
pub fn get(url: &str, timeout: Duration) -> Result<Response, String> {
    let parsed = Url::parse(url)?;
    let addr = parsed.socket_addr().map_err(|e| format!("{url}: {e}"))?;
    let mut conn = Connection::open(addr, timeout).map_err(|e| format!("{url}: {e}"))?;
    conn.request("GET", &parsed.path)
        .map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Url::parse("http://tinymon:8080").unwrap(),
            Url {
                host: "tinymon".into(),
                port: 8080,
                path: "/".into()
            }
        );
        assert_eq!(Url::parse("http://[::1]:9/x").unwrap().host, "::1");
        assert_eq!(Url::parse("http://h/x").unwrap().port, 80);
        assert!(Url::parse("https://h/").is_err());
        assert!(Url::parse("http://h:99999/").is_err());
        assert!(Url::parse("http:///x").is_err());
    }
}
