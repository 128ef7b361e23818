"""The run store: one directory per run, a SQLite database and content-addressed images.

It is the only hand-off between stages: a resumed audit, the summary, exports and reports
read it, never the in-memory state of an earlier stage. Probes are committed a batch at a
time in one transaction, with a marker for the batch: a run killed at any moment keeps every
committed batch and loses only the batch in flight, which a resume redoes in full. Probe
indices are primary keys, so nothing is ever stored twice. A resume may answer again a probe
whose reply was lost: its row is updated in place, with its new answers, in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from auditdm.errors import UserError
from auditdm.files import replacing
from auditdm.judge import Decision
from auditdm.records import Answers, Category, OracleCheck, Picture, Probe, ProbeRecord, SourceImage
from auditdm.sources import png_bytes, read_picture

FORMAT = 2  # bump when the schema changes incompatibly; older runs are then refused with a clear error
DATABASE = "run.sqlite"
LOCK = ".lock"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (  -- world: the image has a domain's scene, so the oracle can check its probes
    idx INTEGER PRIMARY KEY, name TEXT NOT NULL, image TEXT NOT NULL, question TEXT, world INTEGER NOT NULL
);
CREATE TABLE batches (idx INTEGER PRIMARY KEY);
CREATE TABLE probes (
    idx INTEGER PRIMARY KEY,
    source INTEGER NOT NULL REFERENCES sources(idx),
    pairing TEXT NOT NULL,
    synthesis TEXT,
    auditor TEXT NOT NULL,
    prompts TEXT NOT NULL,
    seed INTEGER NOT NULL,
    parent_image TEXT NOT NULL,
    instruction TEXT,
    question TEXT,
    image TEXT,
    error TEXT,
    target_answer TEXT,
    consensus TEXT,
    score INTEGER NOT NULL,
    oracle_status TEXT,
    truth TEXT,
    skill TEXT
);
CREATE TABLE answers (
    probe INTEGER NOT NULL REFERENCES probes(idx),
    model TEXT NOT NULL,
    role TEXT NOT NULL,
    answer TEXT NOT NULL,
    PRIMARY KEY (probe, model)
);
CREATE TABLE categories (
    idx INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    size INTEGER NOT NULL,
    probes INTEGER NOT NULL,
    flag_rate REAL NOT NULL,
    examples TEXT NOT NULL
);
CREATE TABLE category_members (
    category INTEGER NOT NULL REFERENCES categories(idx),
    probe INTEGER NOT NULL REFERENCES probes(idx),
    PRIMARY KEY (probe)
);
"""
# An LLM judge's decisions (a <= b), so that a resume asks none again. Added to format 2
# without a bump: opening a run for writing adds the table if it lacks it.
_JUDGEMENTS = """
CREATE TABLE IF NOT EXISTS judgements (
    judge TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL, same INTEGER NOT NULL, reply TEXT NOT NULL,
    PRIMARY KEY (judge, a, b)
);
"""
_ANSWERED = ("error", "target_answer", "consensus", "score", "oracle_status", "truth", "skill")


class RunStoreError(UserError):
    """A run directory that is missing, not a run, or written by another format."""


class RunStore:
    """A run directory: ``run.sqlite`` and ``images/ab/abcdef….png``."""

    def __init__(self, folder: Path, connection: sqlite3.Connection) -> None:
        self.folder = folder
        self.db = connection

    @staticmethod
    def check_new(folder: Path) -> None:
        """Refuse a folder that holds a run already, or a path that is no folder (before any
        work is done for a new run). A folder where a run was being started is fine."""
        if folder.exists() and not folder.is_dir():
            raise RunStoreError(f"{folder} is a file, not a run directory: pick another --out")
        if (folder / DATABASE).exists():
            raise RunStoreError(f"{folder} already holds a run: resume it with --resume {folder}, or pick another --out")

    @classmethod
    def create(cls, folder: Path, meta: dict[str, Any], sources: Sequence[SourceImage] = ()) -> RunStore:
        """A new run in ``folder`` (which must not hold a run already) with its source images.

        The database is built aside and renamed into place once whole: a run directory
        with ``run.sqlite`` is always a complete one, and a start killed half-way leaves
        none, so the same command (or ``--resume``) simply starts again.
        """
        cls.check_new(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [(i, s.name, _put_image(folder, s.picture), s.question, s.picture.scene is not None)
                for i, s in enumerate(sources)]  # fmt: skip
        with replacing(folder / DATABASE) as partial:
            db = sqlite3.connect(partial)  # rollback journal while building: one file to rename
            with db:
                db.executescript(_SCHEMA + _JUDGEMENTS)
                db.executemany("INSERT INTO meta VALUES (?, ?)",
                               [(k, json.dumps(v)) for k, v in {**meta, "format": FORMAT}.items()])  # fmt: skip
                db.executemany("INSERT INTO sources VALUES (?, ?, ?, ?, ?)", rows)
            db.close()
        return cls(folder, _connect(folder / DATABASE))

    @classmethod
    def open(cls, folder: Path, write: bool = True) -> RunStore:
        """An existing run, checked to be whole and of a format this version reads;
        ``write=False`` opens it read-only (a finished run on read-only storage exports)."""
        path = folder / DATABASE
        if not path.is_file():
            raise RunStoreError(f"{folder}: not a run directory (no {DATABASE})")
        try:
            db = _connect(path) if write else _connect_read_only(path)
            damage = db.execute("PRAGMA quick_check").fetchone()[0]
            if damage != "ok":
                raise sqlite3.DatabaseError(damage)
            found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.DatabaseError as error:
            raise RunStoreError(f"{folder}: {DATABASE} is damaged or not a run database ({error})") from None
        if found is None or json.loads(found[0]) != FORMAT:
            version = json.loads(found[0]) if found else "unknown"
            raise RunStoreError(f"{folder}: run format {version}, but this auditdm reads format {FORMAT}; "
                                "re-run the audit with this version")  # fmt: skip
        if write:
            db.executescript(_JUDGEMENTS)
        return cls(folder, db)

    def meta(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self.db.execute("SELECT key, value FROM meta")}

    def put_image(self, picture: Picture) -> str:
        """Store a picture as PNG (with its scene, for a domain's images); returns its address."""
        return _put_image(self.folder, picture)

    def image_path(self, address: str) -> Path:
        return _image_path(self.folder, address)

    def stored_image(self, address: str) -> Path:
        """The file of a stored image; one line naming it if it is gone."""
        path = self.image_path(address)
        if not path.is_file():
            raise UserError(f"{self.folder}: the run's image {address} is missing ({path} was removed or moved)")
        return path

    def load_picture(self, address: str) -> Picture:
        return read_picture(self.stored_image(address))

    def sources(self) -> list[SourceImage]:
        rows = self.db.execute("SELECT name, image, question FROM sources ORDER BY idx").fetchall()
        return [SourceImage(name, self.load_picture(image), question) for name, image, question in rows]

    def source_addresses(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT image FROM sources ORDER BY idx")]

    def done_batches(self) -> set[int]:
        return {row[0] for row in self.db.execute("SELECT idx FROM batches")}

    def commit_batch(self, batch: int, probes: Sequence[Probe], answers: Sequence[Answers | None],
                     checks: Sequence[OracleCheck | None], auditor: str, prompts: str,
                     answerers: Sequence[tuple[str, str]], meta: dict[str, Any] | None = None,
                     judge: str = "", decisions: Sequence[Decision] = ()) -> None:  # fmt: skip
        """Store a finished batch of probes with their answers and oracle checks (one each,
        None where there is none), all or nothing, with ``meta`` values (the run's time so far)
        and the ``decisions`` the judge named ``judge`` made for it.

        ``answerers`` are (model, role) pairs in the order of target then references.
        """
        probe_rows, answer_rows = [], []
        for p, a, check in zip(probes, answers, checks, strict=True):
            image = self.put_image(p.picture) if p.picture is not None else None
            probe_rows.append((p.index, p.source, p.pairing, p.synthesis, auditor, prompts, p.seed, p.parent_image,
                               p.instruction, p.question, image, *_answered(p, a, check)))  # fmt: skip
            answer_rows += _answer_rows(p, a, answerers)
        with self.db:
            self.db.executemany(f"INSERT INTO probes VALUES ({', '.join('?' * 18)})", probe_rows)
            self.db.executemany("INSERT INTO answers VALUES (?, ?, ?, ?)", answer_rows)
            self.db.execute("INSERT INTO batches VALUES (?)", (batch,))
            self._finish(meta, judge, decisions)

    def answer_again(self, probes: Sequence[Probe], answers: Sequence[Answers | None],
                     checks: Sequence[OracleCheck | None], answerers: Sequence[tuple[str, str]],
                     meta: dict[str, Any] | None = None, judge: str = "",
                     decisions: Sequence[Decision] = ()) -> None:  # fmt: skip
        """Store new answers (or a new reason for none) of stored probes asked again, all or
        nothing, as :meth:`commit_batch` stores a batch's."""
        with self.db:
            for p, a, check in zip(probes, answers, checks, strict=True):
                self.db.execute(f"UPDATE probes SET {', '.join(f'{c} = ?' for c in _ANSWERED)} WHERE idx = ?",
                                (*_answered(p, a, check), p.index))  # fmt: skip
                self.db.execute("DELETE FROM answers WHERE probe = ?", (p.index,))
                self.db.executemany("INSERT INTO answers VALUES (?, ?, ?, ?)", _answer_rows(p, a, answerers))
            self._finish(meta, judge, decisions)

    def _finish(self, meta: dict[str, Any] | None, judge: str, decisions: Sequence[Decision]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            [(k, json.dumps(v)) for k, v in (meta or {}).items()])  # fmt: skip
        self.db.executemany("INSERT OR IGNORE INTO judgements VALUES (?, ?, ?, ?, ?)",
                            [(judge, d.a, d.b, d.same, d.reply) for d in decisions])  # fmt: skip

    def decisions(self, judge: str) -> list[Decision]:
        """The stored decisions of the judge named ``judge``."""
        rows = self.db.execute("SELECT a, b, same, reply FROM judgements WHERE judge = ? ORDER BY rowid", (judge,))
        return [Decision(a, b, bool(same), reply) for a, b, same, reply in rows]

    def probes(self) -> Iterator[ProbeRecord]:
        """Every stored probe, in order, with every model's answer; ``verifiable`` when its
        source image has a domain's scene, unless it was answered about an image without
        one (a diffusers image), which the oracle could not check."""
        answers: dict[int, dict[str, str]] = {}
        for probe, model, answer in self.db.execute("SELECT probe, model, answer FROM answers ORDER BY rowid"):
            answers.setdefault(probe, {})[model] = answer
        cursor = self.db.execute(
            "SELECT probes.*, sources.world AND (probes.error IS NOT NULL OR probes.oracle_status IS NOT NULL) "
            "FROM probes JOIN sources ON sources.idx = probes.source ORDER BY probes.idx"
        )
        names = [c[0] for c in cursor.description][:-1]
        for *columns, verifiable in cursor:
            row = dict(zip(names, columns))
            yield ProbeRecord(**row, verifiable=bool(verifiable), answers=answers.get(row["idx"], {}))

    def roles(self) -> dict[str, str]:
        """Each model that answered in the run, and its role: ``target`` or ``reference``."""
        return dict(self.db.execute("SELECT DISTINCT model, role FROM answers"))

    def replace_categories(self, categories: Sequence[Category]) -> None:
        """Store the failure categories in place of any earlier ones, all or nothing."""
        with self.db:
            self.db.execute("DELETE FROM category_members")
            self.db.execute("DELETE FROM categories")
            for i, c in enumerate(categories):
                self.db.execute("INSERT INTO categories VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (i, c.name, c.description, c.size, c.probes, c.flag_rate, json.dumps(c.examples)))  # fmt: skip
                self.db.executemany("INSERT INTO category_members VALUES (?, ?)", [(i, p) for p in c.members])

    def categories(self) -> list[Category]:
        """The stored failure categories, in their order (largest first, "other" last)."""
        members: dict[int, list[int]] = {}
        for category, probe in self.db.execute("SELECT category, probe FROM category_members ORDER BY probe"):
            members.setdefault(category, []).append(probe)
        rows = self.db.execute("SELECT * FROM categories ORDER BY idx").fetchall()
        return [Category(name, description, size, probes, rate, tuple(json.loads(examples)), tuple(members.get(i, [])))
                for i, name, description, size, probes, rate, examples in rows]  # fmt: skip

    def close(self) -> None:
        self.db.close()


def _answered(p: Probe, a: Answers | None, check: OracleCheck | None) -> tuple[Any, ...]:
    """A probe's columns that its answers decide, in the order of ``_ANSWERED``."""
    check = check or OracleCheck(status="", truth=None, skill=None)
    target, consensus, score = (a.target, a.consensus, a.score) if a else (None, None, 0)
    return p.error, target, consensus, score, check.status or None, check.truth, check.skill


def _answer_rows(p: Probe, a: Answers | None, answerers: Sequence[tuple[str, str]]) -> list[tuple[Any, ...]]:
    if a is None:
        return []
    given = (a.target, *a.references)
    return [(p.index, model, role, text) for (model, role), text in zip(answerers, given, strict=True)]


def lock_run(folder: Path) -> IO[str]:
    """Hold the run directory for this process until it exits (kill -9 included: the kernel
    releases the lock, so a lock file left behind is never stale). A second process on the
    same run gets one line naming the holder's PID instead of redoing its batches."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    handle = (folder / LOCK).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise RunStoreError(f"{folder} is in use by another auditdm (process {holder}): wait for it, or stop it "
                            "and resume") from None  # fmt: skip
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _image_path(folder: Path, address: str) -> Path:
    return folder / "images" / address[:2] / f"{address}.png"


def _put_image(folder: Path, picture: Picture) -> str:
    data = png_bytes(picture)
    address = hashlib.sha256(data).hexdigest()
    path = _image_path(folder, address)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as partial:  # a reader sees the whole file or none
            partial.write_bytes(data)
    return address


def _connect_read_only(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True).execute("SELECT 1").connection
    except sqlite3.OperationalError:  # a WAL database on read-only media: nothing can be writing to it
        return sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    # WAL with full sync: a committed batch survives kill -9 (and power loss), readers never block.
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    return db
