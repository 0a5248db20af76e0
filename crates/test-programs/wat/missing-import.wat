;; A core module importing a function no WASI host provides.
(module
  (import "acme:metrics" "emit" (func $emit (param i32)))
  (func (export "_start") i32.const 1 call $emit))
