;; Spins forever: `loop br 0`. Only a deadline (--timeout) or fuel (--fuel) stops it.
(module
  (func (export "_start")
    (loop $l (br $l))))
