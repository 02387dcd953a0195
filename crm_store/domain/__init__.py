"""Pure core of the contact repository: order rules, validation, pricing, identity normalisation. No I/O."""
