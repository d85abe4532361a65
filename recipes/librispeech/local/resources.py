"""LibriSpeech's files on OpenSLR and fetching them: ``plan`` (what a subset needs, sizes,
disk) and ``download`` (resumable, MD5-checked, through asr.download).

Sources of the sums and sizes below (no file here was fetched to compute them):
* MD5 of every file: sdrobert/pytorch-database-prep, ``librispeech.py`` (``FILE2MD5``);
  resource 12's also in datasets-mila/datasets--librispeech (git-annex keys
  ``MD5E-s<size>--<md5>``) and OpenSLR's ``resources/12/md5sum.txt``.
* Sizes: resource 12 from the same git-annex keys, tensorflow-datasets' ``librispeech``
  checksums.tsv and huggingface/datasets' ``librispeech_asr`` infos (all agree); resource 11
  from kaldi ``egs/librispeech/s5/local/download_lm.sh`` (``sizes[...]``) and
  huggingface/datasets' ``librispeech_lm`` (lm-norm). The lexicon's size differs between
  Kaldi versions, so it is checked by MD5 only.
* Mirrors: OpenSLR's page (www, us, elda in the EU, magicdatatech in China).

    python local/resources.py plan --subset 960 [--checksums FILE.json]
    python local/resources.py download --subset 960 --dest DIR [--mirror URL]... [--checksums FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.download import DownloadError, RemoteFile, download

MIRRORS = {
    "www": "https://www.openslr.org/resources",
    "us": "https://us.openslr.org/resources",
    "eu": "https://openslr.elda.org/resources",
    "cn": "https://openslr.magicdatatech.com/resources",
}

# resource 12: audio (name, md5, bytes)
AUDIO = {
    "dev-clean": RemoteFile("dev-clean.tar.gz", "42e2234ba48799c1f50f24a7926300a1", 337926286),
    "dev-other": RemoteFile("dev-other.tar.gz", "c8d0bcc9cca99d4f8b62fcc847357931", 314305928),
    "test-clean": RemoteFile("test-clean.tar.gz", "32fa31d27d2e1cad72775fee3f4849a9", 346663984),
    "test-other": RemoteFile("test-other.tar.gz", "fb5a50374b501bb3bac4815ee91d3135", 328757843),
    "train-clean-100": RemoteFile("train-clean-100.tar.gz", "2a93770f6d5c6c964bc36631d331a522", 6387309499),
    "train-clean-360": RemoteFile("train-clean-360.tar.gz", "c0e676e450a7ff2f54aeade5171606fa", 23049477885),
    "train-other-500": RemoteFile("train-other-500.tar.gz", "d1a0fd59409feb2c614ce4d30c387708", 30593501606),
}
# resource 11: language-model files
LM = {
    "3-gram": RemoteFile("3-gram.arpa.gz", "74cbb837e582378c26c602e1c8cbcb9c", 759636181),
    "3-gram.pruned.1e-7": RemoteFile("3-gram.pruned.1e-7.arpa.gz", "9a0f1325bcaf3a0f7b7be4be10823c2a", 34094057),
    "3-gram.pruned.3e-7": RemoteFile("3-gram.pruned.3e-7.arpa.gz", "8f67ec741827742eee05799ab7605b50", 13654242),
    "4-gram": RemoteFile("4-gram.arpa.gz", "6abdcd5b055bd482e4f9defe91d40408", 1355172078),
    "lm-norm": RemoteFile("librispeech-lm-norm.txt.gz", "c83c64c726a1aedfe65f80aa311de402", 1507274412),
    "vocab": RemoteFile("librispeech-vocab.txt", "bf3cc7a50112831ed8b0afa40cae96a5", 1737588),
    "lexicon": RemoteFile("librispeech-lexicon.txt", "28f72663f6bfed7cd346283c064c315b", 0),
}
EVAL_PARTS = ["dev-clean", "dev-other", "test-clean", "test-other"]
SUBSETS = {
    "100": ["train-clean-100"],
    "460": ["train-clean-100", "train-clean-360"],
    "960": ["train-clean-100", "train-clean-360", "train-other-500"],
}
# disk per downloaded byte: the archive, its extracted FLAC (about as large) and the shards
DISK_PER_BYTE = 3.0


def files_for(subset: str, lm_files: list[str], checksums: Path | None = None) -> list[tuple[str, RemoteFile]]:
    """``(resource, file)`` pairs a run needs; ``checksums`` (JSON ``{name: {md5, size}}``)
    replaces the table, e.g. for a private mirror or the tests' fake LibriSpeech."""
    if subset not in SUBSETS:
        raise SystemExit(f"error: --subset {subset}: choose one of {', '.join(SUBSETS)}")
    unknown = [f for f in lm_files if f not in LM]
    if unknown:
        raise SystemExit(f"error: unknown LM files {unknown}: choose from {', '.join(LM)}")
    wanted = [("12", AUDIO[p]) for p in EVAL_PARTS + SUBSETS[subset]] + [("11", LM[f]) for f in lm_files]
    if checksums is None:
        return wanted
    try:
        table = json.loads(checksums.read_text())
        return [(res, RemoteFile(f.name, table[f.name]["md5"], int(table[f.name].get("size", 0)))) for res, f in wanted]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise SystemExit(f"error: {checksums}: not a checksum table for these files ({e!r})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["plan", "download"])
    parser.add_argument("--subset", default="960", help="training hours: 100, 460 or 960")
    parser.add_argument("--lm-files", nargs="*", default=["4-gram", "vocab", "lexicon"], help=f"of {', '.join(LM)}")
    parser.add_argument("--dest", type=Path, help="download directory")
    parser.add_argument("--mirror", action="append", default=[],
                        help="base URL holding 11/ and 12/, or www|us|eu|cn (repeat: tried in order)")  # fmt: skip
    parser.add_argument("--checksums", type=Path, help="JSON {name: {md5, size}} replacing the built-in table")
    args = parser.parse_args(argv)
    bases = [MIRRORS.get(m, m).rstrip("/") for m in args.mirror or ["www", "us", "eu"]]
    files = files_for(args.subset, args.lm_files, args.checksums)
    if args.action == "plan":
        total = sum(f.size for _, f in files)
        for res, f in files:
            size = f"{f.size / 1e9:8.2f} GB" if f.size else "      ? GB"
            print(f"{size}  {bases[0]}/{res}/{f.name}  md5 {f.md5}")
        print(f"download {total / 1e9:.1f} GB; disk needed about {DISK_PER_BYTE * total / 1e9:.0f} GB "
              f"(archives, extracted audio, training shards)")  # fmt: skip
        return 0
    if args.dest is None:
        parser.error("download needs --dest")
    try:
        for res, f in files:
            path = download([f"{b}/{res}" for b in bases], f, args.dest)
            print(f"ok {path}", flush=True)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
