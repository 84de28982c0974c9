"""anycost-backend's daemon: ZeroMQ server, sessions, scheduling and budgets."""
