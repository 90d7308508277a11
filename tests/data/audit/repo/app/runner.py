"""Code with issues bandit reports (test fixture)."""

import hashlib
import subprocess

import yaml


def run(command: str) -> int:
    return subprocess.call(command, shell=True)


def load(text: str) -> object:
    return yaml.load(text, Loader=yaml.Loader)


def digest(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()
