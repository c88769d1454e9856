"""Keys, key wrapping, streaming encryption and signatures.

Thin, typed wrappers over libsodium (PyNaCl), `cryptography` and argon2-cffi. Nothing
here invents a primitive: ChaCha20-Poly1305 (RFC 8439) for sealing small secrets, libsodium's
secretstream for files, Argon2id for passphrases, HKDF-SHA256 for sub-keys, Ed25519 for
signatures, X25519 for encryption to a device.
"""
