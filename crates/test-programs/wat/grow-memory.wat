;; Grows its memory by 16 MiB steps until growth fails, then traps with `unreachable`.
(module
  (memory 1)
  (func (export "_start")
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 256)) (i32.const -1))))
    unreachable))
