fn main() {
    let path = std::env::args().nth(1).expect("path");
    let opts = ndprelay::sim::RunOptions { diagram: Some("/tmp/simt/d.svg".into()), pcap_dir: Some("/tmp/simt/pcap".into()), seed: std::env::args().nth(2).map(|s| s.parse().unwrap()), ..Default::default() };
    match ndprelay::sim::run(std::path::Path::new(&path), &opts, &mut std::io::stdout()) {
        Ok(v) => std::process::exit(if v.passed { 0 } else { 1 }),
        Err(e) => { eprintln!("{e}"); std::process::exit(2) }
    }
}
