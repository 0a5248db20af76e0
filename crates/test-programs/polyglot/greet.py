# A Python provider of example:greet/greeter (componentize-py), for tests/compose.rs.
from wit_world import exports


class Greeter(exports.Greeter):
    def greet(self, name: str) -> str:
        return f"hello from python, {name}!"
