//! A `wasi:http/proxy` guest whose behaviour is picked by the request path:
//! `/` hello, `/echo` streams the body back, `/slow/MS` sleeps, `/spin` loops forever,
//! `/trap` panics, `/bomb` allocates until it fails, `/remember/X` stores X in a static and
//! `/recall` returns it (isolation: a fresh instance must answer empty), `/scribble/N` fills
//! N MiB of fresh heap with a marker byte and `/scan` answers how many 4 KiB pages of the whole
//! linear memory are full of it (a fresh instance: 0, whatever the host kept resident),
//! `/scatter/N` marks every other page of N MiB of fresh heap (N × 128 separate runs of
//! written pages, more than a page-table scan reports in one go by default) and answers `/scan`,
//! `/fetch` fetches the URL in the `x-fetch-url` header and answers with its status and body
//! (502 with the error when the host refuses), `/large/N` streams N MiB, `/env/NAME` answers
//! the variable's value, `/health` answers 200, or 503 when `PROBE_HEALTH=fail`.
//! Behind a route prefix, put the operation after `/-/` (`/api/-/env/NAME`).
//! Built for wasm32-wasip2 only; on wasip1 it is an empty program.

fn main() {}

#[cfg(target_env = "p2")]
mod handler {
    use wasip2::http::types::{
        Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
    };

    /// Lives in linear memory: a fresh instance per request must never show the last one's.
    static REMEMBERED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

    struct Probe;

    /// What `/scribble` writes; no page of a fresh instance is full of it.
    const SCRIBBLE: u8 = 0xA5;

    /// Pages of this instance's linear memory whose every byte is [`SCRIBBLE`].
    fn scan() -> usize {
        let end = core::arch::wasm32::memory_size(0) * 65536;
        (4096..end)
            .step_by(4096)
            .filter(|&page| {
                // SAFETY: every address below memory_size is valid linear memory (page 0, which
                // Rust treats as null, is skipped); volatile, so the reads are not assumed away.
                let marked = u64::from_ne_bytes([SCRIBBLE; 8]);
                (page..page + 4096).step_by(8).all(|a| unsafe { std::ptr::read_volatile(a as *const u64) } == marked)
            })
            .count()
    }

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

    /// GET `url` (`http://HOST[:PORT]/PATH` or https) through wasi:http/outgoing-handler.
    fn fetch(url: &str) -> Result<(u16, Vec<u8>), String> {
        let (scheme, rest) = match url.split_once("://") {
            Some(("http", rest)) => (Scheme::Http, rest),
            Some(("https", rest)) => (Scheme::Https, rest),
            _ => return Err(format!("not an http(s) URL: {url:?}")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let request = OutgoingRequest::new(Fields::new());
        request.set_scheme(Some(&scheme)).map_err(|()| "scheme")?;
        request.set_authority(Some(authority)).map_err(|()| "authority")?;
        request.set_path_with_query(Some(path)).map_err(|()| "path")?;
        let pending = wasip2::http::outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
        pending.subscribe().block();
        let response = pending.get().ok_or("no response")?.map_err(|()| "taken")?.map_err(|e| format!("{e:?}"))?;
        let status = response.status();
        let body = response.consume().map_err(|()| "body")?;
        let stream = body.stream().map_err(|()| "stream")?;
        let mut data = Vec::new();
        while let Ok(chunk) = stream.blocking_read(64 * 1024) {
            data.extend_from_slice(&chunk);
        }
        Ok((status, data))
    }

    impl wasip2::exports::http::incoming_handler::Guest for Probe {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let full = request.path_with_query().unwrap_or_default();
            let path = full.split_once("/-/").map_or(full.as_str(), |(_, op)| op);
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match parts.as_slice() {
                ["echo"] => {
                    let body = request.consume().unwrap();
                    let input = body.stream().unwrap();
                    let mut data = Vec::new();
                    loop {
                        match input.blocking_read(64 * 1024) {
                            Ok(chunk) => data.extend_from_slice(&chunk),
                            Err(wasip2::io::streams::StreamError::Closed) => break,
                            Err(wasip2::io::streams::StreamError::LastOperationFailed(e)) => {
                                let why = e.to_debug_string();
                                let text = format!("reading the body failed: {}\n", why.lines().next().unwrap_or(""));
                                return respond(out, 400, &mut std::iter::once(text.into_bytes()));
                            }
                        }
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
                ["scribble", mib] => {
                    let marked = vec![SCRIBBLE; mib.parse::<usize>().unwrap_or(1) << 20];
                    std::mem::forget(marked);
                    respond(out, 200, &mut std::iter::once(format!("{}\n", scan()).into_bytes()));
                }
                ["scatter", mib] => {
                    // Uninitialised, so the pages in between are never written (a zeroed
                    // allocation could be memset as a whole); whole pages from the first
                    // page boundary inside it.
                    let len = mib.parse::<usize>().unwrap_or(1) << 20;
                    let mut pages: Vec<u8> = Vec::with_capacity(len);
                    let base = pages.as_mut_ptr();
                    let skip = base.align_offset(4096);
                    for offset in (skip..len.saturating_sub(4096)).step_by(8192) {
                        // SAFETY: offset + 4096 <= len, inside the allocation's capacity.
                        unsafe { std::ptr::write_bytes(base.add(offset), SCRIBBLE, 4096) };
                    }
                    std::mem::forget(pages);
                    respond(out, 200, &mut std::iter::once(format!("{}\n", scan()).into_bytes()));
                }
                ["scan"] => respond(out, 200, &mut std::iter::once(format!("{}\n", scan()).into_bytes())),
                ["recall"] => {
                    let text = REMEMBERED.lock().unwrap().clone();
                    respond(out, 200, &mut std::iter::once(text));
                }
                ["fetch"] => {
                    let url = request.headers().get("x-fetch-url").into_iter().next().unwrap_or_default();
                    match fetch(&String::from_utf8_lossy(&url)) {
                        Ok((status, body)) => respond(out, status, &mut std::iter::once(body)),
                        Err(e) => respond(out, 502, &mut std::iter::once(format!("fetch failed: {e}\n").into_bytes())),
                    }
                }
                ["health"] => {
                    // The agent's HTTP health check: an image can be built to fail it.
                    let failing = std::env::var("PROBE_HEALTH").is_ok_and(|v| v == "fail");
                    let (status, text) = if failing { (503, "unhealthy\n") } else { (200, "ok\n") };
                    respond(out, status, &mut std::iter::once(text.as_bytes().to_vec()));
                }
                ["env", name] => {
                    let value = std::env::var(name).unwrap_or_default();
                    respond(out, 200, &mut std::iter::once(value.into_bytes()));
                }
                ["read", path @ ..] => match std::fs::read(format!("/{}", path.join("/"))) {
                    Ok(data) => respond(out, 200, &mut std::iter::once(data)),
                    Err(e) => respond(out, 403, &mut std::iter::once(format!("read failed: {e}\n").into_bytes())),
                },
                ["lookup", name] => {
                    use std::net::ToSocketAddrs;
                    match (*name, 80).to_socket_addrs() {
                        Ok(addrs) => {
                            let text = format!("resolved {}\n", addrs.count());
                            respond(out, 200, &mut std::iter::once(text.into_bytes()))
                        }
                        Err(e) => respond(out, 403, &mut std::iter::once(format!("lookup failed: {e}\n").into_bytes())),
                    }
                }
                ["fields", n] => {
                    let value = vec![b'v'; 1000];
                    let mut kept = Vec::new();
                    let mut why = String::from("all accepted");
                    'outer: for _ in 0..n.parse::<usize>().unwrap_or(1) {
                        let fields = Fields::new();
                        for i in 0..30 {
                            if let Err(e) = fields.append(&format!("x-filler-{i}"), &value) {
                                why = format!("{e:?}");
                                kept.push(fields);
                                break 'outer;
                            }
                        }
                        kept.push(fields);
                    }
                    let text = format!("kept {} ({why})\n", kept.len());
                    respond(out, 200, &mut std::iter::once(text.into_bytes()));
                }
                ["large", mib] => {
                    let mib: usize = mib.parse().unwrap_or(1);
                    let chunk = vec![b'x'; 1 << 16];
                    respond(out, 200, &mut std::iter::repeat_n(chunk, mib * 16));
                }
                _ => respond(out, 200, &mut std::iter::once(b"hello from wasmbox serve\n".to_vec())),
            }
        }
    }
}
