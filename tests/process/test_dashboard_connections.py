"""A real `python -m dashboard serve` answers every request on a connection, however the client uses it.

dashboard/web/quiet_channel.py keeps the I/O thread watching a connection while
one of its requests is served (and lets a request thread finish without waking
it). What a client sees must not change: many requests on one keep-alive
connection, pipelined requests (answered in order), ``Connection: close``
(answered, then closed), a client that half-closes after its request (answered,
then closed), and a large answer (the page's largest script, more than one
send).
"""

from __future__ import annotations

import json
import socket
import uuid

import pytest
import requests

from tests.support.standin import shade_png


def classify_request(host: str, image: bytes, *extra_headers: str) -> bytes:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    head = ["POST /api/v1/classify HTTP/1.1", f"Host: {host}", f"Content-Type: multipart/form-data; boundary={boundary}",
            f"Content-Length: {len(body)}", *extra_headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of the next response on ``sock``; ``buffer`` keeps what follows it."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response head; got {bytes(buffer[:200])!r}"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response body"
        rest += chunk
    buffer[:] = rest[length:]
    return int(lines[0].split()[1]), headers, json.loads(rest[:length])


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def served(dashboard, standin_server):
    server = dashboard(standin_server())
    host = f"127.0.0.1:{server.port}"
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    yield server, host, sock, shade_png(64)
    sock.close()


def test_many_requests_on_one_keep_alive_connection_are_all_answered(served):
    _, host, sock, image = served
    buffer = bytearray()
    for _ in range(40):
        sock.sendall(classify_request(host, image))
        status, _, answer = read_response(sock, buffer)
        assert status == 200 and answer["predictions"]
    assert buffer == b""


def test_pipelined_requests_are_answered_in_order(served):
    _, host, sock, image = served
    sock.sendall(classify_request(host, image) + classify_request(host, b"not an image") + classify_request(host, image))
    buffer = bytearray()
    statuses = [read_response(sock, buffer)[0] for _ in range(3)]
    assert statuses == [200, 400, 200]


def test_connection_close_is_answered_then_closed(served):
    _, host, sock, image = served
    sock.sendall(classify_request(host, image, "Connection: close"))
    buffer = bytearray()
    status, headers, _ = read_response(sock, buffer)
    assert status == 200 and headers.get("connection") == "close"
    assert closed(sock)


def test_a_client_that_half_closes_after_its_request_gets_its_answer(served):
    _, host, sock, image = served
    sock.sendall(classify_request(host, image))
    sock.shutdown(socket.SHUT_WR)
    buffer = bytearray()
    status, _, answer = read_response(sock, buffer)
    assert status == 200 and answer["predictions"]
    assert closed(sock)


def test_a_large_answer_arrives_whole_between_api_requests(served):
    server, host, sock, image = served
    page = requests.get(server.url + "/", timeout=30)
    scripts = [part.split('"')[0] for part in page.text.split('src="')[1:] if ".js" in part.split('"')[0]]
    largest = max((requests.get(server.url + path, timeout=30, headers={"Accept-Encoding": "identity"}) for path in scripts),
                  key=lambda response: len(response.content))
    assert len(largest.content) > 300_000  # larger than one send: the rest goes out from the I/O thread
    assert int(largest.headers["Content-Length"]) == len(largest.content)
    buffer = bytearray()
    sock.sendall(classify_request(host, image))
    assert read_response(sock, buffer)[0] == 200
