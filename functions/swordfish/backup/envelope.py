"""Envelope encryption of backup files and WAL segments: a fresh AES-256 data key per file from KMS
``GenerateDataKey``, AES-GCM over zlib-compressed chunks, the wrapped key in the file's header.

Why our own container format (and not, say, the AWS Encryption SDK): it is one small streaming
layout over ``cryptography``'s AES-GCM that needs no extra dependency, and it binds every chunk to
the file's logical name, its position and the "last chunk" flag, so a renamed or swapped file, a
changed byte, a reordered chunk and a truncated file each fail with an error that says which.

Layout::

    b"SFENC1\\n" | u32 header length | header JSON (kms key, wrapped key, logical name, key check)
    then chunks: u32 ciphertext length | 12-byte nonce | AES-GCM(ciphertext + tag)
    AAD of chunk i = sha256(header) | u64 i | u8 final
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from swordfish.backup.errors import TamperedFile, TruncatedFile, WrongKey

MAGIC = b"SFENC1\n"
CHUNK_BYTES = 1024 * 1024  # plaintext (compressed) bytes per authenticated chunk
_LEN = struct.Struct(">I")
_AAD_TAIL = struct.Struct(">QB")
_KEY_CHECK_LABEL = b"swordfish-backup-key-check"


class DataKeySource(Protocol):
    """Issues and unwraps data keys (KMS on AWS; moto's KMS locally)."""

    key_id: str

    def generate(self, context: dict[str, str]) -> tuple[bytes, bytes]: ...  # (plaintext key, wrapped key)
    def unwrap(self, wrapped: bytes, context: dict[str, str], file_name: str) -> bytes: ...


class KmsDataKeys:
    """Data keys from a KMS key. ``unwrap`` insists the file was wrapped under *this* key."""

    def __init__(self, kms_client, key_id: str):
        self.kms, self.key_id = kms_client, key_id
        self._arn: str | None = None

    @property
    def key_arn(self) -> str:
        if self._arn is None:
            self._arn = self.kms.describe_key(KeyId=self.key_id)["KeyMetadata"]["Arn"]
        return self._arn

    def generate(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        response = self.kms.generate_data_key(KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context)
        return response["Plaintext"], response["CiphertextBlob"]

    def unwrap(self, wrapped: bytes, context: dict[str, str], file_name: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.kms.decrypt(CiphertextBlob=wrapped, KeyId=self.key_id, EncryptionContext=context)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise WrongKey(f"{file_name}: KMS cannot unwrap its data key with key {self.key_id} ({code}: "
                           f"{exc.response.get('Error', {}).get('Message', '')}); was it written under another "
                           "key or account?") from exc
        if response.get("KeyId") and response["KeyId"] != self.key_arn:
            raise WrongKey(f"{file_name}: its data key belongs to KMS key {response['KeyId']}, "
                           f"not the configured {self.key_arn}")
        return response["Plaintext"]


@dataclass(frozen=True)
class FileHeader:
    name: str
    kms_key_id: str
    wrapped_key: bytes
    key_check: str

    def to_bytes(self) -> bytes:
        return json.dumps({"v": 1, "name": self.name, "kms_key_id": self.kms_key_id,
                           "wrapped_key": base64.b64encode(self.wrapped_key).decode(),
                           "key_check": self.key_check, "compression": "zlib"}, sort_keys=True).encode()


def _key_check(data_key: bytes) -> str:
    # Lets a wrong data key fail as "wrong key" before any chunk is tried; reveals nothing of the key.
    return hmac.new(data_key, _KEY_CHECK_LABEL, hashlib.sha256).hexdigest()[:32]


def _context(name: str) -> dict[str, str]:
    return {"swordfish-backup-file": name}


def encrypt_stream(chunks: Iterable[bytes], out: BinaryIO, keys: DataKeySource, name: str) -> int:
    """Compress and encrypt ``chunks`` into ``out`` as the file ``name``. Returns plaintext bytes read."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data_key, wrapped = keys.generate(_context(name))
    header = FileHeader(name, keys.key_id, wrapped, _key_check(data_key)).to_bytes()
    header_digest = hashlib.sha256(header).digest()
    aead = AESGCM(data_key)
    out.write(MAGIC + _LEN.pack(len(header)) + header)
    compressor = zlib.compressobj(1)
    pending = bytearray()
    index = 0
    total = 0

    def emit(payload: bytes, final: bool) -> None:
        nonlocal index
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, payload, header_digest + _AAD_TAIL.pack(index, int(final)))
        out.write(_LEN.pack(len(sealed)) + nonce + sealed)
        index += 1

    for chunk in chunks:
        total += len(chunk)
        pending += compressor.compress(chunk)
        while len(pending) >= CHUNK_BYTES:
            emit(bytes(pending[:CHUNK_BYTES]), False)
            del pending[:CHUNK_BYTES]
    pending += compressor.flush()
    while len(pending) > CHUNK_BYTES:
        emit(bytes(pending[:CHUNK_BYTES]), False)
        del pending[:CHUNK_BYTES]
    emit(bytes(pending), True)
    return total


def read_header(src: BinaryIO, file_name: str) -> tuple[FileHeader, bytes]:
    magic = src.read(len(MAGIC))
    if magic != MAGIC:
        if len(magic) < len(MAGIC):
            raise TruncatedFile(f"{file_name}: empty or truncated (no header)")
        raise TamperedFile(f"{file_name}: not a Swordfish encrypted backup file (bad magic bytes)")
    raw_len = src.read(4)
    if len(raw_len) < 4:
        raise TruncatedFile(f"{file_name}: truncated inside its header")
    (length,) = _LEN.unpack(raw_len)
    if length > 64 * 1024:
        raise TamperedFile(f"{file_name}: header length {length} is implausible")
    raw = src.read(length)
    if len(raw) < length:
        raise TruncatedFile(f"{file_name}: truncated inside its header")
    try:
        data = json.loads(raw)
        header = FileHeader(data["name"], data["kms_key_id"], base64.b64decode(data["wrapped_key"]),
                            data["key_check"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TamperedFile(f"{file_name}: unreadable header ({exc})") from exc
    return header, raw


def decrypt_stream(src: BinaryIO, keys: DataKeySource, expected_name: str, file_name: str | None = None) -> Iterator[bytes]:
    """Yield the plaintext of an encrypted file, failing loudly on a wrong key, tampering or truncation.

    Plaintext is yielded chunk by chunk as each chunk authenticates; a caller that must not act on
    unauthenticated data consumes the whole iterator before using what it wrote (restore does).
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    file_name = file_name or expected_name
    header, raw_header = read_header(src, file_name)
    if header.name != expected_name:
        raise TamperedFile(f"{file_name}: holds {header.name!r}, expected {expected_name!r} "
                           "(a renamed or swapped file)")
    data_key = keys.unwrap(header.wrapped_key, _context(header.name), file_name)
    if not hmac.compare_digest(_key_check(data_key), header.key_check):
        raise WrongKey(f"{file_name}: the unwrapped data key does not match the file's key check")
    aead = AESGCM(data_key)
    digest = hashlib.sha256(raw_header).digest()
    decompressor = zlib.decompressobj()
    index = 0
    while True:
        raw_len = src.read(4)
        if len(raw_len) < 4:
            raise TruncatedFile(f"{file_name}: ends after chunk {index - 1} without its final chunk (truncated)")
        (length,) = _LEN.unpack(raw_len)
        if length > CHUNK_BYTES + 1024:
            raise TamperedFile(f"{file_name}: chunk {index} claims {length} bytes (corrupted length)")
        nonce = src.read(12)
        sealed = src.read(length)
        if len(nonce) < 12 or len(sealed) < length:
            raise TruncatedFile(f"{file_name}: chunk {index} is cut short (truncated)")
        payload, final = None, False
        for final_flag in (0, 1):
            try:
                payload = aead.decrypt(nonce, sealed, digest + _AAD_TAIL.pack(index, final_flag))
                final = bool(final_flag)
                break
            except InvalidTag:
                continue
        if payload is None:
            raise TamperedFile(f"{file_name}: chunk {index} fails authentication (changed, corrupted or reordered)")
        try:
            plain = decompressor.decompress(payload)
        except zlib.error as exc:  # cannot happen for authenticated data unless written wrongly
            raise TamperedFile(f"{file_name}: chunk {index} does not decompress ({exc})") from exc
        if plain:
            yield plain
        index += 1
        if final:
            tail = decompressor.flush()
            if tail:
                yield tail
            if src.read(1):
                raise TamperedFile(f"{file_name}: bytes after the final chunk (appended data)")
            return


def decrypt_bytes(data: bytes, keys: DataKeySource, expected_name: str, file_name: str | None = None) -> bytes:
    import io

    return b"".join(decrypt_stream(io.BytesIO(data), keys, expected_name, file_name))


class FileDataKeys:
    """Data keys wrapped (AES-256-GCM, the encryption context as associated data) under a key kept
    in a file: the embedded stack's backups, which must outlive moto (its KMS keys live in memory, so
    a moto restart made every earlier backup undecryptable) and a restart of `make serve`. The key
    file is created 0600 beside the kept database, never in the backup repository. Named by
    ``file:<path>`` wherever a KMS key id is accepted (``SWORDFISH_BACKUP_KMS_KEY_ID``)."""

    PREFIX = "file:"
    _MAGIC = b"SFFK1"

    def __init__(self, path, *, create: bool = False):
        import hashlib
        import os
        from pathlib import Path

        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise WrongKey(f"backup key file {self.path} does not exist")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(os.urandom(32))
        self._key = self.path.read_bytes()
        if len(self._key) != 32:
            raise WrongKey(f"backup key file {self.path} does not hold a 256-bit key")
        self.fingerprint = hashlib.sha256(self._key).digest()[:8]
        self.key_id = f"{self.PREFIX}{self.path}"

    @staticmethod
    def _aad(context: dict[str, str]) -> bytes:
        import json

        return json.dumps(context, sort_keys=True).encode()

    def generate(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        import os

        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        data_key, nonce = os.urandom(32), os.urandom(12)
        wrapped = self._MAGIC + self.fingerprint + nonce + AESGCM(self._key).encrypt(nonce, data_key, self._aad(context))
        return data_key, wrapped

    def unwrap(self, wrapped: bytes, context: dict[str, str], file_name: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        head = len(self._MAGIC)
        if wrapped[:head] != self._MAGIC:
            raise WrongKey(f"{file_name}: its data key was not wrapped by a key file (KMS?); configured {self.key_id}")
        if wrapped[head:head + 8] != self.fingerprint:
            raise WrongKey(f"{file_name}: its data key was wrapped under another key file than {self.path}")
        nonce, sealed = wrapped[head + 8:head + 20], wrapped[head + 20:]
        try:
            return AESGCM(self._key).decrypt(nonce, sealed, self._aad(context))
        except InvalidTag:
            raise WrongKey(f"{file_name}: its data key does not authenticate under {self.path}") from None
