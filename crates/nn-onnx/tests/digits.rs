//! The backend (tract in this process, `local`) on a real model: the digits classifier in
//! testdata/ (see make.py there). The backend process is tested from the CLI's tests/nn.rs.

use std::sync::atomic::AtomicBool;

use wasmbox_nn::{ErrorKind, Session, Tensor, TensorType};
use wasmbox_nn_onnx::local::load_onnx;

const MODEL: &[u8] = include_bytes!("../../nn/testdata/digits/digits.onnx");
const IMAGES: &[u8] = include_bytes!("../../nn/testdata/digits/test-images.f32");
const LABELS: &[u8] = include_bytes!("../../nn/testdata/digits/test-labels.u8");

fn logits(session: &mut Session, image: &[u8]) -> Vec<f32> {
    session.set_input(0, Tensor::new(vec![1, 64], TensorType::F32, image.to_vec()).unwrap()).unwrap();
    let out = session.job().unwrap().run(&AtomicBool::new(false)).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dims(), &[1, 10]);
    out[0].data().chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn classifies_held_out_digits() {
    let model = load_onnx(MODEL).unwrap();
    assert_eq!(model.inputs()[0].name, "pixels");
    assert_eq!(model.inputs()[0].dims, vec![None, Some(64)], "batch is symbolic");
    assert_eq!(model.outputs(), ["logits"]);
    let mut session = Session::new(model);
    let correct = IMAGES
        .chunks(64 * 4)
        .zip(LABELS)
        .filter(|(image, label)| {
            let l = logits(&mut session, image);
            let best = (0..10).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap();
            best == **label as usize
        })
        .count();
    assert!(correct >= 95, "{correct} of 100 held-out digits classified correctly");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let mut s = Session::new(load_onnx(MODEL).unwrap());
    let e = s.job().unwrap_err();
    assert!(e.message.contains("not set"), "{e}");
    let wrong_dims = Tensor::new(vec![1, 63], TensorType::F32, vec![0; 63 * 4]).unwrap();
    let e = s.set_input(0, wrong_dims).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("[?, 64]"), "{e}");
    let wrong_type = Tensor::new(vec![1, 64], TensorType::I32, vec![0; 64 * 4]).unwrap();
    assert_eq!(s.set_input(0, wrong_type).unwrap_err().kind, ErrorKind::InvalidArgument);
    let e = s.set_input(3, Tensor::new(vec![1], TensorType::U8, vec![0]).unwrap()).unwrap_err();
    assert!(e.message.contains("out of range"), "{e}");
}

#[test]
fn a_cancelled_computation_stops() {
    let mut s = Session::new(load_onnx(MODEL).unwrap());
    s.set_input(0, Tensor::new(vec![1, 64], TensorType::F32, vec![0; 256]).unwrap()).unwrap();
    let e = s.job().unwrap().run(&AtomicBool::new(true)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
}

#[test]
fn bytes_that_are_not_onnx_are_refused_with_the_reason() {
    let e = load_onnx(b"not a model at all").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidEncoding);
    assert!(e.message.starts_with("not a loadable ONNX model"), "{e}");
    // A truncated real model.
    let e = load_onnx(&MODEL[..MODEL.len() / 2]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidEncoding);
}
