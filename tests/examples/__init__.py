"""Examples and README commands, run as a user runs them."""
