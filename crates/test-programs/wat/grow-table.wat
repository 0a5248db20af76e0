;; Grows a table by 1M elements at a time until growth fails, then traps.
(module
  (table 0 funcref)
  (func (export "_start")
    (loop $grow
      (br_if $grow
        (i32.ne (table.grow (ref.null func) (i32.const 1048576)) (i32.const -1))))
    unreachable))
