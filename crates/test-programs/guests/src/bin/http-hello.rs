//! The smallest `wasi:http/proxy` guest: answers every request with a fixed greeting. Used by
//! the serve benchmark and as a second component in routing tests.
//! Built for wasm32-wasip2 only; on wasip1 it is an empty program.

fn main() {}

#[cfg(target_env = "p2")]
mod handler {
    use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

    struct Hello;

    wasip2::http::proxy::export!(Hello);

    impl wasip2::exports::http::incoming_handler::Guest for Hello {
        fn handle(_request: IncomingRequest, out: ResponseOutparam) {
            let response = OutgoingResponse::new(Fields::new());
            let body = response.body().unwrap();
            ResponseOutparam::set(out, Ok(response));
            let stream = body.write().unwrap();
            stream.blocking_write_and_flush(b"hello world\n").unwrap();
            drop(stream);
            OutgoingBody::finish(body, None).unwrap();
        }
    }
}
