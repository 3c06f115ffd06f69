"""aio-pika AMQP side: the clu contract (exchange, queues, headers, JSON bodies)."""
