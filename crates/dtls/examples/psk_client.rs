//! A minimal PSK client: connects, sends each argument as a datagram, prints the replies.
//!
//! `cargo run -p dtls --example psk_client -- 127.0.0.1:4433 IDENTITY HEXKEY message...`

use std::sync::Arc;
use std::time::Duration;

use dtls::{Client, Config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: psk_client ADDR IDENTITY HEXKEY [MESSAGE...]";
    let addr = args.next().ok_or(usage)?.parse()?;
    let identity = args.next().ok_or(usage)?;
    let key_hex = args.next().ok_or(usage)?;
    let key = (0..key_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(key_hex.get(i..i + 2).unwrap_or("x"), 16))
        .collect::<Result<Vec<u8>, _>>()?;
    let config = Arc::new(Config::builder().psk(identity, key).build()?);
    let mut client = Client::connect(addr, config, Some(Duration::from_secs(10)))?;
    println!("connected: {:?}", client.connection().cipher_suite());
    let mut buf = [0u8; 2048];
    for msg in args {
        client.send(msg.as_bytes())?;
        match client.recv(&mut buf, Some(Duration::from_secs(5))) {
            Ok(n) => println!("reply: {}", String::from_utf8_lossy(&buf[..n])),
            Err(e) => println!("no reply: {e}"),
        }
    }
    client.close()?;
    Ok(())
}
