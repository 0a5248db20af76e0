;; 100,000 rounds of: open "f" twice in the first preopen (fd 3), renumber the first onto the
;; second, close it. Rights 0x42 = fd_read|fd_write. A host that leaked descriptors or table
;; slots would run out long before the end. Exits 0 after all rounds, or with the failing errno
;; (+10 for renumber, +20 for close).
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $fd_renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "f")
  (func $open (param $out i32)
    (local $err i32)
    (local.set $err (call $path_open
      (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 1)
      (i32.const 1) (i64.const 0x42) (i64.const 0) (i32.const 0) (local.get $out)))
    (if (local.get $err) (then (call $proc_exit (local.get $err)))))
  (func (export "_start")
    (local $i i32) (local $err i32)
    (loop $round
      (call $open (i32.const 8))
      (call $open (i32.const 12))
      (local.set $err (call $fd_renumber (i32.load (i32.const 8)) (i32.load (i32.const 12))))
      (if (local.get $err) (then (call $proc_exit (i32.add (local.get $err) (i32.const 10)))))
      (local.set $err (call $fd_close (i32.load (i32.const 12))))
      (if (local.get $err) (then (call $proc_exit (i32.add (local.get $err) (i32.const 20)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $i) (i32.const 100000))))))
