"""Partner clients and their registered operations (trusted documents): the rows behind
`sisada operations` and the gateway's allow-list (gateway/persisted)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from resolvers.db import Database
from resolvers.models import OperationClient, PersistedOperation

OPEN = "open"
ALLOW_LIST = "allow-list"
MODES = (OPEN, ALLOW_LIST)


@dataclass(frozen=True, slots=True)
class ClientOperations:
    """One client as the gateway needs it: its mode and its documents by SHA-256."""

    name: str
    mode: str
    documents: dict[str, str]

    @property
    def allow_list_only(self) -> bool:
        return self.mode == ALLOW_LIST


@dataclass(frozen=True, slots=True)
class RegisteredOperation:
    client: str
    mode: str
    sha256: str
    operation_names: str
    added_at: dt.datetime


async def client_operations(db: Database, name: str) -> ClientOperations | None:
    """The client and its documents in one statement; None when no such client."""
    rows = await db.all(
        select(OperationClient.mode, PersistedOperation.sha256, PersistedOperation.document)
        .select_from(OperationClient)
        .outerjoin(PersistedOperation, PersistedOperation.client == OperationClient.name)
        .where(OperationClient.name == name))
    if not rows:
        return None
    documents = {row["sha256"]: row["document"] for row in rows if row["sha256"] is not None}
    return ClientOperations(name=name, mode=rows[0]["mode"], documents=documents)


async def client_mode(db: Database, name: str) -> str | None:
    return await db.scalar(select(OperationClient.mode).where(OperationClient.name == name))


async def set_client_mode(db: Database, name: str, mode: str) -> bool:
    """Create the client or change its mode; True when it was created."""
    now = dt.datetime.now(dt.UTC)
    async with db.transaction() as conn:
        changed = await conn.execute(update(OperationClient)
                                     .where(OperationClient.name == name)
                                     .values(mode=mode, updated_at=now))
        if changed.rowcount:
            return False
        await conn.execute(insert(OperationClient).values(name=name, mode=mode, updated_at=now))
        return True


async def add_operation(db: Database, client: str, sha256: str, document: str,
                        operation_names: Sequence[str]) -> bool:
    """Register `document` for `client`; False when it was registered already."""
    async with db.transaction() as conn:
        exists = await conn.scalar(select(PersistedOperation.sha256).where(
            PersistedOperation.client == client, PersistedOperation.sha256 == sha256))
        if exists is not None:
            return False
        await conn.execute(insert(PersistedOperation).values(
            client=client, sha256=sha256, document=document,
            operation_names=",".join(operation_names), added_at=dt.datetime.now(dt.UTC)))
        return True


async def operation_count(db: Database, client: str) -> int:
    rows = await db.all(select(PersistedOperation.sha256)
                        .where(PersistedOperation.client == client))
    return len(rows)


async def registered_operations(db: Database, client: str | None = None
                                ) -> tuple[list[tuple[str, str]], list[RegisteredOperation]]:
    """(clients and their modes, their operations), by client then date; one client's only
    when `client` is given."""
    clients = select(OperationClient.name, OperationClient.mode).order_by(OperationClient.name)
    operations = (select(PersistedOperation.client, OperationClient.mode,
                         PersistedOperation.sha256, PersistedOperation.operation_names,
                         PersistedOperation.added_at)
                  .join(OperationClient, OperationClient.name == PersistedOperation.client)
                  .order_by(PersistedOperation.client, PersistedOperation.added_at,
                            PersistedOperation.sha256))
    if client is not None:
        clients = clients.where(OperationClient.name == client)
        operations = operations.where(PersistedOperation.client == client)
    client_rows = await db.all(clients)
    operation_rows = await db.all(operations)
    return ([(row["name"], row["mode"]) for row in client_rows],
            [RegisteredOperation(**dict(row)) for row in operation_rows])


async def remove_operations(db: Database, client: str, sha256: str | None) -> int:
    """Remove one registered document (or, with `sha256` None, all of the client's)."""
    statement = delete(PersistedOperation).where(PersistedOperation.client == client)
    if sha256 is not None:
        statement = statement.where(PersistedOperation.sha256 == sha256)
    async with db.transaction() as conn:
        result = await conn.execute(statement)
        return int(result.rowcount or 0)
