"""The warehouse on PostgreSQL: a build per refresh in its own schemas, published in one transaction.

The PostgreSQL counterpart of ``warehouse.py``'s file store (same shape: ``new_build`` / ``publish``
/ ``published`` / ``prune``, the same ``KEEP_VERSIONS``):

- A build is a version ``<UTC time to the microsecond>_<random>`` whose dbt nodes land in schemas
  ``b_<version>_<layer>`` (``b_<version>_staging``, ``_intermediate``, ``_marts``, ``_snapshots``):
  dbt reads the prefix from ``SLF_DBT_BUILD_SCHEMA_PREFIX`` (``PgBuild.dbt_env()``;
  ``macros/generate_schema_name.sql``). ``new_build`` first copies every table of the published
  version into the build's schemas, as the file store copies the published file, so snapshot history
  and the incremental models carry on.
- Readers use one stable schema, ``marts``, of views: ``marts.<mart>`` is ``select * from
  b_<published version>_marts.<mart>``. ``publish`` repoints all of them in ONE transaction, after
  taking an ACCESS EXCLUSIVE lock on every view. A reader's statement or transaction holds ACCESS
  SHARE locks on the views it read until it ends, so publication waits for it, and a reader that
  arrives during the switch waits (milliseconds) and then resolves the names again to the new
  definitions: every statement and every transaction reads one version, old or new, never a mix.
  The publisher waits for locks at most ``lock_timeout`` at a time and retries, so it never holds
  some views while queued for others long enough for a reader to deadlock on it (PostgreSQL's
  deadlock_timeout is 1 s).
- Views rather than renaming schemas: the stable names' grants stay on the views (``CREATE OR
  REPLACE VIEW`` keeps them), the reader role needs no right on any version's schema (a view reads
  with its owner's rights), and old versions stay where they are, readable by the pipeline, for
  regenerating an old answer.
- ``slf_publication.versions`` records every build (run id, created, published, dropped) and which
  version is current. Only the last ``KEEP_VERSIONS`` published versions keep their schemas; a build
  started before the current version can never be published (``StaleBuild``) and is dropped as
  abandoned, as is a killed refresh's build at the next publication.

Every identifier is composed with ``psycopg2.sql.Identifier`` and every value is a bound parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import random
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg2
from psycopg2 import errors, sql

from slf_warehouse.build_ref import BUILD_PREFIX_ENV
from slf_warehouse.warehouse import KEEP_VERSIONS, NoPublishedWarehouse

PUBLISHED_SCHEMA = "marts"
REGISTRY_SCHEMA = "slf_publication"
READER_ROLE = "slf_reader"
# One advisory lock serialises every change to the registry (new_build, publish, prune).
_REGISTRY_LOCK = 0x51F_9B1
_VERSION = re.compile(r"[0-9]{20}_[0-9a-f]{6}")
# Relations a build's marts schema publishes: tables, partitioned tables, views, materialized views.
_PUBLISHABLE = ("r", "p", "v", "m")

__all__ = [
    "KEEP_VERSIONS",
    "NoPublishedWarehouse",
    "PgBuild",
    "PgPublished",
    "PgWarehouseStore",
    "PublicationBlocked",
    "StaleBuild",
    "ensure_reader_role",
]


class StaleBuild(Exception):
    """The build started before the published version: publishing it would undo that version."""


class PublicationBlocked(Exception):
    """Readers held the published views longer than the publisher was allowed to wait."""


@dataclass(frozen=True)
class PgBuild:
    version: str
    run_id: str

    @property
    def prefix(self) -> str:
        return f"b_{self.version}"

    def schema(self, layer: str) -> str:
        return f"{self.prefix}_{layer}"

    def dbt_env(self) -> dict[str, str]:
        """What `dbt build --target postgres` needs in its environment to build into this build."""
        return {BUILD_PREFIX_ENV: self.prefix}


@dataclass(frozen=True)
class PgPublished:
    version: str
    run_id: str
    published_at: str

    @property
    def prefix(self) -> str:
        return f"b_{self.version}"

    def schema(self, layer: str) -> str:
        """This version's own schema of a layer, e.g. its marts for regenerating an old answer."""
        return f"{self.prefix}_{layer}"


class PgWarehouseStore:
    def __init__(
        self,
        conninfo: str,
        *,
        published_schema: str = PUBLISHED_SCHEMA,
        keep: int = KEEP_VERSIONS,
        lock_timeout_ms: int = 200,
        publish_wait_s: float = 300.0,
    ):
        if keep < 1:
            raise ValueError("keep must be at least 1: the published version is always kept")
        self.conninfo = conninfo
        self.published_schema = published_schema
        self.keep = keep
        self.lock_timeout_ms = lock_timeout_ms
        self.publish_wait_s = publish_wait_s

    # --- reading ----------------------------------------------------------------------------------

    def published(self) -> PgPublished:
        with self._connect() as con, con.cursor() as cur:
            if self._registry_exists(cur):
                cur.execute(
                    sql.SQL("select version, run_id, published_at from {} where is_current").format(
                        self._registry()
                    )
                )
                if row := cur.fetchone():
                    return PgPublished(row[0], row[1], row[2].isoformat())
        raise NoPublishedWarehouse(
            f"no warehouse has been published in PostgreSQL schema "
            f"{self.published_schema!r} yet: run a refresh first"
        )

    def versions(self) -> list[PgPublished]:
        """The published versions whose schemas are kept, newest first (the current one first)."""
        with self._connect() as con, con.cursor() as cur:
            if not self._registry_exists(cur):
                return []
            cur.execute(
                sql.SQL("""select version, run_id, published_at from {}
                                   where published_at is not null and dropped_at is null
                                   order by published_at desc, version desc""").format(self._registry())
            )
            return [PgPublished(v, r, p.isoformat()) for v, r, p in cur.fetchall()]

    def build(self, version: str) -> PgBuild:
        """A build again from its version (e.g. passed from one Airflow task to the next)."""
        with self._connect() as con, con.cursor() as cur:
            if self._registry_exists(cur):
                cur.execute(
                    sql.SQL("select run_id from {} where version = %s and dropped_at is null").format(
                        self._registry()
                    ),
                    (version,),
                )
                if row := cur.fetchone():
                    return PgBuild(version, row[0])
        raise KeyError(f"no build {version!r} in {REGISTRY_SCHEMA}.versions")

    def builds_of(self, run_id: str) -> list[PgBuild]:
        """The run's builds whose schemas are still there (published or not), oldest first: what a
        run killed mid-refresh left (pipeline.retire_orphan)."""
        with self._connect() as con, con.cursor() as cur:
            if not self._registry_exists(cur):
                return []
            cur.execute(
                sql.SQL(
                    "select version from {} where run_id = %s and dropped_at is null "
                    "order by created_at, version"
                ).format(self._registry()),
                (run_id,),
            )
            return [PgBuild(version, run_id) for (version,) in cur.fetchall()]

    def was_published(self, build: PgBuild) -> bool:
        """Whether the build was ever made the published version (it may since have been replaced)."""
        with self._connect() as con, con.cursor() as cur:
            if not self._registry_exists(cur):
                return False
            cur.execute(
                sql.SQL("select published_at is not null from {} where version = %s").format(
                    self._registry()
                ),
                (build.version,),
            )
            row = cur.fetchone()
            return bool(row and row[0])

    # --- building and publishing ------------------------------------------------------------------

    def new_build(self, run_id: str) -> PgBuild:
        """A new build, its schemas starting with a copy of the published version's tables."""
        build = PgBuild(f"{datetime.now(UTC):%Y%m%d%H%M%S%f}_{secrets.token_hex(3)}", run_id)
        with self._transaction() as cur:
            self._ensure_registry(cur)
            cur.execute("select pg_advisory_xact_lock(%s)", (_REGISTRY_LOCK,))
            cur.execute(
                sql.SQL("insert into {} (version, run_id) values (%s, %s)").format(self._registry()),
                (build.version, run_id),
            )
            cur.execute(sql.SQL("select version from {} where is_current").format(self._registry()))
            if row := cur.fetchone():
                self._copy_tables(cur, f"b_{row[0]}_", build.prefix + "_")
        return build

    def publish(self, build: PgBuild) -> PgPublished:
        """Makes the build's marts the published ones in one transaction, then prunes old versions.

        Call only after the quality gate passed on the build. Retries while readers hold the views,
        at most ``publish_wait_s``; raises StaleBuild when a newer build was published meanwhile."""

        def switch() -> None:
            with self._transaction() as cur:
                self._switch(cur, build)

        self._while_locked(
            switch,
            f"readers kept the published views of schema {self.published_schema!r} busy for "
            f"{self.publish_wait_s:.0f} s; build {build.version} is not published",
        )
        self.prune()
        return self.published()

    def _while_locked(self, action: Callable[[], None], blocked: str) -> None:
        """Runs `action` (one transaction) again while another session holds what it needs, at most
        ``publish_wait_s``; then PublicationBlocked(`blocked`). Each try waits at most the lock
        timeout, so this session never queues behind another for long."""
        deadline = time.monotonic() + self.publish_wait_s
        while True:
            try:
                action()
                return
            except (errors.LockNotAvailable, errors.DeadlockDetected):
                if time.monotonic() > deadline:
                    raise PublicationBlocked(blocked) from None
                time.sleep(random.uniform(0.02, 0.2))

    def discard(self, build: PgBuild) -> None:
        """Drops a build that will not be published (the quality gate refused it).

        Retries while another session holds one of its tables, at most ``publish_wait_s``: measured
        at scale 100, autovacuum's ANALYZE of the tables dbt had just written held them past the
        200 ms lock timeout. Still held after that, the build stays registered and unpublished, and
        the next prune drops it (it started before the version published next)."""
        self._while_locked(
            lambda: self._discard_once(build),
            f"another session kept build {build.version}'s tables busy for "
            f"{self.publish_wait_s:.0f} s; it is left for the next refresh's prune",
        )

    def _discard_once(self, build: PgBuild) -> None:
        with self._transaction() as cur:
            cur.execute("select pg_advisory_xact_lock(%s)", (_REGISTRY_LOCK,))
            cur.execute(
                sql.SQL("select is_current or published_at is not null from {} where version = %s").format(
                    self._registry()
                ),
                (build.version,),
            )
            row = cur.fetchone()
            if row and row[0]:
                raise ValueError(
                    f"build {build.version} was published: prune removes it when it is old enough"
                )
            self._drop_version(cur, build.version)

    def prune(self) -> list[str]:
        """Drops versions beyond the newest ``keep`` published ones and abandoned builds (started
        before the current version). A version whose tables are in use is left for the next prune.
        Returns the versions dropped."""
        dropped: list[str] = []
        with self._transaction() as cur:
            if not self._registry_exists(cur):
                return dropped
            cur.execute("select pg_advisory_xact_lock(%s)", (_REGISTRY_LOCK,))
            cur.execute(
                sql.SQL("""
                with current as (select created_at from {registry} where is_current),
                kept as (select version from {registry} where published_at is not null and dropped_at is null
                         order by published_at desc, version desc limit %s)
                select r.version from {registry} as r
                where r.dropped_at is null and not r.is_current
                  and r.version not in (select version from kept)
                  and (r.published_at is not null or r.created_at < (select created_at from current))
                order by r.created_at""").format(registry=self._registry()),
                (self.keep,),
            )
            for (version,) in cur.fetchall():
                cur.execute("savepoint drop_version")
                try:
                    self._drop_version(cur, version)
                except errors.LockNotAvailable:
                    cur.execute("rollback to savepoint drop_version")
                    continue
                cur.execute("release savepoint drop_version")
                dropped.append(version)
        return dropped

    # --- the switch -------------------------------------------------------------------------------

    def _switch(self, cur, build: PgBuild) -> None:
        """In the caller's transaction: check that `build` may be published, point the stable
        schema's views at its marts, re-grant them, and mark it the current version."""
        self._check_publishable(cur, build)
        source = build.schema("marts")
        marts = self._relations(cur, source)
        if not marts:
            raise ValueError(f"build {build.version} has nothing in schema {source!r} to publish")
        self._repoint_views(cur, source, marts)
        self._regrant_readers(cur)
        self._mark_current(cur, build)

    def _check_publishable(self, cur, build: PgBuild) -> None:
        """Under the registry lock: `build` is registered, neither dropped nor published, and no
        version started after it is already published (publishing it would undo that one)."""
        registry = self._registry()
        cur.execute("select set_config('lock_timeout', %s, true)", (f"{self.lock_timeout_ms}ms",))
        cur.execute("select pg_advisory_xact_lock(%s)", (_REGISTRY_LOCK,))
        cur.execute(
            sql.SQL("select created_at, published_at, dropped_at from {} where version = %s").format(
                registry
            ),
            (build.version,),
        )
        row = cur.fetchone()
        if row is None:
            raise KeyError(f"build {build.version} is not registered in {REGISTRY_SCHEMA}.versions")
        if row[2] is not None:
            raise StaleBuild(f"build {build.version} was dropped (abandoned or discarded)")
        if row[1] is not None:
            raise StaleBuild(f"build {build.version} was already published")
        cur.execute(
            sql.SQL("select version from {} where is_current and created_at > %s").format(registry), (row[0],)
        )
        if newer := cur.fetchone():
            raise StaleBuild(
                f"build {build.version} started before the published version {newer[0]}; "
                f"publishing it would undo that version"
            )

    def _repoint_views(self, cur, source: str, marts: dict[str, str]) -> None:
        """One view in the stable schema per mart of `source`; views of marts gone are dropped."""
        stable = self.published_schema
        cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(stable)))
        views = self._relations(cur, stable)
        if views:  # all at once, before anything changes: readers see the old views or the new ones
            cur.execute(
                sql.SQL("lock table {} in access exclusive mode").format(
                    sql.SQL(", ").join(sql.Identifier(stable, name) for name in sorted(views))
                )
            )
        if foreign := sorted(name for name, kind in views.items() if kind != "v"):
            raise ValueError(
                f"schema {stable!r} holds tables, not only published views: {', '.join(foreign)}"
            )
        for name in sorted(views.keys() - marts.keys()):
            cur.execute(sql.SQL("drop view {}").format(sql.Identifier(stable, name)))
        for name in sorted(marts):
            view, target = sql.Identifier(stable, name), sql.Identifier(source, name)
            if name in views and self._columns(cur, stable, name) != self._columns(cur, source, name):
                # CREATE OR REPLACE may only append columns; a changed mart gets a new view (and
                # the grants below, as a new mart does)
                cur.execute(sql.SQL("drop view {}").format(view))
            cur.execute(sql.SQL("create or replace view {} as select * from {}").format(view, target))

    def _regrant_readers(self, cur) -> None:
        """Re-grant to every role that reads the stable schema (default privileges cover new views
        created by the role that set them; this covers views created by any other role)."""
        stable = self.published_schema
        cur.execute(
            """select distinct r.rolname
                       from pg_namespace as n cross join aclexplode(n.nspacl) as a
                       join pg_roles as r on r.oid = a.grantee
                       where n.nspname = %s and a.privilege_type = 'USAGE' and a.grantee <> n.nspowner""",
            (stable,),
        )
        for (role,) in cur.fetchall():
            cur.execute(
                sql.SQL("grant select on all tables in schema {} to {}").format(
                    sql.Identifier(stable), sql.Identifier(role)
                )
            )

    def _mark_current(self, cur, build: PgBuild) -> None:
        registry, stable = self._registry(), self.published_schema
        cur.execute(sql.SQL("update {} set is_current = false where is_current").format(registry))
        cur.execute(
            sql.SQL(
                "update {} set is_current = true, published_at = clock_timestamp() "
                "where version = %s returning published_at"
            ).format(registry),
            (build.version,),
        )
        published_at = cur.fetchone()[0]
        cur.execute(
            sql.SQL("comment on schema {} is %s").format(sql.Identifier(stable)),
            (
                f"SLF warehouse, published version {build.version} (run {build.run_id}, "
                f"{published_at.isoformat()})",
            ),
        )

    # --- helpers ----------------------------------------------------------------------------------

    def _copy_tables(self, cur, from_prefix: str, to_prefix: str) -> None:
        cur.execute(
            """select n.nspname, c.relname from pg_class as c
                       join pg_namespace as n on n.oid = c.relnamespace
                       where starts_with(n.nspname, %s) and c.relkind in ('r', 'p')
                       order by 1, 2""",
            (from_prefix,),
        )
        for schema, table in cur.fetchall():
            target_schema = to_prefix + schema[len(from_prefix) :]
            cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(target_schema)))
            source, target = sql.Identifier(schema, table), sql.Identifier(target_schema, table)
            cur.execute(sql.SQL("create table {} (like {} including all)").format(target, source))
            cur.execute(sql.SQL("insert into {} select * from {}").format(target, source))

    def _drop_version(self, cur, version: str) -> None:
        if not _VERSION.fullmatch(version):
            raise ValueError(f"not a build version: {version!r}")
        cur.execute("select set_config('lock_timeout', %s, true)", (f"{self.lock_timeout_ms}ms",))
        cur.execute(
            "select nspname from pg_namespace where starts_with(nspname, %s) order by 1", (f"b_{version}_",)
        )
        for (schema,) in cur.fetchall():
            cur.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
        cur.execute(
            sql.SQL("update {} set dropped_at = clock_timestamp() where version = %s").format(
                self._registry()
            ),
            (version,),
        )

    @staticmethod
    def _relations(cur, schema: str) -> dict[str, str]:
        cur.execute(
            """select c.relname, c.relkind from pg_class as c
                       join pg_namespace as n on n.oid = c.relnamespace
                       where n.nspname = %s and c.relkind = any(%s)""",
            (schema, list(_PUBLISHABLE)),
        )
        return dict(cur.fetchall())

    @staticmethod
    def _columns(cur, schema: str, relation: str) -> list[tuple[str, str]]:
        cur.execute(
            """select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute as a
                       join pg_class as c on c.oid = a.attrelid
                       join pg_namespace as n on n.oid = c.relnamespace
                       where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
                       order by a.attnum""",
            (schema, relation),
        )
        return cur.fetchall()

    @staticmethod
    def _registry() -> sql.Composed:
        return sql.Identifier(REGISTRY_SCHEMA, "versions")

    @staticmethod
    def _registry_exists(cur) -> bool:
        cur.execute("select to_regclass(%s) is not null", (f"{REGISTRY_SCHEMA}.versions",))
        return cur.fetchone()[0]

    def _ensure_registry(self, cur) -> None:
        if self._registry_exists(cur):
            return
        cur.execute("select pg_advisory_xact_lock(%s)", (_REGISTRY_LOCK,))
        cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(REGISTRY_SCHEMA)))
        cur.execute(
            sql.SQL("""create table if not exists {} (
            version text primary key,
            run_id text not null,
            created_at timestamptz not null default clock_timestamp(),
            published_at timestamptz,
            dropped_at timestamptz,
            is_current boolean not null default false)""").format(self._registry())
        )
        cur.execute(
            sql.SQL("create unique index if not exists {} on {} (is_current) where is_current").format(
                sql.Identifier("versions_one_current"), self._registry()
            )
        )

    @contextmanager
    def _connect(self) -> Iterator:
        con = psycopg2.connect(self.conninfo)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator:
        # `with con` commits on success and rolls back on any error; _connect() closes it
        with self._connect() as con, con, con.cursor() as cur:
            yield cur


# --- the read-only role for analysts and BI tools ----------------------------------------------------


def scram_sha256_verifier(password: str, *, iterations: int = 4096, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802/7677), computed here so
    the password itself never reaches the server (its logs, pg_stat_statements)."""
    if not password or not password.isascii() or not password.isprintable():
        # non-ASCII passwords need SASLprep before hashing, which this does not implement
        raise ValueError("the reader's password must be non-empty printable ASCII")
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"
    )


def ensure_reader_role(
    conninfo: str, password: str, *, role: str = READER_ROLE, published_schema: str = PUBLISHED_SCHEMA
) -> None:
    """Creates (or updates) a login role that can SELECT the published marts and nothing else.

    Idempotent: run it at every deployment with the password from the secret store. Run it as the
    role that publishes (it sets that role's default privileges). The role gets USAGE on the stable
    schema and SELECT on its views, no right on any other schema (raw, audit, the builds, the
    registry), sessions read-only by default, and an idle transaction is ended after 5 minutes so a
    forgotten spreadsheet cannot hold up a publication. Temporary tables are revoked from PUBLIC on
    the warehouse database (owners and superusers keep them)."""
    verifier = scram_sha256_verifier(password)
    name, stable = sql.Identifier(role), sql.Identifier(published_schema)
    con = psycopg2.connect(conninfo)
    try:
        with con, con.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(%s)", (_REGISTRY_LOCK,))
            cur.execute("select 1 from pg_roles where rolname = %s", (role,))
            verb = sql.SQL("alter role" if cur.fetchone() else "create role")
            cur.execute(
                sql.SQL(
                    "{} {} login nosuperuser nocreatedb nocreaterole noreplication nobypassrls "
                    "inherit password %s"
                ).format(verb, name),
                (verifier,),
            )
            cur.execute(sql.SQL("alter role {} set default_transaction_read_only = on").format(name))
            cur.execute(
                sql.SQL("alter role {} set idle_in_transaction_session_timeout = '5min'").format(name)
            )
            cur.execute(sql.SQL("alter role {} set search_path = {}").format(name, stable))
            cur.execute("select current_database()")
            database = sql.Identifier(cur.fetchone()[0])
            cur.execute(sql.SQL("revoke temporary on database {} from public").format(database))
            cur.execute(sql.SQL("grant connect on database {} to {}").format(database, name))
            cur.execute("revoke create on schema public from public")
            cur.execute(sql.SQL("create schema if not exists {}").format(stable))
            cur.execute(sql.SQL("grant usage on schema {} to {}").format(stable, name))
            cur.execute(sql.SQL("grant select on all tables in schema {} to {}").format(stable, name))
            cur.execute(
                sql.SQL("alter default privileges in schema {} grant select on tables to {}").format(
                    stable, name
                )
            )
    finally:
        con.close()
