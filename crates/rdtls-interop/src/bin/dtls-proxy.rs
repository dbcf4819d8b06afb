//! `dtls-proxy`: a fault-injecting UDP proxy between one DTLS client and one server (the
//! library's [`FaultProxy`] as a program, in the spirit of Mbed TLS's `udp_proxy`).

use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdtls_interop::proxy::{Direction, FaultProxy, Faults, Marker, Target};

const USAGE: &str = "\
usage: dtls-proxy --listen ADDR --upstream ADDR [FAULT...] [--seed N] [--rebind-every N]

Forwards datagrams between one client (the first address that sends to --listen) and the
server at --upstream, injecting faults. Prints `proxy listening on ADDR` first, and the
counters when it stops: on SIGINT or SIGTERM, or at the end of its standard input (unless
that is /dev/null).

Faults apply to both directions. Prefix one with `client-` to apply it only to datagrams the
client sends (--client-loss 0.5), or with `server-` for datagrams the server sends; these
override the unprefixed value. Probabilities P are per datagram, in [0, 1].
  --loss P                lose the datagram
  --duplicate P           send it twice
  --reorder P             hold it back until the next one went (at most --reorder-hold-ms, 100)
  --delay-ms N            delay every datagram by N ms
  --corrupt P             flip one random bit
  --truncate P            cut it short
  --mtu N                 drop datagrams over N bytes
  --pack P                send it together with the next one (if that comes within
                          --pack-window-ms, 10)
  --drop TYPE[:N]         drop the first (N) datagram(s) carrying handshake message TYPE
                          (a number, e.g. 11 for Certificate, or `ccs` for ChangeCipherSpec)
  --drop-flight TYPE[:N]  drop the first (N) transmission(s) of the flight starting with TYPE
                          (--server-drop-flight 2: the server's ServerHello flight)
  --seed N                seed of the random faults (default: from the clock; printed)
  --rebind-every N        a NAT that rebinds: after every N datagrams to the server, go on
                          from a new source port (what the server sends to the old one is
                          lost); the counters at the end say how many times

example: dtls-proxy --listen 127.0.0.1:5555 --upstream 127.0.0.1:4433 --loss 0.2 --seed 7";

/// One fault setting from the command line.
enum Setting {
    Loss(f64),
    Duplicate(f64),
    Reorder(f64),
    ReorderHold(Duration),
    Delay(Duration),
    Corrupt(f64),
    Truncate(f64),
    Mtu(usize),
    Pack(f64),
    PackWindow(Duration),
    Target(Target),
}

impl Setting {
    fn apply(&self, f: &mut Faults) {
        match *self {
            Self::Loss(p) => f.loss = p,
            Self::Duplicate(p) => f.duplicate = p,
            Self::Reorder(p) => f.reorder = p,
            Self::ReorderHold(d) => f.reorder_hold = d,
            Self::Delay(d) => f.delay = d,
            Self::Corrupt(p) => f.corrupt = p,
            Self::Truncate(p) => f.truncate = p,
            Self::Mtu(n) => f.mtu = Some(n),
            Self::Pack(p) => f.pack = p,
            Self::PackWindow(d) => f.pack_window = d,
            Self::Target(t) => f.targets.push(t),
        }
    }
}

struct Args {
    listen: SocketAddr,
    upstream: SocketAddr,
    seed: Option<u64>,
    /// Rebind after this many datagrams to the server (0: never).
    rebind_every: u64,
    to_server: Faults,
    to_client: Faults,
}

fn probability(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{v}` is not a probability in [0, 1]")),
    }
}

fn number<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("`{v}` is not a valid number"))
}

fn millis(v: &str) -> Result<Duration, String> {
    number(v).map(Duration::from_millis)
}

/// `TYPE[:N]`: a handshake type number or `ccs`, and how many times.
fn target(v: &str, whole_flight: bool) -> Result<Target, String> {
    let (what, times) = v.split_once(':').map_or((v, "1"), |(w, n)| (w, n));
    let marker = if what.eq_ignore_ascii_case("ccs") {
        Marker::ChangeCipherSpec
    } else {
        Marker::Handshake(number(what).map_err(|_| format!("`{what}` is not a handshake type (0-255) or `ccs`"))?)
    };
    Ok(Target { marker, whole_flight, times: number(times)? })
}

fn setting(name: &str, v: &str) -> Result<Option<Setting>, String> {
    Ok(Some(match name {
        "loss" => Setting::Loss(probability(v)?),
        "duplicate" => Setting::Duplicate(probability(v)?),
        "reorder" => Setting::Reorder(probability(v)?),
        "reorder-hold-ms" => Setting::ReorderHold(millis(v)?),
        "delay-ms" => Setting::Delay(millis(v)?),
        "corrupt" => Setting::Corrupt(probability(v)?),
        "truncate" => Setting::Truncate(probability(v)?),
        "mtu" => Setting::Mtu(number(v)?),
        "pack" => Setting::Pack(probability(v)?),
        "pack-window-ms" => Setting::PackWindow(millis(v)?),
        "drop" => Setting::Target(target(v, false)?),
        "drop-flight" => Setting::Target(target(v, true)?),
        _ => return Ok(None),
    }))
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let (mut listen, mut upstream, mut seed, mut rebind_every) = (None, None, None, 0);
    // Unprefixed settings first, then the per-direction ones, whatever the order given.
    let (mut both, mut client, mut server) = (Vec::new(), Vec::new(), Vec::new());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(name) = arg.strip_prefix("--") else { return Err(format!("unexpected argument `{arg}`")) };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (name.to_owned(), None),
        };
        if name == "help" {
            return Err(String::new());
        }
        let Some(value) = inline.or_else(|| args.next()) else { return Err(format!("--{name} needs a value")) };
        let bad = |e: String| format!("--{name}: {e}");
        match name.as_str() {
            "listen" => listen = Some(value.parse::<SocketAddr>().map_err(|e| bad(e.to_string()))?),
            "upstream" => upstream = Some(value.parse::<SocketAddr>().map_err(|e| bad(e.to_string()))?),
            "seed" => seed = Some(number::<u64>(&value).map_err(bad)?),
            "rebind-every" => rebind_every = number::<u64>(&value).map_err(bad)?,
            _ => {
                let (list, base) = if let Some(base) = name.strip_prefix("client-") {
                    (&mut client, base)
                } else if let Some(base) = name.strip_prefix("server-") {
                    (&mut server, base)
                } else {
                    (&mut both, name.as_str())
                };
                match setting(base, &value).map_err(bad)? {
                    Some(s) => list.push(s),
                    None => return Err(format!("unknown option --{name}")),
                }
            }
        }
    }
    let (mut to_server, mut to_client) = (Faults::none(), Faults::none());
    for s in &both {
        s.apply(&mut to_server);
        s.apply(&mut to_client);
    }
    client.iter().for_each(|s| s.apply(&mut to_server));
    server.iter().for_each(|s| s.apply(&mut to_client));
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        upstream: upstream.ok_or("--upstream is required")?,
        seed,
        rebind_every,
        to_server,
        to_client,
    })
}

/// Whether standard input is /dev/null (a background job of a script): its end means nothing.
#[cfg(unix)]
fn stdin_is_null() -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match (std::fs::metadata("/dev/stdin"), std::fs::metadata("/dev/null")) {
        (Ok(stdin), Ok(null)) => stdin.file_type().is_char_device() && stdin.rdev() == null.rdev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn stdin_is_null() -> bool {
    false
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("dtls-proxy: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        nanos ^ u64::from(std::process::id()).rotate_left(32)
    });
    // Before anything is printed: whoever saw the address may signal at once.
    let (stop_tx, stop_rx) = mpsc::channel::<&'static str>();
    let on_signal = stop_tx.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = on_signal.send("signal");
    }) {
        eprintln!("dtls-proxy: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    let (summary_server, summary_client) = (args.to_server.to_string(), args.to_client.to_string());
    let mut proxy = match FaultProxy::bind(args.listen, args.upstream, args.to_server, args.to_client, seed) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dtls-proxy: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    proxy.rebind_every(args.rebind_every);
    println!("proxy listening on {}", proxy.addr());
    println!("upstream {}, seed {seed}", proxy.upstream());
    if args.rebind_every > 0 {
        println!("rebinding after every {} datagrams to the server", args.rebind_every);
    }
    println!("faults {}: {summary_server}", Direction::ToServer);
    println!("faults {}: {summary_client}", Direction::ToClient);

    if !stdin_is_null() {
        std::thread::spawn(move || {
            let mut sink = [0u8; 1024];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = stop_tx.send("end of input");
        });
    }
    let why = stop_rx.recv().unwrap_or("no way to stop left");
    let stats = proxy.stop();
    println!("proxy stopped ({why})");
    println!("{stats}");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn overrides_win_whatever_the_order() {
        let a = args("--client-loss 0.5 --listen 127.0.0.1:1 --upstream 127.0.0.1:2 --loss 0.2 --mtu=300 --seed 9")
            .unwrap();
        assert_eq!((a.to_server.loss, a.to_client.loss), (0.5, 0.2));
        assert_eq!((a.to_server.mtu, a.to_client.mtu), (Some(300), Some(300)));
        assert_eq!(a.seed, Some(9));
        assert_eq!(args("--listen 127.0.0.1:1 --upstream 127.0.0.1:2").unwrap().rebind_every, 0);
        assert_eq!(args("--listen 127.0.0.1:1 --upstream 127.0.0.1:2 --rebind-every 50").unwrap().rebind_every, 50);
        let a = args("--listen 127.0.0.1:1 --upstream 127.0.0.1:2 --server-drop-flight 2:2 --client-drop ccs").unwrap();
        assert_eq!(a.to_client.targets, [Target::flight(Marker::Handshake(2)).times(2)]);
        assert_eq!(a.to_server.targets, [Target::datagram(Marker::ChangeCipherSpec)]);
    }

    #[test]
    fn refuses_bad_values() {
        for bad in [
            "--listen 127.0.0.1:1",
            "--listen 127.0.0.1:1 --upstream 127.0.0.1:2 --loss 1.5",
            "--listen 127.0.0.1:1 --upstream 127.0.0.1:2 --jitter 3",
            "--listen 127.0.0.1:1 --upstream 127.0.0.1:2 --client-drop 300",
            "--listen 127.0.0.1:1 --upstream 127.0.0.1:2 --mtu",
            "--listen nowhere --upstream 127.0.0.1:2",
        ] {
            assert!(args(bad).is_err(), "{bad}");
        }
    }
}
