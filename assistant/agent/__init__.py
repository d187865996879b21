"""The agent: tools the model may call (a registry, one module per tool) and the loop that runs them."""
