"""Protocol ledgers: each benchmark's ``paper`` preset set against the reference code its paper's
numbers came from, element by element, rendered into one table per benchmark.

    python reproduce/protocols.py            # validate every configs/*/protocol.yaml, write results/protocols.md
    python reproduce/protocols.py --check    # exit 1 if results/protocols.md is not the render of the ledgers

A ledger, ``configs/<benchmark>/protocol.yaml``::

    benchmark: climate
    paper: "Defferrard et al. 2020, DeepSphere (ICLR), Table 4"   # what is reproduced
    references:            # short name -> public repository and the commit read
      deepsphere_tf1: {repo: deepsphere/deepsphere-tf1, commit: <40 hex digits>}
    entries:
      - element: model selection          # a protocol element
        paper: "not stated"               # what the paper says
        reference: "deepsphere_tf1:deepsphere/models.py fit()/probs() — what the code does"
        ours: "configs/climate/paper.yaml trainer.select: last"
        status: matches                   # matches | deviates | unverifiable
        why: ""                           # required (non-empty) unless status is matches

``reference`` is ``<name>:<path> [symbol] — what the code does`` with ``<name>`` a key of
``references``, or starts with ``none`` (no code holds the element; status ``unverifiable``). A
ledger that breaks these rules is one ``error:`` line naming the file and the entry, exit status 2.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


import yaml

from datamodules._common import InputError, atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
OUT = ROOT / "results" / "protocols.md"
STATUSES = ("matches", "deviates", "unverifiable")
TOP_KEYS = ("benchmark", "paper", "references", "entries")
ENTRY_KEYS = ("element", "paper", "reference", "ours", "status", "why")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_REF = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)(?P<rest>.*)", re.S)


class LedgerError(InputError):
    """A ledger that breaks the format (the message names the file and the entry)."""


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def reference_name(text: str) -> tuple[str, str]:
    """``"deepsphere_tf1:deepsphere/models.py fit()"`` → ``("deepsphere_tf1", "deepsphere/models.py fit()")``;
    ``"none — …"`` → ``("none", "— …")``.

    >>> reference_name("s2cnn:examples/shrec17/train.py main() — SGD")
    ('s2cnn', 'examples/shrec17/train.py main() — SGD')
    >>> reference_name("none — no public code")
    ('none', '— no public code')
    """
    m = _REF.match(text.strip())
    if not m:
        return "", text
    name, rest = m.group("name"), m.group("rest")
    if rest.startswith(":"):
        return name, rest[1:].strip()
    return name, rest.strip()


def validate(data, path: Path, benchmark: str | None = None) -> dict:
    """Check one parsed ledger; raise :class:`LedgerError` naming ``path`` and the entry."""
    where = _rel(path)

    def fail(msg: str, entry: int | None = None, element: str | None = None):
        at = "" if entry is None else f" entries[{entry}]" + (f" ({element})" if element else "")
        raise LedgerError(f"{where}{at}: {msg}")

    if not isinstance(data, dict):
        fail("expected a mapping with keys " + ", ".join(TOP_KEYS))
    missing = [k for k in TOP_KEYS if k not in data]
    if missing:
        fail(f"missing key(s) {', '.join(missing)}")
    extra = sorted(set(data) - set(TOP_KEYS))
    if extra:
        fail(f"unknown key(s) {', '.join(map(str, extra))} (valid: {', '.join(TOP_KEYS)})")
    for key in ("benchmark", "paper"):
        if not isinstance(data[key], str) or not data[key].strip():
            fail(f"'{key}' must be a non-empty string")
    if benchmark is not None and data["benchmark"] != benchmark:
        fail(f"benchmark '{data['benchmark']}' does not match its folder configs/{benchmark}/")
    refs = data["references"]
    if not isinstance(refs, dict) or not refs:
        fail("'references' must be a non-empty mapping of name -> {repo: owner/name, commit: 40 hex digits}")
    for name, ref in refs.items():
        if str(name) == "none":
            fail("references: 'none' is reserved (an entry without reference code)")
        if not isinstance(ref, dict) or set(ref) != {"repo", "commit"}:
            fail(f"references.{name}: expected exactly {{repo: owner/name, commit: 40 hex digits}}")
        if not isinstance(ref["repo"], str) or not _REPO.fullmatch(ref["repo"]):
            fail(f"references.{name}.repo '{ref['repo']}' is not owner/name")
        if not isinstance(ref["commit"], str) or not _COMMIT.fullmatch(ref["commit"]):
            fail(f"references.{name}.commit '{ref['commit']}' is not 40 lower-case hex digits")
    entries = data["entries"]
    if not isinstance(entries, list) or not entries:
        fail("'entries' must be a non-empty list")
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            fail("expected a mapping with keys " + ", ".join(ENTRY_KEYS), i)
        element = e.get("element") if isinstance(e.get("element"), str) else None
        missing = [k for k in ENTRY_KEYS if k not in e and k != "why"]
        if missing:
            fail(f"missing key(s) {', '.join(missing)}", i, element)
        extra = sorted(set(e) - set(ENTRY_KEYS))
        if extra:
            fail(f"unknown key(s) {', '.join(map(str, extra))} (valid: {', '.join(ENTRY_KEYS)})", i, element)
        for k in ("element", "paper", "reference", "ours", "status"):
            if not isinstance(e[k], str) or not e[k].strip():
                fail(f"'{k}' must be a non-empty string", i, element)
        why = e.get("why", "")
        if why is None:
            why = ""
        if not isinstance(why, str):
            fail("'why' must be a string", i, element)
        if e["element"] in seen:
            fail("element listed twice", i, element)
        seen.add(e["element"])
        status = e["status"]
        if status not in STATUSES:
            fail(f"status '{status}' is not one of {', '.join(STATUSES)}", i, element)
        if status != "matches" and not why.strip():
            fail(f"status '{status}' needs a non-empty 'why'", i, element)
        name, rest = reference_name(e["reference"])
        if name == "none":
            if status != "unverifiable":
                fail(f"reference 'none' needs status unverifiable, not '{status}'", i, element)
        elif name not in refs:
            fail(f"reference '{e['reference'][:60]}' names '{name}', not one of references: "
                 f"{', '.join(map(str, refs))} (or 'none')", i, element)
        elif not e["reference"].strip()[len(name):].startswith(":") or not rest:
            fail(f"reference '{e['reference'][:60]}' must read '<name>:<path> [symbol] — what the code does'",
                 i, element)
    return data


def load(path: Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise LedgerError(f"{_rel(path)}: malformed YAML: {err}".replace("\n", " ")) from None
    except OSError as err:
        raise LedgerError(f"{_rel(path)}: cannot read: {err.strerror}") from None
    return validate(data, path, path.parent.name)


def ledger_paths(configs: Path = CONFIGS) -> list[Path]:
    return sorted(Path(configs).glob("*/protocol.yaml"))


def load_all(configs: Path = CONFIGS) -> list[dict]:
    return [load(p) for p in ledger_paths(configs)]


def counts(ledger: dict) -> dict[str, int]:
    return {s: sum(e["status"] == s for e in ledger["entries"]) for s in STATUSES}


def summary(ledger: dict) -> str:
    """``"12 matches / 3 deviates / 1 unverifiable"``."""
    c = counts(ledger)
    return " / ".join(f"{c[s]} {s}" for s in STATUSES)


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def reference_cell(ledger: dict, text: str) -> str:
    """``name:path …`` → ``owner/repo@<commit[:8]>:path …`` (``none …`` stays as written)."""
    name, rest = reference_name(text)
    if name == "none":
        return _cell(text)
    ref = ledger["references"][name]
    return _cell(f"{ref['repo']}@{ref['commit'][:8]}:{rest}")


def status_cell(entry: dict) -> str:
    why = (entry.get("why") or "").strip()
    return _cell(entry["status"] + (f": {why}" if why else ""))


def render(ledgers: list[dict]) -> str:
    out = ["# Protocol ledgers", "",
           "Each benchmark's `paper` preset set against the reference code its paper's numbers came from, one "
           "protocol element per row: what the paper says, what that code does (repository@commit:path), what "
           "the preset does, and whether they match. Written by `python reproduce/protocols.py` from "
           "`configs/<benchmark>/protocol.yaml`; `--check` tells whether this file is current.", ""]
    if ledgers:
        out += ["| benchmark | reproduces | matches | deviates | unverifiable |", "|---|---|---|---|---|"]
        for led in ledgers:
            c = counts(led)
            out.append(f"| [{led['benchmark']}](#{led['benchmark']}) | {_cell(led['paper'])} | {c['matches']} | "
                       f"{c['deviates']} | {c['unverifiable']} |")
        out.append("")
    for led in ledgers:
        out += [f"## {led['benchmark']}", "", f"Reproduces: {_cell(led['paper'])}. "
                f"Summary: {summary(led)}.", "",
                "References: " + "; ".join(f"`{n}` = {r['repo']}@{r['commit']}"
                                           for n, r in led["references"].items()) + ".", "",
                "| element | paper | reference code | ours | status |", "|---|---|---|---|---|"]
        for e in led["entries"]:
            out.append(f"| {_cell(e['element'])} | {_cell(e['paper'])} | {reference_cell(led, e['reference'])} | "
                       f"{_cell(e['ours'])} | {status_cell(e)} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if results/protocols.md is stale")
    ap.add_argument("--configs", type=Path, default=CONFIGS, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=OUT, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        ledgers = load_all(args.configs)
    except LedgerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = render(ledgers)
    if args.check:
        current = args.out.read_text() if args.out.is_file() else None
        if current != text:
            print(f"error: {_rel(args.out)} is stale: run python reproduce/protocols.py", file=sys.stderr)
            return 1
        print(f"{_rel(args.out)} is current ({len(ledgers)} ledgers)")
        return 0
    atomic_write_text(args.out, text)
    for led in ledgers:
        print(f"{led['benchmark']}: {summary(led)}")
    print(f"wrote {_rel(args.out)}")
    return 0

