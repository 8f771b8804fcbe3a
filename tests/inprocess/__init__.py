"""Real ZeroMQ sockets, servers, brokers and Flask test clients in threads of the test process, with the numpy stand-in model."""
