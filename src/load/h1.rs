//! A minimal HTTP/1.1 client for plain-http load: the request's bytes are
//! serialized once per load, answers are parsed with httparse (hyper's own
//! parser) in a small buffer the connection owns, and their bodies
//! (Content-Length, chunked, or up to the close) are read and discarded.
//! One request at a time per connection, kept alive. https goes through
//! hyper (see `http.rs`).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::HttpLoad;

/// A connection's read buffer to begin with: an answer's head is a few
/// hundred bytes; a stalled target holds thousands of connections.
const FIRST_BUF: usize = 1024;
/// A buffer that grew past this (a long head, a big body) shrinks back after
/// the answer.
const KEEP_BUF: usize = 16 * 1024;
/// Longest answer head accepted.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

/// What every request of a load sends, serialized once.
pub(crate) struct Template {
    /// `host:port` to connect to (resolved at each connect, as hyper does).
    addr: String,
    bytes: Box<[u8]>,
    /// Safe to send again when a kept-alive connection turns out closed
    /// before any answer (the server may have closed it while idle).
    idempotent: bool,
    /// The answer has no body (HEAD).
    head: bool,
    keep_alive: bool,
}

impl Template {
    pub(crate) fn new(load: &HttpLoad) -> Template {
        let authority = load.url.authority().map_or("localhost", |a| a.as_str());
        let addr = match load.url.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{}:80", load.url.host().unwrap_or("localhost")),
        };
        let path = load.url.path_and_query().map_or("/", |p| p.as_str());
        let method = load.method.as_str();
        let mut b = Vec::with_capacity(256 + load.body.len());
        b.extend_from_slice(format!("{method} {path} HTTP/1.1\r\n").as_bytes());
        let has = |h: &hyper::header::HeaderName| load.headers.iter().any(|(k, _)| k == h);
        if !has(&hyper::header::HOST) {
            b.extend_from_slice(format!("host: {authority}\r\n").as_bytes());
        }
        for (k, v) in &load.headers {
            b.extend_from_slice(k.as_str().as_bytes());
            b.extend_from_slice(b": ");
            b.extend_from_slice(v.as_bytes());
            b.extend_from_slice(b"\r\n");
        }
        let wants_length = !load.body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH");
        if wants_length && !has(&hyper::header::CONTENT_LENGTH) {
            b.extend_from_slice(format!("content-length: {}\r\n", load.body.len()).as_bytes());
        }
        if !load.keep_alive {
            b.extend_from_slice(b"connection: close\r\n");
        }
        b.extend_from_slice(b"\r\n");
        b.extend_from_slice(&load.body);
        Template {
            addr,
            bytes: b.into_boxed_slice(),
            idempotent: matches!(
                method,
                "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
            ),
            head: method == "HEAD",
            keep_alive: load.keep_alive,
        }
    }
}

/// One connection and its read buffer.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// How an answer's body ends.
enum Body {
    Length(u64),
    Chunked,
    UntilClose,
}

/// A failed round trip; `silent`: the connection ended before any byte of
/// the answer.
struct Failed {
    err: io::Error,
    silent: bool,
}

/// Sends the request and reads its whole answer, on the kept-alive
/// connection in `slot` or a new one. A kept-alive connection that ends
/// before any answer is retried once on a new connection when the request
/// is idempotent; a non-idempotent one is only sent on a kept-alive
/// connection the server has not closed. Returns the status.
pub(crate) async fn exchange(t: &Template, slot: &mut Option<Conn>) -> io::Result<u16> {
    loop {
        let kept = match slot.take() {
            Some(c) if t.idempotent || c.still_open() => Some(c),
            _ => None,
        };
        let fresh = kept.is_none();
        let conn = match kept {
            Some(c) => slot.insert(c),
            None => slot.insert(Conn::open(&t.addr).await?),
        };
        match conn.round_trip(t).await {
            Ok((status, reusable)) => {
                if !(reusable && t.keep_alive) {
                    *slot = None;
                }
                return Ok(status);
            }
            Err(f) => {
                *slot = None;
                if !(f.silent && !fresh && t.idempotent) {
                    return Err(f.err);
                }
            }
        }
    }
}

impl Conn {
    async fn open(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// The server has not closed (nor written to) this idle connection.
    fn still_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Reads more of the answer; 0 at the end of the stream.
    async fn read_more(&mut self) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            // A new connection takes its buffer only once the answer comes:
            // thousands waiting on a stalled target hold none.
            self.stream.readable().await?;
        }
        if self.buf.capacity() - self.buf.len() < 256 {
            self.buf
                .reserve(FIRST_BUF.max(self.buf.capacity()).min(MAX_HEAD));
        }
        self.stream.read_buf(&mut self.buf).await
    }

    async fn round_trip(&mut self, t: &Template) -> Result<(u16, bool), Failed> {
        let fail = |err, silent| Failed { err, silent };
        self.buf.clear();
        if let Err(e) = self.stream.write_all(&t.bytes).await {
            let silent = matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            );
            return Err(fail(e, silent));
        }
        let (status, head_len, body, mut reusable) = loop {
            match self.read_more().await {
                Ok(0) => return Err(fail(eof(), self.buf.is_empty())),
                Ok(_) => {}
                Err(e) => {
                    let silent = self.buf.is_empty();
                    return Err(fail(e, silent));
                }
            }
            match parse_head(&self.buf, t.head).map_err(|e| fail(e, false))? {
                None => continue,
                // An interim answer (100 Continue): the real one follows.
                Some((status, len, ..)) if (100..200).contains(&status) && status != 101 => {
                    self.buf.drain(..len);
                }
                Some(head) => break head,
            }
        };
        let clean = match body {
            Body::Length(n) => self.skip_length(head_len, n).await,
            Body::Chunked => self.skip_chunked(head_len).await,
            Body::UntilClose => {
                reusable = false;
                self.skip_to_close().await
            }
        }
        .map_err(|e| fail(e, false))?;
        if self.buf.capacity() > KEEP_BUF {
            self.buf = Vec::with_capacity(FIRST_BUF);
        }
        Ok((status, reusable && clean))
    }

    /// Discards a body of `n` bytes starting at `from` in the buffer.
    /// Returns false when the server sent more than the answer.
    async fn skip_length(&mut self, from: usize, n: u64) -> io::Result<bool> {
        let mut left = n;
        let mut have = (self.buf.len() - from) as u64;
        loop {
            if have >= left {
                return Ok(have == left);
            }
            left -= have;
            self.buf.clear();
            have = match self.read_more().await? {
                0 => return Err(eof()),
                k => k as u64,
            };
        }
    }

    /// Discards a chunked body starting at `from`, up to its last chunk and
    /// trailers. Returns false when the server sent more than the answer.
    async fn skip_chunked(&mut self, from: usize) -> io::Result<bool> {
        let mut pos = from;
        // Bytes of chunk data (and its CRLF) still to skip.
        let mut skip: u64 = 0;
        let mut last = false;
        loop {
            // Consume what the buffer holds; break out to read more.
            loop {
                if skip > 0 {
                    let k = skip.min((self.buf.len() - pos) as u64);
                    pos += k as usize;
                    skip -= k;
                    if skip > 0 {
                        break;
                    }
                } else if last {
                    // Trailer lines, then an empty line.
                    match self.buf[pos..].windows(2).position(|w| w == b"\r\n") {
                        Some(0) => return Ok(pos + 2 == self.buf.len()),
                        Some(k) => pos += k + 2,
                        None => break,
                    }
                } else {
                    match httparse::parse_chunk_size(&self.buf[pos..]) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            pos += used;
                            last = size == 0;
                            skip = if last { 0 } else { size + 2 };
                        }
                        Ok(httparse::Status::Partial) => break,
                        Err(_) => return Err(invalid("bad chunk size")),
                    }
                }
            }
            self.buf.drain(..pos);
            pos = 0;
            if self.read_more().await? == 0 {
                return Err(eof());
            }
        }
    }

    async fn skip_to_close(&mut self) -> io::Result<bool> {
        loop {
            self.buf.clear();
            if self.read_more().await? == 0 {
                return Ok(false);
            }
        }
    }
}

/// The answer's head, once complete: status, head length, how its body
/// ends, and whether the connection may carry another request.
fn parse_head(buf: &[u8], head_request: bool) -> io::Result<Option<(u16, usize, Body, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(invalid("answer head too long")),
        Err(e) => return Err(invalid(&format!("bad answer: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let mut keep = resp.version == Some(1);
    let (mut length, mut chunked) = (None, false);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
            length = Some(n.ok_or_else(|| invalid("bad content-length"))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.to_ascii_lowercase().ends_with(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = h.value.to_ascii_lowercase();
            if v.windows(5).any(|w| w == b"close") {
                keep = false;
            } else if v.windows(10).any(|w| w == b"keep-alive") {
                keep = true;
            }
        }
    }
    let body = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        Body::Length(0)
    } else if chunked {
        Body::Chunked
    } else if let Some(n) = length {
        Body::Length(n)
    } else {
        Body::UntilClose
    };
    Ok(Some((status, len, body, keep)))
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed before the whole answer",
    )
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request (one read) with the next of
    /// `answers`, then closes.
    async fn scripted(answers: Vec<&'static [u8]>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            for a in answers {
                let _ = s.read(&mut buf).await;
                for piece in a.chunks(7) {
                    s.write_all(piece).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        });
        format!("http://{addr}/")
    }

    fn template(url: &str) -> Template {
        Template::new(&HttpLoad {
            url: url.parse().unwrap(),
            method: hyper::Method::GET,
            headers: Vec::new(),
            body: bytes::Bytes::new(),
            rate: 1.0,
            timeout: std::time::Duration::from_secs(1),
            success: Vec::new(),
            keep_alive: true,
            workers: 1,
            max_in_flight: 1,
            tick: std::time::Duration::from_millis(1),
        })
    }

    /// Content-Length, chunked (with a trailer) and a 204 answer on one
    /// kept-alive connection, each read whole: the next status is the next
    /// answer's, not a leftover of the one before.
    #[tokio::test]
    async fn reads_every_body_framing_on_one_connection() {
        let url = scripted(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-t: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let t = template(&url);
        let mut slot = None;
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(exchange(&t, &mut slot).await.unwrap());
            assert!(slot.is_some(), "the connection is kept after {got:?}");
        }
        assert_eq!(got, [200, 503, 204, 404]);
    }

    /// An answer cut short is an error of kind UnexpectedEof (counted as
    /// reset), and a body up to the close ends the connection.
    #[tokio::test]
    async fn a_cut_answer_is_an_error_and_a_close_delimited_body_ends_the_connection() {
        let url = scripted(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"]).await;
        let e = exchange(&template(&url), &mut None).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);

        let url = scripted(vec![b"HTTP/1.0 200 OK\r\n\r\nall of it"]).await;
        let mut slot = None;
        assert_eq!(exchange(&template(&url), &mut slot).await.unwrap(), 200);
        assert!(slot.is_none());
    }

    #[test]
    fn the_request_is_serialized_once_with_host_and_headers() {
        let t = template("http://127.0.0.1:8080/a?b=1");
        let text = String::from_utf8(t.bytes.to_vec()).unwrap();
        assert_eq!(text, "GET /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n");
        assert_eq!(t.addr, "127.0.0.1:8080");
        assert_eq!(template("http://localhost/").addr, "localhost:80");
    }
}
