"""One AMI command run from the CLI: the audit writer (the actions database) and a logged-in AMI client, set up
and torn down in order. Shared by ``transfer``, ``spy`` and ``agent``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

import sqlalchemy as sa

from hotline_cti.adapters.ami.client import AmiClient, AmiError, AmiSettings
from hotline_cti.cli.db_errors import first_line
from hotline_cti.storage.store import Store
from hotline_cti.storage.writer import BatchWriter


@contextlib.asynccontextmanager
async def audited_ami(
    database: str | None, settings: AmiSettings
) -> AsyncIterator[tuple[AmiClient, BatchWriter] | None]:
    """The logged-in client and the audit writer; None when the database cannot be opened or AMI does not
    answer (said on stderr, exit 1)."""
    try:
        store = await Store.open(database)
    except (ValueError, OSError, sa.exc.SQLAlchemyError) as exc:
        print(f"error: --database: {first_line(exc)}", file=sys.stderr)
        yield None
        return
    writer = BatchWriter(store)
    await writer.start()
    client = AmiClient(settings)
    try:
        try:
            await client.connect()
        except (AmiError, OSError) as exc:
            print(f"error: AMI {settings.host}:{settings.port}: {exc}", file=sys.stderr)
            yield None
            return
        yield client, writer
    finally:
        await client.close()  # the audit rows are flushed after the client is gone, before the store closes
        await writer.stop()
        await store.close()
