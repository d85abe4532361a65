"""Download Debian packages (``main contrib non-free``) without root and without touching
the system's apt configuration: ``apt-get download`` with a private configuration.

Usage::

    python tools/apt_fetch.py --cache DIR --out DIR PACKAGE [PACKAGE ...]

The mirror and the release are read from the system's own apt sources (one-line ``.list``
files and deb822 ``.sources`` files), so no host name is written here. ``DIR/apt`` gets the
private sources list (the same mirror with ``main contrib non-free``), package lists and
cache; the ``.deb`` files land in ``--out``. A package already there is not fetched again.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    uri: str
    suite: str
    signed_by: str = ""


class FetchError(RuntimeError):
    """A package that cannot be had; the message says which and why."""


def _one_line_sources(text: str) -> list[Source]:
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        signed_by = ""
        if words and words[0].startswith("["):  # [arch=amd64 signed-by=...]
            options = []
            while words:
                options.append(words.pop(0))
                if options[-1].endswith("]"):
                    break
            for option in " ".join(options).strip("[]").split():
                key, _, value = option.partition("=")
                signed_by = value if key == "signed-by" else signed_by
        if len(words) >= 2:
            out.append(Source(words[0], words[1], signed_by))
    return out


def _deb822_sources(text: str) -> list[Source]:
    out = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                out.append(Source(uri, suite, fields.get("signed-by", "")))
    return out


def system_sources(etc: Path = Path("/etc/apt")) -> list[Source]:
    """The ``deb`` sources the system's apt uses, in order (``sources.list`` first)."""
    files = [etc / "sources.list"] if (etc / "sources.list").is_file() else []
    parts = etc / "sources.list.d"
    files += sorted(parts.glob("*.list")) + sorted(parts.glob("*.sources")) if parts.is_dir() else []
    sources: list[Source] = []
    for f in files:
        text = f.read_text(errors="replace")
        sources += _deb822_sources(text) if f.suffix == ".sources" else _one_line_sources(text)
    return sources


def debian_mirror(etc: Path = Path("/etc/apt")) -> Source:
    """The first Debian archive source: a release suite (not ``-security`` or ``-updates``)
    of a URI whose path ends in ``/debian``."""
    for s in system_sources(etc):
        if s.uri.rstrip("/").endswith("/debian") and "-" not in s.suite:
            return s
    raise FetchError(f"no Debian archive (a URI ending in /debian, a release suite) in {etc}/sources.list*")


def private_config(cache: Path, mirror: Source) -> Path:
    """Write ``cache/apt``: a sources list for ``mirror`` with ``main contrib non-free`` and an
    apt.conf keeping lists and cache there; returns the apt.conf path."""
    root = (cache / "apt").resolve()
    for d in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
        (root / d).mkdir(parents=True, exist_ok=True)
    options = f"[signed-by={mirror.signed_by}] " if mirror.signed_by else ""
    (root / "sources.list").write_text(f"deb {options}{mirror.uri} {mirror.suite} main contrib non-free\n")
    conf = root / "apt.conf"
    conf.write_text(
        f'Dir::Etc::SourceList "{root}/sources.list";\n'
        f'Dir::Etc::SourceParts "{root}/sources.list.d";\n'
        f'Dir::Etc::PreferencesParts "{root}/preferences.d";\n'
        f'Dir::State::Lists "{root}/lists";\n'
        f'Dir::Cache "{root}/cache";\n'
    )
    return conf


def fetch(packages: list[str], cache: Path, out: Path, etc: Path = Path("/etc/apt")) -> list[Path]:
    """``.deb`` files of ``packages`` in ``out`` (downloaded unless already there)."""
    out.mkdir(parents=True, exist_ok=True)
    have = {p: sorted(out.glob(f"{p}_*.deb")) for p in packages}
    missing = [p for p in packages if not have[p]]
    if missing:
        conf = private_config(cache, debian_mirror(etc))
        env = {"APT_CONFIG": str(conf), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C"}
        for command in (["apt-get", "update", "-q"], ["apt-get", "download", "-q", *missing]):
            done = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise FetchError(f"{' '.join(command)} failed (rc {done.returncode}): {done.stderr.strip()[-500:]}")
    debs = []
    for p in packages:
        found = sorted(out.glob(f"{p}_*.deb"))
        if not found:
            raise FetchError(f"{p}: no .deb in {out} after apt-get download")
        debs.append(found[-1])
    return debs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="private apt state goes to CACHE/apt")
    parser.add_argument("--out", type=Path, required=True, help="where the .deb files go")
    parser.add_argument("packages", nargs="+")
    args = parser.parse_args()
    try:
        for deb in fetch(args.packages, args.cache, args.out):
            print(deb)
    except FetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
