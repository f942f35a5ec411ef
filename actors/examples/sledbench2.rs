use std::time::Instant;
fn cpu() -> f64 {
    let mut u: libc_rusage = unsafe { std::mem::zeroed() };
    unsafe { getrusage(0, &mut u) };
    (u.ru_utime.0 as f64 + u.ru_utime.1 as f64 / 1e6)
        + (u.ru_stime.0 as f64 + u.ru_stime.1 as f64 / 1e6)
}
#[repr(C)]
struct libc_rusage {
    ru_utime: (i64, i64),
    ru_stime: (i64, i64),
    rest: [i64; 14],
}
extern "C" {
    fn getrusage(who: i32, usage: *mut libc_rusage) -> i32;
}
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mode = if std::env::var("LS").is_ok() {
        sled::Mode::LowSpace
    } else {
        sled::Mode::HighThroughput
    };
    let db = sled::Config::new()
        .path(dir.path())
        .mode(mode)
        .cache_capacity(256 << 20)
        .open()
        .unwrap();
    let a = db.open_tree("a").unwrap();
    let val = vec![
        7u8;
        std::env::var("VAL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400)
    ];
    let n = 200_000;
    let seq = std::env::var("SEQ").is_ok();
    let (t, c) = (Instant::now(), cpu());
    for i in 0..n {
        let k = if seq {
            format!("{:032x}", i)
        } else {
            format!("{:032x}", (i as u128).wrapping_mul(0x9E3779B97F4A7C15))
        };
        a.insert(k.as_bytes(), val.as_slice()).unwrap();
    }
    println!(
        "1 insert: {:.2} us/op wall, {:.2} us/op cpu",
        t.elapsed().as_secs_f64() * 1e6 / n as f64,
        (cpu() - c) * 1e6 / n as f64
    );
    let (t, c) = (Instant::now(), cpu());
    for i in 0..n {
        let k = format!("{:032x}", (i as u128).wrapping_mul(0x9E3779B97F4A7C15));
        let _ = a.get(k.as_bytes()).unwrap();
    }
    println!(
        "get: {:.2} us/op wall, {:.2} us/op cpu",
        t.elapsed().as_secs_f64() * 1e6 / n as f64,
        (cpu() - c) * 1e6 / n as f64
    );
}
