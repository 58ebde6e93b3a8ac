"""A protocol's fields fit their columns on every database (issue #10 item 15): refused at parse, never mid-store."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from protocols.loader import ProtocolError, parse_protocol
from store import models
from store.db import Store
from tests.conftest import EN_PROTOCOL


@pytest.mark.parametrize("change,message", [
    (("version: 1", "version: 1099511627776"), "version: Input should be less than or equal to 2147483647"),
    (("id: en-dialogue-accents", "id: " + "x" * 200), "id: String should have at most 128 characters"),
])
def test_a_protocol_too_large_to_store_is_refused_before_storing(store: Store, change: tuple[str, str], message: str) -> None:
    text = EN_PROTOCOL.read_text()
    assert re.search(rf"^{re.escape(change[0])}$", text, re.M)
    with pytest.raises(ProtocolError) as refused:
        parse_protocol(re.sub(rf"^{re.escape(change[0])}$", change[1], text, count=1, flags=re.M), "big.yaml")
    assert message in str(refused.value)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(models.Protocol)) == 0


def test_the_largest_accepted_version_and_id_are_stored_on_both_databases(store: Store) -> None:
    from protocols.registry import register_protocol

    text = EN_PROTOCOL.read_text().replace("id: en-dialogue-accents", "id: " + "x" * 128, 1)
    protocol = parse_protocol(re.sub(r"^version: 1$", "version: 2147483647", text, count=1, flags=re.M), "max.yaml")
    with store.session() as session:
        register_protocol(session, protocol, actor="test")
        session.commit()
        assert session.scalar(select(models.Protocol.version)) == 2**31 - 1
