"""The relay: commands and replies crossing between the legacy and AMQP sides."""
