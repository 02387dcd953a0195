"""The hub's use cases: customer messages, routing offers, agent replies, wrap-up."""
