"""Streaming authenticated encryption of files in constant memory.

Format of an encrypted stream (documented in docs/vault-format.md):

    magic "ATHSTRM1" (8) ‖ chunk size, u32 big-endian (4) ‖ secretstream header (24)
    ‖ chunks: libsodium crypto_secretstream_xchacha20poly1305, each chunk_size + 17 bytes,
      the last one shorter and tagged FINAL.

The plaintext inside is: content length, u64 big-endian ‖ content ‖ zero padding up to
the Padmé length. The first 12 bytes are bound to the first chunk as associated data.
Truncation, reordering, dropped or duplicated chunks and trailing data are all detected
by secretstream's tags and the FINAL marker.

Hashing (SHA-256 of the content) runs in a second thread while this thread encrypts:
both hashlib and libsodium release the GIL, so the two cores work at once.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from nacl import bindings as sodium
from nacl.exceptions import CryptoError

from athar.crypto import aead
from athar.crypto.padding import padme
from athar.errors import InputError, IntegrityError

MAGIC = b"ATHSTRM1"
CHUNK_SIZE = 1 << 20
HEADER_BYTES: int = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
ABYTES: int = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_PREFIX = struct.Struct(">8sI")
_LENGTH = struct.Struct(">Q")

_hasher_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athar-hash")


class SourceLengthChanged(InputError):
    """The source held fewer or more bytes than the length the caller announced."""

    def __init__(self, template: str, *, grew: bool) -> None:
        super().__init__(template)
        self.grew = grew


def write_all(sink: BinaryIO, data: bytes) -> None:
    """Write every byte: an unbuffered file may accept part of a write (a full disk does
    that), and the next write is the one that raises."""
    view = memoryview(data)
    while view:
        written = sink.write(view)
        if written is None:  # non-blocking sink that took nothing; not a file we use
            raise OSError("write would block")
        view = view[written:]


def padded_length(content_length: int) -> int:
    return padme(_LENGTH.size + content_length)


def ciphertext_length(content_length: int, chunk_size: int = CHUNK_SIZE) -> int:
    plain = padded_length(content_length)
    chunks = max(1, -(-plain // chunk_size))
    return _PREFIX.size + HEADER_BYTES + plain + chunks * ABYTES


def _plain_chunks(
    source: BinaryIO, content_length: int, chunk_size: int
) -> Iterator[tuple[bytes, memoryview]]:
    """Yield (plaintext chunk, content slice of it) of the length-prefixed, padded stream."""
    total = padded_length(content_length)
    remaining_content = content_length
    produced = 0
    first = True
    while produced < total:
        want = min(chunk_size, total - produced)
        buf = bytearray()
        data = b""
        if first:
            buf += _LENGTH.pack(content_length)
            first = False
        take = min(want - len(buf), remaining_content)
        start = len(buf)
        if take:
            data = source.read(take)
            # Short reads are legal for pipes; loop until we have it all or hit EOF.
            while len(data) < take:
                more = source.read(take - len(data))
                if not more:
                    raise SourceLengthChanged("file shrank while it was being read", grew=False)
                data += more
            if start or take < want:
                buf += data
            remaining_content -= take
        if start == 0 and take == want:
            # A whole chunk of content: used as read, no copies (bytes, as libsodium
            # wants; a source may hand out a bytearray).
            chunk = data if type(data) is bytes else bytes(data)
        else:
            buf += bytes(want - len(buf))
            chunk = bytes(buf)
        produced += want
        yield chunk, memoryview(chunk)[start : start + take]
    if source.read(1):
        raise SourceLengthChanged("file grew while it was being read", grew=True)


def encrypt_stream(
    source: BinaryIO,
    sink: BinaryIO,
    key: bytes,
    content_length: int,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """Encrypt *content_length* bytes from *source* into *sink*; return their SHA-256."""
    digest = hashlib.sha256()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    prefix = _PREFIX.pack(MAGIC, chunk_size)
    write_all(sink, prefix + header)
    total = padded_length(content_length)
    done = 0
    pending = None
    for chunk, content in _plain_chunks(source, content_length, chunk_size):
        if pending is not None:
            pending.result()
        pending = _hasher_pool.submit(digest.update, content) if len(content) else None
        done += len(chunk)
        tag = TAG_FINAL if done == total else TAG_MESSAGE
        ad = prefix if done == len(chunk) else None
        write_all(sink, sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, ad, tag))
        if progress is not None:
            progress(len(content))
    if pending is not None:
        pending.result()
    return digest.digest()


SMALL_AD = b"athar small blob v1"


def seal_small(content: bytes, key: bytes) -> bytes:
    """The one-message form for small items: the same plaintext layout as a stream
    (u64 length ‖ content ‖ zero padding to the Padmé length), sealed in one
    ChaCha20-Poly1305 message under the item's own single-use key. No stream header or
    chunking, which cost more than the cipher for a testimony of a few hundred bytes."""
    plain = _LENGTH.pack(len(content)) + content
    plain += bytes(padded_length(len(content)) - len(plain))
    return aead.seal(key, plain, SMALL_AD, cache=False)


def open_small(sealed: bytes, key: bytes, *, what: str = "blob") -> bytes:
    plain = aead.open_sealed(key, sealed, SMALL_AD, what=what, cache=False)
    if len(plain) < _LENGTH.size:
        raise IntegrityError("{what} has a malformed first chunk", what=what)
    (length,) = _LENGTH.unpack_from(plain)
    end = _LENGTH.size + length
    if end > len(plain):
        raise IntegrityError("{what} ended before its stated length", what=what)
    if any(plain[end:]):
        raise IntegrityError("{what} has non-zero padding", what=what)
    return plain[_LENGTH.size : end]


def decrypt_stream(
    source: BinaryIO,
    key: bytes,
    *,
    what: str = "blob",
) -> Iterator[bytes]:
    """Yield the decrypted content in chunks; raise IntegrityError on any tampering.

    The caller must consume the iterator fully: the final checks (FINAL tag, no trailing
    data, zero padding) run at its end.
    """
    prefix = source.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size:
        raise IntegrityError("{what} is truncated (no header)", what=what)
    magic, chunk_size = _PREFIX.unpack(prefix)
    if magic != MAGIC or not 0 < chunk_size <= 64 * CHUNK_SIZE:
        raise IntegrityError("{what} is not an Athar encrypted stream", what=what)
    header = source.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        raise IntegrityError("{what} is truncated (no header)", what=what)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    content_left: int | None = None
    first = True
    index = 0
    while True:
        block = source.read(chunk_size + ABYTES)
        if not block:
            raise IntegrityError("{what} is truncated (final chunk missing)", what=what)
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                state, block, prefix if first else None
            )
        except CryptoError:
            raise IntegrityError(
                "{what}: chunk {index} failed authentication (altered or reordered)",
                what=what,
                index=index,
            ) from None
        start = 0
        if first:
            if len(plain) < _LENGTH.size:
                raise IntegrityError("{what} has a malformed first chunk", what=what)
            (content_left,) = _LENGTH.unpack_from(plain)
            start = _LENGTH.size
            first = False
        assert content_left is not None
        take = min(content_left, len(plain) - start)
        if take:
            # A whole chunk of content is yielded as it is (no copy); the first and last
            # chunks are sliced.
            yield plain if take == len(plain) else plain[start : start + take]
            content_left -= take
        end = start + take
        # Padding is zero: counted in C (any() over a memoryview iterates in Python).
        if end < len(plain) and plain.count(0, end) != len(plain) - end:
            raise IntegrityError("{what} has non-zero padding", what=what)
        index += 1
        if tag == TAG_FINAL:
            break
    if content_left:
        raise IntegrityError("{what} ended before its stated length", what=what)
    if source.read(1):
        raise IntegrityError("{what} has data after its final chunk", what=what)
