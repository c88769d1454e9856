"""A bundle: a tar stream of the exchange, encrypted with age to its recipients.

Inside the age encryption (documented in docs/bundle-format.md)::

    athar-bundle/manifest.json       origin, range, sender's signed checkpoint, file list
    athar-bundle/events.jsonl        the sender's ledger entries [since, size), one a line
    athar-bundle/blobs/<sha256>      each file's plaintext (encrypted only by age)

Both directions stream through a pipe (tar on one side, age on the other: the Debian
`age` program in a child process when it is installed, else pyrage on a thread), so
memory stays flat whatever the size, and plaintext never touches the disk: the receiver
stages each file straight into its own vault encryption. How the work is spread over
the cores is in docs/bundle-format.md, "Export and import internals".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import stat
import subprocess
import tarfile
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, BinaryIO, cast

import pyrage

from athar.errors import AtharError, InputError, IntegrityError
from athar.sync.exchange import Importer, ImportReport, Outgoing, blob_key
from athar.vault.fsutil import raise_if_disk_full
from athar.vault.vault import Vault

ROOT = "athar-bundle"
MANIFEST = f"{ROOT}/manifest.json"
EVENTS = f"{ROOT}/events.jsonl"
BLOBS = f"{ROOT}/blobs/"
MAX_MANIFEST = 64 << 20
BUFFER = 1 << 20  # pipes, tar's stream buffer and copies: 1 MiB, not 10-64 KiB
FLUSH_EVERY = 0.25  # seconds between fdatasync calls while an export is written
ENGINE_ENV = "ATHAR_AGE_ENGINE"


class _ForwardReader:
    """A stream that tells its position and seeks only forward (by reading), so that
    tarfile can read it in its seekable mode: member data then comes straight from the
    stream (tarfile's streaming mode copies every byte four times through its own
    buffer). Seeking backwards, which no well-formed tar needs, is a damaged bundle."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pos = 0
        self._scratch: memoryview | None = None

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: memoryview) -> int:
        """Up to len(buffer) bytes (fewer at the end, or as the pipe has them)."""
        got = self._stream.readinto(buffer)  # type: ignore[attr-defined]
        self._pos += got or 0
        return got or 0

    def read(self, size: int = -1) -> bytes:
        """*size* bytes unless the stream ends first (a pipe read may return fewer:
        tarfile takes a short header read for a truncated archive)."""
        if size < 0:
            data = self._stream.read()
            self._pos += len(data)
            return data
        buf = bytearray(size)
        view = memoryview(buf)
        at = 0
        while at < size and (got := self.readinto(view[at:])):
            at += got
        del view
        return bytes(buf) if at == size else bytes(buf[:at])

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._pos
        if whence == os.SEEK_END or offset < self._pos:
            raise ValueError("a bundle is read once, forwards")
        if self._scratch is None and offset > self._pos:
            self._scratch = memoryview(bytearray(BUFFER))
        while self._pos < offset:
            assert self._scratch is not None
            if not self.readinto(self._scratch[: min(offset - self._pos, BUFFER)]):
                break  # at the end: the next read finds nothing, as in a file
        return self._pos


class _Member:
    """One file's bytes in the tar stream, read straight from the pipe into the
    caller's buffer (the vault encrypts from there): no copy through tarfile's file
    object, no buffer allocated per chunk. The tar reader then seeks past the padding."""

    def __init__(self, reader: _ForwardReader, size: int) -> None:
        self._reader = reader
        self._left = size

    def readinto(self, buffer: memoryview) -> int:
        view = memoryview(buffer)[: self._left]
        if not view:
            return 0
        got = self._reader.readinto(view)
        if not got:  # the stream ended inside a member: as tarfile says, a damaged tar
            raise EOFError("unexpected end of data")
        self._left -= got
        return got

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        data = self._reader.read(size)
        self._left -= len(data)
        return data


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = 0  # no timestamps, owners or modes of the sender's machine
    return info


def _write_tar(
    vault: Vault, out: Outgoing, sink: BinaryIO, progress: Callable[[int], None] | None
) -> None:
    """The bundle's tar stream, byte for byte what ``tarfile.open(mode="w|",
    format=PAX_FORMAT)`` writes (a test compares them): tarfile's own header writer,
    then each file's plaintext written as it decrypts. tarfile's stream would copy each
    megabyte five times through its buffers; here it is written once, as decrypted."""
    written = 0

    def put(data: bytes) -> None:
        nonlocal written
        sink.write(data)
        written += len(data)

    def member(name: str, size: int, content: Callable[[Callable[[bytes], None]], None]) -> None:
        put(_info(name, size).tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
        start = written
        content(put)
        if written - start != size:  # blob_plaintext checks it too; tar must never lie
            raise IntegrityError("{what}: content does not match its recorded SHA-256", what=name)
        put(bytes(-size % tarfile.BLOCKSIZE))

    manifest = json.dumps(out.manifest(), ensure_ascii=False).encode()
    member(MANIFEST, len(manifest), lambda write: write(manifest))
    events = b"".join(e + b"\n" for e in out.entries)
    member(EVENTS, len(events), lambda write: write(events))
    for sha, size in out.blobs:
        member(BLOBS + sha, size, partial(_blob_plaintext, vault, sha))
        if progress is not None:
            progress(size)
    put(bytes(2 * tarfile.BLOCKSIZE))  # the end of the archive, then a whole record
    put(bytes(-written % tarfile.RECORDSIZE))


def _blob_plaintext(vault: Vault, sha256: str, write: Callable[[bytes], None]) -> None:
    """exchange.blob_plaintext, written on as it decrypts (BlobStore.copy_plaintext:
    the file read ahead on a helper thread, reused buffers). Not hashed again on the
    way out, for the reason given there."""
    ref, data_key, _item, what = blob_key(vault, sha256)
    vault.blobs.copy_plaintext(
        ref,
        data_key,
        what,
        vault.ledger.inline_blob(ref),
        cast(Callable[[memoryview], object], write),
    )


# -- the age engine: the Debian `age` program when present, else pyrage ----------------
def age_program() -> str | None:
    """The `age` program to run, or None to use pyrage in this process.

    The program runs on the other core with no lock shared with Python, and Go's age
    decrypts about twice as fast as pyrage; both write and read the same format.
    ATHAR_AGE_ENGINE=pyrage forces the library (tests and the benchmark compare both)."""
    if os.environ.get(ENGINE_ENV, "").strip().lower() == "pyrage":
        return None
    return shutil.which("age")


def _widen(fd: int) -> None:
    """A 1 MiB pipe instead of 64 KiB: 16 times fewer wake-ups between the two sides."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, BUFFER)


def _fileno(stream: BinaryIO) -> int | None:
    try:
        return stream.fileno()
    except (OSError, AttributeError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def _start(target: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def guarded() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    return thread


def _copy(source: BinaryIO, sink: BinaryIO) -> None:
    while chunk := source.read(BUFFER):
        sink.write(chunk)


def _age_reason(stderr: bytes) -> str:
    for line in stderr.decode(errors="replace").splitlines():
        if line.startswith("age: error: "):
            return line[len("age: error: ") :].strip()
    return stderr.decode(errors="replace").strip()[:200] or "exited with an error"


class _Flusher:
    """fdatasync the output every FLUSH_EVERY seconds while age writes it, so that the
    final fsync (the commit point of an export) finds little left to write: the disk
    works during the encryption instead of after it."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if fd is not None and stat.S_ISREG(os.fstat(fd).st_mode):
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._fd is not None
        while not self._stop.wait(FLUSH_EVERY):
            try:
                os.fdatasync(self._fd)
            except OSError:
                return  # the final fsync reports it

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _write_failed(reason: str) -> AtharError:
    if "no space left" in reason.lower():
        try:
            raise_if_disk_full(OSError(errno.ENOSPC, reason))
        except AtharError as exc:
            return exc
    return AtharError("age could not write the bundle: {reason}", reason=reason)


def _encrypt_with_pyrage(
    source: BinaryIO, sink: BinaryIO, recipients: Sequence[pyrage.x25519.Recipient]
) -> None:
    try:
        pyrage.encrypt_io(source, sink, list(recipients))
    except pyrage.EncryptError as exc:
        raise _write_failed(str(exc)) from None


def _encrypt_with_program(
    program: str,
    produce: Callable[[BinaryIO], None],
    recipients: Sequence[pyrage.x25519.Recipient],
    sink: BinaryIO,
) -> None:
    args = [program, "--encrypt"]
    for recipient in recipients:
        args += ["--recipient", str(recipient)]
    out_fd = _fileno(sink)
    if out_fd is not None:
        sink.flush()  # age writes the file descriptor directly, after what is buffered
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=out_fd if out_fd is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=BUFFER,
    )
    assert proc.stdin is not None and proc.stderr is not None
    _widen(proc.stdin.fileno())
    errors: list[BaseException] = []
    copier = None
    if proc.stdout is not None:
        copier = _start(partial(_copy, proc.stdout, sink), errors)  # type: ignore[arg-type]
    flusher = _Flusher(out_fd)
    try:
        try:
            produce(proc.stdin)  # type: ignore[arg-type]
            proc.stdin.close()
        except BrokenPipeError:
            pass  # age stopped: its own message below says why
        except BaseException:
            proc.kill()
            raise
        finally:
            stderr = proc.stderr.read()
            code = proc.wait()
            if copier is not None:
                copier.join()
    finally:
        flusher.stop()
    if code != 0:
        raise _write_failed(_age_reason(stderr))
    if errors:
        raise errors[0]


def _pump(
    produce: Callable[[BinaryIO], None],
    consume: Callable[[BinaryIO], None],
    *,
    thread_produces: bool,
) -> None:
    """Run *produce* (writes) and *consume* (reads) joined by a pipe, one on a helper
    thread: pyrage on the helper, the vault (SQLite is tied to its thread) on this one."""
    rfd, wfd = os.pipe()
    _widen(wfd)
    errors: list[BaseException] = []

    def run_produce() -> None:
        with open(wfd, "wb", buffering=BUFFER) as w:
            produce(w)

    def run_consume() -> None:
        with open(rfd, "rb", buffering=0) as r:  # read straight into the reader's buffers
            consume(r)
            while r.read(BUFFER):  # let the producer finish even if not all was read
                pass

    helper, here = (run_produce, run_consume) if thread_produces else (run_consume, run_produce)
    thread = _start(helper, errors)
    try:
        here()
    except BaseException as exc:
        thread.join()
        if errors and (isinstance(errors[0], AtharError) or isinstance(exc, BrokenPipeError)):
            raise errors[0] from None  # the age side's reason comes first
        raise
    thread.join()
    if errors:
        raise errors[0]


def write(
    vault: Vault,
    out: Outgoing,
    recipients: Sequence[pyrage.x25519.Recipient],
    sink: BinaryIO,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Encrypt the bundle to *recipients* into *sink*."""
    program = age_program()
    try:
        if program is not None:
            _encrypt_with_program(
                program, lambda w: _write_tar(vault, out, w, progress), recipients, sink
            )
            return
        _pump(
            lambda w: _write_tar(vault, out, w, progress),
            lambda r: _encrypt_with_pyrage(r, sink, recipients),
            thread_produces=False,
        )
    except OSError as exc:
        raise_if_disk_full(exc)
        raise


def _read_tar(importer: Importer, stream: BinaryIO, box: list[ImportReport]) -> None:
    try:
        forward = _ForwardReader(stream)
        reader: Any = forward  # tarfile's _Fileobj protocol, structurally
        tar = tarfile.open(fileobj=reader, mode="r:")  # noqa: SIM115 - read to the end below
        manifest: dict[str, Any] | None = None
        for member in tar:
            if not member.isfile():
                raise IntegrityError("unexpected entry in the bundle: {name}", name=member.name)
            if member.name.startswith(BLOBS) and box:
                sha = member.name[len(BLOBS) :]
                if importer.wants(sha):
                    forward.seek(member.offset_data)
                    importer.stage(sha, cast(BinaryIO, _Member(forward, member.size)), member.size)
                continue
            fh = tar.extractfile(member)
            assert fh is not None
            if member.name == MANIFEST and manifest is None:
                if member.size > MAX_MANIFEST:
                    raise IntegrityError("the bundle manifest is malformed")
                manifest = json.loads(fh.read())
            elif member.name == EVENTS and manifest is not None and not box:
                entries = [line for line in fh.read().split(b"\n") if line]
                box.append(importer.check(manifest, entries))
            else:
                raise IntegrityError("unexpected entry in the bundle: {name}", name=member.name)
        # Read to the end so that age authenticates the final chunk (truncation).
        while stream.read(BUFFER):
            pass
    except (tarfile.TarError, ValueError, UnicodeDecodeError, EOFError, RecursionError):
        raise IntegrityError("the bundle's contents are damaged or truncated") from None
    if not box:
        raise IntegrityError("the bundle's contents are damaged or truncated")


def _not_addressed(reason: str) -> bool:
    text = reason.lower()
    return "no matching keys" in text or "no identity matched" in text


def _age_failed(reason: str) -> AtharError:
    if _not_addressed(reason):
        return InputError(
            "this bundle is not addressed to this device (it is encrypted to other keys)"
        )
    return IntegrityError("the bundle is damaged or truncated (age: {reason})", reason=reason)


def _decrypt_with_program(
    program: str, secret: str, source: BinaryIO, consume: Callable[[BinaryIO], None]
) -> None:
    """`age -d` on the other core, its output read here. The identity goes through a
    pipe the child reads as /dev/fd/N: never a file, never an argument or environment
    variable (both are visible in /proc to other users' processes)."""
    key_r, key_w = os.pipe()
    try:
        os.write(key_w, secret.encode() + b"\n")  # ~75 bytes: fits the pipe, no reader yet
    finally:
        os.close(key_w)
    in_fd = _fileno(source)
    if in_fd is not None:
        try:
            os.lseek(in_fd, source.tell(), os.SEEK_SET)  # what Python buffered is not lost
        except OSError:
            in_fd = None
    try:
        proc = subprocess.Popen(
            [program, "--decrypt", "--identity", f"/dev/fd/{key_r}"],
            stdin=in_fd if in_fd is not None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(key_r,),
            bufsize=BUFFER,
        )
    finally:
        os.close(key_r)
    assert proc.stdout is not None and proc.stderr is not None
    _widen(proc.stdout.fileno())
    errors: list[BaseException] = []
    feeder = None
    if proc.stdin is not None:
        stdin = proc.stdin

        def feed() -> None:
            with contextlib.suppress(BrokenPipeError), stdin:
                _copy(source, stdin)  # type: ignore[arg-type]

        feeder = _start(feed, errors)
    failure: BaseException | None = None
    try:
        # Unbuffered: the tar reader fills the vault's buffers straight from the pipe.
        consume(proc.stdout.raw)  # type: ignore[attr-defined]
    except BaseException as exc:
        failure = exc
    proc.stdout.close()  # age, if still writing, stops on a broken pipe
    stderr = proc.stderr.read()
    code = proc.wait()
    if feeder is not None:
        feeder.join()
    # age's own reason (wrong key, an altered or cut chunk) comes first: a damaged tar
    # stream is only its consequence. A broken pipe (-SIGPIPE) is the reader stopping.
    if code > 0:
        raise _age_failed(_age_reason(stderr)) from None
    if failure is not None:
        raise failure
    if code != 0:
        raise IntegrityError("the bundle is damaged or truncated (age: {reason})", reason=code)
    if errors:
        raise errors[0]


def read(vault: Vault, source: BinaryIO, *, accept_unknown: bool = False) -> ImportReport:
    """Decrypt, verify and import one bundle stream; all or nothing."""
    from athar.sync.agekeys import identity, identity_string

    importer = Importer(vault, accept_unknown=accept_unknown)
    secret = vault.keys.identity.encryption_secret
    box: list[ImportReport] = []

    def decrypt(w: BinaryIO) -> None:
        try:
            pyrage.decrypt_io(source, w, [identity(secret)])
        except BrokenPipeError:
            return  # the reader stopped first and says why
        except pyrage.DecryptError as exc:
            raise _age_failed(str(exc)) from None

    try:
        program = age_program()
        if program is not None:
            _decrypt_with_program(
                program, identity_string(secret), source, lambda r: _read_tar(importer, r, box)
            )
        else:
            _pump(decrypt, lambda r: _read_tar(importer, r, box), thread_produces=True)
        return importer.commit()
    finally:
        importer.discard()
