;; Opens (creating) "x\0/../../escape" in the first preopen (fd 3). Rust guests cannot even
;; express a NUL in a path, so this goes to WASI directly (rights 0x42 = fd_read|fd_write). Exits 0 if the open succeeded,
;; 3 if it was refused.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x\00/../../escape")
  (func (export "_start")
    (if (i32.eqz (call $path_open
          (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 15)
          (i32.const 1) (i64.const 0x42) (i64.const 0) (i32.const 0) (i32.const 8)))
      (then (call $proc_exit (i32.const 0))))
    (call $proc_exit (i32.const 3))))
