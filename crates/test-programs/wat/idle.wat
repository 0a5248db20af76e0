;; Sleeps on one long WASI clock poll (about 11 days): holds its memory, uses no CPU. The
;; density benchmark starts thousands of these.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; subscription at 0 (48 bytes): userdata 0, tag 0 = clock, clock id 1 (monotonic),
  ;; timeout 2^50 ns, precision 0, flags 0 (relative).
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (data (i32.const 24) "\00\00\00\00\00\00\04\00")
  (func (export "_start")
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
