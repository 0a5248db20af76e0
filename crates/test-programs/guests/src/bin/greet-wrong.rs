//! A provider of `example:greet/greeter` with the wrong type (`greet: func(name: u32) ->
//! string`): composing it must fail naming both types.

#[cfg(target_env = "p2")]
mod provider {
    wit_bindgen::generate!({ path: "wit/greet-wrong", world: "provider" });

    struct Greeter;

    impl exports::example::greet::greeter::Guest for Greeter {
        fn greet(name: u32) -> String {
            format!("number {name}")
        }
    }

    export!(Greeter);
}

fn main() {}
