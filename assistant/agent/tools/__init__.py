"""The tools, one module each; importing this package registers them."""
