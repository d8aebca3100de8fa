"""Ed25519 signing for the interop client, with no dependency beyond the standard library.

Uses python3-cryptography when it is installed; otherwise the pure-Python reference
implementation of RFC 8032, section 6 (slow -- a few milliseconds a signature -- but exact;
Ed25519 signatures are deterministic, so both paths produce the same bytes). CI installs only
python3-grpcio, which does not pull in python3-cryptography.

`python3 ed25519.py` checks the RFC 8032 section 7.1 TEST 1 and TEST 2 vectors.
"""

import hashlib

try:  # pragma: no cover - depends on the host
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as _CryptoKey
except ImportError:  # pragma: no cover
    _CryptoKey = None

_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _add(a, b):
    """Point addition in extended coordinates (RFC 8032, 5.1.4)."""
    x = (a[1] - a[0]) * (b[1] - b[0]) % _P
    y = (a[1] + a[0]) * (b[1] + b[0]) % _P
    c = 2 * a[3] * b[3] * _D % _P
    z = 2 * a[2] * b[2] % _P
    e, f, g, h = y - x, z - c, z + c, y + x
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s, point):
    acc = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            acc = _add(acc, point)
        point = _add(point, point)
        s >>= 1
    return acc


def _compress(point):
    zinv = pow(point[2], _P - 2, _P)
    x = point[0] * zinv % _P
    y = point[1] * zinv % _P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _recover_x(y, sign):
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x & 1) != sign:
        x = _P - x
    return x


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def _h(data):
    return int.from_bytes(hashlib.sha512(data).digest(), "little") % _Q


def _pure_sign(seed, message):
    """RFC 8032, 5.1.6."""
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    public = _compress(_mul(a, _G))
    r = _h(digest[32:] + message)
    big_r = _compress(_mul(r, _G))
    s = (r + _h(big_r + public + message) * a) % _Q
    return big_r + int.to_bytes(s, 32, "little")


def _pure_public(seed):
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return _compress(_mul(a, _G))


class SigningKey:
    """An Ed25519 key from its 32-byte seed (the `seed` of a fedlora identity file)."""

    def __init__(self, seed, prefer_pure=False):
        if len(seed) != 32:
            raise ValueError(f"seed: expected 32 bytes, received {len(seed)}")
        self.seed = bytes(seed)
        self.backend = "pure-python" if prefer_pure or _CryptoKey is None else "cryptography"
        self._key = None if self.backend == "pure-python" else _CryptoKey.from_private_bytes(self.seed)

    def sign(self, message):
        return _pure_sign(self.seed, message) if self._key is None else self._key.sign(message)

    def public_key(self):
        return _pure_public(self.seed)


_VECTORS = [  # RFC 8032, 7.1: TEST 1 (empty message) and TEST 2 (one byte)
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


if __name__ == "__main__":
    for seed, public, msg, sig in _VECTORS:
        for pure in (True, False):
            key = SigningKey(bytes.fromhex(seed), prefer_pure=pure)
            assert key.public_key().hex() == public, f"public key of {seed[:8]}: expected {public}, received {key.public_key().hex()}"
            got = key.sign(bytes.fromhex(msg)).hex()
            assert got == sig, f"{key.backend} signature of {msg!r}: expected {sig}, received {got}"
    print("ed25519: RFC 8032 vectors pass (backends: pure-python" + (", cryptography)" if _CryptoKey else ")"))
