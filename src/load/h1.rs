//! drill's HTTP/1.1 engine, for plain http and https alike: TLS (rustls,
//! through tokio-rustls) is only a transport under the same code. The
//! request's bytes are serialized once per load; answers are parsed with
//! httparse (hyper's own parser) in a small buffer the connection owns,
//! any number of interim (1xx) answers are skipped, and bodies
//! (Content-Length, chunked, or up to the close) are read and discarded.
//! One request at a time per connection, kept alive.
//!
//! No request is ever sent twice. A kept-alive connection is checked before
//! reuse with a non-blocking peek at its socket (and, over TLS, at what
//! rustls holds): one the server closed, or that carries bytes nobody asked
//! for (an unprompted `408` before a close), is dropped *before* the request
//! is written, and the request goes out on a new connection. Once written,
//! a request whose connection closes before the whole answer is a `reset`
//! for that request: the server may have seen it, so it is never resent.
//! An answer drill cannot parse is counted with its reason (`Cause`).

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::spec::HttpLoad;
use crate::measure::Cause;

/// A connection's read buffer to begin with: an answer's head is a few
/// hundred bytes; a stalled target holds thousands of connections.
const FIRST_BUF: usize = 1024;
/// A buffer that grew past this (a long head, a big body) shrinks back after
/// the answer.
const KEEP_BUF: usize = 16 * 1024;
/// Longest answer head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields accepted in an answer head (hyper's limit is 100).
pub(crate) const MAX_HEADERS: usize = 128;

/// What every request of a load sends, serialized once, and how to reach
/// its target.
pub(crate) struct Template {
    /// `host:port` to connect to (resolved at each connect).
    addr: String,
    /// The TLS client and the name to verify, for https.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    bytes: Box<[u8]>,
    /// The answer has no body (HEAD).
    head: bool,
    keep_alive: bool,
}

impl Template {
    /// The request of `load`, for `http://` or `https://` URLs (validation
    /// refuses any other scheme).
    pub(crate) fn new(load: &HttpLoad) -> Template {
        let https = load.url.scheme_str() == Some("https");
        let host = load.url.host().unwrap_or("localhost");
        let authority = load.url.authority().map_or("localhost", |a| a.as_str());
        let addr = match load.url.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{host}:{}", if https { 443 } else { 80 }),
        };
        let tls = https.then(|| {
            // An IPv6 literal is written in brackets in a URL, not in a name.
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(bare.to_string())
                .unwrap_or_else(|_| ServerName::try_from("localhost").expect("a valid name"));
            // One configuration (and session cache) per load: reconnects
            // resume their TLS session. A CA file that cannot be read
            // leaves no roots, so every handshake fails verification and
            // says why.
            let mut config = crate::base::tls::client_config(load.ca_file.as_deref())
                .unwrap_or_else(|_| crate::base::tls::no_roots());
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            (TlsConnector::from(Arc::new(config)), name)
        });
        Template {
            addr,
            tls,
            bytes: serialize(load, authority),
            head: load.method == hyper::Method::HEAD,
            keep_alive: load.keep_alive,
        }
    }
}

/// The request line, headers (a `host` unless given, a `content-length`
/// where a body is or may be expected, `connection: close` without
/// keep-alive) and body.
fn serialize(load: &HttpLoad, authority: &str) -> Box<[u8]> {
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
    b.into_boxed_slice()
}

/// A failed request: its cause as counted, and what happened, for people.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) cause: Cause,
    pub(crate) detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl Failure {
    fn new(cause: Cause, detail: impl Into<String>) -> Failure {
        Failure {
            cause,
            detail: detail.into(),
        }
    }

    /// An I/O error while connecting, writing or reading, by its kind.
    fn io(e: &io::Error) -> Failure {
        use io::ErrorKind::*;
        let cause = match e.kind() {
            ConnectionRefused => Cause::Refused,
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => Cause::Reset,
            TimedOut => Cause::Timeout,
            // rustls reports what it refused (a certificate, a bad record)
            // as invalid data.
            InvalidData if is_tls(e) => Cause::Tls,
            _ => Cause::Other,
        };
        Failure::new(cause, crate::base::chain::chain(e))
    }

    fn eof() -> Failure {
        Failure::new(Cause::Reset, "connection closed before the whole answer")
    }
}

fn is_tls(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

/// A connection's byte stream: TCP, or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One connection and its read buffer.
pub(crate) struct Conn {
    stream: Stream,
    buf: Vec<u8>,
}

/// How an answer's body ends.
#[derive(Debug, PartialEq)]
enum Body {
    Length(u64),
    Chunked,
    UntilClose,
}

/// A complete answer head.
#[derive(Debug)]
struct Head {
    status: u16,
    len: usize,
    body: Body,
    /// The connection may carry another request after this answer.
    keep: bool,
}

/// Sends the request and reads its whole answer, on the kept-alive
/// connection in `slot` if it is still usable, else on a new one. The
/// request is written once: whatever happens after, it is never resent.
/// Returns the final status.
pub(crate) async fn exchange(t: &Template, slot: &mut Option<Conn>) -> Result<u16, Failure> {
    keep_if_open(slot);
    if slot.is_none() {
        *slot = Some(connect(t).await?);
    }
    send(t, slot).await
}

/// Drops the kept-alive connection in `slot` unless it is still usable: a
/// connection closed, or holding bytes nobody asked for, is dropped unused.
pub(crate) fn keep_if_open(slot: &mut Option<Conn>) {
    if slot.as_mut().is_some_and(|c| !c.idle_and_open()) {
        *slot = None;
    }
}

/// A new connection to the load's target (TLS handshake included).
pub(crate) async fn connect(t: &Template) -> Result<Conn, Failure> {
    Conn::open(t).await
}

/// The request and its whole answer on the connection in `slot` (a new
/// one, or one [`keep_if_open`] kept); the connection stays there when it
/// can carry the next request.
pub(crate) async fn send(t: &Template, slot: &mut Option<Conn>) -> Result<u16, Failure> {
    let Some(conn) = slot.as_mut() else {
        return Err(Failure::new(Cause::Other, "no connection"));
    };
    match conn.round_trip(t).await {
        Ok((status, reusable)) => {
            if !(reusable && t.keep_alive) {
                *slot = None;
            }
            Ok(status)
        }
        Err(f) => {
            *slot = None;
            Err(f)
        }
    }
}

impl Conn {
    async fn open(t: &Template) -> Result<Conn, Failure> {
        let tcp = TcpStream::connect(&t.addr)
            .await
            .map_err(|e| Failure::io(&e))?;
        tcp.set_nodelay(true).map_err(|e| Failure::io(&e))?;
        let stream = match &t.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| Failure::io(&e))?;
                Stream::Tls(Box::new(tls))
            }
        };
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// The server has neither closed this idle connection nor written
    /// anything on it: a non-blocking peek at the socket itself (not at the
    /// runtime's cached readiness, which may lag behind), and over TLS a
    /// look at what rustls already holds (plaintext nobody asked for, a
    /// close_notify), without a read. Any TLS record waiting on the socket
    /// (a late session ticket included) drops the connection too: a new
    /// handshake is cheaper than a guess.
    fn idle_and_open(&mut self) -> bool {
        if let Stream::Tls(s) = &mut self.stream {
            match s.get_mut().1.process_new_packets() {
                Ok(st) if st.plaintext_bytes_to_read() == 0 && !st.peer_has_closed() => {}
                _ => return false,
            }
        }
        let fd = self.stream.tcp().as_raw_fd();
        let mut probe = [0u8; 1];
        // SAFETY: recv on the connection's own open socket into a local
        // one-byte buffer; MSG_PEEK leaves the byte (if any) in the socket.
        let n = unsafe {
            libc::recv(
                fd,
                probe.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }

    /// Reads more of the answer; 0 at the end of the stream.
    async fn read_more(&mut self) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            // A new connection takes its buffer only once the answer comes:
            // thousands waiting on a stalled target hold none.
            self.stream.tcp().readable().await?;
        }
        if self.buf.capacity() - self.buf.len() < 256 {
            self.buf
                .reserve(FIRST_BUF.max(self.buf.capacity()).min(MAX_HEAD));
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Reads more of the answer; the end of the stream is a failure.
    async fn need_more(&mut self) -> Result<(), Failure> {
        match self.read_more().await {
            Ok(0) => Err(Failure::eof()),
            Ok(_) => Ok(()),
            Err(e) => Err(Failure::io(&e)),
        }
    }

    async fn round_trip(&mut self, t: &Template) -> Result<(u16, bool), Failure> {
        self.buf.clear();
        self.stream
            .write_all(&t.bytes)
            .await
            .map_err(|e| Failure::io(&e))?;
        self.stream.flush().await.map_err(|e| Failure::io(&e))?;
        let head = self.read_head(t.head).await?;
        let mut reusable = head.keep;
        let clean = match head.body {
            Body::Length(n) => self.skip_length(head.len, n).await?,
            Body::Chunked => self.skip_chunked(head.len).await?,
            Body::UntilClose => {
                reusable = false;
                self.skip_to_close().await?
            }
        };
        if self.buf.capacity() > KEEP_BUF {
            self.buf = Vec::with_capacity(FIRST_BUF);
        }
        Ok((head.status, reusable && clean))
    }

    /// The final answer's head, after any number of interim (1xx) ones,
    /// whether they came in separate reads or in one with the final answer.
    async fn read_head(&mut self, head_request: bool) -> Result<Head, Failure> {
        loop {
            match parse_head(&self.buf, head_request)? {
                None => self.need_more().await?,
                // An interim answer (100 Continue, 103 Early Hints): the
                // real one follows, perhaps already in the buffer.
                Some(h) if (100..200).contains(&h.status) && h.status != 101 => {
                    self.buf.drain(..h.len);
                }
                Some(h) => return Ok(h),
            }
        }
    }

    /// Discards a body of `n` bytes starting at `from` in the buffer.
    /// Returns false when the server sent more than the answer.
    async fn skip_length(&mut self, from: usize, n: u64) -> Result<bool, Failure> {
        let mut left = n;
        let mut have = (self.buf.len() - from) as u64;
        loop {
            if have >= left {
                return Ok(have == left);
            }
            left -= have;
            self.buf.clear();
            self.need_more().await?;
            have = self.buf.len() as u64;
        }
    }

    /// Discards a chunked body starting at `from`, up to its last chunk and
    /// trailers. Returns false when the server sent more than the answer.
    async fn skip_chunked(&mut self, from: usize) -> Result<bool, Failure> {
        let mut chunks = Chunks::default();
        let mut pos = from;
        loop {
            match chunks.consume(&self.buf[pos..])? {
                (used, true) => return Ok(pos + used == self.buf.len()),
                (used, false) => pos += used,
            }
            self.buf.drain(..pos);
            pos = 0;
            if self.buf.len() > MAX_HEAD {
                return Err(Failure::new(Cause::BadChunk, "chunk line too long"));
            }
            self.need_more().await?;
        }
    }

    async fn skip_to_close(&mut self) -> Result<bool, Failure> {
        loop {
            self.buf.clear();
            match self.read_more().await {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                // TLS without close_notify: the body ends at the close all
                // the same (there is no length to check it against).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(Failure::io(&e)),
            }
        }
    }
}

/// Where a chunked body's reader stands.
#[derive(Default)]
struct Chunks {
    /// Bytes of chunk data (and its CRLF) still to skip.
    skip: u64,
    /// The last (0-size) chunk was read: trailer lines follow.
    last: bool,
}

impl Chunks {
    /// Consumes what it can of `buf`; returns how much, and whether the
    /// body ended (after the trailers' empty line).
    fn consume(&mut self, buf: &[u8]) -> Result<(usize, bool), Failure> {
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let k = self.skip.min((buf.len() - pos) as u64);
                pos += k as usize;
                self.skip -= k;
                if self.skip > 0 {
                    return Ok((pos, false));
                }
            } else if self.last {
                match buf[pos..].windows(2).position(|w| w == b"\r\n") {
                    Some(0) => return Ok((pos + 2, true)),
                    Some(k) => pos += k + 2,
                    None => return Ok((pos, false)),
                }
            } else {
                match httparse::parse_chunk_size(&buf[pos..]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        pos += used;
                        self.last = size == 0;
                        self.skip = if self.last { 0 } else { size + 2 };
                    }
                    Ok(httparse::Status::Partial) => return Ok((pos, false)),
                    Err(_) => return Err(Failure::new(Cause::BadChunk, "bad chunk size line")),
                }
            }
        }
    }
}

/// The answer's head, once complete: status, head length, how its body
/// ends, and whether the connection may carry another request.
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => {
            return Err(Failure::new(
                Cause::HeadTooLong,
                format!("answer head longer than {} KiB", MAX_HEAD / 1024),
            ));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Failure::new(
                Cause::TooManyHeaders,
                format!("more than {MAX_HEADERS} header fields in the answer"),
            ));
        }
        Err(e) => {
            return Err(Failure::new(
                Cause::BadAnswer,
                format!("bad answer head: {e}"),
            ));
        }
    };
    let status = resp.code.unwrap_or(0);
    let mut keep = resp.version == Some(1);
    let (mut length, mut chunked) = (None::<u64>, false);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
            let bad = || Failure::new(Cause::BadLength, "bad or conflicting content-length");
            let n = n.ok_or_else(bad)?;
            if length.is_some_and(|l| l != n) {
                return Err(bad());
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .to_ascii_lowercase()
                .trim_ascii_end()
                .ends_with(b"chunked");
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
    Ok(Some(Head {
        status,
        len,
        body,
        keep,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request (one read) with the next of
    /// `answers` (in 7-byte pieces), then closes.
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
            ca_file: None,
        })
    }

    /// Content-Length, chunked (with an extension and a trailer) and a 204
    /// answer on one kept-alive connection, each read whole: the next status
    /// is the next answer's, not a leftover of the one before.
    #[tokio::test]
    async fn reads_every_body_framing_on_one_connection() {
        let url = scripted(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-t: 1\r\n\r\n",
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

    /// An answer cut short is a reset, and a body up to the close ends the
    /// connection.
    #[tokio::test]
    async fn a_cut_answer_is_a_reset_and_a_close_delimited_body_ends_the_connection() {
        let url = scripted(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"]).await;
        let e = exchange(&template(&url), &mut None).await.unwrap_err();
        assert_eq!(e.cause, Cause::Reset);

        let url = scripted(vec![b"HTTP/1.0 200 OK\r\n\r\nall of it"]).await;
        let mut slot = None;
        assert_eq!(exchange(&template(&url), &mut slot).await.unwrap(), 200);
        assert!(slot.is_none());
    }

    /// Interim answers before the final one are skipped whether they come
    /// in the same read as it or not.
    #[test]
    fn interim_answers_in_the_same_buffer_are_skipped() {
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(async move {
                let (mut s, _) = l.accept().await.unwrap();
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b).await;
                s.write_all(buf).await.unwrap();
                let _ = s.read(&mut b).await;
            });
            let t = template(&format!("http://{addr}/"));
            let got =
                tokio::time::timeout(std::time::Duration::from_secs(2), exchange(&t, &mut None))
                    .await
                    .expect("answered, not left waiting");
            assert_eq!(got.unwrap(), 200);
        });
    }

    /// Heads drill cannot take are failures with their own cause.
    #[test]
    fn unparseable_heads_are_counted_with_their_reason() {
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let cause = |b: &[u8]| parse_head(b, false).map(|_| ()).unwrap_err().cause;
        assert_eq!(cause(&many), Cause::TooManyHeaders);
        assert_eq!(cause(b"HTTP/1.1 2x0 OK\r\n\r\n"), Cause::BadAnswer);
        assert_eq!(
            cause(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"),
            Cause::BadLength
        );
        // 100 header fields (hyper's limit) are fine.
        let mut hundred = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..100 {
            hundred.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        hundred.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&hundred, false).unwrap().unwrap().status, 200);
        let mut chunks = Chunks::default();
        assert_eq!(
            chunks.consume(b"zz\r\n").unwrap_err().cause,
            Cause::BadChunk
        );
    }

    #[test]
    fn the_request_is_serialized_once_with_host_and_headers() {
        let t = template("http://127.0.0.1:8080/a?b=1");
        let text = String::from_utf8(t.bytes.to_vec()).unwrap();
        assert_eq!(text, "GET /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n");
        assert_eq!(t.addr, "127.0.0.1:8080");
        assert_eq!(template("http://localhost/").addr, "localhost:80");
        assert_eq!(template("https://localhost/").addr, "localhost:443");
        assert!(template("https://[::1]:8443/").tls.is_some());
    }
}
