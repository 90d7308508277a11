"""Digests and commit ids: high entropy, but not secrets."""

RELEASE_COMMIT = "bfa932b2aa0679d96ca73f62f38960bdf1e06618"
ARCHIVE_SHA256 = "bfa932b2aa0679d96ca73f62f38960bdf1e06618bc9ef9e7785a51aedd82f702"
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
token_hash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
checksums = {"wheel": "sha256:bfa932b2aa0679d96ca73f62f38960bdf1e06618bc9ef9e7785a51aedd82f702"}
