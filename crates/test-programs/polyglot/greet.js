// A JavaScript provider of example:greet/greeter (componentize-js), for tests/compose.rs.
export const greeter = {
  greet(name) {
    return `hello from javascript, ${name}!`;
  },
};
