"""The built-in Tron-compatible hub port."""
