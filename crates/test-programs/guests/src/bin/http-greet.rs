//! A `wasi:http/proxy` app that imports `example:greet/greeter` (a plugged dependency provides
//! it): answers `GET /NAME` with the greeting. `serve` of a composed app in tests/serve.rs.
//! Built for wasm32-wasip2 only; on wasip1 it is an empty program.

fn main() {}

#[cfg(target_env = "p2")]
mod handler {
    use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

    wit_bindgen::generate!({ path: "wit/greet", world: "consumer" });

    struct Greet;

    wasip2::http::proxy::export!(Greet);

    impl wasip2::exports::http::incoming_handler::Guest for Greet {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let path = request.path_with_query().unwrap_or_default();
            let name = path.trim_start_matches('/');
            let text = format!("{}\n", example::greet::greeter::greet(name));
            let response = OutgoingResponse::new(Fields::new());
            let body = response.body().unwrap();
            ResponseOutparam::set(out, Ok(response));
            let stream = body.write().unwrap();
            stream.blocking_write_and_flush(text.as_bytes()).unwrap();
            drop(stream);
            OutgoingBody::finish(body, None).unwrap();
        }
    }
}
