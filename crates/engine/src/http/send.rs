//! Sends one vetted outbound request: connects to the addresses the allow-list checked, and
//! nothing else.
//!
//! `wasmtime_wasi_http::default_send_request` resolves the host name again when it connects,
//! so a name answering with a public and a loopback address could pass the check and then
//! reach loopback (and tell open from closed ports there). Here the TCP connection goes to one
//! of the checked addresses, in order; for HTTPS the certificate is still verified against the
//! host name the guest asked for (SNI = that name), so the address cannot impersonate it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// The same defaults as `wasmtime run -S http`, so guests see familiar behaviour; the
/// request deadline of `serve`/`run --timeout` bounds all of them anyway.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

pub(crate) type ConnectionTask = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Sends `request` to one of `addrs` (already vetted), speaking TLS when the URI is https.
pub(crate) async fn send_to(
    mut request: hyper::Request<WasiBody>,
    addrs: &[SocketAddr],
    options: Option<RequestOptions>,
) -> Result<(hyper::Response<WasiBody>, ConnectionTask), Error> {
    let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.and_then(|o| o.first_byte_timeout).unwrap_or(DEFAULT_TIMEOUT);
    // Tokio's interval panics on zero; a nanosecond is "no waiting" all the same.
    let between_bytes =
        options.and_then(|o| o.between_bytes_timeout).unwrap_or(DEFAULT_TIMEOUT).max(Duration::from_nanos(1));

    let uri = request.uri();
    let https = uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS);
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_string();

    let tcp = match tokio::time::timeout(connect_timeout, connect_first(addrs)).await {
        Ok(stream) => stream.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let stream: Box<dyn Stream> = if https {
        let name = server_name(&host)?;
        let tls = tokio::time::timeout(connect_timeout, tls_connector().connect(name, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) =
        tokio::time::timeout(connect_timeout, hyper::client::conn::http1::handshake(TokioIo::new(stream)))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;

    // Origin form on the wire: scheme and authority go only to proxies (Host carries the name).
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() =
        hyper::Uri::builder().path_and_query(path).build().map_err(|_| Error::HttpRequestUriInvalid)?;

    let mut connection = Some(connection);
    let mut response = std::pin::pin!(tokio::time::timeout(first_byte_timeout, sender.send_request(request)));
    // The connection future does the I/O: drive it while waiting for the response head.
    let head = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = response.as_mut().poll(cx) {
            return Poll::Ready(result.map_err(|_| Error::ConnectionReadTimeout)?.map_err(Error::from));
        }
        if let Some(conn) = connection.as_mut()
            && let Poll::Ready(done) = Pin::new(conn).poll(cx)
        {
            connection = None;
            done?;
            return response
                .as_mut()
                .poll(cx)
                .map(|r| r.map_err(|_| Error::ConnectionReadTimeout)?.map_err(Error::from));
        }
        Poll::Pending
    })
    .await?;

    let response = head.map(|incoming| PacedBody::new(incoming, between_bytes).boxed_unsync());
    let rest: ConnectionTask = Box::new(async move {
        match connection {
            None => Ok(()),
            Some(conn) => conn.await.map_err(|e| if e.is_timeout() { Error::HttpResponseTimeout } else { e.into() }),
        }
    });
    Ok((response, rest))
}

/// Tries each vetted address in turn (as a resolver-driven connect would), never a new lookup.
async fn connect_first(addrs: &[SocketAddr]) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to connect to");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ip.into());
    }
    Ok(rustls::pki_types::ServerName::try_from(bare.to_string())?)
}

/// One client configuration per process: the Mozilla roots (webpki-roots), ring as provider.
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// A response body that fails when the peer goes quiet for longer than the between-bytes
/// timeout (a slow-drip server would otherwise hold the request open).
struct PacedBody {
    incoming: hyper::body::Incoming,
    quiet: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl PacedBody {
    fn new(incoming: hyper::body::Incoming, limit: Duration) -> Self {
        PacedBody { incoming, quiet: Box::pin(tokio::time::sleep(limit)), limit }
    }
}

impl hyper::body::Body for PacedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.limit;
                self.quiet.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(if e.is_timeout() { Error::HttpResponseTimeout } else { e.into() })))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.quiet.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn request(uri: &str) -> hyper::Request<WasiBody> {
        let body = http_body_util::Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync();
        hyper::Request::get(uri).header("host", "rebind.invalid").body(body).unwrap()
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    /// `rebind.invalid` resolves nowhere (RFC 6761): if the sender looked the name up again
    /// instead of using the vetted address, these requests would fail before connecting.
    #[test]
    fn https_goes_to_the_vetted_address_with_the_requested_name() {
        block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let vetted = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut hello = vec![0u8; 2048];
                let n = conn.read(&mut hello).await.unwrap();
                hello.truncate(n);
                hello // dropped connection: the handshake fails on the client side
            });
            let sent = send_to(request("https://rebind.invalid/secret"), &[vetted], None).await;
            assert!(matches!(sent, Err(Error::Tls(_))), "{:?}", sent.err());
            let hello = server.await.unwrap();
            assert_eq!(hello.first(), Some(&0x16), "a TLS handshake record arrived");
            let sni = b"rebind.invalid";
            assert!(hello.windows(sni.len()).any(|w| w == sni), "SNI names the requested host");
        });
    }

    #[test]
    fn http_goes_to_the_vetted_address_and_streams_the_answer() {
        block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let vetted = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut head = vec![0u8; 1024];
                let n = conn.read(&mut head).await.unwrap();
                conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.unwrap();
                String::from_utf8_lossy(&head[..n]).into_owned()
            });
            // A closed port first: the sender moves on to the next vetted address.
            let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
            let (response, io) =
                send_to(request("http://rebind.invalid/x?y=1"), &[closed, vetted], None).await.unwrap();
            tokio::spawn(Box::into_pin(io));
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"ok");
            let head = server.await.unwrap();
            assert!(head.starts_with("GET /x?y=1 HTTP/1.1\r\n"), "origin form on the wire: {head}");
        });
    }

    #[test]
    fn no_vetted_address_means_no_connection() {
        let sent = block_on(send_to(request("http://rebind.invalid/"), &[], None));
        assert!(matches!(sent, Err(Error::Connect(_))));
    }
}
