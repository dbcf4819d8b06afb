//! Tells the wolfSSL harness this crate shares with the interop tests
//! (`crates/rdtls-interop/src/wolfssl/`) that wolfSSL is built here without its debug options:
//! a benchmark measures the library as it ships, and the key-log callback needs those options.

fn main() {
    println!("cargo::rustc-cfg=rdtls_bench");
}
