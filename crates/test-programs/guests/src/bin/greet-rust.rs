//! A Rust provider of `example:greet/greeter` for the composition tests. Its greeting reports
//! what it can see of the host (an environment variable and a file): a dependency gets none of
//! the app's grants unless they are shared with it.

#[cfg(target_env = "p2")]
mod provider {
    wit_bindgen::generate!({ path: "wit/greet", world: "provider" });

    struct Greeter;

    impl exports::example::greet::greeter::Guest for Greeter {
        fn greet(name: String) -> String {
            // `connect:ADDR`: report whether this dependency may open a TCP connection.
            if let Some(addr) = name.strip_prefix("connect:") {
                return match std::net::TcpStream::connect(addr) {
                    Ok(_) => "dependency connect: ok".into(),
                    Err(e) => format!("dependency connect: failed ({:?})", e.kind()),
                };
            }
            let env = std::env::var("GREETING").unwrap_or_else(|_| "absent".into());
            let file = std::fs::read_to_string("/data/secret.txt")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "absent".into());
            format!("hello from rust, {name}! (dependency sees GREETING={env} /data/secret.txt={file})")
        }
    }

    export!(Greeter);
}

fn main() {}
