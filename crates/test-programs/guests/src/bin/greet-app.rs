//! The app of the composition tests: imports `example:greet/greeter` (a plugged dependency
//! provides it), prints the greeting, then what the app itself can see (an environment variable
//! and a file), to show the dependency's view differs.

#[cfg(target_env = "p2")]
mod bindings {
    wit_bindgen::generate!({ path: "wit/greet", world: "consumer" });
}

#[cfg(target_env = "p2")]
fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "world".into());
    println!("{}", bindings::example::greet::greeter::greet(&name));
    if let Some(addr) = name.strip_prefix("connect:") {
        let app = std::net::TcpStream::connect(addr).map(|_| "ok".to_string()).unwrap_or_else(|e| format!("failed ({:?})", e.kind()));
        println!("app connect: {app}");
        return;
    }
    let env = std::env::var("GREETING").unwrap_or_else(|_| "absent".into());
    let file = std::fs::read_to_string("/data/secret.txt").map(|s| s.trim().to_string()).unwrap_or_else(|_| "absent".into());
    println!("app sees GREETING={env} /data/secret.txt={file}");
}

#[cfg(not(target_env = "p2"))]
fn main() {}
