//! `Session`: one execution context of a model — its inputs, checked against the model as
//! they are set, and a computation that can be stopped between two operations.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::error::{ErrorKind, NnError};
use crate::model::Model;
use crate::tensor::Tensor;

/// The inputs a guest has set for one model, and what computing them needs.
#[derive(Debug)]
pub struct Session {
    model: Arc<Model>,
    inputs: Vec<Option<Tensor>>,
}

impl Session {
    pub fn new(model: Arc<Model>) -> Session {
        let inputs = vec![None; model.inputs().len()];
        Session { model, inputs }
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// The index of the input called `name`.
    pub fn input_index(&self, name: &str) -> Result<usize, NnError> {
        self.model.inputs().iter().position(|i| i.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.model.inputs().iter().map(|i| i.name.as_str()).collect();
            NnError::invalid(format!("the model has no input `{name}` (its inputs: {})", names.join(", ")))
        })
    }

    /// Sets input `index`; returns the tensor it replaced (so a caller can release what it
    /// charged for it). The type and every fixed dimension must match the model's.
    pub fn set_input(&mut self, index: usize, tensor: Tensor) -> Result<Option<Tensor>, NnError> {
        let Some(want) = self.model.inputs().get(index) else {
            return Err(NnError::invalid(format!(
                "input index {index} is out of range: the model has {} input(s)",
                self.model.inputs().len()
            )));
        };
        match want.ty {
            None => {
                return Err(NnError::new(
                    ErrorKind::Unsupported,
                    format!("input `{}` has an element type WASI-NN cannot express", want.name),
                ));
            }
            Some(ty) if ty != tensor.ty() => {
                return Err(NnError::invalid(format!(
                    "input `{}` takes {ty:?} tensors, not {:?}",
                    want.name,
                    tensor.ty()
                )));
            }
            Some(_) => {}
        }
        let fits = want.dims.len() == tensor.dims().len()
            && want.dims.iter().zip(tensor.dims()).all(|(w, &d)| w.is_none_or(|w| w == u64::from(d)));
        if !fits {
            let shape: Vec<String> = want.dims.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
            return Err(NnError::invalid(format!(
                "input `{}` has dimensions [{}], the tensor has {:?}",
                want.name,
                shape.join(", "),
                tensor.dims()
            )));
        }
        Ok(self.inputs[index].replace(tensor))
    }

    /// Everything [`Job::run`] needs, detached from the session so it can run on another
    /// thread. Fails if an input is missing.
    pub fn job(&self) -> Result<Job, NnError> {
        let mut values = Vec::with_capacity(self.inputs.len());
        for (ix, input) in self.inputs.iter().enumerate() {
            let Some(t) = input else {
                return Err(NnError::invalid(format!(
                    "input {ix} (`{}`) is not set; set every input before compute",
                    self.model.inputs()[ix].name
                )));
            };
            values.push(t.clone());
        }
        Ok(Job { model: self.model.clone(), inputs: values })
    }
}

/// One computation of a model on a set of inputs.
pub struct Job {
    model: Arc<Model>,
    inputs: Vec<Tensor>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("model", &self.model).field("inputs", &self.inputs.len()).finish()
    }
}

impl Job {
    /// Runs the model, checking `cancel` before every operation (and while waiting for the
    /// backend process); returns the outputs in the model's order. Backend failures, panics and
    /// a crashed backend process are errors, never a crash of the host.
    pub fn run(self, cancel: &AtomicBool) -> Result<Vec<Tensor>, NnError> {
        let Job { model, inputs } = self;
        model.runner().run(inputs, cancel)
    }
}
