"""AGI adapter: Asterisk asks (FastAGI over TCP, or classic AGI over stdin/stdout), the routing core decides."""
