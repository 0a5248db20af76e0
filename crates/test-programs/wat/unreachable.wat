;; Traps at once with `unreachable`, two named frames deep (for the backtrace).
(module
  (func $inner unreachable)
  (func $outer call $inner)
  (func (export "_start") call $outer))
