"""The contract between the daemon and its clients, and the only part the editors vendor (needs only
pyzmq and msgpack): typed messages and records (messages), the blocking client (client), starting a
daemon as a child process (spawn)."""
