//! One guest, many probes: `probe OP ARGS...` performs one operation against WASI and reports it.
//!
//! Success prints `ok` (plus any payload) and exits 0; a refused operation prints
//! `denied: <error>` and exits 3, so tests can tell a sandbox refusal from a trap or a crash.

use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map(String::as_str).unwrap_or("hello");
    let a = |i: usize| args.get(i).cloned().unwrap_or_default();
    let result: std::io::Result<String> = match op {
        "hello" => Ok("hello from a wasmbox guest".to_string()),
        "exit" => exit(a(2).parse().unwrap_or(1)),
        "args" => Ok(args[1..].join(" ")),
        "env" => {
            let mut vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            vars.sort();
            Ok(vars.join("\n"))
        }
        "cwd" => std::env::current_dir().map(|p| p.display().to_string()),
        "read" => std::fs::read_to_string(a(2)),
        "write" => std::fs::write(a(2), a(3)).map(|_| String::new()),
        "append" => std::fs::OpenOptions::new()
            .append(true)
            .open(a(2))
            .and_then(|mut f| f.write_all(a(3).as_bytes()))
            .map(|_| String::new()),
        "truncate" => std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(a(2))
            .map(|_| String::new()),
        "set-len" => std::fs::OpenOptions::new()
            .write(true)
            .open(a(2))
            .and_then(|f| f.set_len(a(3).parse().unwrap_or(0)))
            .map(|_| String::new()),
        "create" => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(a(2))
            .map(|_| String::new()),
        "mkdir" => std::fs::create_dir(a(2)).map(|_| String::new()),
        "remove" => std::fs::remove_file(a(2)).map(|_| String::new()),
        "rename" => std::fs::rename(a(2), a(3)).map(|_| String::new()),
        "link" => std::fs::hard_link(a(2), a(3)).map(|_| String::new()),
        "ls" => std::fs::read_dir(a(2)).and_then(|rd| {
            let mut names = Vec::new();
            for entry in rd {
                names.push(entry?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names.join("\n"))
        }),
        "stdin" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        }
        "connect" => connect(&a(2)),
        "alloc-bomb" => {
            // Leak 1 MiB chunks until the allocator fails: Rust aborts (a trap) on allocation failure.
            let mut kept: Vec<Vec<u8>> = Vec::new();
            loop {
                kept.push(vec![1u8; 1 << 20]);
                if kept.len() % 1024 == 0 {
                    eprintln!("allocated {} MiB", kept.len());
                }
            }
        }
        "spin" => loop {
            std::thread::sleep(std::time::Duration::from_millis(0));
        },
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_millis(a(2).parse().unwrap_or(1000)));
            Ok(String::new())
        }
        "tick" => {
            // `tick N MS`: print `tick I` N times (0: forever), MS ms apart.
            let (n, ms) = (a(2).parse::<u64>().unwrap_or(0), a(3).parse().unwrap_or(100));
            let mut i = 0;
            while n == 0 || i < n {
                println!("tick {i}");
                std::thread::sleep(std::time::Duration::from_millis(ms));
                i += 1;
            }
            Ok(String::new())
        }
        "entropy" => {
            // `entropy [DIR]`: what a guest can learn from the host: wall clock, elapsed time,
            // random data (std's hash keys come from random_get), the NaN bits and relaxed-SIMD
            // results the CPU produces, and (with DIR) a listing in the order the host gives
            // it with the entries' modification times.
            use std::hash::BuildHasher;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
            let t0 = std::time::Instant::now();
            let elapsed = t0.elapsed().as_nanos();
            let random = std::collections::hash_map::RandomState::new().hash_one(42u64);
            let zero = std::hint::black_box(0.0f32);
            let nan32 = (zero / zero).to_bits();
            let nan64 = std::hint::black_box(-1.0f64).sqrt().to_bits();
            // SAFETY: Wasm engines without SIMD refuse the module at load; nothing to check at run time.
            let relaxed = unsafe { relaxed_simd() };
            let mut out =
                format!("time {now}\nelapsed {elapsed}\nrandom {random:016x}\nnan32 {nan32:08x}\nnan64 {nan64:016x}\n{relaxed}");
            if !a(2).is_empty() {
                let mut names = Vec::new();
                let mut mtimes = Vec::new();
                for entry in std::fs::read_dir(a(2)).unwrap() {
                    let entry = entry.unwrap();
                    names.push(entry.file_name().to_string_lossy().into_owned());
                    let m = entry.metadata().unwrap().modified().unwrap();
                    mtimes.push(m.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string());
                }
                out += &format!("\nlisting {}\nmtimes {}", names.join(","), mtimes.join(","));
            }
            Ok(out)
        }
        "streams" => {
            // `streams N MS`: `out I` to stdout and `err I` to stderr, N times, MS ms apart.
            let (n, ms) = (a(2).parse::<u64>().unwrap_or(1), a(3).parse().unwrap_or(0));
            for i in 0..n {
                println!("out {i}");
                eprintln!("err {i}");
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            Ok(String::new())
        }
        "flood" => (|| {
            // `flood MIB`: write MIB mebibytes of numbered lines to stdout.
            let mib: usize = a(2).parse().unwrap_or(1);
            let mut out = std::io::stdout().lock();
            let (mut written, mut i) = (0, 0u64);
            while written < mib << 20 {
                let line = format!("flood line {i:012} ................................................\n");
                out.write_all(line.as_bytes())?;
                written += line.len();
                i += 1;
            }
            Ok(String::new())
        })(),
        "panic" => panic!("probe was asked to panic"),
        "random-bytes" => random_bytes(a(2).parse().unwrap_or(16)),
        "random-loop" => {
            // `random-loop N`: N host calls, each filling 1 MiB with random bytes.
            for _ in 0..a(2).parse::<u64>().unwrap_or(1000) {
                random_mib();
            }
            Ok(String::new())
        }
        "open-many" => {
            // `open-many PATH HOLD_MS`: open PATH until the host refuses, keep every handle,
            // report how many, then hold them for HOLD_MS.
            let mut kept = Vec::new();
            let why = loop {
                match std::fs::File::open(a(2)) {
                    Ok(f) => kept.push(f),
                    Err(e) => break e,
                }
                if kept.len() >= 1_000_000 {
                    break std::io::Error::other("a million handles");
                }
            };
            println!("opened {} ({why})", kept.len());
            std::thread::sleep(std::time::Duration::from_millis(a(3).parse().unwrap_or(0)));
            Ok(String::new())
        }
        "listen" => listen(&a(2)),
        other => {
            eprintln!("unknown probe op {other}");
            exit(2);
        }
    };
    match result {
        Ok(out) if out.is_empty() => println!("ok"),
        Ok(out) => println!("ok\n{out}"),
        Err(e) => {
            println!("denied: {e}");
            exit(3);
        }
    }
}

#[cfg(target_env = "p2")]
fn exit(code: u8) -> ! {
    wasip2::cli::exit::exit_with_code(code);
    unreachable!("exit-with-code returned")
}

#[cfg(not(target_env = "p2"))]
fn exit(code: u8) -> ! {
    std::process::exit(code.into())
}

/// Asks the host for `len` random bytes in one call (a host allocation the guest sizes).
#[cfg(target_env = "p2")]
fn random_bytes(len: u64) -> std::io::Result<String> {
    Ok(format!("{} bytes", wasip2::random::random::get_random_bytes(len).len()))
}

#[cfg(not(target_env = "p2"))]
fn random_bytes(_len: u64) -> std::io::Result<String> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "sized host random needs WASI 0.2"))
}

#[cfg(target_env = "p2")]
fn random_mib() {
    std::hint::black_box(wasip2::random::random::get_random_bytes(1 << 20));
}

#[cfg(not(target_arch = "wasm32"))]
fn random_mib() {}

#[cfg(all(target_arch = "wasm32", not(target_env = "p2")))]
fn random_mib() {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn random_get(buf: *mut u8, len: usize) -> u16;
    }
    let mut buf = vec![0u8; 1 << 20];
    // SAFETY: the buffer is ours and `len` long.
    unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
    std::hint::black_box(&buf);
}

#[cfg(target_env = "p2")]
fn listen(addr: &str) -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind(addr)?;
    Ok(format!("listening on {}", listener.local_addr()?))
}

#[cfg(not(target_env = "p2"))]
fn listen(_addr: &str) -> std::io::Result<String> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no sockets in WASI preview 1"))
}

#[cfg(target_env = "p2")]
fn connect(addr: &str) -> std::io::Result<String> {
    use std::net::TcpStream;
    let mut s = TcpStream::connect(addr)?;
    s.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(not(target_env = "p2"))]
fn connect(_addr: &str) -> std::io::Result<String> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no sockets in WASI preview 1"))
}

/// The probe also builds natively (bench/images.py compares it with a static Linux binary).
#[cfg(not(target_arch = "wasm32"))]
unsafe fn relaxed_simd() -> String {
    String::from("relaxed-simd not wasm\n")
}

/// Relaxed SIMD operations whose results the spec leaves to the CPU: truncating NaN and
/// out-of-range floats, and a multiply-add that may or may not be fused.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128,relaxed-simd")]
fn relaxed_simd() -> String {
    use core::arch::wasm32::*;
    let x = std::hint::black_box(f32x4(f32::NAN, 3e9, -3e9, 1.5));
    let t = i32x4_relaxed_trunc_f32x4(x);
    let a = std::hint::black_box(f32x4_splat(1.0 + f32::EPSILON));
    let b = std::hint::black_box(f32x4_splat(1.0 - f32::EPSILON));
    let m = f32x4_relaxed_madd(a, b, f32x4_splat(-1.0));
    format!(
        "relaxed-trunc {:08x} {:08x} {:08x} {:08x}\nrelaxed-madd {:08x}",
        i32x4_extract_lane::<0>(t),
        i32x4_extract_lane::<1>(t),
        i32x4_extract_lane::<2>(t),
        i32x4_extract_lane::<3>(t),
        f32x4_extract_lane::<0>(m).to_bits()
    )
}
