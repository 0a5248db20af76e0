//! A `wasi:http/proxy` guest that classifies one 8x8 digit per request with the model granted
//! as `digits` (WASI-NN): POST 64 little-endian f32 pixels, get back `CLASS\n`; a WASI-NN error
//! answers 500 with the error's code and message. `POST /big` instead runs the model granted as
//! `big` (the heavy test model: seconds of compute) on a zero 2048x2048 input.
//! Built for wasm32-wasip2 only; on wasip1 it is an empty program.

fn main() {}

#[cfg(target_env = "p2")]
mod handler {
    use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

    mod nn {
        wit_bindgen::generate!({
            path: "../../engine/src/nn/spec/wasi-nn.wit",
            world: "ml",
            generate_all,
        });
    }
    use nn::wasi::nn::{graph, tensor};

    struct Classify;

    wasip2::http::proxy::export!(Classify);

    fn big() -> Result<String, String> {
        let err = |e: nn::wasi::nn::errors::Error| format!("{:?}: {}", e.code(), e.data());
        let g = graph::load_by_name("big").map_err(err)?;
        let ctx = g.init_execution_context().map_err(err)?;
        let input = tensor::Tensor::new(&vec![2048, 2048], tensor::TensorType::Fp32, &vec![0u8; 2048 * 2048 * 4]);
        ctx.compute(vec![("x".into(), input)]).map_err(err)?;
        Ok("computed\n".into())
    }

    fn classify(pixels: Vec<u8>) -> Result<String, String> {
        let err = |e: nn::wasi::nn::errors::Error| format!("{:?}: {}", e.code(), e.data());
        let g = graph::load_by_name("digits").map_err(err)?;
        let ctx = g.init_execution_context().map_err(err)?;
        let input = tensor::Tensor::new(&vec![1, 64], tensor::TensorType::Fp32, &pixels);
        let out = ctx.compute(vec![("pixels".into(), input)]).map_err(err)?;
        let logits: Vec<f32> =
            out[0].1.data().chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let best = (0..logits.len()).max_by(|&x, &y| logits[x].total_cmp(&logits[y])).unwrap_or(0);
        Ok(format!("{best}\n"))
    }

    impl wasip2::exports::http::incoming_handler::Guest for Classify {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let is_big = request.path_with_query().is_some_and(|p| p.starts_with("/big"));
            let mut pixels = Vec::new();
            if let Ok(body) = request.consume() {
                let stream = body.stream().unwrap();
                while let Ok(chunk) = stream.blocking_read(64 * 1024) {
                    pixels.extend_from_slice(&chunk);
                }
            }
            let (status, text) = match if is_big { big() } else { classify(pixels) } {
                Ok(t) => (200, t),
                Err(e) => (500, format!("{e}\n")),
            };
            let response = OutgoingResponse::new(Fields::new());
            response.set_status_code(status).unwrap();
            let body = response.body().unwrap();
            ResponseOutparam::set(out, Ok(response));
            let stream = body.write().unwrap();
            stream.blocking_write_and_flush(text.as_bytes()).unwrap();
            drop(stream);
            OutgoingBody::finish(body, None).unwrap();
        }
    }
}
