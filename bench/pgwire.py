"""A minimal PostgreSQL client (protocol 3, simple queries, LISTEN/NOTIFY) for the benchmarks,
so they need nothing beyond the Python standard library. Trust or cleartext-password
authentication only (the project's machines use trust on 127.0.0.1); no TLS.

    conn = PgConn("postgres://postgres@127.0.0.1:5432/db", application_name="bench")
    conn.query("UPDATE ...")          # returns the rows (tuples of str/None) once committed
    conn.query("LISTEN warden_user")
    conn.notifications(timeout=1.0)   # [(channel, payload), ...] received so far
"""
import select
import socket
import struct
import urllib.parse


class PgError(Exception):
    pass


class PgConn:
    def __init__(self, url, application_name="warden-bench", timeout=10.0):
        u = urllib.parse.urlparse(url)
        self.user = urllib.parse.unquote(u.username or "postgres")
        self.password = urllib.parse.unquote(u.password) if u.password else None
        self.database = (u.path or "/").lstrip("/") or self.user
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pending = []  # notifications not yet handed out
        self.backend_pid = None
        params = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in
                          [("user", self.user), ("database", self.database), ("application_name", application_name)])
        body = struct.pack("!i", 196608) + params + b"\0"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        while True:
            kind, payload = self._read()
            if kind == b"R":
                code = struct.unpack("!i", payload[:4])[0]
                if code == 3 and self.password is not None:
                    self._send(b"p", self.password.encode() + b"\0")
                elif code != 0:
                    raise PgError(f"authentication method {code} is not supported (use trust on 127.0.0.1)")
            elif kind == b"K":
                self.backend_pid = struct.unpack("!i", payload[:4])[0]
            elif kind == b"E":
                raise PgError(self._error(payload))
            elif kind == b"Z":
                break

    def _send(self, kind, payload):
        self.sock.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    def _fill(self, n, timeout=None):
        while len(self.buf) < n:
            if timeout is not None:
                ready, _, _ = select.select([self.sock], [], [], timeout)
                if not ready:
                    return False
            chunk = self.sock.recv(65536)
            if not chunk:
                raise PgError("connection closed by the server")
            self.buf += chunk
        return True

    def _read(self, timeout=None):
        if not self._fill(5, timeout):
            return None, None
        kind = self.buf[:1]
        length = struct.unpack("!i", self.buf[1:5])[0]
        self._fill(1 + length)
        payload = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        if kind == b"A":
            pid = struct.unpack("!i", payload[:4])[0]
            channel, rest = payload[4:].split(b"\0", 1)
            self.pending.append((channel.decode(), rest.split(b"\0", 1)[0].decode(), pid))
        return kind, payload

    @staticmethod
    def _error(payload):
        fields = {p[:1]: p[1:].decode(errors="replace") for p in payload.split(b"\0") if p}
        return f"{fields.get(b'S', 'ERROR')}: {fields.get(b'M', '?')}"

    def query(self, sql):
        """Runs `sql` (one or more statements, autocommit); returns the last result's rows."""
        self._send(b"Q", sql.encode() + b"\0")
        rows, error = [], None
        while True:
            kind, payload = self._read()
            if kind == b"T":
                rows = []
            elif kind == b"D":
                n = struct.unpack("!h", payload[:2])[0]
                pos, row = 2, []
                for _ in range(n):
                    size = struct.unpack("!i", payload[pos:pos + 4])[0]
                    pos += 4
                    if size < 0:
                        row.append(None)
                    else:
                        row.append(payload[pos:pos + size].decode())
                        pos += size
                rows.append(tuple(row))
            elif kind == b"E":
                error = self._error(payload)
            elif kind == b"Z":
                if error:
                    raise PgError(error)
                return rows

    def fileno(self):
        return self.sock.fileno()

    def drain(self):
        """Reads whatever the server has sent (notifications) without blocking; returns how many
        notifications arrived."""
        before = len(self.pending)
        while True:
            ready, _, _ = select.select([self.sock], [], [], 0)
            if not ready:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise PgError("connection closed by the server")
            self.buf += chunk
            while len(self.buf) >= 5 and len(self.buf) >= 1 + struct.unpack("!i", self.buf[1:5])[0]:
                self._read()
        return len(self.pending) - before

    def notifications(self, timeout=0.0):
        """Notifications received so far as (channel, payload, sender pid); waits up to `timeout`
        seconds for the first one when there are none."""
        if not self.pending and timeout:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if ready:
                self.drain()
        else:
            self.drain()
        out, self.pending = self.pending, []
        return out

    def close(self):
        try:
            self._send(b"X", b"")
        except OSError:
            pass
        self.sock.close()
