"""Pure core of the hub: routing, conversation lifecycle, presence. No I/O."""
