//! A `wasi:http/proxy` guest whose behaviour is picked by the request path:
//! `/` hello, `/echo` streams the body back, `/slow/MS` sleeps, `/spin` loops forever,
//! `/trap` panics, `/bomb` allocates until it fails, `/remember/X` stores X in a static and
//! `/recall` returns it (isolation: a fresh instance must answer empty).
//! Built for wasm32-wasip2 only; on wasip1 it is an empty program.

fn main() {}

#[cfg(target_env = "p2")]
mod handler {
    use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

    /// Lives in linear memory: a fresh instance per request must never show the last one's.
    static REMEMBERED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

    struct Probe;

    wasip2::http::proxy::export!(Probe);

    fn respond(out: ResponseOutparam, status: u16, chunks: &mut dyn Iterator<Item = Vec<u8>>) {
        let response = OutgoingResponse::new(Fields::new());
        response.set_status_code(status).unwrap();
        let body = response.body().unwrap();
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().unwrap();
        for chunk in chunks {
            for piece in chunk.chunks(4096) {
                stream.blocking_write_and_flush(piece).unwrap();
            }
        }
        drop(stream);
        OutgoingBody::finish(body, None).unwrap();
    }

    impl wasip2::exports::http::incoming_handler::Guest for Probe {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let path = request.path_with_query().unwrap_or_default();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match parts.as_slice() {
                ["echo"] => {
                    let body = request.consume().unwrap();
                    let input = body.stream().unwrap();
                    let mut data = Vec::new();
                    while let Ok(chunk) = input.blocking_read(64 * 1024) {
                        data.extend_from_slice(&chunk);
                    }
                    respond(out, 200, &mut std::iter::once(data));
                }
                ["slow", ms] => {
                    std::thread::sleep(std::time::Duration::from_millis(ms.parse().unwrap_or(1000)));
                    respond(out, 200, &mut std::iter::once(b"slept\n".to_vec()));
                }
                ["spin"] => loop {
                    std::hint::black_box(0);
                },
                ["trap"] => panic!("http-probe was asked to trap"),
                ["bomb"] => {
                    let mut kept: Vec<Vec<u8>> = Vec::new();
                    loop {
                        kept.push(vec![1u8; 1 << 20]);
                    }
                }
                ["remember", value] => {
                    *REMEMBERED.lock().unwrap() = value.as_bytes().to_vec();
                    respond(out, 200, &mut std::iter::once(b"remembered\n".to_vec()));
                }
                ["recall"] => {
                    let text = REMEMBERED.lock().unwrap().clone();
                    respond(out, 200, &mut std::iter::once(text));
                }
                _ => respond(out, 200, &mut std::iter::once(b"hello from wasmbox serve\n".to_vec())),
            }
        }
    }
}
