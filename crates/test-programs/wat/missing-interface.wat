;; A component importing an interface wasmbox does not provide.
(component
  (import "acme:metrics/emit@1.0.0" (instance
    (export "counter" (func (param "n" u32))))))
