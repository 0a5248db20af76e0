;; Unbounded recursion: must end in a stack-overflow trap, never a host crash.
(module
  (func $recurse (param i64) (result i64)
    local.get 0
    i64.const 1
    i64.add
    call $recurse)
  (func (export "_start")
    i64.const 0
    call $recurse
    drop))
