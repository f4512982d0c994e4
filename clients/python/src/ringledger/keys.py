"""CURVE keys and rings: what a client must know before it connects.

docs/protocol.md, "Security": a client is a CURVE client with a long-term
keypair of its own, and pins the public key of the server it connects to:

- ``Keypair.load(secret_file)``: a czmq certificate file (ZPL text whose
  ``curve`` section holds ``public-key`` and ``secret-key``, 40 Z85
  characters each), as ``rlctl keygen`` writes it
  (``KEYDIR/private/NAME.key_secret``). Give the public file too
  (``KEYDIR/ROLE/NAME.key``) and the two are checked against each other.
- ``load_public_key(spec)``: a router's key from its public certificate
  file, or 40 Z85 characters as given.
- ``Ring``: a shard's key from the ring, in its text form (``shard NAME
  ENDPOINT weight W key Z85``) or as the binary blob that ``get_ring``
  answers (docs/ring.md). The blob's XXH3 checksum is not verified here
  (the blob came over an authenticated connection; the standard library
  has no XXH3); every size and count is.
"""

import dataclasses
import os
import struct
from typing import List, Optional

from .errors import CodecError

Z85_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      ".-:+=^!/*?&<>()[]{}@%$#")
KEY_TEXT_SIZE = 40


def check_z85_key(text, what="key"):
    """The key as bytes, after checking it is 40 Z85 characters."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("%s is not Z85 text" % what) from None
    if not isinstance(text, str):
        raise TypeError("%s must be 40 Z85 characters (str or bytes)" % what)
    if len(text) != KEY_TEXT_SIZE or not set(text) <= Z85_CHARS:
        raise ValueError("%s is not 40 Z85 characters: %r" % (what, text))
    return text.encode("ascii")


def _read_cert(path):
    """{"public-key": ..., "secret-key": ...} of a zcert file's curve section."""
    found = {}
    section = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            stripped = line.rstrip()
            if not stripped or stripped.lstrip().startswith("#"):  # Z85 may hold '#'
                continue
            if not line[0].isspace():
                section = stripped.strip()
                continue
            name, sep, value = stripped.partition("=")
            if section != "curve" or not sep:
                continue
            name, value = name.strip(), value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if name in ("public-key", "secret-key"):
                found[name] = check_z85_key(value, "%s of %s" % (name, path))
    return found


@dataclasses.dataclass(frozen=True)
class Keypair:
    """A CURVE keypair: public and secret key, 40 Z85 bytes each."""

    public: bytes
    secret: bytes

    def __post_init__(self):
        object.__setattr__(self, "public", check_z85_key(self.public, "public key"))
        object.__setattr__(self, "secret", check_z85_key(self.secret, "secret key"))

    def __repr__(self):
        return "Keypair(public=%r, secret=<hidden>)" % self.public

    @classmethod
    def load(cls, secret_file, public_file=None) -> "Keypair":
        """From a secret certificate file (it holds both keys); with
        public_file, its public key must be the same one."""
        keys = _read_cert(secret_file)
        if "secret-key" not in keys or "public-key" not in keys:
            raise ValueError("%s is not a secret certificate (needs public-key and secret-key "
                             "in its curve section)" % secret_file)
        if public_file is not None:
            public = _read_cert(public_file).get("public-key")
            if public is None:
                raise ValueError("%s holds no public-key" % public_file)
            if public != keys["public-key"]:
                raise ValueError("%s and %s hold different public keys"
                                 % (public_file, secret_file))
        pair = cls(keys["public-key"], keys["secret-key"])
        _check_pair(pair, secret_file)
        return pair


def _check_pair(pair, where):
    try:
        import zmq
    except ImportError:
        return
    try:
        derived = zmq.curve_public(pair.secret)
    except zmq.ZMQError:  # a libzmq without CURVE: the connection will say so
        return
    if derived != pair.public:
        raise ValueError("%s: the public key does not belong to the secret key" % where)


def load_public_key(spec) -> bytes:
    """A server's public key: the path of a certificate file (public or
    secret), or the key itself as 40 Z85 characters."""
    if isinstance(spec, (bytes, bytearray)):
        return check_z85_key(spec, "server key")
    if not isinstance(spec, str):
        raise TypeError("a server key is a certificate path or 40 Z85 characters, not %s"
                        % type(spec).__name__)
    if os.path.isfile(spec):
        public = _read_cert(spec).get("public-key")
        if public is None:
            raise ValueError("%s holds no public-key" % spec)
        return public
    if len(spec) == KEY_TEXT_SIZE and set(spec) <= Z85_CHARS:
        return spec.encode("ascii")
    raise ValueError("server key %r: neither 40 Z85 characters nor a certificate file" % spec)


@dataclasses.dataclass(frozen=True)
class RingShard:
    name: str
    endpoint: str
    weight: float
    key: Optional[bytes]  # Z85 public key, or None in a ring without keys


@dataclasses.dataclass(frozen=True)
class Ring:
    """The shards of a ring (points are left out: placement is the router's)."""

    epoch: int
    shards: List[RingShard]

    def shard(self, name) -> RingShard:
        for s in self.shards:
            if s.name == name:
                return s
        raise KeyError("no shard %r in the ring (epoch %d)" % (name, self.epoch))

    def server_keys(self):
        """{endpoint: key} of every shard that has a key: for Client(server_keys=...)."""
        return {s.endpoint: s.key for s in self.shards if s.key}

    @classmethod
    def load(cls, path) -> "Ring":
        with open(path, encoding="utf-8") as f:
            return cls.from_text(f.read())

    @classmethod
    def from_text(cls, text) -> "Ring":
        epoch, shards = None, []
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "epoch" and len(words) == 2 and words[1].isdigit():
                epoch = int(words[1])
            elif words[0] == "shard":
                if len(words) not in (5, 7) or words[3] != "weight" or \
                        (len(words) == 7 and words[5] != "key"):
                    raise CodecError("ring line %d: expected 'shard NAME ENDPOINT weight W "
                                     "[key Z85]'" % number)
                key = check_z85_key(words[6], "ring line %d key" % number) \
                    if len(words) == 7 else None
                shards.append(RingShard(words[1], words[2], float(words[4]), key))
        if epoch is None or not shards:
            raise CodecError("not a ring: needs an 'epoch N' line and 'shard' lines")
        return cls(epoch, shards)

    @classmethod
    def decode(cls, blob) -> "Ring":
        """The binary form (docs/ring.md, "Binary form")."""
        blob = bytes(blob)
        if len(blob) < 32 or blob[:4] != b"RLRG":
            raise CodecError("not a ring blob")
        version, count, points, _ppw, epoch = struct.unpack_from("<HHIIQ", blob, 4)
        if version not in (1, 2) or count < 1:
            raise CodecError("ring blob: version %d, %d shards" % (version, count))
        per_shard = 168 if version == 1 else 208
        if len(blob) != 24 + per_shard * count + 10 * points + 8:
            raise CodecError("ring blob: %d bytes for %d shards and %d points"
                             % (len(blob), count, points))
        shards = []
        for i in range(count):
            at = 24 + i * per_shard
            name = blob[at:at + 32].split(b"\0", 1)[0].decode("ascii", "replace")
            endpoint = blob[at + 32:at + 160].split(b"\0", 1)[0].decode("ascii", "replace")
            (weight,) = struct.unpack_from("<d", blob, at + 160)
            key = None
            if version == 2 and blob[at + 168:at + 208] != bytes(40):
                key = check_z85_key(blob[at + 168:at + 208], "ring blob key of %s" % name)
            shards.append(RingShard(name, endpoint, weight, key))
        return cls(epoch, shards)
